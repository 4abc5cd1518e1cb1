"""The guarded HTTP client, tried as an attacker would: a server on 127.0.0.1 that the importer must
refuse by default and reach only when allow-listed, redirects into loopback, a host that resolves
to a public address for the check and connects to loopback (DNS rebinding), internal address
ranges, non-http schemes, oversized bodies."""
from __future__ import annotations

import http.server
import json
import threading

import pytest

from archive import fetch
from archive.importers import SourceError, open_source
from archive.models import Artwork

from .conftest import jpeg_bytes, pattern_image, run_import

pytestmark = pytest.mark.django_db


@pytest.fixture
def server():
    """(port, routes, hits): a local server; routes maps a path to (status, headers, body)."""
    routes: dict[str, tuple[int, dict, bytes]] = {}
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            status, headers, body = routes.get(self.path, (404, {}, b"not found"))
            self.send_response(status)
            for key, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd.server_address[1], routes, hits
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "::1", "10.0.0.5", "172.16.3.4", "192.168.1.1", "169.254.169.254", "100.100.100.200",
    "0.0.0.0", "fd00:ec2::254", "fe80::1", "::ffff:127.0.0.1", "224.0.0.1",
])
def test_internal_addresses_are_refused(address):
    assert fetch.address_refused(address, "host.example")


def test_public_addresses_pass():
    assert fetch.address_refused("93.184.216.34") == "" and fetch.address_refused("2606:4700::1111") == ""


def test_allow_list_by_network_and_by_host(settings):
    settings.FETCH_ALLOWED_HOSTS = ["10.1.0.0/16", "iiif.local"]
    assert fetch.address_refused("10.1.2.3") == ""
    assert fetch.address_refused("10.2.0.1")
    assert fetch.address_refused("192.168.0.9", "iiif.local") == ""


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/a.jpg", "gopher://127.0.0.1:6379/_INFO", "/etc/passwd"])
def test_only_http_and_https(url):
    with pytest.raises(fetch.FetchRefused, match="only http and https"):
        fetch.check_url(url)


def test_loopback_server_refused_by_default_and_reached_when_allow_listed(server, settings):
    port, routes, hits = server
    routes["/works.csv"] = (200, {"Content-Type": "text/csv"}, b"id,title\n1,One\n")
    url = f"http://127.0.0.1:{port}/works.csv"
    with pytest.raises(SourceError, match="loopback address"):
        open_source(url, mapping="generic")
    assert hits == [], "a refused host is never contacted"
    settings.FETCH_ALLOWED_HOSTS = ["127.0.0.1"]
    job, stats, errors = run_import(url, mapping="generic")
    assert stats.done == 1 and hits == ["/works.csv"]


def test_images_from_loopback_are_refused(server, settings, tmp_path):
    port, routes, hits = server
    routes["/secret.jpg"] = (200, {"Content-Type": "image/jpeg"}, jpeg_bytes(pattern_image(1)))
    (tmp_path / "works.csv").write_text(
        f"id,title,image_url\n1,Internal,http://127.0.0.1:{port}/secret.jpg\n2,Metadata,http://169.254.169.254/latest/meta-data/\n"
    )
    job, stats, errors = run_import(tmp_path / "works.csv", mapping="generic")
    assert hits == [] and len(errors) == 2
    assert "loopback" in errors[0].reason and "link-local" in errors[1].reason
    assert set(Artwork.objects.values_list("status", flat=True)) == {"image_failed"}


def test_redirect_into_loopback_is_refused(server, settings):
    port, routes, hits = server
    # "localhost" is allowed by name; the redirect target 127.0.0.1 is not.
    settings.FETCH_ALLOWED_HOSTS = ["localhost"]
    routes["/go"] = (302, {"Location": f"http://127.0.0.1:{port}/secret"}, b"")
    routes["/secret"] = (200, {}, b"internal")
    with pytest.raises(fetch.FetchRefused, match="loopback"):
        fetch.fetch_bytes(f"http://localhost:{port}/go", max_bytes=1000)
    assert hits == ["/go"]
    routes["/go2"] = (301, {"Location": "file:///etc/passwd"}, b"")
    with pytest.raises(fetch.FetchRefused, match="only http and https"):
        fetch.fetch_bytes(f"http://localhost:{port}/go2", max_bytes=1000)
    routes["/ok"] = (302, {"Location": "/final"}, b"")
    routes["/final"] = (200, {}, b"fine")
    assert fetch.fetch_bytes(f"http://localhost:{port}/ok", max_bytes=1000) == b"fine"


def test_redirect_loop_is_cut(server, settings):
    port, routes, hits = server
    settings.FETCH_ALLOWED_HOSTS = ["127.0.0.1"]
    routes["/loop"] = (302, {"Location": "/loop"}, b"")
    with pytest.raises(fetch.FetchRefused, match="redirects"):
        fetch.fetch_bytes(f"http://127.0.0.1:{port}/loop", max_bytes=1000)
    assert len(hits) == fetch.MAX_REDIRECTS + 1


def test_connection_to_loopback_refused_even_when_the_check_was_fooled(server, monkeypatch):
    """DNS rebinding: the name resolved to a public address for the check, then to 127.0.0.1."""
    port, routes, hits = server
    routes["/secret"] = (200, {}, b"internal")
    monkeypatch.setattr(fetch, "check_url", lambda url: None)
    with pytest.raises(fetch.FetchRefused, match="loopback"):
        fetch.fetch_bytes(f"http://127.0.0.1:{port}/secret", max_bytes=1000)
    assert hits == []


def test_size_cap_and_declared_length(server, settings):
    port, routes, hits = server
    settings.FETCH_ALLOWED_HOSTS = ["127.0.0.1"]
    routes["/big"] = (200, {}, b"x" * 5000)
    with pytest.raises(fetch.FetchError, match="larger than the 1,000-byte limit"):
        fetch.fetch_bytes(f"http://127.0.0.1:{port}/big", max_bytes=1000)


def test_remote_manifest_on_loopback_refused_then_allowed(server, settings):
    port, routes, hits = server
    base = f"http://127.0.0.1:{port}"
    doc = {"@context": "http://iiif.io/api/presentation/3/context.json", "id": f"{base}/m.json", "type": "Manifest",
           "label": {"en": ["x"]}, "items": []}
    routes["/m.json"] = (200, {"Content-Type": "application/json"}, json.dumps(doc).encode())
    with pytest.raises(SourceError, match="loopback"):
        open_source(f"{base}/m.json")
    settings.FETCH_ALLOWED_HOSTS = ["127.0.0.1"]
    assert open_source(f"{base}/m.json").kind == "iiif"


def test_a_dripping_server_is_cut_off_at_the_total_time(settings):
    """A byte now and then never trips the per-read timeout; the whole transfer is still bounded."""
    import time as _time

    cut_off, finished = [], threading.Event()

    class Drip(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(60):  # 15 s of drip if nobody hangs up
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    _time.sleep(0.25)
            except OSError:
                cut_off.append(True)  # the client hung up on us
            finished.set()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    settings.FETCH_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.FETCH_MAX_SECONDS = 1
    try:
        with pytest.raises(fetch.FetchError, match=r"took over 1 s to download \(FETCH_MAX_SECONDS\)"):
            fetch.fetch_bytes(f"http://127.0.0.1:{httpd.server_address[1]}/", max_bytes=10**6)
        finished.wait(30)
        assert cut_off == [True], "the connection must be closed while the server is still dripping"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_image_service_and_child_manifest_on_loopback_are_refused(server, settings, tmp_path):
    """Every kind of URL a source names goes through the same checks: a IIIF image service, a
    collection's child manifest (the collection itself reached through an allow-listed name)."""
    port, routes, hits = server
    manifest = {
        "@context": "http://iiif.io/api/presentation/3/context.json", "id": "https://example.org/m", "type": "Manifest",
        "label": {"en": ["x"]},
        "items": [{"id": "https://example.org/c1", "type": "Canvas", "items": [{"type": "AnnotationPage", "items": [
            {"type": "Annotation", "motivation": "painting", "body": {
                "id": f"http://127.0.0.1:{port}/full.jpg", "type": "Image",
                "service": [{"id": f"http://127.0.0.1:{port}/iiif/secret", "type": "ImageService3"}]}}]}]}],
    }
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    job, stats, errors = run_import(tmp_path / "m.json")
    assert hits == [] and len(errors) == 1 and "loopback" in errors[0].reason  # neither the service nor the image

    settings.FETCH_ALLOWED_HOSTS = ["localhost"]
    collection = {"@context": "http://iiif.io/api/presentation/3/context.json", "id": "c", "type": "Collection",
                  "items": [{"id": f"http://127.0.0.1:{port}/child.json", "type": "Manifest"}]}
    routes["/c.json"] = (200, {"Content-Type": "application/json"}, json.dumps(collection).encode())
    job, stats, errors = run_import(f"http://localhost:{port}/c.json")
    assert hits == ["/c.json"] and len(errors) == 1 and "loopback" in errors[0].reason


def test_a_server_dripping_its_headers_is_cut_off_too(settings):
    import time as _time

    cut_off, finished = [], threading.Event()

    class DripHeaders(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            try:
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                for _ in range(60):  # 15 s of one header if nobody hangs up
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    _time.sleep(0.25)
            except OSError:
                cut_off.append(True)
            finished.set()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), DripHeaders)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    settings.FETCH_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.FETCH_MAX_SECONDS = 1
    try:
        with pytest.raises(fetch.FetchError, match=r"took over 1 s to download \(FETCH_MAX_SECONDS\)"):
            fetch.fetch_bytes(f"http://127.0.0.1:{httpd.server_address[1]}/", max_bytes=10**6)
        finished.wait(30)
        assert cut_off == [True], "the connection must be closed while the server is still dripping"
    finally:
        httpd.shutdown()
        httpd.server_close()
