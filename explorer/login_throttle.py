"""Sign-in throttling: too many failed sign-ins from one client address, or for one user name,
lock further attempts out for a while, with a message that says so and for how long.

Counts live in Django's cache (``CACHE_URL`` shares them between processes), in a fixed window of
``LOGIN_LOCKOUT_SECONDS`` that starts at the first failure: ``LOGIN_FAILURE_LIMIT`` failures per
client (:mod:`explorer.client_ip`) and ``LOGIN_USER_FAILURE_LIMIT`` per user name (higher, so that
a stranger cannot easily lock a curator out). A success clears the client's and the user's count.
The check sits in the authentication backend, so the site's login page, the admin's and
``client.login`` in tests all go through it; :class:`LoginView` turns a lock-out into a 429 page.
"""
from __future__ import annotations

import hashlib
import math
import time

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.exceptions import PermissionDenied

from .client_ip import client_ip

PREFIX = "login-failures"


def _key(kind: str, value: str) -> str:
    return f"{PREFIX}:{kind}:{hashlib.sha256(value.encode()).hexdigest()[:32]}"


def _keys(request, username: str | None) -> list[tuple[str, int]]:
    keys = []
    if request is not None:
        keys.append((_key("client", client_ip(request)), int(settings.LOGIN_FAILURE_LIMIT)))
    if username:
        keys.append((_key("user", username.strip().lower()), int(settings.LOGIN_USER_FAILURE_LIMIT)))
    return keys


def locked_for(request, username: str | None) -> int:
    """Seconds until sign-ins are allowed again for this client or user name (0: allowed)."""
    now = time.time()
    wait = 0.0
    for key, limit in _keys(request, username):
        entry = cache.get(key)
        if entry and entry[0] >= limit:
            wait = max(wait, entry[1] + settings.LOGIN_LOCKOUT_SECONDS - now)
    return max(0, math.ceil(wait))


def record_failure(request, username: str | None) -> None:
    now = time.time()
    for key, _limit in _keys(request, username):
        count, started = cache.get(key) or (0, now)
        if now - started > settings.LOGIN_LOCKOUT_SECONDS:
            count, started = 0, now
        cache.set(key, (count + 1, started), timeout=int(settings.LOGIN_LOCKOUT_SECONDS) + 60)


def clear(request, username: str | None) -> None:
    for key, _limit in _keys(request, username):
        cache.delete(key)


def message(wait: int) -> str:
    minutes = max(1, math.ceil(wait / 60))
    return (f"Too many failed sign-ins. For your account's safety, signing in is paused: "
            f"please try again in {minutes} minute{'s' if minutes != 1 else ''}.")


class ThrottledModelBackend(ModelBackend):
    """Django's model backend behind the failure counts."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(self._username_field())
        wait = locked_for(request, username)
        if wait:
            if request is not None:
                request.login_locked_for = wait
            raise PermissionDenied(message(wait))  # stops authenticate() at once; no password is checked
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            if password is not None:
                record_failure(request, username)
        else:
            clear(request, username)
        return user

    @staticmethod
    def _username_field() -> str:
        from django.contrib.auth import get_user_model

        return get_user_model().USERNAME_FIELD


class LoginView(auth_views.LoginView):
    """The site's login page: a lock-out is a 429 with its message and a Retry-After header."""

    def form_invalid(self, form):
        wait = getattr(self.request, "login_locked_for", 0)
        if not wait:
            return super().form_invalid(form)
        response = self.render_to_response(self.get_context_data(form=form, locked_message=message(wait)), status=429)
        response["Retry-After"] = str(wait)
        return response
