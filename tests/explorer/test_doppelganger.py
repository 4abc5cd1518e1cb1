"""The public doppelganger page and its JSON API, on a small real archive: real face photos stored
as "artworks" beside real AIC portraits, faces found by the real stage, looked up with other real
photos of the same people."""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from django.test import Client
from PIL import Image, ImageOps

from archive.models import Face
from explorer.doppelganger import service
from tests.explorer.test_doppelganger_support import AIC_LANDSCAPE, QUERY, identities

PAGE = "/doppelganger/"
API = "/api/v1/doppelganger/"


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
    # The file input offers the gallery as well as the camera on phones (no capture attribute:
    # it would open the camera only); the page has its own camera button.
    photo_input = re.search(r'<input id="dg-photo"[^>]*>', html).group(0)
    assert "capture" not in photo_input and 'accept="image/jpeg,image/png,image/webp"' in photo_input
    # The size limit the script checks before sending is in bytes, and matches the server's.
    assert f'data-max-bytes="{service.max_upload_bytes()}"' in html and "up to 8 MB" in html


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


def test_every_person_is_found_by_their_other_photos(face_archive, photos, shared_data):
    """All 13 people stored (one photo each, through the real faces stage) beside real portraits:
    each of the other 48 photos is looked up as the page does it, and its top match is its person
    (measured: no exception; see docs/faces.md)."""
    stored = {person: art.pk for person, art in face_archive["people"].items()}
    assert len(stored) == 13
    misses, queries = {}, 0
    for name, person in identities(shared_data).items():
        if face_archive["people"][person].source_id == name:
            continue  # the stored photo itself
        queries += 1
        top = service.lookup((photos / name).read_bytes()).matches[0]
        if top.artwork_id != stored[person]:
            misses[name] = f"{person}: top match {top.title!r} at distance {top.distance:.3f}"
    assert queries == 48
    assert not misses, misses


def test_page_shows_side_by_side_matches(client, face_archive, photos):
    response = post_page(client, photos / QUERY["person01"])
    assert response.status_code == 200
    html = response.content.decode()
    stored = face_archive["people"]["person01"]
    assert html.count('class="dg-match"') >= 5
    titles = re.findall(r'class="dg-title" href="([^"]+)"', html)
    assert titles[0] == f"/artworks/{stored.pk}/" and len(titles) == len(set(titles))
    assert "data:image/jpeg;base64," in html and "Photograph of person01" in html and "%</span>" in html
    # Each match shows the whole artwork too (its thumbnail, the face marked on it) with its metadata.
    first = html[html.index('class="dg-match"'):]
    first = first[:first.index("</li>")]
    assert f'src="{stored.thumbnail_url}"' in first and stored.thumbnail_url.endswith(".jpg")
    assert 'class="dg-thumb-box"' in first and "Test photographer" in first and "2020" in first
    percent = re.search(r'class="dg-pct">(\d+)%<', first).group(1)
    assert 50 < int(percent) <= 100
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


def test_the_query_path_keeps_its_own_detector(client, settings, face_archive, photos):
    """The stage's FACE_DETECTOR (e.g. the CNN detector, ~100x slower on CPU) does not apply to
    the public page: it has its own DOPPELGANGER_DETECTOR, HOG by default."""
    expected = post_api(client, photos / QUERY["person02"]).json()
    settings.FACE_DETECTOR = "cnn"
    assert service.query_backend().detector == "hog"
    answer = post_api(client, photos / QUERY["person02"]).json()
    assert answer["faces"] == expected["faces"] and answer["matches"] == expected["matches"]
    settings.DOPPELGANGER_DETECTOR = "cnn"
    assert service.query_backend().detector == "cnn" and service.query_backend().model_id == "dlib-resnet-v1"


def test_unavailable_matching_is_a_friendly_503_never_a_500(settings, face_archive, photos, tmp_path, project_logs):
    """Model files gone: the page (even with DEBUG on) and the API answer 503 with a friendly
    message; the traceback goes to the log, never to the visitor."""
    settings.DEBUG = True
    settings.FACE_MODELS_DIR = str(tmp_path)  # an empty folder: the dlib models cannot be loaded
    client = Client(raise_request_exception=False)
    page = post_page(client, photos / QUERY["person01"])
    html = page.content.decode()
    assert page.status_code == 503 and "went wrong while matching your photo" in html
    assert "Traceback" not in html and "FaceModelsMissing" not in html and "<html" in html
    fragment = client.post(PAGE, {"photo": upload(photos / QUERY["person01"])}, HTTP_X_REQUESTED_WITH="fetch")
    assert fragment.status_code == 503 and fragment["X-Doppelganger"] == "results" and "dg-error" in fragment.content.decode()
    data = (photos / QUERY["person01"]).read_bytes()
    api = client.post(API, {"image": upload(photos / QUERY["person01"], "anna-private-selfie.jpg")})
    assert api.status_code == 503 and api.json()["error"] == "unavailable"
    assert "FaceModelsMissing" in project_logs.text and "doppelganger look-up failed" in project_logs.text
    # The logged failure says nothing about the photo.
    assert "anna-private-selfie" not in project_logs.text and data[5000:5040].hex() not in project_logs.text


def test_a_database_failure_is_a_friendly_503(settings, face_archive, photos, project_logs):
    """The faces table cannot be read (renamed inside this test's transaction, rolled back after)."""
    from django.db import connection

    settings.DEBUG = True
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE archive_face RENAME TO archive_face_away")
    client = Client(raise_request_exception=False)
    page = post_page(client, photos / QUERY["person01"])
    assert page.status_code == 503 and "cannot be searched right now" in page.content.decode()
    assert "Traceback" not in page.content.decode()
    api = post_api(client, photos / QUERY["person01"])
    assert api.status_code == 503 and api.json()["error"] == "unavailable"
    assert "database unavailable" in project_logs.text and "archive_face" in project_logs.text


def test_a_crowd_scene_does_not_crowd_out_other_artworks(client, face_archive, photos):
    """One artwork holding more near faces than the first fetch (48) still leaves room for five
    other artworks: the look-up fetches more candidates until it has enough artworks."""
    from archive.models import Artwork
    from workers.ml.faces import analyse

    backend = service.query_backend()
    photo, _ = service.decode_photo((photos / QUERY["person02"]).read_bytes())
    query = analyse(backend, photo, max_side=service.QUERY_MAX_SIDE, upsample=0).vectors[0]
    crowd = Artwork.objects.create(source="faces-test", source_id="crowd", title="A crowd of look-alikes")
    rng = np.random.default_rng(7)
    wanted = service.MATCHES * service.OVERFETCH + 30
    Face.objects.bulk_create([
        Face(artwork=crowd, model=backend.model_id, x=10 * i, y=10, w=20, h=20, vector=(query + rng.normal(0, 0.004, 128)).tolist())
        for i in range(wanted)
    ])
    body = post_api(client, photos / QUERY["person02"]).json()
    ids = [m["artwork"]["id"] for m in body["matches"]]
    assert ids[0] == crowd.pk and len(ids) == len(set(ids)) == service.MATCHES
    assert face_archive["people"]["person02"].pk in ids


def test_matching_compares_only_faces_of_one_model(client, settings, face_archive, photos):
    """A second backend registered under its own model id (the same dlib embedder with the
    detector run without upsampling): its faces carry its id and only meet queries of that model."""
    from workers import faces as stage
    from workers.ml import faces as ml

    other = "dlib-resnet-v1-up0"
    ml.register(other, lambda detector, upsample: ml.DlibFaceBackend(detector=detector, upsample=0, model_id=other), dim=128)
    try:
        stored = face_archive["people"]["person01"]
        settings.FACE_MODEL = other
        assert stage.process([stored.pk], {}).done == [stored.pk]
        faces = Face.objects.filter(artwork=stored)
        assert sorted(faces.values_list("model", flat=True)) == sorted([ml.MODEL_ID, other])
        assert all(f.crop.startswith("faces/") and f"_{other}_" in f.crop for f in faces.filter(model=other))
        from archive import vectors

        assert vectors.index_exists(vectors.FACES, other)
        # Matching with the other model: only its one face can be found.
        body = post_api(client, photos / QUERY["person01"]).json()
        assert [m["artwork"]["id"] for m in body["matches"]] == [stored.pk]
        assert body["matches"][0]["face_id"] == faces.get(model=other).pk
        # The default model never sees the other model's faces.
        settings.FACE_MODEL = ml.MODEL_ID
        body = post_api(client, photos / QUERY["person01"]).json()
        assert body["matches"][0]["face_id"] == faces.get(model=ml.MODEL_ID).pk
        assert faces.get(model=other).pk not in [m["face_id"] for m in body["matches"]]
    finally:
        ml.unregister(other)
