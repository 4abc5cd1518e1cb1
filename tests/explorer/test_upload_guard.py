"""The upload guard, tried as an attacker would, on every endpoint that accepts an image: a small
PNG declaring 12000x12000 pixels (refused on its header, with the server's memory measured), a
body declaring 200 MB (refused before it is read), an upload that passes its limit mid-stream
(stopped, nothing spooled to disk), and a normal photo (kept in memory, never a temporary file)."""
from __future__ import annotations

import io
import struct
import zlib

import psutil
import pytest
from django.core.files.uploadedfile import TemporaryUploadedFile
from PIL import Image

from explorer import search as search_mod
from explorer import uploads

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("/search/image/", "image"),
    ("/api/v1/search/image/", "image"),
    ("/doppelganger/", "photo"),
    ("/api/v1/doppelganger/", "image"),
]


def pixel_bomb(width=12000, height=12000) -> bytes:
    """A valid PNG header declaring width x height RGB pixels, with a tiny body."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = zlib.compress(b"\x00" * (width * 3 + 1) * 8)  # a few rows; the rest is missing
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def jpeg(size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (120, 80, 40)).save(buf, "JPEG")
    return buf.getvalue()


def test_the_bomb_declares_what_it_says():
    with Image.open(io.BytesIO(pixel_bomb())) as im:
        assert im.size == (12000, 12000)


def test_pixel_bomb_refused_on_its_header_without_memory_growth():
    process = psutil.Process()
    data = pixel_bomb()
    before = process.memory_info().rss
    for _ in range(5):
        with pytest.raises(search_mod.BadSearch, match="too many pixels") as caught:
            search_mod.prepare_query_image(data)
    growth = process.memory_info().rss - before
    assert caught.value.status == 413
    assert growth < 20 * 1024 * 1024, f"RSS grew by {growth / 1e6:.1f} MB (a decode would need 432 MB)"


def test_decode_memory_limit_applies_below_the_pixel_limit(settings):
    settings.UPLOAD_MAX_DECODE_BYTES = 2_000_000
    big_png = pixel_bomb(1000, 1000)  # 1 Mpx within the pixel limit, 3 MB to decode
    with pytest.raises(uploads.UploadRejected, match="too much memory"):
        uploads.open_checked(big_png)
    # A large JPEG is drafted down to the working size first, so it passes.
    im, size = uploads.open_checked(jpeg((3000, 2000)), want=256)
    assert size == (3000, 2000) and max(im.size) < 3000


@pytest.mark.parametrize("url,field", ENDPOINTS)
def test_pixel_bomb_refused_on_every_endpoint(client, url, field):
    response = client.post(url, {field: io.BytesIO(pixel_bomb())})
    assert response.status_code == 413, response.content[:300]
    assert b"too many pixels" in response.content


@pytest.mark.parametrize("url,field", ENDPOINTS)
def test_body_declaring_200_mb_refused_before_it_is_read(client, url, field, monkeypatch):
    spooled = []
    monkeypatch.setattr(TemporaryUploadedFile, "__init__", lambda self, *a, **k: spooled.append(a))
    boundary = "XyZ"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"a.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + b"x" * 1000 + f"\r\n--{boundary}--\r\n".encode()
    response = client.generic("POST", url, body, content_type=f"multipart/form-data; boundary={boundary}",
                              CONTENT_LENGTH=str(200 * 1024 * 1024))
    assert response.status_code == 413
    assert spooled == []


def test_upload_stopped_mid_stream_at_its_limit(client, settings, monkeypatch):
    """A body whose declared length passes but whose file runs over the limit is cut off."""
    settings.UPLOAD_MAX_BYTES = 100_000
    settings.DOPPELGANGER_MAX_BYTES = 50_000
    monkeypatch.setattr(uploads, "MULTIPART_SLACK", 10 * 1024 * 1024)
    spooled = []
    monkeypatch.setattr(TemporaryUploadedFile, "__init__", lambda self, *a, **k: spooled.append(a))
    response = client.post("/search/image/", {"image": io.BytesIO(b"\xff\xd8" + b"x" * 300_000)})
    assert response.status_code == 413 and b"too large" in response.content
    assert spooled == []


def test_normal_upload_is_kept_in_memory(client, monkeypatch):
    """3 MB is over Django's 2.5 MB spooling threshold: with the guard it still never touches disk."""
    spooled = []
    monkeypatch.setattr(TemporaryUploadedFile, "__init__", lambda self, *a, **k: spooled.append(a))
    seen = []
    real = search_mod.prepare_query_image
    monkeypatch.setattr(search_mod, "prepare_query_image", lambda upload: seen.append(type(upload).__name__) or real(upload))
    data = jpeg((64, 48)) + b"\x00" * (3 * 1024 * 1024)  # trailing bytes after the JPEG's end are ignored
    response = client.post("/search/image/", {"image": io.BytesIO(data)})
    assert response.status_code == 200
    assert seen == ["InMemoryUploadedFile"] and spooled == []
