"""Helpers for the archive tests: image files made in the test, a local HTTP server, an import runner."""
from __future__ import annotations

import functools
import http.server
import io
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workers.ingest.launch import import_location
from archive.importers.base import ImportSettings
from archive.models import JobError


def pattern_image(seed: int, size=(320, 240), mode="RGB") -> Image.Image:
    """A smooth random picture: distinct perceptual hashes for distinct seeds."""
    rng = np.random.default_rng(seed)
    small = (rng.random((6, 8, 3)) * 255).astype(np.uint8)
    im = Image.fromarray(small, "RGB").resize(size, Image.BICUBIC)
    return im.convert(mode) if mode != "RGB" else im


def jpeg_bytes(im: Image.Image, **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=kwargs.pop("quality", 90), **kwargs)
    return buf.getvalue()


def write_jpeg(path: Path, seed: int, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(jpeg_bytes(pattern_image(seed), **kwargs))
    return path


def folder_id(folder: Path, *parts: str) -> str:
    """The source_id a folder import gives a file: the folder's name and the path inside it."""
    return "/".join([folder.name, *parts])


def settings_for_tests(**overrides) -> ImportSettings:
    overrides.setdefault("workers", 2)
    return ImportSettings.from_settings(**overrides)


def run_import(location, **options):
    """import_location with two decoding threads; returns (job, stats, errors)."""
    job, stats = import_location(str(location), cfg=options.pop("cfg", None) or settings_for_tests(), **options)
    errors = list(JobError.objects.filter(job=job).order_by("id"))
    return job, stats, errors


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_dir(tmp_path, settings):
    """(folder, base_url): a folder served over HTTP by a local server thread for this test.
    Loopback is refused by the fetch policy unless allow-listed: these tests allow it."""
    settings.FETCH_ALLOWED_HOSTS = ["127.0.0.1"]
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
