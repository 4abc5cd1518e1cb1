"""The public doppelganger page and its JSON API, on a small real archive: real face photos stored
as "artworks" beside real AIC portraits, faces found by the real stage, looked up with other real
photos of the same people."""
from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.test import Client, override_settings
from PIL import Image, ImageOps

from archive.models import Face
from tests.explorer.test_doppelganger_support import AIC_LANDSCAPE, QUERY, build_archive, deepface_dir

PAGE = "/doppelganger/"
API = "/api/v1/doppelganger/"


@pytest.fixture(scope="module")
def face_archive(django_db_setup, django_db_blocker, shared_data, tmp_path_factory):
    """Built once for this module and committed; removed afterwards."""
    root = tmp_path_factory.getbasetemp() / "media"
    root.mkdir(exist_ok=True)
    with override_settings(MEDIA_ROOT=root), django_db_blocker.unblock():
        data = build_archive(shared_data)
        assert not data["result"].errors
        yield data
        from archive.models import Artwork

        Artwork.objects.filter(pk__in=data["ids"]).delete()


@pytest.fixture
def photos(shared_data) -> Path:
    return deepface_dir(shared_data)


def upload(path: Path, name: str | None = None):
    handle = io.BytesIO(path.read_bytes())
    handle.name = name or path.name
    return handle


def post_page(client, path: Path, **extra):
    return client.post(PAGE, {"photo": upload(path), **extra})


def post_api(client, path: Path, **extra):
    return client.post(API, {"image": upload(path), **extra})


pytestmark = pytest.mark.django_db


def test_page_is_public_with_form_and_consent(client):
    response = client.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'enctype="multipart/form-data"' in html and 'name="photo"' in html
    assert "never saved, logged or shared" in html
    assert "doppelganger.js" in html


@pytest.mark.parametrize("person", sorted(QUERY))
def test_another_photo_of_the_person_is_the_top_match(client, face_archive, photos, person):
    stored = face_archive["people"][person]
    response = post_api(client, photos / QUERY[person])
    assert response.status_code == 200, response.content
    body = response.json()
    assert len(body["faces"]) == 1 and body["chosen"] == 0
    # Sizes and boxes are in the uploaded photo's own pixels (after EXIF orientation), although
    # the photo was decoded at reduced scale.
    with Image.open(photos / QUERY[person]) as im:
        assert (body["width"], body["height"]) == ImageOps.exif_transpose(im).size
    x, y, w, h = body["faces"][0]["box"]
    assert 0 <= x < x + w <= body["width"] and 0 <= y < y + h <= body["height"] and w > body["width"] / 10
    top = body["matches"][0]
    assert top["artwork"]["id"] == stored.pk
    assert top["distance"] < 0.6 and top["similarity"] > 50
    assert top["crop_url"].startswith("http://testserver/media/faces/")
    ids = [m["artwork"]["id"] for m in body["matches"]]
    assert len(ids) == len(set(ids)) >= 5  # one face per artwork
    assert [m["distance"] for m in body["matches"]] == sorted(m["distance"] for m in body["matches"])


def test_page_shows_side_by_side_matches(client, face_archive, photos):
    response = post_page(client, photos / QUERY["person01"])
    assert response.status_code == 200
    html = response.content.decode()
    stored = face_archive["people"]["person01"]
    assert html.count('class="dg-match"') >= 5
    titles = re.findall(r'class="dg-title" href="([^"]+)"', html)
    assert titles[0] == f"/artworks/{stored.pk}/" and len(titles) == len(set(titles))
    assert "data:image/jpeg;base64," in html and "Photograph of person01" in html and "%</span>" in html
    # The fragment the page script asks for is only the results.
    fragment = client.post(PAGE, {"photo": upload(photos / QUERY["person01"])}, HTTP_X_REQUESTED_WITH="fetch")
    assert fragment.status_code == 200 and "<html" not in fragment.content.decode()
    assert 'class="dg-match"' in fragment.content.decode()


def test_several_faces_let_the_visitor_choose(client, face_archive, photos):
    response = post_page(client, photos / "couple.jpg")
    html = response.content.decode()
    assert response.status_code == 200
    boxes = html.count("data-face=")
    assert boxes >= 2 and "faces in your photo" in html
    first = post_api(client, photos / "couple.jpg").json()
    second = post_api(client, photos / "couple.jpg", face="1").json()
    assert len(first["faces"]) == boxes and first["chosen"] == 0 and second["chosen"] == 1
    # Largest face first.
    areas = [f["box"][2] * f["box"][3] for f in first["faces"]]
    assert areas == sorted(areas, reverse=True)
    bad = post_api(client, photos / "couple.jpg", face=str(boxes))
    assert bad.status_code == 400 and bad.json()["error"] in ("bad_face_index", "bad_request")


def test_photo_without_a_face(client, face_archive, aic_dir):
    response = post_page(client, aic_dir / "images" / f"{AIC_LANDSCAPE}.jpg")
    assert response.status_code == 422 and "could not find a face" in response.content.decode()
    api = post_api(client, aic_dir / "images" / f"{AIC_LANDSCAPE}.jpg")
    assert api.status_code == 422 and api.json()["error"] == "no_face"


def test_not_an_image(client, face_archive):
    bogus = io.BytesIO(b"this is a text file, not a photo" * 10)
    bogus.name = "selfie.jpg"
    response = client.post(PAGE, {"photo": bogus})
    assert response.status_code == 415 and "not a photo we can read" in response.content.decode()
    bogus.seek(0)
    api = client.post(API, {"image": bogus})
    assert api.status_code == 415 and api.json()["error"] == "not_an_image"


def test_truncated_photo_is_refused_clearly(client, face_archive, photos):
    cut = io.BytesIO((photos / "img2.jpg").read_bytes()[:20000])
    cut.name = "cut.jpg"
    api = client.post(API, {"image": cut})
    assert api.status_code == 415 and api.json()["error"] == "not_an_image"


def test_missing_photo(client):
    response = client.post(PAGE, {})
    assert response.status_code == 400 and "Please choose a photo" in response.content.decode()
    api = client.post(API, {})
    assert api.status_code == 400 and api.json()["error"] == "no_image"
    wrong_type = client.post(API, data=b"{}", content_type="application/json")
    assert wrong_type.status_code == 415 and "error" in wrong_type.json()


def test_size_limits(client, settings, face_archive, photos):
    data = (photos / "img2.jpg").read_bytes()
    # Declared body far over the limit: refused before the body is read.
    settings.DOPPELGANGER_MAX_BYTES = 50_000
    page = post_page(client, photos / "img2.jpg")
    assert page.status_code == 413 and "too large" in page.content.decode()
    api = post_api(client, photos / "img2.jpg")
    assert api.status_code == 413 and api.json()["error"] == "too_large"
    # Body within the multipart slack but the file itself over the limit: the upload handler stops it.
    settings.DOPPELGANGER_MAX_BYTES = len(data) - 1000
    page = post_page(client, photos / "img2.jpg")
    assert page.status_code == 413
    api = post_api(client, photos / "img2.jpg")
    assert api.status_code == 413 and api.json()["error"] == "too_large"
    # Pixel limit.
    settings.DOPPELGANGER_MAX_BYTES = 8 * 1024 * 1024
    settings.DOPPELGANGER_MAX_PIXELS = 500_000
    api = post_api(client, photos / "img2.jpg")
    assert api.status_code == 413 and api.json()["error"] == "too_many_pixels"


def test_rate_limit_is_per_client_and_shared_by_page_and_api(client, settings, face_archive, photos):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "doppelganger": "3/minute"}}
    for _ in range(2):
        assert post_page(client, photos / QUERY["person01"]).status_code == 200
    assert post_api(client, photos / QUERY["person01"]).status_code == 200
    page = post_page(client, photos / QUERY["person01"])
    assert page.status_code == 429 and "Please wait" in page.content.decode() and int(page["Retry-After"]) > 0
    api = post_api(client, photos / QUERY["person01"])
    assert api.status_code == 429 and api.json()["error"] == "rate_limited"
    # Another client is not affected; looking at the page is never limited.
    other = Client(REMOTE_ADDR="10.1.2.3")
    assert post_api(other, photos / QUERY["person01"]).status_code == 200
    assert client.get(PAGE).status_code == 200


def test_not_a_face_is_excluded_and_stays_excluded_after_a_rerun(client, face_archive, photos):
    from workers.faces import process

    stored = face_archive["people"]["person01"]
    face = Face.objects.get(artwork=stored)
    Face.objects.filter(pk=face.pk).update(not_a_face=True)
    ids = [m["artwork"]["id"] for m in post_api(client, photos / QUERY["person01"]).json()["matches"]]
    assert stored.pk not in ids
    assert process([stored.pk], {}).done == [stored.pk]
    assert Face.objects.get(artwork=stored).not_a_face
    ids = [m["artwork"]["id"] for m in post_api(client, photos / QUERY["person01"]).json()["matches"]]
    assert stored.pk not in ids


def _snapshot() -> dict:
    counts = {m._meta.label: m.objects.count() for m in apps.get_models()}
    files = sorted(str(p) for p in Path(settings.MEDIA_ROOT).rglob("*"))
    return {"counts": counts, "files": files}


def test_a_lookup_writes_nothing_and_never_spools_to_disk(client, settings, face_archive, photos, tmp_path):
    # A photo over Django's 2.5 MB in-memory threshold: the default handlers would write it to
    # FILE_UPLOAD_TEMP_DIR. Point that at a folder that does not exist: spooling would fail.
    big = Image.new("RGB", (1600, 1600))
    big.frombytes(os.urandom(1600 * 1600 * 3))
    with Image.open(photos / QUERY["person01"]) as face_photo:
        face_photo = face_photo.convert("RGB")
        face_photo.thumbnail((1000, 1000))
        big.paste(face_photo, (100, 100))
    buf = io.BytesIO()
    big.save(buf, "PNG")
    assert buf.tell() > settings.FILE_UPLOAD_MAX_MEMORY_SIZE
    buf.seek(0)
    buf.name = "big.png"
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "does-not-exist")
    before = _snapshot()
    response = client.post(PAGE, {"photo": buf})
    assert response.status_code == 200, response.content[:500]
    assert face_archive["people"]["person01"].title in response.content.decode()
    assert _snapshot() == before
    assert not (tmp_path / "does-not-exist").exists()


def test_curator_marks_not_a_face(client, face_archive, curator, visitor):
    stored = face_archive["people"]["person02"]
    face = Face.objects.get(artwork=stored)
    url = f"/doppelganger/faces/{face.pk}/not-a-face/"
    anonymous = client.post(url, {"value": "1"})
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    client.force_login(visitor)
    assert client.post(url, {"value": "1"}).status_code == 403
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(curator)
    assert strict.post(url, {"value": "1"}).status_code == 403  # no CSRF token
    face.refresh_from_db()
    assert not face.not_a_face
    client.force_login(curator)
    page = client.get(f"/artworks/{stored.pk}/")
    assert page.status_code == 200 and url in page.content.decode() and "face-box" in page.content.decode()
    done = client.post(url, {"value": "1"})
    assert done.status_code == 302 and done["Location"].endswith(f"/artworks/{stored.pk}/#faces")
    face.refresh_from_db()
    assert face.not_a_face
    assert "Undo" in client.get(f"/artworks/{stored.pk}/").content.decode()
    client.post(url, {"value": "0", "next": "https://evil.example/"})
    face.refresh_from_db()
    assert not face.not_a_face


def test_artwork_page_shows_faces_to_the_public_without_curator_buttons(client, face_archive):
    stored = face_archive["paintings"]["88372"]
    html = client.get(f"/artworks/{stored.pk}/").content.decode()
    assert 'id="faces"' in html and "face-box" in html and "not-a-face" not in html


def test_api_schema_documents_the_endpoint(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert "/api/v1/doppelganger/" in response.content.decode()
