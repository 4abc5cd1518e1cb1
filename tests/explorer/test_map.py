"""The map page and its JSON endpoints, on a small layout built from synthetic coordinates
(the layout maths is covered in tests/workers/test_layouts.py)."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.cache import cache

from archive.models import Artwork, ArtworkLabel, Collection, EmbeddingModel, Label, Layout
from workers.layouts import build, export

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_map():
    model = EmbeddingModel.objects.create(key="test-map/none", arch="test", dim=8, state="active", untrained=True)
    rng = np.random.default_rng(1)
    artworks = [
        Artwork.objects.create(source="t", source_id=str(i), title=f"{'Harbour' if i < 10 else 'Field'} study {i}",
                               creator="A. Painter", classification="painting" if i % 2 else "drawing", year_start=1800 + i)
        for i in range(40)
    ]
    ids = np.array([a.pk for a in artworks], dtype=np.int64)
    coords = np.concatenate([rng.normal(0, 1, (20, 2)), rng.normal(8, 1, (20, 2))]).astype(np.float32)
    boat = Label.objects.create(name="boat", slug="boat", group="objects")
    ArtworkLabel.objects.bulk_create([ArtworkLabel(artwork=a, label=boat, model=model, score=0.4, rank=1) for a in artworks[:10]])
    layout = build.get_layout("umap", {}, model)
    build.save_layout(layout, ids, ids, coords, model=model, params={"untrained": True})
    layout.refresh_from_db()
    cache.clear()
    return layout, artworks, boat


def test_manifest_describes_the_export(client, small_map):
    layout, artworks, boat = small_map
    r = client.get(f"/map/{layout.slug}/manifest.json")
    assert r.status_code == 200 and r["Content-Type"] == "application/json"
    m = r.json()
    assert m["count"] == 40 and m["version"] == layout.export_version == 1
    assert m["layout"]["untrained"] is True and m["layout"]["method"] == "umap"
    assert m["base_url"] == f"/media/maps/{layout.slug}/1/"
    assert [c["name"] for c in m["columns"]] == [name for name, _ in export.COLUMNS]
    assert m["labels"] == [{"slug": "boat", "name": "boat", "group": "objects", "count": 10}]
    assert len(m["regions"]["levels"]) == 2 and m["regions"]["names_from"] == "labels"
    for level in m["regions"]["levels"]:
        for region in level["regions"]:
            assert 0 <= region["x"] <= m["world"] and 0 <= region["y"] <= m["world"] and region["name"]
    # The point files it names are served and parse.
    chunk = m["chunks"][0]
    body = b"".join(client.get(m["base_url"] + chunk["file"]).streaming_content)
    data = export.decode_chunk(gzip.decompress(body), chunk["count"])
    assert sorted(data["id"].tolist()) == sorted(a.pk for a in artworks)
    # Cached: a second request makes no query.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/map/{layout.slug}/manifest.json").content == r.content
    assert len(queries) <= 2
    assert client.get("/map/nope/manifest.json").status_code == 404


def test_map_page(client, small_map):
    layout, _, _ = small_map
    r = client.get("/map/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "map/map.js" in html and 'id="map-config"' in html and f"/map/{layout.slug}/manifest.json" in html
    assert "Log in to save this selection" in html  # anonymous visitors get a login prompt
    assert 'id="map-classifier"' not in html and "classifierExamplesUrl" not in html


def test_curators_get_the_classifier_menu_and_the_selection_reaches_the_classifier(client, small_map):
    """The map page offers curators each classifier's sides and classes; the page posts the
    selection to the classifiers API (session, CSRF), which adds them and bounds the size."""
    from django.contrib.auth.models import Group
    from django.test import Client

    from workers.classifiers.curating import MAX_EXAMPLES_PER_CALL, create_classifier, example_counts

    _, artworks, _ = small_map
    binary = create_classifier("Harbours")
    kinds = create_classifier("Kinds", classes=["painting", "drawing"])
    drawing = kinds.classes.get(label__name="drawing")
    visitor = User.objects.create_user("v", password="pw-v-12345")
    client.force_login(visitor)
    html = client.get("/map/").content.decode()
    assert "Save as collection" in html and 'id="map-classifier"' not in html  # not a curator
    curator = User.objects.create_user("cur", password="pw-cur-12345")
    curator.groups.add(Group.objects.get_or_create(name="curator")[0])
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(curator)
    html = browser.get("/map/").content.decode()
    assert f'<option value="{binary.pk}" data-positive="true">Harbours: positive</option>' in html
    assert f'<option value="{binary.pk}" data-positive="false">Harbours: negative</option>' in html
    assert f'<option value="{kinds.pk}" data-class="drawing">Kinds: drawing</option>' in html
    config = json.loads(html.split('id="map-config" type="application/json">')[1].split("</script>")[0])
    assert config["classifierExamplesUrl"] == "/api/v1/classifiers/{id}/examples/" and config["classifierLimit"] == MAX_EXAMPLES_PER_CALL
    url = config["classifierExamplesUrl"].replace("{id}", str(kinds.pk))
    ids = [a.pk for a in artworks[:5]]
    # Without the page's CSRF token the post is refused; with it the selection becomes examples.
    assert browser.post(url, {"artwork_ids": ids, "class": "drawing"}, content_type="application/json").status_code == 403
    token = html.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    r = browser.post(url, {"artwork_ids": ids, "class": "drawing"}, content_type="application/json", headers={"X-CSRFToken": token})
    assert r.status_code == 200 and r.json()["added"] == 5, r.content
    assert example_counts(kinds) == {"painting": 0, "drawing": 5} and set(drawing.examples.values_list("artwork_id", flat=True)) == set(ids)
    r = browser.post(url, {"artwork_ids": list(range(1, MAX_EXAMPLES_PER_CALL + 2)), "class": "drawing"},
                     content_type="application/json", headers={"X-CSRFToken": token})
    assert r.status_code == 400 and "at most 10,000 artworks per request" in r.content.decode()


def test_an_export_made_before_the_colour_column_is_still_served_and_read(client, small_map, monkeypatch):
    """files.json lists a version's columns; the manifest passes them on, and readers (the page's
    loader, decode_chunk) take the columns they are given, so an older version needs no rebuild."""
    layout, artworks, _ = small_map
    old = [c for c in export.COLUMNS if c[0] != "colour"]
    monkeypatch.setattr(export, "COLUMNS", old)
    build.export_layout(layout)  # written as before the column: 13 bytes a point
    monkeypatch.undo()
    layout.refresh_from_db()
    cache.clear()
    m = client.get(f"/map/{layout.slug}/manifest.json").json()
    assert [c["name"] for c in m["columns"]] == [name for name, _ in old]
    chunk = m["chunks"][0]
    raw = gzip.decompress(b"".join(client.get(m["base_url"] + chunk["file"]).streaming_content))
    assert len(raw) == 13 * chunk["count"]
    data = export.decode_chunk(raw, chunk["count"], m["columns"])
    assert sorted(data["id"].tolist()) == sorted(a.pk for a in artworks) and "colour" not in data
    # The next export adds the column.
    build.export_layout(layout)
    layout.refresh_from_db()
    cache.clear()
    m = client.get(f"/map/{layout.slug}/manifest.json").json()
    assert {"name": "colour", "type": "uint16"} in m["columns"]


def test_map_page_without_layouts(client, db):
    r = client.get("/map/")
    assert r.status_code == 200 and b"No map has been built yet" in r.content
    from workers import jobs

    job = build.request("tsne", {})
    jobs.start_job(job, total=6)
    jobs.record_progress(job, done=2, message="reduced to 50 dimensions")
    r = client.get("/map/")
    assert b"A map is being built (TSNE" in r.content and b"step 2 of 6" in r.content


def test_search_by_label_and_text(client, small_map):
    layout, artworks, boat = small_map
    r = client.get(f"/map/{layout.slug}/search.json", {"label": "boat"}).json()
    assert sorted(r["ids"]) == sorted(a.pk for a in artworks[:10]) and r["count"] == 10
    r = client.get(f"/map/{layout.slug}/search.json", {"q": "harbour"}).json()
    assert sorted(r["ids"]) == sorted(a.pk for a in artworks[:10])
    assert client.get(f"/map/{layout.slug}/search.json").status_code == 400
    assert client.get(f"/map/{layout.slug}/search.json", {"label": "nope"}).status_code == 404
    # Control characters (PostgreSQL refuses NUL) are dropped; an over-long query is a clear 400.
    assert client.get(f"/map/{layout.slug}/search.json", {"q": "harb\x00our"}).status_code == 200
    assert client.get(f"/map/{layout.slug}/search.json", {"label": "bo\x00at"}).status_code in (200, 404)
    r = client.get(f"/map/{layout.slug}/search.json", {"q": "x" * 600})
    assert r.status_code == 400 and "too long" in r.json()["error"]


def test_label_filter_and_counts_follow_the_display_threshold(client, small_map):
    """The map shows a label on the same artworks as its label page: rows under the label's
    threshold are not counted or highlighted; curator decisions apply."""
    from archive.models import LabelDecision

    layout, artworks, boat = small_map
    ArtworkLabel.objects.filter(label=boat, artwork__in=artworks[:4]).update(score=0.1)
    boat.threshold = 0.3
    boat.save(update_fields=["threshold"])
    curator = User.objects.create_user("c")
    LabelDecision.objects.create(artwork=artworks[0], label=boat, decision="accepted", user=curator)
    LabelDecision.objects.create(artwork=artworks[9], label=boat, decision="rejected", user=curator)
    r = client.get(f"/map/{layout.slug}/search.json", {"label": "boat"}).json()
    assert sorted(r["ids"]) == sorted([artworks[0].pk] + [a.pk for a in artworks[4:9]])
    assert build.label_counts(layout) == [{"slug": "boat", "name": "boat", "group": "objects", "count": 6}]


def test_artwork_info(client, small_map):
    _, artworks, _ = small_map
    r = client.get(f"/map/artwork/{artworks[3].pk}.json").json()
    assert r["title"] == "Harbour study 3" and r["url"] == f"/artworks/{artworks[3].pk}/"
    assert client.get("/map/artwork/999999999.json").status_code == 404


def test_save_selection_as_collection(client, small_map):
    layout, artworks, _ = small_map
    url = f"/map/{layout.slug}/collections"
    ids = [a.pk for a in artworks[5:15]] + [999999999]
    r = client.post(url, json.dumps({"ids": ids}), content_type="application/json")
    assert r.status_code == 401 and "login_url" in r.json()
    user = User.objects.create_user("mapper", password="pw-mapper-123")
    client.force_login(user)
    r = client.post(url, json.dumps({"title": "Harbours", "ids": ids}), content_type="application/json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["count"] == 10 and body["slug"] == "harbours"
    c = Collection.objects.get(pk=body["id"])
    assert c.owner == user and list(c.items.values_list("artwork_id", flat=True)) == ids[:10]
    again = client.post(url, json.dumps({"title": "Harbours", "ids": ids[:2]}), content_type="application/json").json()
    assert again["slug"] == "harbours-2"
    assert client.post(url, json.dumps({"ids": []}), content_type="application/json").status_code == 400
    assert client.post(url, "not json", content_type="application/json").status_code == 400


def test_collection_save_needs_csrf(small_map):
    from django.test import Client

    layout, artworks, _ = small_map
    c = Client(enforce_csrf_checks=True)
    c.force_login(User.objects.create_user("csrf", password="pw-csrf-123"))
    r = c.post(f"/map/{layout.slug}/collections", json.dumps({"ids": [artworks[0].pk]}), content_type="application/json")
    assert r.status_code == 403


def test_artwork_page_links_to_the_map_only_when_the_artwork_is_on_a_ready_map(client, small_map):
    layout, artworks, _ = small_map
    on_map = artworks[0]
    Artwork.objects.filter(pk=on_map.pk).update(status="ok", sha256="ab" * 32, width=800, height=600)
    off_map = Artwork.objects.create(source="t", source_id="off", title="Not mapped", status="ok", sha256="cd" * 32)
    html = client.get(f"/artworks/{on_map.pk}/").content.decode()
    assert f'href="/map/?layout={layout.slug}#artwork={on_map.pk}"' in html and 'id="show-on-map"' in html
    assert 'id="show-on-map"' not in client.get(f"/artworks/{off_map.pk}/").content.decode()
    Layout.objects.filter(pk=layout.pk).update(state=Layout.State.FAILED)
    assert 'id="show-on-map"' not in client.get(f"/artworks/{on_map.pk}/").content.decode()


def test_thumbs_gives_derivative_urls_of_artworks_on_the_map(client, small_map):
    layout, artworks, _ = small_map
    Artwork.objects.filter(pk=artworks[1].pk).update(status="ok", sha256="ef" * 32, width=1000, height=500)
    off_map = Artwork.objects.create(source="t", source_id="off", title="Not mapped", status="ok", sha256="cd" * 32, width=10, height=10)
    url = f"/map/{layout.slug}/thumbs.json"
    r = client.get(url, {"ids": f"{artworks[1].pk},{artworks[2].pk},{off_map.pk}"})
    assert r.status_code == 200 and r["Cache-Control"] == "public, max-age=3600"
    thumbs = r.json()["thumbs"]
    assert list(thumbs) == [str(artworks[1].pk)]  # artworks[2] has no image; off_map is not on this map
    src, w, h = thumbs[str(artworks[1].pk)]
    assert src.endswith("_256.jpg") and (w, h) == (256, 128)
    assert client.get(url, {"ids": ",".join(str(i) for i in range(1, 202))}).status_code == 400
    assert client.get(url, {"ids": "1,x"}).status_code == 400
    assert client.get(url).status_code == 400
    assert client.get("/map/nope/thumbs.json", {"ids": "1"}).status_code == 404
