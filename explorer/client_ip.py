"""Who a client is, for rate limits and login throttling: the one place that reads its address.

Behind ``TRUSTED_PROXY_COUNT`` reverse proxies (default 0), each proxy appends the address it
received the request from to ``X-Forwarded-For``; only those last entries are trusted, so the
client is the entry the outermost trusted proxy wrote. Anything a client puts in the header itself
sits further left and is ignored; with no trusted proxy the header is ignored altogether and the
socket's address (``REMOTE_ADDR``) is the client. Every limit uses it: the API's anonymous
throttle, search and search by image (:mod:`explorer.throttles`), the doppelganger's, sign-ins.
"""
from __future__ import annotations

from django.conf import settings


def trusted_proxies() -> int:
    return max(0, int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0))


def client_ip(request) -> str:
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    count = trusted_proxies()
    if count == 0:
        return remote
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
    if not forwarded:
        return remote
    return forwarded[-min(count, len(forwarded))]
