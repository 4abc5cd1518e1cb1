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


# --- The live mirror's budget ---------------------------------------------------------------------
# A live visitor sends several frames a second, so frames have their own budget (never the
# snapshot's 20/minute): DOPPELGANGER_LIVE_RATE, one or more comma-separated DRF rates that must
# all allow a frame, e.g. the default "8/second,400/minute": bursts of up to 8 frames a second and
# on average at most ~6.7 a second (a visitor at 5 frames a second never meets it; a script
# hammering the endpoint does, within a second). Same client key as the snapshot's.
DEFAULT_LIVE_RATE = "8/second,400/minute"


def live_rates() -> list[str]:
    from workers.ml.faces import setting

    value = str(setting("DOPPELGANGER_LIVE_RATE", DEFAULT_LIVE_RATE))
    return [r.strip() for r in value.split(",") if r.strip()]


class LiveFrameThrottle(ScopedThrottle):
    """One window of the live budget; ``rate`` is one of :func:`live_rates`."""

    scope = "doppelganger_live"

    def __init__(self, rate: str):
        self.rate = rate
        self.num_requests, self.duration = self.parse_rate(rate)

    def get_cache_key(self, request, view):
        return f"doppelganger:live:{self.duration}:{client_key(request)}"


def hit_live(request) -> int | None:
    """Count one live frame for this client. Returns None if every window allows it, else the
    seconds to wait. A frame refused by one window is not counted in the others."""
    throttles = [LiveFrameThrottle(rate) for rate in live_rates()]
    waits = []
    for throttle in throttles:
        throttle.key = throttle.get_cache_key(request, None)
        throttle.history = throttle.cache.get(throttle.key, [])
        throttle.now = throttle.timer()
        while throttle.history and throttle.history[-1] <= throttle.now - throttle.duration:
            throttle.history.pop()
        if len(throttle.history) >= throttle.num_requests:
            waits.append(throttle.wait() or 1)
    if waits:
        return max(1, math.ceil(max(waits)))
    for throttle in throttles:
        throttle.throttle_success()
    return None
