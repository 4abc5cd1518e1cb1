"""Per-client rate limit for face look-ups (page and API share it), kept in Django's cache.

DRF's throttle machinery (a sliding window: the times of the client's recent look-ups), keyed by
a keyed hash of the client IP (:mod:`explorer.client_ip`: ``REMOTE_ADDR``, or the address the
trusted proxies of ``TRUSTED_PROXY_COUNT`` forwarded), never the IP itself. The rate is
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["doppelganger"]`` (env ``DOPPELGANGER_RATE``, e.g.
"20/minute"); set ``CACHE_URL`` so that every process shares it.
"""
from __future__ import annotations

import hashlib
import hmac
import math

from django.conf import settings

from ..client_ip import client_ip
from ..throttles import ScopedThrottle

DEFAULT_RATE = "20/minute"


def client_key(request) -> str:
    ip = client_ip(request)
    return hmac.new(settings.SECRET_KEY.encode(), ip.encode(), hashlib.sha256).hexdigest()[:32]


class DoppelgangerThrottle(ScopedThrottle):
    scope = "doppelganger"
    cache_format = "doppelganger:rate:%(ident)s"

    def get_rate(self):
        return super().get_rate() or DEFAULT_RATE

    def get_cache_key(self, request, view):
        return self.cache_format % {"ident": client_key(request)}


def hit(request) -> int | None:
    """Count one look-up for this client. Returns None if allowed, else the seconds to wait."""
    throttle = DoppelgangerThrottle()
    if throttle.allow_request(request, None):
        return None
    return max(1, math.ceil(throttle.wait() or 1))


def message(wait: int) -> str:
    return f"You have tried a lot of photos in a short time. Please wait {wait} seconds and try again."
