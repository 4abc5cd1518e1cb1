"""Metadata files fetched from a URL: the body is streamed as the server meant it (a gzip transfer
encoding is decoded), capped in size, and its format taken from the Content-Type when the URL's
name has none. A local HTTP server answers like real ones do."""
from __future__ import annotations

import gzip
import http.server
import threading

import pytest

from archive.importers import SourceError, open_source
from archive.importers.metadata import MetadataSource
from archive.models import Artwork, Job

from .conftest import run_import

pytestmark = pytest.mark.django_db

CSV = "id,title,date\n" + "".join(f"u{i},Print {i},c. 18{i:02d}\n" for i in range(40))


@pytest.fixture
def server(settings):
    """(base_url, routes): routes maps a path to (status, headers, body). Loopback allow-listed."""
    settings.FETCH_ALLOWED_HOSTS = ["127.0.0.1"]
    routes: dict[str, tuple[int, dict, bytes]] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            status, headers, body = routes.get(self.path, (404, {"Content-Type": "text/plain"}, b"not found"))
            self.send_response(status)
            for key, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", routes
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_gzip_encoded_csv_without_extension(server):
    base, routes = server
    routes["/collection/export?format=csv"] = (
        200, {"Content-Type": "text/csv; charset=utf-8", "Content-Encoding": "gzip"}, gzip.compress(CSV.encode()),
    )
    url = f"{base}/collection/export?format=csv"
    assert isinstance(open_source(url, mapping="generic"), MetadataSource)
    job, stats, errors = run_import(url, mapping="generic")
    assert job.state == Job.State.DONE and errors == [] and stats.done == 40
    assert Artwork.objects.get(source__startswith="metadata:", source_id="u7").year_start == 1807
    # A named .csv sent gzip-encoded is stored decoded, not as compressed bytes under a .csv name.
    routes["/works.csv"] = (200, {"Content-Type": "text/csv", "Content-Encoding": "gzip"}, gzip.compress(CSV.encode()))
    job, stats, errors = run_import(f"{base}/works.csv", mapping="generic", source_name="named")
    assert errors == [] and stats.done == 40


def test_gzip_file_served_with_gzip_transfer_encoding(server):
    base, routes = server
    lines = "".join(f'{{"id": "j{i}", "title": "Work {i}"}}\n' for i in range(5)).encode()
    # A .gz file the server compresses once more for the transfer: stored as the file itself.
    routes["/dump.jsonl.gz"] = (200, {"Content-Type": "application/gzip", "Content-Encoding": "gzip"},
                                gzip.compress(gzip.compress(lines)))
    # And a server that sends the .gz name's content plain but transfer-encoded: still readable.
    routes["/plain.jsonl.gz"] = (200, {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}, gzip.compress(lines))
    for path in ("/dump.jsonl.gz", "/plain.jsonl.gz"):
        job, stats, errors = run_import(base + path, mapping="generic")
        assert errors == [] and stats.done == 5, (path, errors)


def test_download_over_the_size_limit_is_refused(server, settings):
    base, routes = server
    routes["/big.csv"] = (200, {"Content-Type": "text/csv", "Content-Encoding": "gzip"}, gzip.compress(CSV.encode() * 50))
    settings.MAX_METADATA_BYTES = 10_000  # the decoded size counts, not the compressed one
    with pytest.raises(SourceError, match="10,000-byte limit for metadata downloads"):
        open_source(f"{base}/big.csv", mapping="generic")
    assert not any((settings.MEDIA_ROOT / "imports").glob("tmp*")), "the partial download is removed"


def test_unknown_format_is_a_clear_error(server):
    base, routes = server
    routes["/export"] = (200, {"Content-Type": "application/octet-stream"}, CSV.encode())
    with pytest.raises(SourceError, match="cannot tell the format of .*/export.*'application/octet-stream'"):
        open_source(f"{base}/export", kind="metadata", mapping="generic")
