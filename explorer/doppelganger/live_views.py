"""The live mirror's views: the frame endpoint (JSON), the kiosk page and the QR code of an artwork.

``POST /doppelganger/frame/`` takes one camera frame as the raw request body (``Content-Type:
image/jpeg``, PNG or WebP; CSRF token in ``X-CSRFToken``) and answers JSON (``live.frame_lookup``);
refusals are ``{"error": code, "detail": message}`` with the status of the snapshot's refusals.
The body is read into memory by Django (no upload handler, no temporary file) and dropped with the
request; nothing about it is logged (the access log has the path only). ``Server-Timing`` gives
the server's time for the frame, so a client (and the bench) can tell it from the network's.
"""
from __future__ import annotations

import io
import time

import segno
from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from archive.models import Artwork

from . import failures, live, ratelimit, service
from .views import _context

KIOSK = "explorer/doppelganger_kiosk.html"


def _error(code: str, detail: str, status: int, **headers) -> JsonResponse:
    response = JsonResponse({"error": code, "detail": detail}, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


@require_POST
@never_cache
def frame(request):
    started = time.perf_counter()
    try:
        wait = ratelimit.hit_live(request)
        if wait is not None:
            return _error("rate_limited", f"Too many frames; please wait {wait} seconds.", 429, **{"Retry-After": str(wait)})
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if not declared.isdigit() or int(declared) > live.max_frame_bytes():
            return _error("too_large", f"A live frame must be under {live.max_frame_bytes() // 1024} KB.", 413)
        if int(declared) == 0:
            return _error("empty", "The frame is empty.", 400)
        if request.content_type not in ("image/jpeg", "image/png", "image/webp"):
            return _error("unsupported_media_type", "Send the frame as the request body, Content-Type image/jpeg.", 415)
        answer = live.frame_lookup(request.body)
    except Exception as exc:  # noqa: BLE001 - every failure is a JSON answer, never a 500 page
        failed = failures.as_rejection(exc)
        return _error(failed.code, failed.message, failed.status)
    response = JsonResponse(answer)
    response["Server-Timing"] = f"match;dur={(time.perf_counter() - started) * 1000:.1f}"
    return response


@require_GET
@never_cache
@ensure_csrf_cookie
def kiosk(request):
    """Full screen, no controls: the mirror, the best match, its QR code and the privacy notice."""
    return render(request, KIOSK, _context(idle_seconds=int(getattr(settings, "DOPPELGANGER_KIOSK_IDLE_SECONDS", 10)),
                                           kiosk=True))


@require_GET
@cache_control(public=True, max_age=86400)
def qr(request, pk: int):
    """An SVG QR code of the artwork page's absolute URL (segno), for visitors' phones."""
    if not Artwork.objects.filter(pk=pk).exists():
        raise Http404("no such artwork")
    url = request.build_absolute_uri(reverse("explorer:artwork", args=[pk]))
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=4, border=2, dark="#111", light="#fff", xmldecl=False)
    return HttpResponse(out.getvalue(), content_type="image/svg+xml")
