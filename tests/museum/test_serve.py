"""``./run serve``: the explorer under gunicorn with WhiteNoise, DEBUG off, started here as a real
process on a free port of 127.0.0.1 against the test database, and read over HTTP."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from archive.models import Artwork
from tests.workers.test_celery import test_database_url

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "SERVE_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "SERVE_MIGRATE": "false",  # the test database is migrated already
        "STATIC_ROOT": str(tmp_path / "static"),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "SERVE_MEDIA": "false",
    }
    env.pop("DEBUG", None)
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([str(ROOT / "run"), "serve"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"./run serve exited with {proc.returncode}:\n{(tmp_path / 'serve.log').read_text()[-3000:]}")
            try:
                if requests.get(base + "/healthz", timeout=10).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"./run serve not up after 120 s:\n{(tmp_path / 'serve.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield base, tmp_path
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # gunicorn's graceful shutdown of its workers
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_the_explorer_is_served_by_gunicorn_with_static_files_and_the_api(served):
    Artwork.objects.create(source="t", source_id="1", title="Served by gunicorn", status=Artwork.Status.NO_IMAGE)
    base, tmp_path = served

    home = requests.get(base + "/", timeout=30)
    assert home.status_code == 200 and "gunicorn" in home.headers["Server"].lower()
    assert "<html" in home.text.lower()

    # DEBUG is off: an unknown page is the plain 404, not Django's debug page listing the URLconf.
    missing = requests.get(base + "/no-such-page/", timeout=30)
    assert missing.status_code == 404 and "URLconf" not in missing.text

    # Static files: collected by ./run serve into STATIC_ROOT, compressed copies served by WhiteNoise.
    assert (tmp_path / "static" / "css" / "site.css").is_file()
    css = requests.get(base + "/static/css/site.css", headers={"Accept-Encoding": "gzip"}, timeout=30)
    assert css.status_code == 200 and css.headers["Content-Encoding"] == "gzip"
    assert css.text == (ROOT / "static" / "css" / "site.css").read_text()
    assert "max-age=" in css.headers["Cache-Control"]
    assert requests.get(base + "/static/css/no-such.css", timeout=30).status_code == 404

    api = requests.get(base + "/api/v1/artworks/", timeout=30)
    assert api.status_code == 200
    assert [a["title"] for a in api.json()["results"]] == ["Served by gunicorn"]

    ready = requests.get(base + "/readyz", timeout=30)
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"ok": True, "checks": {"database": "ok", "broker": "ok", "store": "ok"}}
