"""The text read in images in the explorer: search finds an artwork by a word that is only in its
image (ranked below catalogue matches), the artwork page marks the searched words' boxes, and
the IIIF Content Search 2.0 service answers with the spec's required properties."""
from __future__ import annotations

import re

import pytest
from PIL import Image

from archive.models import ArtworkText, Label, LabelDecision
from explorer import search as search_mod
from tests.explorer.test_doppelganger_support import add_artwork
from tests.workers.text_images import fonts_available, inscribe
from workers.ocr import engine
from workers.ocr import stage

pytestmark = pytest.mark.django_db

SEARCH_CONTEXT = "http://iiif.io/api/search/2/context.json"


@pytest.fixture
def text_archive(aic_dir, tmp_path):
    try:
        engine.check_languages("eng")
    except engine.EngineMissing as exc:
        pytest.skip(f"OCR tests need Tesseract: {exc}")
    if "DejaVuSans.ttf" not in fonts_available():
        pytest.skip("OCR tests render text in DejaVu Sans: apt-get install fonts-dejavu-core")
    with Image.open(aic_dir / "images" / "100344.jpg") as im:
        rendered = inscribe(im.convert("RGB"), "Zeppelin exhibition opens Tuesday", "DejaVuSans.ttf", 34)
    path = tmp_path / "inscribed.jpg"
    rendered.image.save(path, quality=92)
    inscribed = add_artwork(path, source="ocr-page", source_id="inscribed", title="Study of a harbour")
    titled = add_artwork(aic_dir / "images" / "100352.jpg", source="ocr-page", source_id="titled", title="The zeppelin hangar")
    plain = add_artwork(aic_dir / "images" / "100356.jpg", source="ocr-page", source_id="plain", title="Bathers")
    result = stage.process([inscribed.pk, titled.pk, plain.pk], stage.prepare({}))
    assert len(result.done) == 3
    words = {w["text"].lower(): w for w in ArtworkText.objects.get(artwork=inscribed).words}
    assert {"zeppelin", "tuesday"} <= set(words), words
    return {"inscribed": inscribed, "titled": titled, "plain": plain, "words": words, "rendered": rendered}


def test_search_finds_an_artwork_by_a_word_only_in_its_image(text_archive):
    inscribed = text_archive["inscribed"]
    assert "tuesday" not in (inscribed.title + inscribed.creator).lower()
    result = search_mod.search("tuesday")
    assert [a.pk for a, _ in result.artworks] == [inscribed.pk] and result.used_text
    # A word in one title and in the other's image: the catalogue match ranks first.
    ranked = [a.pk for a, _ in search_mod.search("zeppelin").artworks]
    assert ranked == [text_archive["titled"].pk, inscribed.pk]


def test_search_page_links_to_the_artwork_with_the_query(client, text_archive):
    html = client.get("/search/", {"q": "tuesday"}).content.decode()
    assert f'href="/artworks/{text_archive["inscribed"].pk}/?q=tuesday"' in html


def test_artwork_page_marks_the_searched_words(client, text_archive):
    art = text_archive["inscribed"]
    word = text_archive["words"]["tuesday"]
    html = client.get(f"/artworks/{art.pk}/", {"q": "Tuesday"}).content.decode()
    hits = re.findall(r'<span class="text-hit" style="left: ([\d.]+)%; top: ([\d.]+)%; width: ([\d.]+)%; height: ([\d.]+)%" title="([^"]+)"', html)
    assert len(hits) == 1 and hits[0][4] == word["text"]
    left, top, width, height = (float(v) for v in hits[0][:4])
    assert left == pytest.approx(100 * word["x"] / art.width, abs=0.01)
    assert top == pytest.approx(100 * word["y"] / art.height, abs=0.01)
    assert width == pytest.approx(100 * word["w"] / art.width, abs=0.01)
    assert height == pytest.approx(100 * word["h"] / art.height, abs=0.01)
    assert 'id="text-highlights"' in html and "Text in the image" in html
    # Without a query, or for a word not in the image, nothing is marked.
    assert 'class="text-hit"' not in client.get(f"/artworks/{art.pk}/").content.decode()
    assert 'class="text-hit"' not in client.get(f"/artworks/{art.pk}/", {"q": "bathers"}).content.decode()


def check_annotation_page(data: dict, url_part: str) -> None:
    """The properties Content Search 2.0 requires of an answer and its annotations."""
    assert data["@context"] == SEARCH_CONTEXT
    assert data["type"] == "AnnotationPage" and url_part in data["id"] and data["id"].startswith("http")
    assert isinstance(data["items"], list)
    for anno in data["items"]:
        assert anno["type"] == "Annotation" and anno["id"].startswith("http")
        assert anno["motivation"] in ("highlighting", "tagging")
        assert re.fullmatch(r"http://testserver/iiif/artwork/\d+/canvas/1#xywh=\d+,\d+,\d+,\d+", anno["target"])
        assert anno["body"]["type"] == "TextualBody" and anno["body"]["value"]
    for page in data.get("annotations", []):
        assert page["type"] == "AnnotationPage"
        for anno in page["items"]:
            assert anno["motivation"] == "contextualizing"
            assert anno["target"]["selector"][0]["type"] == "TextQuoteSelector"


def test_content_search_within_an_artwork(client, text_archive):
    art = text_archive["inscribed"]
    word = text_archive["words"]["tuesday"]
    r = client.get(f"/iiif/artwork/{art.pk}/search", {"q": "tuesday", "user": "someone"})
    assert r.status_code == 200 and r["Access-Control-Allow-Origin"] == "*" and "ld+json" in r["Content-Type"]
    data = r.json()
    check_annotation_page(data, f"/iiif/artwork/{art.pk}/search")
    assert data["ignored"] == ["user"]
    (hit,) = data["items"]
    assert hit["motivation"] == "highlighting" and hit["body"]["value"] == word["text"]
    assert hit["target"] == f"http://testserver/iiif/artwork/{art.pk}/canvas/1#xywh={word['x']},{word['y']},{word['w']},{word['h']}"
    (context,) = data["annotations"][0]["items"]
    assert context["target"]["source"] == hit["id"] and context["target"]["selector"][0]["exact"] == word["text"]
    assert "opens" in context["target"]["selector"][0]["prefix"]
    # The hit's box is on the rendered word.
    (x, y, w, h) = next(box for text, box in text_archive["rendered"].words if text == "Tuesday")
    assert abs(word["x"] - x) < 0.3 * w and abs(word["y"] - y) < 0.5 * h
    assert client.get(f"/iiif/artwork/{art.pk}/search", {"q": "tuesday", "motivation": "tagging"}).json()["items"] == []
    assert client.get(f"/iiif/artwork/{art.pk}/search", {"q": ""}).json()["items"] == []
    assert client.get("/iiif/artwork/999999999/search", {"q": "x"}).status_code == 404


def test_content_search_over_labels_and_the_archive(client, text_archive):
    titled = text_archive["titled"]
    label = Label.objects.create(name="Zeppelin airship", slug="zeppelin-airship", group="objects")
    LabelDecision.objects.create(artwork=titled, label=label, decision="added")
    data = client.get("/iiif/search", {"q": "zeppelin"}).json()
    check_annotation_page(data, "/iiif/search")
    assert data["partOf"]["type"] == "AnnotationCollection" and "next" not in data
    by_motivation = {(a["motivation"], a["target"].split("#")[0]) for a in data["items"]}
    assert ("highlighting", f"http://testserver/iiif/artwork/{text_archive['inscribed'].pk}/canvas/1") in by_motivation
    assert ("tagging", f"http://testserver/iiif/artwork/{titled.pk}/canvas/1") in by_motivation
    tag = next(a for a in data["items"] if a["motivation"] == "tagging")
    assert tag["body"]["value"] == "Zeppelin airship" and tag["target"].endswith(f"#xywh=0,0,{titled.width},{titled.height}")
    within = client.get(f"/iiif/artwork/{titled.pk}/search", {"q": "airship"}).json()
    assert [a["motivation"] for a in within["items"]] == ["tagging"]
    assert client.get("/iiif/search", {"q": "zeppelin", "page": "x"}).status_code == 400
    assert client.get("/iiif/search", {"q": "z" * 600}).status_code == 400


def test_manifests_and_the_top_collection_list_the_search_service(client, text_archive):
    """The hits' targets are the canvases of the artwork's IIIF manifest, in its pixels."""
    art = text_archive["inscribed"]
    manifest = client.get(f"/iiif/artwork/{art.pk}/manifest.json").json()
    (service,) = manifest["service"]
    assert service == {"id": f"http://testserver/iiif/artwork/{art.pk}/search", "type": "SearchService2"}
    (canvas,) = manifest["items"]
    hit = client.get(service["id"].replace("http://testserver", ""), {"q": "tuesday"}).json()["items"][0]
    target, xywh = hit["target"].split("#xywh=")
    assert target == canvas["id"]
    x, y, w, h = (int(v) for v in xywh.split(","))
    assert 0 <= x and x + w <= canvas["width"] and 0 <= y and y + h <= canvas["height"]
    top = client.get("/iiif/collection.json").json()
    assert {"id": "http://testserver/iiif/search", "type": "SearchService2"} in top["service"]
