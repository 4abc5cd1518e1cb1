"""Keep an uploaded photo in memory only, and refuse it once it is over the size limit.

The doppelganger views install the shared in-memory handler (:mod:`explorer.uploads`) with the
page's own byte limit and only the photo fields, so the photo's bytes live in a ``BytesIO`` for the
length of the request and nowhere else. Bodies whose declared length is over the limit are
refused before anything is read (:func:`body_too_large`).
"""
from __future__ import annotations

from explorer import uploads as guard

from .service import max_upload_bytes

FIELDS = ("photo", "image")


def body_too_large(request) -> bool:
    return guard.body_too_large(request, max_upload_bytes())


def install(request) -> guard.LimitedUploadHandler:
    """Make the in-memory handler the request's only upload handler (before the body is parsed)."""
    return guard.install(request, max_upload_bytes(), FIELDS)
