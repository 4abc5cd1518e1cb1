"""Client identity for the rate limits, tried as an attacker would: a rotating X-Forwarded-For
header does not buy a fresh budget (no proxy is trusted by default; behind trusted proxies only
the entries they wrote count), and sign-ins lock out after repeated failures with a clear message."""
from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import override_settings

from explorer import login_throttle

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def _rates(**rates):
    return override_settings(REST_FRAMEWORK={
        **settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
    })


def test_rotating_forwarded_for_does_not_bypass_the_search_limit(client):
    with _rates(search="5/minute"):
        codes = [client.get("/search/", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code for i in range(12)]
    assert codes.count(429) == 7 and codes[:5] == [200] * 5


def test_rotating_forwarded_for_does_not_bypass_the_api_limit(client):
    with _rates(anon="4/minute"):
        codes = [client.get("/api/v1/labels/", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code for i in range(8)]
    assert codes == [200] * 4 + [429] * 4


def test_behind_one_trusted_proxy_only_its_entry_counts(client, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    with _rates(search="3/minute"):
        # The client rotates what it sends; the proxy appends the address it saw (always the same).
        spoofed = [client.get("/search/", HTTP_X_FORWARDED_FOR=f"10.9.9.{i}, 192.0.2.50").status_code for i in range(5)]
        other = client.get("/search/", HTTP_X_FORWARDED_FOR="10.9.9.1, 192.0.2.77").status_code
    assert spoofed == [200, 200, 200, 429, 429]
    assert other == 200, "a different real client has its own budget"


def test_doppelganger_key_ignores_the_header_without_trusted_proxies(rf, settings):
    from explorer.doppelganger.ratelimit import client_key

    a = rf.get("/", HTTP_X_FORWARDED_FOR="1.1.1.1", REMOTE_ADDR="192.0.2.1")
    b = rf.get("/", HTTP_X_FORWARDED_FOR="2.2.2.2", REMOTE_ADDR="192.0.2.1")
    assert client_key(a) == client_key(b)
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_key(a) != client_key(b)


@pytest.fixture
def curator():
    return get_user_model().objects.create_user("keeper", password="a-long-good-password")


def _login(client, password, **extra):
    return client.post("/accounts/login/", {"username": "keeper", "password": password}, **extra)


def test_login_locks_out_after_repeated_failures(client, curator, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        response = _login(client, "wrong")
        assert response.status_code == 200 and b"did not match" in response.content
    locked = _login(client, "a-long-good-password")  # even the right password waits now
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    assert b"Too many failed sign-ins" in locked.content and b"try again in 15 minutes" in locked.content
    assert "_auth_user_id" not in client.session
    # Rotating X-Forwarded-For is no way around it.
    assert _login(client, "a-long-good-password", HTTP_X_FORWARDED_FOR="198.51.100.9").status_code == 429


def test_lock_out_ends_after_the_window(client, curator, settings, monkeypatch):
    settings.LOGIN_FAILURE_LIMIT = 2
    for _ in range(2):
        _login(client, "wrong")
    assert _login(client, "a-long-good-password").status_code == 429
    real = login_throttle.time.time
    monkeypatch.setattr(login_throttle.time, "time", lambda: real() + settings.LOGIN_LOCKOUT_SECONDS + 1)
    response = _login(client, "a-long-good-password")
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(curator.pk)


def test_user_name_limit_holds_across_addresses(client, curator, settings):
    settings.LOGIN_FAILURE_LIMIT = 100
    settings.LOGIN_USER_FAILURE_LIMIT = 4
    for i in range(4):
        _login(client, "wrong", REMOTE_ADDR=f"192.0.2.{i + 10}")
    assert _login(client, "a-long-good-password", REMOTE_ADDR="192.0.2.99").status_code == 429
    # The admin's login goes through the same backend.
    response = client.post("/admin/login/", {"username": "keeper", "password": "a-long-good-password"})
    assert "_auth_user_id" not in client.session and response.status_code == 200


def test_success_clears_the_count(client, curator, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    _login(client, "wrong")
    _login(client, "wrong")
    assert _login(client, "a-long-good-password").status_code == 302
    client.logout()
    _login(client, "wrong")
    _login(client, "wrong")
    assert _login(client, "a-long-good-password").status_code == 302
