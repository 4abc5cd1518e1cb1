"""Per-client rate limit for face look-ups (page and API share it), kept in Django's cache.

Fixed windows per client IP (``REMOTE_ADDR``; put a trusted proxy's address rewriting in front if
one is used). The rate is ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["doppelganger"]`` (env
``DOPPELGANGER_RATE``, e.g. "20/minute"). Cache keys hold a keyed hash of the IP, not the IP.
"""
from __future__ import annotations

import hashlib
import hmac
import time

from django.conf import settings
from django.core.cache import cache

DEFAULT_RATE = "20/minute"
PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'20/minute' -> (20, 60)."""
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period.strip()[0].lower()]


def current_rate() -> tuple[int, int]:
    rates = getattr(settings, "REST_FRAMEWORK", {}).get("DEFAULT_THROTTLE_RATES", {})
    return parse_rate(rates.get("doppelganger") or DEFAULT_RATE)


def client_key(request) -> str:
    ip = request.META.get("REMOTE_ADDR", "") or "unknown"
    return hmac.new(settings.SECRET_KEY.encode(), ip.encode(), hashlib.sha256).hexdigest()[:32]


def hit(request) -> int | None:
    """Count one look-up for this client. Returns None if allowed, else the seconds to wait."""
    limit, period = current_rate()
    now = time.time()
    window = int(now // period)
    key = f"doppelganger:rate:{client_key(request)}:{window}"
    if cache.add(key, 1, timeout=period + 1):
        count = 1
    else:
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=period + 1)
            count = 1
    if count > limit:
        return max(1, int(period - (now % period)) + 1)
    return None


def message(wait: int) -> str:
    return f"You have tried a lot of photos in a short time. Please wait {wait} seconds and try again."
