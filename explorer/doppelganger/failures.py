"""What the page and the API answer when a look-up fails for a reason other than the photo itself.

Both views turn any exception into a :class:`~.service.SelfieRejected` with a friendly message:
a request Django refused to parse (a form field over ``DATA_UPLOAD_MAX_MEMORY_SIZE``, too many
fields) is the visitor's 4xx; a database outage, missing model files or a dlib error is a 503
whose traceback is logged (never the photo: tracebacks carry no local variables) and never
reaches the visitor, not even as Django's debug page.
"""
from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import DatabaseError

from .service import SelfieRejected

log = logging.getLogger("explorer.doppelganger")

UNAVAILABLE = "unavailable"


def as_rejection(exc: Exception) -> SelfieRejected:
    """The refusal to show for ``exc`` (logged when it is the server's fault)."""
    if isinstance(exc, SelfieRejected):
        return exc
    if isinstance(exc, RequestDataTooBig):
        return SelfieRejected("too_large", "That request is too large. Please send only your photo.", 413)
    if isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        return SelfieRejected("bad_request", "That request has too many parts. Please send only your photo.", 400)
    if isinstance(exc, DatabaseError):
        log.exception("doppelganger look-up: database unavailable")
        return SelfieRejected(UNAVAILABLE, "The collection cannot be searched right now; please try again later.", 503)
    log.exception("doppelganger look-up failed")
    return SelfieRejected(UNAVAILABLE, "Something went wrong while matching your photo; please try again later.", 503)
