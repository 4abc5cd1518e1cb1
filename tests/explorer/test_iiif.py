"""IIIF out: manifests and collections answer at their public URLs with every property the
Presentation 3.0 specification requires (explorer.iiif.check), machine labels as tagging
annotations marked as the model's, bounded pages, private collections kept private."""
from __future__ import annotations

import copy
import json

import pytest
from django.test import Client

from archive.models import Artwork, Collection, LabelDecision
from explorer.iiif import check

pytestmark = pytest.mark.django_db


def get(client, url, status=200):
    response = client.get(url)
    assert response.status_code == status, (url, response.content[:300])
    if status == 200:
        assert response["Content-Type"] == 'application/ld+json;profile="http://iiif.io/api/presentation/3/context.json"'
        assert response["Access-Control-Allow-Origin"] == "*"
        return json.loads(response.content)
    return response


def test_manifest_of_every_artwork_meets_the_specification(archive, client):
    for artwork in archive["artworks"]:
        manifest = get(client, f"/iiif/artwork/{artwork.pk}/manifest.json")
        assert check.problems(manifest) == [], artwork.pk
        assert manifest["id"] == f"http://testserver/iiif/artwork/{artwork.pk}/manifest.json"
        assert manifest["label"] == {"none": [artwork.title]}
        assert manifest["homepage"][0]["id"] == f"http://testserver/artworks/{artwork.pk}/"
        canvas = manifest["items"][0]
        assert (canvas["width"], canvas["height"]) == (artwork.width, artwork.height)
        body = canvas["items"][0]["items"][0]["body"]
        assert body["id"] == f"http://testserver{artwork.derivative_url_1024}" and body["format"] == "image/jpeg"
        assert client.get(body["id"][len("http://testserver"):]).status_code == 200
        pairs = {p["label"].get("en", p["label"].get("none"))[0]: p["value"]["none"] for p in manifest["metadata"]}
        assert pairs["Identifier"] == [f"{artwork.source}:{artwork.source_id}"]
        if artwork.source == "aic":
            # Creative Commons defines its URIs with http; the URL as recorded is a metadata pair.
            assert manifest["rights"] == "http://creativecommons.org/publicdomain/zero/1.0/"
            assert pairs["Rights URL"] == [artwork.rights_url] == ["https://creativecommons.org/publicdomain/zero/1.0/"]
            assert body["service"] == [{"id": artwork.iiif_image_service, "type": "ImageService2",
                                        "profile": "http://iiif.io/api/image/2/level1.json"}]
            assert pairs["Creator"] == [artwork.creator]
        else:  # "Public domain" without a URI: a metadata pair, never in rights
            assert "rights" not in manifest and pairs["Rights"] == ["Public domain"]
            assert "service" not in body
    assert client.get("/iiif/artwork/999999999/manifest.json").status_code == 404


def test_machine_labels_are_tagging_annotations_by_the_model(archive, client, curator):
    artwork, model = archive["artworks"][0], archive["model"]
    manifest = get(client, f"/iiif/artwork/{artwork.pk}/manifest.json")
    page = manifest["items"][0]["annotations"][0]
    assert page["type"] == "AnnotationPage" and page["items"]
    shown = artwork.labels.filter(model=model).order_by("-score")
    names = [a["body"]["value"] for a in page["items"]]
    assert set(names) <= set(shown.values_list("label__name", flat=True))
    first = page["items"][0]
    assert first["motivation"] == "tagging" and first["target"] == manifest["items"][0]["id"]
    assert first["body"]["type"] == "TextualBody" and first["body"]["purpose"] == "tagging"
    assert first["creator"]["type"] == "Software" and first["creator"]["untrained"] is True
    assert model.key in first["creator"]["label"]["none"][0] and "untrained" in first["creator"]["label"]["none"][0]
    assert first["score"] == pytest.approx(shown.get(label__name=first["body"]["value"]).score, abs=1e-5)
    # The extension context defines the terms it adds, and comes before the Presentation context.
    assert manifest["@context"][0] == "http://testserver/iiif/context.json"
    response = client.get("/iiif/context.json")
    assert response["Content-Type"] == "application/ld+json"
    context = json.loads(response.content)["@context"]
    assert {"score", "untrained", "curated", "rank"} <= set(context)
    # A curator's rejection removes the label; an added label is curated, not the model's.
    rejected = artwork.labels.filter(model=model).order_by("-score").first().label
    other = next(l for l in archive["labels"] if l.name not in names)
    LabelDecision.objects.create(artwork=artwork, label=rejected, decision="rejected", user=curator)
    LabelDecision.objects.create(artwork=artwork, label=other, decision="added", user=curator)
    items = get(client, f"/iiif/artwork/{artwork.pk}/manifest.json")["items"][0]["annotations"][0]["items"]
    by_name = {a["body"]["value"]: a for a in items}
    assert rejected.name not in by_name
    assert by_name[other.name]["curated"] is True and "creator" not in by_name[other.name]


def test_label_collection_is_paged_and_lists_what_the_label_page_shows(archive, client, settings):
    from explorer import browse

    label = max(archive["labels"], key=lambda l: browse.label_count(l, archive["model"].pk))
    expected = browse.label_count(label, archive["model"].pk)
    assert expected > 4
    whole = get(client, f"/iiif/label/{label.slug}/collection.json")
    assert check.problems(whole) == []
    assert len(whole["items"]) == expected and all(i["type"] == "Manifest" for i in whole["items"])
    assert "untrained" in whole["summary"]["none"][0]
    settings.IIIF_COLLECTION_PAGE_SIZE = 4
    top = get(client, f"/iiif/label/{label.slug}/collection.json")
    assert check.problems(top) == []
    pages = top["items"]
    assert len(pages) == -(-expected // 4) and all(p["type"] == "Collection" for p in pages)
    listed = []
    for page in pages:
        document = get(client, page["id"][len("http://testserver"):])
        assert check.problems(document) == [] and document["id"] == page["id"]
        assert document["partOf"][0]["id"] == top["id"]
        assert 1 <= len(document["items"]) <= 4
        listed += [m["id"] for m in document["items"]]
    assert listed == [m["id"] for m in whole["items"]]  # same order, nothing twice, nothing missing
    assert client.get(f"/iiif/label/{label.slug}/collection.json?page={len(pages) + 1}").status_code == 400
    assert client.get(f"/iiif/label/{label.slug}/collection.json?page=x").status_code == 400
    assert client.get("/iiif/label/no-such-label/collection.json").status_code == 404


def test_curator_collections_institutions_and_the_top_collection(archive, client, curator, settings):
    works = archive["artworks"][:3]
    private = Collection.objects.create(title="Mine", slug="mine", owner=curator, is_public=False)
    public = Collection.objects.create(title="Ours", slug="ours", owner=curator, is_public=True)
    from explorer import collecting

    collecting.add_items(private, [w.pk for w in works])
    collecting.add_items(public, [w.pk for w in reversed(works)])
    assert client.get("/iiif/collection/mine/collection.json").status_code == 404
    owner = Client()
    owner.force_login(curator)
    mine = owner.get("/iiif/collection/mine/collection.json")
    assert mine.status_code == 200 and "private" in mine["Cache-Control"]
    ours = get(client, "/iiif/collection/ours/collection.json")
    assert check.problems(ours) == []
    assert [i["id"] for i in ours["items"]] == [f"http://testserver/iiif/artwork/{w.pk}/manifest.json" for w in reversed(works)]
    # The export lists the same manifests.
    export = json.loads(client.get("/collections/ours/export.iiif.json").content)
    assert check.problems(export) == [] and [i["id"] for i in export["items"]] == [i["id"] for i in ours["items"]]

    aic = get(client, "/iiif/institution/art-institute-of-chicago/collection.json")
    assert check.problems(aic) == []
    assert len(aic["items"]) == Artwork.objects.filter(institution="Art Institute of Chicago").count()
    assert client.get("/iiif/institution/nowhere/collection.json").status_code == 404
    top = get(client, "/iiif/collection.json")
    assert check.problems(top) == []
    ids = [i["id"] for i in top["items"]]
    assert "http://testserver/iiif/institution/art-institute-of-chicago/collection.json" in ids
    assert "http://testserver/iiif/collection/ours/collection.json" in ids
    assert "http://testserver/iiif/collection/mine/collection.json" not in ids
    labels = get(client, "/iiif/labels/collection.json")
    assert check.problems(labels) == [] and len(labels["items"]) >= len(archive["labels"])
    # A configured public address makes every id.
    settings.IIIF_BASE_URL = "https://art.example.org"
    manifest = get(client, f"/iiif/artwork/{works[0].pk}/manifest.json")
    assert manifest["id"] == f"https://art.example.org/iiif/artwork/{works[0].pk}/manifest.json"
    assert manifest["items"][0]["items"][0]["items"][0]["body"]["id"].startswith("https://art.example.org/media/")


def test_the_checker_finds_what_breaks_the_rules(archive, client):
    good = get(client, f"/iiif/artwork/{archive['artworks'][0].pk}/manifest.json")

    def broken(change) -> list[str]:
        document = copy.deepcopy(good)
        change(document)
        return check.problems(document)

    assert broken(lambda d: d.pop("label")) == ["$.label: is required"]
    assert broken(lambda d: d.update(items=[])) == ["$.items: is required, a list of at least one Canvas"]
    assert broken(lambda d: d.update(rights="https://example.org/licence")) and broken(lambda d: d.update(rights="CC0"))
    assert broken(lambda d: d.update(rights="https://creativecommons.org/publicdomain/zero/1.0/"))
    assert broken(lambda d: d.update(label={"en": "not a list"}))
    assert broken(lambda d: d.update({"@context": "http://iiif.io/api/presentation/2/context.json"}))
    assert broken(lambda d: d["items"][0].pop("height"))
    assert broken(lambda d: d["items"][0]["items"][0]["items"][0].pop("body"))
    assert broken(lambda d: d["items"][0]["items"][0]["items"][0].update(target="http://elsewhere/canvas"))
    assert broken(lambda d: d["items"][0]["annotations"][0]["items"][0].update(motivation="liking"))
    assert broken(lambda d: d.update(navDate="1895"))
    assert broken(lambda d: d["homepage"][0].pop("label"))
    assert broken(lambda d: d.update(id="/relative"))


def test_a_work_without_an_image_is_a_valid_manifest_that_imports_as_metadata(archive, client, tmp_path):
    from tests.archive.conftest import run_import

    work = Artwork.objects.create(source="catalogue", source_id="x-1", title="Lost panel", creator="Unknown maker",
                                  display_date="c. 1500", institution="Somewhere", status=Artwork.Status.NO_IMAGE)
    manifest = get(client, f"/iiif/artwork/{work.pk}/manifest.json")
    assert check.problems(manifest) == []
    assert manifest["items"][0]["items"][0]["items"] == [] and "thumbnail" not in manifest
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    job, stats, errors = run_import(path)
    assert errors == [] and stats.done == 1
    again = Artwork.objects.get(source="iiif", source_id=manifest["id"])
    assert (again.title, again.creator, again.display_date, again.institution, again.status) == (
        "Lost panel", "Unknown maker", "c. 1500", "Somewhere", Artwork.Status.NO_IMAGE)
