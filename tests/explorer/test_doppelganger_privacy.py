"""The visitor's photo on the doppelganger page and API: held in memory only (never spooled to disk,
never in the database, the cache or the logs), its EXIF metadata ignored except the orientation,
only JPEG, PNG and WebP opened, and every oversized or malformed request answered clearly."""
from __future__ import annotations

import base64
import io
import os
import re
from pathlib import Path

import pytest
from django.apps import apps
from django.core.cache import caches
from django.test import override_settings
from PIL import ExifTags, Image, ImageOps

from tests.explorer.test_doppelganger_support import QUERY

PAGE = "/doppelganger/"
API = "/api/v1/doppelganger/"
SECRET_NAME = "holiday-selfie-anna-4711.png"
SECRET_ARTIST = "Anna Privatperson"
SECRET_GPS = (48.0, 51.0, 13.3713)

pytestmark = pytest.mark.django_db


def named(data: bytes, name: str) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def upright(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def big_png(face_photo: Path) -> bytes:
    """A PNG over Django's 2.5 MB in-memory threshold (noise around a real face photo)."""
    big = Image.new("RGB", (1600, 1600))
    big.frombytes(os.urandom(1600 * 1600 * 3))
    face = upright(face_photo)
    face.thumbnail((1000, 1000))
    big.paste(face, (100, 100))
    buf = io.BytesIO()
    big.save(buf, "PNG")
    return buf.getvalue()


def snapshot(media_root) -> dict:
    counts = {m._meta.label: m.objects.count() for m in apps.get_models()}
    files = sorted(str(p) for p in Path(media_root).rglob("*"))
    return {"counts": counts, "files": files}


def traces_of(data: bytes) -> list[str]:
    """Ways a piece of the photo could show up in text: raw, hex, base64."""
    piece = data[4096:4096 + 48]
    return [piece.decode("latin-1"), piece.hex(), base64.b64encode(piece).decode()[:60], repr(piece)[2:60]]


@pytest.mark.parametrize("url, field", [(PAGE, "photo"), (API, "image")])
def test_a_lookup_writes_nothing_and_never_spools_to_disk(client, settings, face_archive, photos, tmp_path, project_logs, url, field):
    # A photo over Django's 2.5 MB in-memory threshold: the default handlers would write it to
    # FILE_UPLOAD_TEMP_DIR. Point that at a folder that does not exist: spooling would fail.
    data = big_png(photos / QUERY["person01"])
    assert len(data) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "does-not-exist")
    before = snapshot(settings.MEDIA_ROOT)
    with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                               "LOCATION": f"privacy-{field}"}}):
        response = client.post(url, {field: named(data, SECRET_NAME)})
        cached = dict(caches["default"]._cache)  # LocMemCache's own store: key -> pickled value
    assert response.status_code == 200, response.content[:500]
    assert face_archive["people"]["person01"].title in response.content.decode()
    assert snapshot(settings.MEDIA_ROOT) == before
    assert not (tmp_path / "does-not-exist").exists()
    # The cache holds the rate-limit counter and nothing else: no image, no file name, no IP.
    assert len(cached) == 1
    (key, value), = cached.items()
    assert re.fullmatch(r":1:doppelganger:rate:[0-9a-f]{32}", key) and len(value) < 64
    # Nothing about the photo in the logs or echoed back.
    logged = project_logs.text
    body = response.content.decode("latin-1")
    for text in (logged, body):
        assert SECRET_NAME not in text and "holiday-selfie" not in text
        assert not any(trace in text for trace in traces_of(data))


def exif_rotated_photo(path: Path) -> tuple[bytes, tuple[int, int]]:
    """A real face photo stored sideways with an EXIF Orientation tag (6: rotate 90 degrees clockwise
    to view), plus GPS coordinates and an artist's name, as a phone would write it."""
    up = upright(path)
    sideways = up.transpose(Image.Transpose.ROTATE_90)  # the sensor's pixels; Orientation 6 turns them back
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Artist] = SECRET_ARTIST
    exif[ExifTags.Base.ImageDescription] = "at home, Rue Secrete 12"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps.update({1: "N", 2: SECRET_GPS, 3: "E", 4: (2.0, 17.0, 40.2)})
    buf = io.BytesIO()
    sideways.save(buf, "JPEG", exif=exif, quality=92)
    return buf.getvalue(), up.size


def test_exif_orientation_is_applied_and_other_metadata_ignored(client, face_archive, photos):
    data, (width, height) = exif_rotated_photo(photos / QUERY["person01"])
    with Image.open(io.BytesIO(data)) as im:  # the test photo is what it claims to be
        assert im.size == (height, width) and im.getexif()[ExifTags.Base.Orientation] == 6
    # The same sideways pixels without the tag: the frontal-face detector finds no face in them,
    # so the match below depends on the orientation being applied.
    with Image.open(io.BytesIO(data)) as im:
        bare = io.BytesIO()
        im.save(bare, "JPEG", quality=92)
    assert client.post(API, {"image": named(bare.getvalue(), "sideways.jpg")}).status_code == 422

    api = client.post(API, {"image": named(data, "phone.jpg")})
    assert api.status_code == 200, api.content
    body = api.json()
    assert (body["width"], body["height"]) == (width, height)  # the upright photo's size
    x, y, w, h = body["faces"][0]["box"]
    assert 0 <= x < x + w <= width and 0 <= y < y + h <= height
    assert body["matches"][0]["artwork"]["id"] == face_archive["people"]["person01"].pk

    page = client.post(PAGE, {"photo": named(data, "phone.jpg")})
    assert page.status_code == 200
    html = page.content.decode()
    for text in (api.content.decode(), html):
        assert SECRET_ARTIST not in text and "Rue Secrete" not in text and "13.3713" not in text
    # The visitor's crop sent back inline is a fresh JPEG without any EXIF.
    crops = re.findall(r'src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', html)
    assert crops
    for crop in set(crops):
        with Image.open(io.BytesIO(base64.b64decode(crop))) as im:
            assert not im.getexif() and "exif" not in im.info


@pytest.mark.parametrize("fmt", ["TIFF", "EPS"])
def test_only_jpeg_png_and_webp_are_opened(client, face_archive, photos, fmt):
    """TIFF, EPS (Pillow would run Ghostscript on it, which writes temporary files) and the other
    formats Pillow knows are refused before decoding, however good the face in them."""
    face = upright(photos / QUERY["person01"])
    face.thumbnail((480, 480))
    buf = io.BytesIO()
    face.save(buf, fmt)
    api = client.post(API, {"image": named(buf.getvalue(), f"me.{fmt.lower()}")})
    assert api.status_code == 415 and api.json()["error"] == "not_an_image"
    assert "JPEG, PNG or WebP" in api.json()["detail"]
    page = client.post(PAGE, {"photo": named(buf.getvalue(), f"me.{fmt.lower()}")})
    assert page.status_code == 415 and "JPEG, PNG or WebP" in page.content.decode()


def test_webp_is_accepted(client, face_archive, photos):
    face = upright(photos / QUERY["person01"])
    face.thumbnail((800, 800))
    buf = io.BytesIO()
    face.save(buf, "WEBP", quality=90)
    api = client.post(API, {"image": named(buf.getvalue(), "me.webp")})
    assert api.status_code == 200 and api.json()["matches"][0]["artwork"]["id"] == face_archive["people"]["person01"].pk


def test_a_form_field_over_the_size_limit_is_a_clear_refusal(client, settings, face_archive, photos):
    """A non-file field larger than DATA_UPLOAD_MAX_MEMORY_SIZE (within the body limit): Django
    refuses to parse it; the API still answers JSON and the page its own message."""
    filler = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    photo = (photos / QUERY["person01"]).read_bytes()
    api = client.post(API, {"image": named(photo, "me.jpg"), "note": filler})
    assert api.status_code == 413 and api["Content-Type"] == "application/json"
    assert api.json()["error"] == "too_large" and "only your photo" in api.json()["detail"]
    page = client.post(PAGE, {"photo": named(photo, "me.jpg"), "note": filler})
    assert page.status_code == 413 and "only your photo" in page.content.decode()
    fragment = client.post(PAGE, {"photo": named(photo, "me.jpg"), "note": filler}, HTTP_X_REQUESTED_WITH="fetch")
    assert fragment.status_code == 413 and fragment["X-Doppelganger"] == "results"
