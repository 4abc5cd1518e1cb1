"""Deployment security settings: a Content-Security-Policy on every page (and pages that keep to
it: no inline scripts or handlers), HSTS, Secure cookies and the SSL redirect from the environment,
and `manage.py check --deploy` clean in production mode."""
from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["/", "/labels/", "/search/", "/search/image/", "/doppelganger/", "/map/", "/collections/",
         "/accounts/login/", "/api/v1/docs/"]
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)


def _manage(*args, **env):
    base = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "MUSEUM_PRODUCTION", "DEBUG")}
    base["DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"  # parsed only; check --deploy needs no database
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True)


@pytest.mark.django_db
@pytest.mark.parametrize("url", PAGES)
def test_pages_send_a_csp_and_keep_to_it(client, url):
    response = client.get(url)
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
    html = response.content.decode()
    assert not INLINE_SCRIPT.search(html), INLINE_SCRIPT.search(html).group(0)
    assert not INLINE_HANDLER.search(html), INLINE_HANDLER.search(html).group(0)


@pytest.mark.django_db
def test_curator_pages_keep_to_the_csp(client):
    from explorer import prompt_labels

    from tests.explorer.conftest import _user

    curator = _user("cura", "curator", "operator")
    client.force_login(curator)
    label = prompt_labels.create_prompt_label("Boats", "a painting of boats", curator)
    for url in ("/curate/labels/new/", f"/curate/labels/{label.slug}/", "/jobs/"):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert not INLINE_SCRIPT.search(html) and not INLINE_HANDLER.search(html), url


@pytest.mark.django_db
def test_api_docs_script_is_a_separate_file(client):
    response = client.get("/api/v1/docs/", {"script": ""})
    assert response.status_code == 200 and response["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in response.content


@pytest.mark.django_db
def test_csp_can_be_set_or_turned_off(client, settings):
    settings.CONTENT_SECURITY_POLICY = "default-src 'none'"
    assert client.get("/").headers["Content-Security-Policy"] == "default-src 'none'"
    settings.CONTENT_SECURITY_POLICY = ""
    assert "Content-Security-Policy" not in client.get("/").headers


@pytest.mark.django_db
def test_hsts_secure_cookies_and_redirect_from_settings(client, settings):
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_SSL_REDIRECT = True
    plain = client.get("/")
    assert plain.status_code == 301 and plain["Location"].startswith("https://")
    secure = client.get("/accounts/login/", secure=True)
    assert secure["Strict-Transport-Security"] == "max-age=3600"
    assert secure.cookies["csrftoken"]["secure"] is True
    get_user_model().objects.create_user("keeper", password="a-long-good-password")
    login = client.post("/accounts/login/", {"username": "keeper", "password": "a-long-good-password"}, secure=True)
    assert login.status_code == 302 and login.cookies["sessionid"]["secure"] is True


@pytest.mark.django_db
def test_proxy_ssl_header_setting(client, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/", HTTP_X_FORWARDED_PROTO="https").status_code == 200


def test_check_deploy_is_clean_in_production_mode():
    development = _manage("check", "--deploy")
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in development.stderr + development.stdout
    production = _manage("check", "--deploy", MUSEUM_PRODUCTION="true", SECRET_KEY=secrets.token_urlsafe(50))
    assert production.returncode == 0, production.stderr
    assert "System check identified no issues" in production.stdout, production.stdout + production.stderr


def test_production_mode_needs_a_secret_key():
    result = _manage("check", MUSEUM_PRODUCTION="true")
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr
