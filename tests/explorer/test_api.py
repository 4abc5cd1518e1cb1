"""/api/v1 on the real small archive: every endpoint, permissions, CSRF, garbage parameters."""
import io
import json
import random
import string

import pytest
from django.conf import settings
from django.test import Client

from archive.models import Collection, Job, JobError, Label, LabelDecision

pytestmark = pytest.mark.django_db


def test_artworks_list_filters_and_detail(client, archive):
    r = client.get("/api/v1/artworks/", {"limit": 10})
    assert r.status_code == 200
    data = r.json()
    assert data["count"] == 60 and len(data["results"]) == 10 and data["next"]
    r = client.get("/api/v1/artworks/", {"institution": "Art Institute of Chicago", "limit": 100})
    assert r.json()["count"] == 40
    r = client.get("/api/v1/artworks/", {"year_from": 1700, "year_to": 1799, "limit": 100})
    for item in r.json()["results"]:
        assert 1700 <= item["year_start"] <= 1799
    artwork = archive["artworks"][0]
    d = client.get(f"/api/v1/artworks/{artwork.pk}/").json()
    assert d["title"] == artwork.title and d["image_url"].endswith("_1024.jpg")
    assert d["labels"] and all(set(l) >= {"slug", "score", "decision"} for l in d["labels"])
    assert len(d["similar"]) == 12 and artwork.pk not in [s["artwork"]["id"] for s in d["similar"]]
    assert d["model"]["untrained"] is True
    assert isinstance(d["faces"], list)
    s = client.get(f"/api/v1/artworks/{artwork.pk}/similar/", {"limit": 3}).json()
    assert len(s["results"]) == 3
    sims = [x["score"] for x in s["results"]]
    assert sims == sorted(sims, reverse=True)
    assert client.get("/api/v1/artworks/99999999/").status_code == 404


def test_labels_and_label_artworks_keyset(client, archive):
    data = client.get("/api/v1/labels/", {"limit": 100}).json()
    slugs = {l["slug"]: l for l in data["results"]}
    assert set(slugs) >= {l.slug for l in archive["labels"]}
    assert sum(l["count"] for l in data["results"]) > 0
    assert client.get("/api/v1/labels/horse/").json()["name"] == "horse"
    assert client.get("/api/v1/labels/", {"group": "animals"}).json()["count"] == 3
    label = max(data["results"], key=lambda l: l["count"])
    got, cursor = [], None
    while True:
        params = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        page = client.get(f"/api/v1/labels/{label['slug']}/artworks/", params).json()
        got += page["results"]
        cursor = page["next"]
        if not cursor:
            break
    assert len(got) == label["count"]
    assert len({g["artwork"]["id"] for g in got}) == len(got)
    scores = [g["score"] for g in got]
    assert scores == sorted(scores, reverse=True)


def test_search_api(client, archive):
    artwork = archive["artworks"][5]
    word = max(artwork.title.split(), key=len)
    data = client.get("/api/v1/search/", {"q": word}).json()
    assert artwork.pk in [r["artwork"]["id"] for r in data["results"]]
    assert data["used_meaning"] is True and data["model"]["untrained"] is True
    data = client.get("/api/v1/search/", {"creator": artwork.creator[:8]}).json()
    assert artwork.pk in [r["artwork"]["id"] for r in data["results"]]


def test_schema_and_docs(client, archive):
    r = client.get("/api/v1/schema/")
    assert r.status_code == 200
    text = r.content.decode()
    for p in ("/api/v1/artworks/", "/api/v1/labels/{slug}/artworks/", "/api/v1/search/", "/api/v1/search/image/",
              "/api/v1/collections/", "/api/v1/jobs/{id}/pause/", "/api/v1/decisions/", "/api/v1/stats/",
              "/api/v1/search/facets/"):
        assert p in text, p
    schema = client.get("/api/v1/schema/", {"format": "json"}, HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    from drf_spectacular.validation import validate_schema

    validate_schema(schema)  # a valid OpenAPI 3 document (drf-spectacular's bundled JSON schema)
    paths = schema["paths"]
    assert {"count", "next", "previous", "results"} <= set(
        schema["components"]["schemas"]["PaginatedJobList"]["properties"])
    assert "on_map" in schema["components"]["schemas"]["ArtworkDetail"]["properties"]
    assert "ArchiveStats" in str(paths["/api/v1/stats/"]["get"]["responses"]["200"])
    limit = next(p for p in paths["/api/v1/artworks/"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 200
    r = client.get("/api/v1/docs/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "/static/vendor/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()


def test_api_write_permissions(client, archive, visitor, curator):
    artwork, label = archive["artworks"][0], archive["labels"][0]
    body = {"artwork": artwork.pk, "label": label.pk, "decision": "rejected"}
    assert client.post("/api/v1/decisions/", body, content_type="application/json").status_code == 403
    assert client.post("/api/v1/collections/", {"title": "x"}, content_type="application/json").status_code == 403
    assert client.post("/api/v1/labels/", {"name": "x"}, content_type="application/json").status_code == 403
    assert client.get("/api/v1/jobs/").status_code == 403
    client.force_login(visitor)
    assert client.post("/api/v1/decisions/", body, content_type="application/json").status_code == 403
    assert client.get("/api/v1/jobs/").status_code == 403
    assert not LabelDecision.objects.exists()
    # CSRF is enforced for session-authenticated writes.
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(curator)
    assert strict.post("/api/v1/decisions/", body, content_type="application/json").status_code == 403
    strict.get("/")  # sets the CSRF cookie
    token = strict.cookies["csrftoken"].value
    r = strict.post("/api/v1/decisions/", body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert r.status_code == 200
    assert LabelDecision.objects.get(artwork=artwork, label=label).decision == "rejected"


def test_curator_collections_crud_and_export(curator_client, archive, curator, client):
    ids = [a.pk for a in archive["artworks"][10:14]]
    r = curator_client.post("/api/v1/collections/", {"title": "API set", "artworks": ids, "is_public": True}, content_type="application/json")
    assert r.status_code == 201, r.content
    slug = r.json()["slug"]
    assert r.json()["items"] == ids
    r = curator_client.patch(f"/api/v1/collections/{slug}/", {"description": "four", "artworks": [archive["artworks"][20].pk]}, content_type="application/json")
    assert r.status_code == 200 and r.json()["item_count"] == 5
    anon = Client()
    assert anon.get(f"/api/v1/collections/{slug}/").status_code == 200
    assert anon.delete(f"/api/v1/collections/{slug}/").status_code == 403
    assert anon.get(f"/api/v1/collections/{slug}/export/", {"as": "csv"}).content.decode().count("\n") == 6
    assert anon.get(f"/api/v1/collections/{slug}/export/", {"as": "iiif"}).json()["type"] == "Collection"
    assert len(anon.get(f"/api/v1/collections/{slug}/export/").json()["artworks"]) == 5
    assert anon.get(f"/api/v1/collections/{slug}/export/", {"as": "pdf"}).status_code == 400
    r = curator_client.post("/api/v1/collections/", {"title": "", "artworks": ["x"]}, content_type="application/json")
    assert r.status_code == 400
    # Another curator cannot change it.
    from django.contrib.auth.models import Group, User

    other = User.objects.create_user("other", password="x-123456789")
    other.groups.add(Group.objects.get(name="curator"))
    c2 = Client()
    c2.force_login(other)
    assert c2.delete(f"/api/v1/collections/{slug}/").status_code == 403
    assert curator_client.delete(f"/api/v1/collections/{slug}/").status_code == 204
    assert not Collection.objects.filter(slug=slug).exists()


def test_curator_prompt_label_api(curator_client, archive):
    r = curator_client.post("/api/v1/labels/", {"name": "Night scenes", "prompt": "a painting of the night sky"}, content_type="application/json")
    assert r.status_code == 201
    slug = r.json()["slug"]
    assert r.json()["published"] is False
    assert Client().get(f"/api/v1/labels/{slug}/").status_code == 404
    scores = curator_client.get(f"/api/v1/labels/{slug}/scores/", {"limit": 10}).json()
    assert len(scores) == 10
    r = curator_client.post(f"/api/v1/labels/{slug}/publish/", {"exclude": [scores[0]["artwork"]["id"]]}, content_type="application/json")
    assert r.status_code == 200 and r.json()["published"] is True
    job = r.json()["job"]  # scoring over the archive runs as a job; the answer does not wait for it
    assert job["kind"] == "score_label" and job["state"] == "queued" and job["params"]["label"] == slug
    assert Client().get(f"/api/v1/labels/{slug}/").status_code == 200
    assert Client().get(f"/api/v1/labels/{slug}/scores/").status_code == 403


def test_jobs_api_for_operators(operator_client, archive, operator):
    job = Job.objects.create(kind="embed", state="running", total=10, done=4, rate=2.0, created_by=operator)
    JobError.objects.create(job=job, item="x", reason="broken image", artwork=archive["artworks"][0])
    data = operator_client.get("/api/v1/jobs/").json()
    assert data["results"][0]["id"] == job.pk
    assert data["count"] == 1 and data["next"] is None and data["previous"] is None
    for i in range(4):
        Job.objects.create(kind="label", state="done", total=1, done=1, created_by=operator)
    page = operator_client.get("/api/v1/jobs/", {"limit": 2}).json()
    assert page["count"] == 5 and len(page["results"]) == 2 and "offset=2" in page["next"]
    rest = operator_client.get(page["next"]).json()
    assert rest["previous"] and [j["id"] for j in rest["results"]] == [j["id"] for j in operator_client.get(
        "/api/v1/jobs/", {"limit": 2, "offset": 2}).json()["results"]]
    assert operator_client.get("/api/v1/jobs/", {"kind": "label"}).json()["count"] == 4
    d = operator_client.get(f"/api/v1/jobs/{job.pk}/").json()
    assert d["percent"] == 40.0 and d["eta_seconds"] == 3 and d["state"] == "running"
    assert operator_client.get(f"/api/v1/jobs/{job.pk}/errors/").json()["results"][0]["reason"] == "broken image"
    assert operator_client.post(f"/api/v1/jobs/{job.pk}/pause/").json()["state"] == "paused"
    assert operator_client.post(f"/api/v1/jobs/{job.pk}/pause/").status_code in (200, 409)
    assert operator_client.post(f"/api/v1/jobs/{job.pk}/cancel/").json()["state"] == "cancelled"
    assert operator_client.post(f"/api/v1/jobs/{job.pk}/resume/").status_code == 409
    assert operator_client.get("/api/v1/jobs/abc/").status_code == 404
    assert operator_client.get("/api/v1/jobs/999999/").status_code == 404
    r = operator_client.post("/api/v1/jobs/", {"kind": "bogus"}, content_type="application/json")
    assert r.status_code == 400
    r = operator_client.post("/api/v1/jobs/", {"kind": "embed", "params": [1, 2]}, content_type="application/json")
    assert r.status_code == 400


GARBAGE = ["", "-1", "0", "abc", "1e309", "NaN", "9" * 30, "'; DROP TABLE x; --", "\x00", "%00", "[]", "{}", "ü" * 300,
           "../../etc/passwd", "<script>", "1.5", "true", " "]
ENDPOINTS = [
    "/api/v1/artworks/", "/api/v1/labels/", "/api/v1/labels/horse/artworks/", "/api/v1/search/", "/api/v1/collections/",
    "/api/v1/artworks/{id}/", "/api/v1/artworks/{id}/similar/", "/labels/", "/labels/horse/", "/search/", "/",
    "/api/v1/jobs/", "/jobs/", "/api/v1/collections/{collection}/", "/api/v1/collections/{collection}/export/",
    "/collections/", "/collections/{collection}/", "/collections/{collection}/export.csv",
    "/collections/{collection}/export.iiif.json", "/api/v1/jobs/{job}/errors/", "/api/v1/jobs/{job}/", "/jobs/{job}/",
    "/api/v1/labels/horse/scores/", "/api/v1/labels/horse/", "/search/image/", "/api/v1/stats/",
    "/api/v1/search/facets/", "/artworks/{id}/",
    "/iiif/artwork/{id}/manifest.json", "/iiif/label/horse/collection.json", "/iiif/collection/{collection}/collection.json",
    "/iiif/institution/art-institute-of-chicago/collection.json", "/iiif/collection.json", "/iiif/labels/collection.json",
    "/iiif/activity/all-changes.json", "/iiif/activity/page/0.json", "/iiif/viewer/",
]
POST_ENDPOINTS = ["/api/v1/search/image/", "/search/image/"]
PARAMS = ["limit", "offset", "cursor", "q", "year_from", "year_to", "label", "creator", "institution", "classification",
          "group", "name", "page", "partial", "state", "kind", "format", "as", "manifest"]


def test_garbage_parameters_never_500(client, archive, operator, curator):
    """A schemathesis-like loop: every endpoint x random garbage parameters gives 2xx/4xx, never 5xx."""
    from django.contrib.auth.models import Group
    from django.test import override_settings

    operator.groups.add(Group.objects.get_or_create(name="curator")[0])  # every endpoint is open to this client
    client.force_login(operator)
    collection = Collection.objects.create(title="Garbage", slug="garbage", owner=operator, is_public=True)
    collection.items.create(artwork=archive["artworks"][0], position=1)
    job = Job.objects.create(kind="embed", state="failed", total=2, done=1, failed=1, created_by=operator)
    JobError.objects.create(job=job, item="x", reason="broken", artwork=archive["artworks"][0])
    ids = {"id": archive["artworks"][0].pk, "collection": collection.slug, "job": job.pk}
    rng = random.Random(7)
    rates = {"anon": None, "search": None, "image_search": None}
    with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}):
        for endpoint in ENDPOINTS:
            for _ in range(12):
                params = {rng.choice(PARAMS): rng.choice(GARBAGE + ["".join(rng.choices(string.printable, k=rng.randint(1, 40)))])
                          for _ in range(rng.randint(1, 4))}
                r = client.get(endpoint.format(**ids), params)
                assert r.status_code < 500, (endpoint, params, r.status_code)
                assert b"Traceback" not in r.content
        for endpoint in POST_ENDPOINTS:
            for _ in range(6):
                params = {rng.choice(PARAMS): rng.choice(GARBAGE) for _ in range(rng.randint(1, 3))}
                r = client.post(endpoint + "?" + "&".join(f"{k}={v}" for k, v in params.items() if v.isprintable()),
                                {"image": io.BytesIO(rng.choice([b"", b"GIF89a", bytes(range(256))]))})
                assert r.status_code in (400, 404), (endpoint, params, r.status_code)
    for path in ("/api/v1/artworks/abc/", "/api/v1/labels/%00/", "/api/v1/collections/nope/", "/artworks/0/",
                 "/collections/%20/export.csv", "/api/v1/labels/horse/artworks/?cursor=1_99999999999999999999999"):
        assert client.get(path).status_code in (400, 404), path


def test_bad_write_bodies_are_400(curator_client, archive):
    for body in ({}, {"artwork": "x"}, {"artwork": 1, "label": 1, "decision": "maybe"}, {"artwork": -5, "label": 1, "decision": "added"}):
        assert curator_client.post("/api/v1/decisions/", body, content_type="application/json").status_code == 400
    r = curator_client.post("/api/v1/decisions/", "{not json", content_type="application/json")
    assert r.status_code == 400
    r = curator_client.post("/api/v1/decisions/", {"artwork": 99999999, "label": 1, "decision": "added"}, content_type="application/json")
    assert r.status_code == 404
    r = curator_client.post("/api/v1/search/image/", {"image": io.BytesIO(b"not an image")})
    assert r.status_code == 400
    r = curator_client.post("/api/v1/search/image/", {})
    assert r.status_code == 400


HUGE = "9" * 20  # beyond bigint: used to reach the database as OFFSET and fail there


def test_every_list_is_paginated_with_bounds(client, archive, operator, curator):
    """limit/offset are validated on every list: garbage, out of range or too large is a 400 with a
    message; good values give count/next/previous. No list can be dumped whole."""
    from django.contrib.auth.models import Group

    operator.groups.add(Group.objects.get_or_create(name="curator")[0])
    client.force_login(operator)
    for i in range(3):
        Collection.objects.create(title=f"c{i}", slug=f"c-{i}", owner=operator, is_public=True)
        Job.objects.create(kind="embed", state="done", created_by=operator)
    lists = {
        "/api/v1/artworks/": 60, "/api/v1/labels/": 10, "/api/v1/collections/": 3, "/api/v1/jobs/": 3,
        "/api/v1/search/?institution=Art+Institute+of+Chicago": 40,
    }
    for url, total in lists.items():
        sep = "&" if "?" in url else "?"
        page = client.get(f"{url}{sep}limit=2").json()
        assert page["count"] == total and len(page["results"]) == 2 and "offset=2" in page["next"], url
        assert page["previous"] is None
        assert client.get(page["next"]).json()["previous"], url
        for bad in (f"limit={HUGE}", "limit=1000000", "limit=0", "limit=-3", "limit=abc", "limit=1e3", "limit=%00",
                    f"offset={HUGE}", "offset=-1", "offset=x", "offset=1000001"):
            r = client.get(f"{url}{sep}{bad}")
            assert r.status_code == 400, (url, bad, r.status_code)
            body = r.json()
            assert ("limit" in body or "offset" in body), (url, bad, body)
    # The keyset lists and the job errors are bounded too.
    job = Job.objects.first()
    for url in ("/api/v1/labels/horse/artworks/", f"/api/v1/jobs/{job.pk}/errors/", "/api/v1/labels/horse/scores/",
                f"/api/v1/artworks/{archive['artworks'][0].pk}/similar/"):
        for bad in (f"limit={HUGE}", "limit=1000000", "limit=0", f"offset={HUGE}"):
            r = client.get(f"{url}?{bad}")
            assert r.status_code in (200, 400), (url, bad)
            if "limit" in bad:
                assert r.status_code == 400, (url, bad)


def test_stats_and_facets(client, archive):
    stats = client.get("/api/v1/stats/").json()
    assert stats["artworks"] == 60 and stats["images"] == 60 and stats["labels"] == 10
    assert stats["institutions"][0] == {"institution": "Art Institute of Chicago", "n": 40}
    listed = client.get("/api/v1/labels/", {"limit": 100}).json()["results"]
    shown = {l["slug"]: l["count"] for l in listed if l["count"]}
    assert {g["group"] for g in stats["groups"]} == {l["group"] for l in listed if l["count"]}
    labels = {l["slug"]: l["count"] for g in stats["groups"] for l in g["labels"]}
    assert labels == shown  # 10 labels: every group lists all of its labels, with the same counts
    for g in stats["groups"]:
        assert [l["count"] for l in g["labels"]] == sorted((l["count"] for l in g["labels"]), reverse=True)
        assert g["label_count"] == len(g["labels"])
    assert stats["model"]["untrained"] is True and stats["has_map"] is False
    facets = client.get("/api/v1/search/facets/").json()
    assert "Art Institute of Chicago" in facets["institutions"] and facets["institutions"] == sorted(facets["institutions"])
    assert set(facets["classifications"]) == {"painting", "detail"}
    assert set(facets["label_groups"]) == {l.group for l in archive["labels"]}


def test_artwork_detail_says_where_it_is_on_the_map(client, archive):
    from archive.models import Layout, LayoutPoint

    artwork = archive["artworks"][0]
    assert client.get(f"/api/v1/artworks/{artwork.pk}/").json()["on_map"] == []
    layout = Layout.objects.create(name="All works", slug="all-works", method="umap", state="ready", export_version=1,
                                   is_default=True)
    building = Layout.objects.create(name="Next", slug="next", method="umap", state="building", export_version=0)
    LayoutPoint.objects.create(layout=layout, artwork=artwork, x=1.5, y=-2.0)
    LayoutPoint.objects.create(layout=building, artwork=artwork, x=9, y=9)
    on_map = client.get(f"/api/v1/artworks/{artwork.pk}/").json()["on_map"]
    assert on_map == [{"layout": "all-works", "name": "All works", "x": 1.5, "y": -2.0,
                       "url": f"/map/?layout=all-works#artwork={artwork.pk}"}]


def test_search_and_image_search_are_throttled(client, archive):
    from django.test import override_settings

    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "search": "3/minute", "image_search": "2/minute"}
    with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}):
        codes = [client.get("/api/v1/search/", {"q": "portrait"}).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        r = client.get("/search/", {"q": "portrait"})  # the page shares the budget
        assert r.status_code == 429 and int(r["Retry-After"]) >= 1
        assert b"Please slow down" in r.content and b"Traceback" not in r.content
        r = client.get("/api/v1/search/", {"q": "portrait"})
        assert r.status_code == 429 and "detail" in r.json()
        # Search by image has its own, smaller budget; the upload form itself is never limited.
        for expected in (400, 400, 429):
            assert client.post("/api/v1/search/image/", {}).status_code == expected
        assert client.post("/search/image/", {}).status_code == 429
        assert client.get("/search/image/").status_code == 200
        assert client.get("/labels/").status_code == 200  # browsing is not limited
