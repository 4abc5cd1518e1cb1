"""The Content-Security-Policy header, from the ``CONTENT_SECURITY_POLICY`` setting (env of the
same name; empty turns it off). The pages load scripts and styles from the site itself only (no
inline scripts; inline style attributes are allowed for the face boxes and the API docs' style
block), images from the site, data: URLs (the doppelganger's crops) and https (deep zoom reads
the tiles and info.json of an artwork's IIIF image service, wherever it is), and the map's web
workers from blob: URLs. The other deployment settings are Django's own SECURE_* and cookie settings,
read from the environment in ``museum/settings.py`` (see docs/security.md)."""
from __future__ import annotations

from django.conf import settings

DEFAULT_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob: https:; "
    "connect-src 'self' https:; font-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", DEFAULT_POLICY)
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response
