"""The doppelganger page (public) and the curators' "not a face" action."""
from __future__ import annotations

import logging

from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from archive.models import Face

from ..permissions import curator_required
from . import failures, ratelimit, service, uploads
from .forms import LookupForm, NotAFaceForm

log = logging.getLogger(__name__)

PAGE = "explorer/doppelganger.html"
LIVE_FPS = 7  # frames a second the live mirror sends at most (under DOPPELGANGER_LIVE_RATE's 8/second)
RESULTS = "explorer/doppelganger_results.html"


def _context(**extra) -> dict:
    return {
        "max_bytes": service.max_upload_bytes(),
        "max_mb": service.max_upload_bytes() // (1024 * 1024),
        "max_megapixels": service.max_upload_pixels() // 1_000_000,
        "threshold": 0.6,
        "live_fps": LIVE_FPS,
        **extra,
    }


def _respond(request, status: int = 200, **extra):
    """The full page, or only the results fragment for the page's own script (marked with the
    ``X-Doppelganger: results`` header, so the script can tell it from any other answer)."""
    fragment = request.headers.get("X-Requested-With") == "fetch"
    response = render(request, RESULTS if fragment else PAGE, _context(**extra), status=status)
    if fragment:
        response["X-Doppelganger"] = "results"
    if status == 429 and "retry_after" in extra:
        response["Retry-After"] = str(extra["retry_after"])
    return response


@csrf_exempt  # CSRF is checked in _lookup, after the in-memory upload handler is installed
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def page(request):
    if request.method != "POST":
        return _respond(request)
    try:
        wait = ratelimit.hit(request)
        if wait is not None:
            return _respond(request, 429, error=ratelimit.message(wait), retry_after=wait)
        if uploads.body_too_large(request):
            return _respond(request, 413, error=service.too_large_message())
        handler = uploads.install(request)
        return _lookup(request, handler)
    except Exception as exc:  # noqa: BLE001 - never a 500 (or DEBUG's page of local variables, the photo among them)
        failed = failures.as_rejection(exc)
        return _respond(request, failed.status, error=failed.message)


@csrf_protect
def _lookup(request, handler):
    form = LookupForm(request.POST, request.FILES)
    if handler.too_large:
        return _respond(request, 413, error=service.too_large_message())
    if not form.is_valid():
        return _respond(request, 400, error="That request was not understood. Please choose a photo and try again.")
    upload = form.upload()
    if upload is None:
        message = "Please choose a photo of your face (or take one with your camera)."
        if form.cleaned_data.get("face") is not None:
            message = "Please choose your photo again, then pick the face to use."
        return _respond(request, 400, error=message)
    data = upload.read()
    try:
        result = service.lookup(data, form.cleaned_data.get("face"))
    except service.SelfieRejected as exc:
        return _respond(request, exc.status, error=exc.message)
    finally:
        del data
    return _respond(request, result=result)


@require_POST
@curator_required
def not_a_face(request, pk: int):
    """Mark (value=1, the default) or unmark (value=0) a detected face as not a face."""
    face = get_object_or_404(Face, pk=pk)
    form = NotAFaceForm(request.POST)
    value = form.data.get("value", "1") if form.is_valid() else "1"
    Face.objects.filter(pk=face.pk).update(not_a_face=value != "0")
    target = form.data.get("next") or reverse("explorer:artwork", args=[face.artwork_id]) + "#faces"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        target = reverse("explorer:artwork", args=[face.artwork_id]) + "#faces"
    return HttpResponseRedirect(target)
