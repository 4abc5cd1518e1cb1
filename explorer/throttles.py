"""Rate limits for the expensive public reads: search (text embedding + kNN + full text) and
search by image (image decoding, two embeddings, near-copy checks). The HTML pages and the API
share one budget per client and scope (DRF's throttle machinery, kept in Django's cache; set
``CACHE_URL`` so all processes share it). Rates: ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``
``"search"`` (env ``SEARCH_RATE``) and ``"image_search"`` (env ``IMAGE_SEARCH_RATE``)."""
from __future__ import annotations

import math
from functools import wraps

from django.shortcuts import render
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle

from .client_ip import client_ip


class ScopedThrottle(SimpleRateThrottle):
    """Per client (user id when signed in, else the address from :mod:`explorer.client_ip`, which
    trusts ``X-Forwarded-For`` only from ``TRUSTED_PROXY_COUNT`` proxies) and scope. The rate is
    read on each request, so a changed setting applies at once."""

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_ident(self, request):
        return client_ip(request)

    def get_cache_key(self, request, view):
        user = getattr(request, "user", None)
        ident = f"user-{user.pk}" if user is not None and user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AnonThrottle(AnonRateThrottle):
    """DRF's throttle for anonymous API clients (``API_ANON_RATE``), with the same client identity."""

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_ident(self, request):
        return client_ip(request)


class SearchThrottle(ScopedThrottle):
    scope = "search"


class ImageSearchThrottle(ScopedThrottle):
    scope = "image_search"


def throttled(throttle_class, *, methods=("GET", "POST")):
    """Limit an HTML view like the API: over the rate, a friendly 429 page with Retry-After."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.method in methods:
                throttle = throttle_class()
                if not throttle.allow_request(request, None):
                    wait = max(1, math.ceil(throttle.wait() or 1))
                    response = render(request, "429.html", {"wait": wait}, status=429)
                    response["Retry-After"] = str(wait)
                    return response
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
