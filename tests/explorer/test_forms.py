"""Every HTML form and filter refuses NUL characters and overlong values with a friendly 400 page
that says what was wrong, stores nothing, and never reaches the database with them."""
import pytest
from django.test import Client

from archive.models import Collection, Label

pytestmark = pytest.mark.django_db

NUL = "Ships\x00at sea"


def friendly_400(response, *words):
    assert response.status_code == 400, response.status_code
    html = response.content.decode()
    assert "<html" in html and "Traceback" not in html and 'class="site-header"' in html
    for word in words:
        assert word.lower() in html.lower(), word
    return html


@pytest.mark.parametrize("field", ["name", "prompt", "group"])
def test_prompt_label_form_refuses_nul_and_overlong(curator_client, archive, field):
    before = Label.objects.count()
    body = {"name": "Ships", "prompt": "sailing ships", "group": "curated"}
    friendly_400(curator_client.post("/curate/labels/new/", {**body, field: NUL}), "null characters")
    limit = {"name": 200, "prompt": 1000, "group": 50}[field]
    friendly_400(curator_client.post("/curate/labels/new/", {**body, field: "x" * (limit + 1)}), f"at most {limit}")
    assert Label.objects.count() == before
    assert curator_client.post("/curate/labels/new/", body).status_code == 302


@pytest.mark.parametrize("field", ["title", "description"])
def test_collection_save_refuses_nul_and_overlong(curator_client, archive, field):
    ids = [a.pk for a in archive["artworks"][:3]]
    body = {"title": "Boats", "description": "some boats", "artwork": ids}
    friendly_400(curator_client.post("/collections/save/", {**body, field: NUL}), "null characters")
    limit = {"title": 255, "description": 5000}[field]
    friendly_400(curator_client.post("/collections/save/", {**body, field: "x" * (limit + 1)}), f"at most {limit}")
    assert not Collection.objects.exists()
    assert curator_client.post("/collections/save/", body).status_code == 302


@pytest.mark.parametrize("field", ["title", "description"])
def test_collection_edit_refuses_nul(curator_client, archive, curator, field):
    collection = Collection.objects.create(title="Mine", slug="mine", owner=curator, description="kept")
    friendly_400(curator_client.post("/collections/mine/", {"action": "update", "title": "Mine", field: NUL}), "null characters")
    collection.refresh_from_db()
    assert (collection.title, collection.description) == ("Mine", "kept")


@pytest.mark.parametrize("field", ["q", "creator", "label", "institution", "classification", "year_from"])
def test_search_filters_refuse_nul(client, archive, field):
    r = client.get("/search/", {field: NUL})
    assert r.status_code == 400
    assert "Null characters are not allowed" in r.content.decode() or "whole year" in r.content.decode()
    r = client.get("/api/v1/search/", {field: NUL})
    assert r.status_code == 400 and r.json()
    r = client.get("/api/v1/artworks/", {field: NUL})
    assert r.status_code in (200, 400) if field == "q" else r.status_code == 400


def test_search_refuses_overlong_values(client, archive):
    for field, limit in (("q", 500), ("creator", 200), ("institution", 255)):
        html = client.get("/search/", {field: "a" * (limit + 1)}).content.decode()
        assert f"at most {limit}" in html
    assert client.get("/search/", {"page": "0"}).status_code == 400
    assert client.get("/search/", {"page": "1001"}).status_code == 400


@pytest.mark.parametrize("field", ["group", "name"])
def test_label_filters_refuse_nul(client, archive, field):
    r = client.get("/labels/", {field: NUL})
    assert r.status_code == 400 and "Null characters" in r.content.decode()
    assert client.get("/api/v1/labels/", {field: NUL}).status_code in (200, 400)


def test_api_writes_refuse_nul(curator_client, archive):
    r = curator_client.post("/api/v1/labels/", {"name": NUL}, content_type="application/json")
    assert r.status_code == 400 and "name" in r.json()
    r = curator_client.post("/api/v1/collections/", {"title": NUL, "artworks": []}, content_type="application/json")
    assert r.status_code == 400 and "title" in r.json()
    r = curator_client.post("/api/v1/collections/", {"title": "ok", "description": NUL}, content_type="application/json")
    assert r.status_code == 400 and "description" in r.json()
    assert not Collection.objects.exists()


def test_bad_requests_render_the_friendly_400_page(curator_client, archive, curator):
    artwork = archive["artworks"][0]
    friendly_400(curator_client.post(f"/artworks/{artwork.pk}/decide/", {"label": "abc", "decision": "added"}), "label must be a label id, or the name")
    friendly_400(curator_client.post(f"/artworks/{artwork.pk}/decide/", {"label": archive["labels"][0].pk, "decision": "maybe"}),
                 "unknown decision")
    friendly_400(curator_client.post("/collections/save/", {"title": "Nothing"}), "nothing to save")
    friendly_400(curator_client.post("/collections/save/", {"title": "Bad", "artwork": ["x1"]}), "artwork id must be")
    friendly_400(curator_client.post("/collections/save/", {"artwork": [artwork.pk]}), "needs a title")
    collection = Collection.objects.create(title="Mine", slug="mine-2", owner=curator)
    friendly_400(curator_client.post(f"/collections/{collection.slug}/", {"action": "remove", "artwork": ["nope"]}), "artwork id must be")
    draft = Label.objects.create(name="draft x", slug="draft-x", group="curated", published=False, prompt="a boat")
    for threshold in ("abc", "nan", "inf", "7"):
        friendly_400(curator_client.post(f"/curate/labels/{draft.slug}/", {"action": "publish", "threshold": threshold}), "threshold must be")
    draft.refresh_from_db()
    assert not draft.published
    friendly_400(Client().get("/labels/horse/", {"cursor": "garbage"}), "bad cursor")
