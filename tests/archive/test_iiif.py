"""IIIF Presentation v2 and v3 manifests and collections, images served by a local HTTP server."""
from __future__ import annotations

import json

import pytest

from archive.importers import open_source
from archive.importers.iiif import IIIFSource
from archive.models import Artwork

from .conftest import jpeg_bytes, pattern_image, run_import, write_jpeg

pytestmark = pytest.mark.django_db


def manifest_v2(base: str, name: str, images: list[str]) -> dict:
    return {
        "@context": "http://iiif.io/api/presentation/2/context.json",
        "@id": f"{base}/{name}.json",
        "@type": "sc:Manifest",
        "label": [{"@value": "Vue de Delft", "@language": "fr"}, {"@value": "View of Delft", "@language": "en"}],
        "metadata": [
            {"label": "Artist", "value": "Johannes Vermeer"},
            {"label": "Date", "value": "c. 1660–1661"},
            {"label": "Medium", "value": "<span>Oil on canvas</span>"},
            {"label": "Dimensions", "value": "96.5 x 115.7 cm"},
        ],
        "description": "A view of the city from the south.",
        "attribution": "Mauritshuis, The Hague",
        "license": "https://creativecommons.org/publicdomain/zero/1.0/",
        "related": {"@id": "https://www.mauritshuis.nl/en/explore/the-collection/artworks/92-view-of-delft/"},
        "sequences": [
            {
                "@type": "sc:Sequence",
                "canvases": [
                    {
                        "@id": f"{base}/{name}/canvas/{i}",
                        "@type": "sc:Canvas",
                        "label": f"side {i}",
                        "images": [
                            {
                                "@type": "oa:Annotation",
                                "motivation": "sc:painting",
                                "resource": {
                                    "@id": f"{base}/{image}",
                                    "@type": "dctypes:Image",
                                    "service": {"@context": "http://iiif.io/api/image/2/context.json", "@id": f"{base}/iiif/{name}-{i}"},
                                },
                            }
                        ],
                    }
                    for i, image in enumerate(images, start=1)
                ],
            }
        ],
    }


def manifest_v3(base: str, name: str, images: list[str]) -> dict:
    return {
        "@context": "http://iiif.io/api/presentation/3/context.json",
        "id": f"{base}/{name}.json",
        "type": "Manifest",
        "label": {"en": ["The Great Wave off Kanagawa"]},
        "metadata": [
            {"label": {"en": ["Creator"]}, "value": {"en": ["Katsushika Hokusai"]}},
            {"label": {"en": ["Date"]}, "value": {"none": ["1830–32"]}},
            {"label": {"en": ["Object Type"]}, "value": {"en": ["Woodblock print"]}},
        ],
        "summary": {"en": ["Polychrome woodblock print; ink and color on paper."]},
        "rights": "http://creativecommons.org/publicdomain/mark/1.0/",
        "requiredStatement": {"label": {"en": ["Attribution"]}, "value": {"en": ["The Metropolitan Museum of Art"]}},
        "homepage": [{"id": "https://www.metmuseum.org/art/collection/search/45434", "type": "Text"}],
        "provider": [{"id": "https://www.metmuseum.org", "type": "Agent", "label": {"en": ["The Met"]}}],
        "items": [
            {
                "id": f"{base}/{name}/canvas/{i}",
                "type": "Canvas",
                "label": {"en": [f"sheet {i}"]},
                "items": [
                    {
                        "id": f"{base}/{name}/page/{i}",
                        "type": "AnnotationPage",
                        "items": [
                            {
                                "id": f"{base}/{name}/annotation/{i}",
                                "type": "Annotation",
                                "motivation": "painting",
                                "body": {
                                    "id": f"{base}/{image}",
                                    "type": "Image",
                                    "format": "image/jpeg",
                                    "service": [{"id": f"{base}/iiif3/{name}-{i}", "type": "ImageService3", "profile": "level1"}],
                                },
                                "target": f"{base}/{name}/canvas/{i}",
                            }
                        ],
                    }
                ],
            }
            for i, image in enumerate(images, start=1)
        ],
    }


def test_v2_manifest_over_http(http_dir):
    folder, base = http_dir
    write_jpeg(folder / "delft.jpg", seed=1)
    (folder / "delft.json").write_text(json.dumps(manifest_v2(base, "delft", ["delft.jpg"])))
    source = open_source(f"{base}/delft.json")
    assert isinstance(source, IIIFSource)
    job, stats, errors = run_import(f"{base}/delft.json")
    assert errors == [] and stats.done == 1
    work = Artwork.objects.get(source="iiif")
    assert work.source_id == f"{base}/delft.json"
    assert work.title == "View of Delft"
    assert work.creator == "Johannes Vermeer" and work.medium == "Oil on canvas"
    assert (work.year_start, work.year_end) == (1660, 1661)
    assert work.rights_url == "https://creativecommons.org/publicdomain/zero/1.0/"
    assert work.credit_line == "Mauritshuis, The Hague"
    assert work.source_url.startswith("https://www.mauritshuis.nl/")
    assert work.iiif_manifest_url == f"{base}/delft.json"
    assert work.iiif_image_service == f"{base}/iiif/delft-1"
    assert work.original_location == f"{base}/delft.jpg" and work.status == "ok"
    assert {"label": "Dimensions", "value": "96.5 x 115.7 cm"} in work.metadata["iiif_metadata"]
    assert work.metadata["iiif_version"] == 2


def test_v3_manifest_local_file_every_canvas(tmp_path, http_dir):
    folder, base = http_dir
    write_jpeg(folder / "wave1.jpg", seed=2)
    write_jpeg(folder / "wave2.jpg", seed=3)
    path = tmp_path / "wave.json"
    path.write_text(json.dumps(manifest_v3(base, "wave", ["wave1.jpg", "wave2.jpg"])))
    job, stats, errors = run_import(path, canvases="all")
    assert errors == [] and stats.done == 2
    works = list(Artwork.objects.filter(source="iiif").order_by("source_id"))
    assert [w.source_id for w in works] == [f"{base}/wave/canvas/1", f"{base}/wave/canvas/2"]
    first = works[0]
    assert first.title == "The Great Wave off Kanagawa — sheet 1"
    assert first.creator == "Katsushika Hokusai" and first.classification == "Woodblock print"
    assert (first.year_start, first.year_end) == (1830, 1832)
    assert first.rights_url == "http://creativecommons.org/publicdomain/mark/1.0/"
    assert first.credit_line == "The Metropolitan Museum of Art" and first.institution == "The Met"
    assert first.iiif_image_service == f"{base}/iiif3/wave-1"
    assert first.metadata["summary"].startswith("Polychrome")
    # Default: one artwork per manifest, from the first canvas.
    job, stats, errors = run_import(path)
    assert Artwork.objects.get(source="iiif", source_id=f"{base}/wave.json").original_location == f"{base}/wave1.jpg"


def test_collection_of_manifests_with_bad_members(tmp_path, http_dir):
    folder, base = http_dir
    write_jpeg(folder / "one.jpg", seed=4)
    write_jpeg(folder / "two.jpg", seed=5)
    (folder / "one.json").write_text(json.dumps(manifest_v3(base, "one", ["one.jpg"])))
    (folder / "two.json").write_text(json.dumps(manifest_v2(base, "two", ["two.jpg"])))
    (folder / "bad.json").write_text('{"@context": "http://iiif.io/api/presentation/3/context.json", "type": "Manifest", ')
    no_items = manifest_v3(base, "empty", [])
    (folder / "empty.json").write_text(json.dumps(no_items))
    wrong = manifest_v3(base, "wrong", ["one.jpg"])
    wrong["items"] = "not a list"
    (folder / "wrong.json").write_text(json.dumps(wrong))
    no_image = manifest_v2(base, "noimage", ["one.jpg"])
    no_image["sequences"][0]["canvases"][0]["images"] = []
    (folder / "noimage.json").write_text(json.dumps(no_image))
    broken_image = manifest_v3(base, "broken", ["missing.jpg"])
    (folder / "broken.json").write_text(json.dumps(broken_image))
    collection = {
        "@context": "http://iiif.io/api/presentation/3/context.json",
        "id": f"{base}/collection.json",
        "type": "Collection",
        "label": {"en": ["Test collection"]},
        "items": [{"id": f"{base}/{n}.json", "type": "Manifest"} for n in ("one", "two", "bad", "empty", "wrong", "noimage", "broken", "absent")],
    }
    (folder / "collection.json").write_text(json.dumps(collection))
    job, stats, errors = run_import(f"{base}/collection.json")
    assert stats.done == 2
    assert set(Artwork.objects.filter(source="iiif", status="ok").values_list("source_id", flat=True)) == {
        f"{base}/one.json", f"{base}/two.json"
    }
    reasons = {e.item.split(" ")[0].rsplit("/", 1)[-1]: e.reason for e in errors}
    assert "not valid JSON" in reasons["bad.json"]
    assert "no canvases" in reasons["empty.json"]
    assert "'items' must be a list, found str" in reasons["wrong.json"]
    assert "has no image" in reasons["noimage.json"]
    assert "HTTP 404" in reasons["absent.json"]
    # The image of broken.json: its image service (asked first, at a bounded size), then its URL.
    assert reasons["broken.json"] == (
        f"HTTP 404 for {base}/iiif3/broken-1/full/!2048,2048/0/default.jpg; HTTP 404 for {base}/missing.jpg"
    )
    # A manifest whose image fails still has real metadata: it is kept, marked image_failed.
    assert Artwork.objects.get(source_id=f"{base}/broken.json").status == "image_failed"
    assert all(e.payload for e in errors)


def test_single_bad_manifest_file_is_a_job_error(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text('{"@context": "http://iiif.io/api/presentation/2/context.json", "@type": "sc:Manifest", "label": 5, "sequences": {"canvases": 3}}')
    job, stats, errors = run_import(path)
    assert stats.done == 0 and len(errors) == 1
    assert "'canvases' must be a list, found int" in errors[0].reason


def test_v2_collection_of_local_manifest_files(tmp_path):
    """A v2 collection on disk whose manifests are relative paths, with images as local files."""
    write_jpeg(tmp_path / "img" / "a.jpg", seed=6)
    write_jpeg(tmp_path / "img" / "b.jpg", seed=7)
    for name in ("a", "b"):
        manifest = manifest_v2("https://example.org/iiif", name, [])
        manifest["sequences"][0]["canvases"] = [
            {"@id": f"https://example.org/iiif/{name}/canvas/1", "@type": "sc:Canvas",
             "images": [{"resource": {"@id": f"img/{name}.jpg", "@type": "dctypes:Image"}}]}
        ]
        (tmp_path / f"{name}.json").write_text(json.dumps(manifest))
    collection = {
        "@context": "http://iiif.io/api/presentation/2/context.json",
        "@id": "https://example.org/iiif/collection",
        "@type": "sc:Collection",
        "manifests": [{"@id": "a.json", "@type": "sc:Manifest"}, {"@id": "b.json", "@type": "sc:Manifest"}],
    }
    (tmp_path / "collection.json").write_text(json.dumps(collection))
    job, stats, errors = run_import(tmp_path / "collection.json")
    assert errors == [] and stats.done == 2
    rows = Artwork.objects.filter(source="iiif", status="ok")
    assert set(rows.values_list("source_id", flat=True)) == {"https://example.org/iiif/a.json", "https://example.org/iiif/b.json"}
    assert all(r.original_location == str(tmp_path / "img" / f"{r.source_id[-6]}.jpg") for r in rows)


def test_unreadable_json_file_is_reported_not_raised(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text('{"@context": "http://iiif.io/api/presentation/3/context.json", "type": "Manifest", "items": [')
    job, stats, errors = run_import(path)
    assert job.state == "done" and stats.done == 0
    assert len(errors) == 1 and errors[0].reason.startswith("not valid JSON") and errors[0].payload


@pytest.mark.parametrize("version", [2, 3])
def test_image_service_is_asked_for_a_bounded_size(tmp_path, http_dir, version):
    """With an image service, the image is fetched fitted within 2048 px, not at full resolution;
    the full-size URL is not fetched at all when the service answers."""
    folder, base = http_dir
    name = f"scan{version}"
    prefix = "iiif" if version == 2 else "iiif3"
    write_jpeg(folder / f"{name}.jpg", seed=20)  # the full-size image (never fetched here)
    served = folder / prefix / f"{name}-1" / "full" / "!2048,2048" / "0" / "default.jpg"
    served.parent.mkdir(parents=True)
    served.write_bytes(jpeg_bytes(pattern_image(21, (2048, 1536))))
    make = manifest_v2 if version == 2 else manifest_v3
    manifest = make(base, name, [f"{name}.jpg"])
    canvas = manifest["sequences"][0]["canvases"][0] if version == 2 else manifest["items"][0]
    canvas.update(width=12000, height=9000)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(manifest))
    job, stats, errors = run_import(path)
    assert errors == [] and stats.done == 1
    work = Artwork.objects.get(source="iiif")
    assert work.original_location == f"{base}/{prefix}/{name}-1/full/!2048,2048/0/default.jpg"
    assert (work.width, work.height) == (2048, 1536)
    assert work.metadata["canvas_size"] == [12000, 9000] and work.metadata["image_url"] == f"{base}/{name}.jpg"


def test_v3_fields_beyond_the_catalogue_columns():
    """What a Presentation 3 manifest says beyond the columns the LABELS fill: other metadata pairs
    are kept under their label as keys (several values as a list), a Rights pair is the rights
    text beside the rights URI, navDate gives the first year, a Source pair the record's page (not
    a text that is no URL), and an attribution that only names the institution is no credit line."""
    from archive.importers.iiif import manifest_fields

    manifest = manifest_v3("http://example.org", "m", ["m.jpg"])
    manifest["metadata"] += [
        {"label": {"en": ["Institution"]}, "value": {"none": ["The Met"]}},
        {"label": {"en": ["Rights"]}, "value": {"none": ["Public domain mark"]}},
        {"label": {"none": ["place_of_origin"]}, "value": {"none": ["Japan"]}},
        {"label": {"en": ["Subjects"]}, "value": {"none": ["waves", "boats", "Mount Fuji"]}},
        {"label": {"en": ["Collection"]}, "value": {"none": ["Prints"]}},  # institution already read: kept as a field
        {"label": {"en": ["Source"]}, "value": {"none": ["gift of someone"]}},
    ]
    manifest["navDate"] = "1831-01-01T00:00:00Z"
    manifest["requiredStatement"] = {"label": {"en": ["Attribution"]}, "value": {"none": ["The Met"]}}
    fields = manifest_fields(manifest, 3, "http://example.org/m.json")
    assert fields["rights"] == "Public domain mark" and fields["rights_url"] == "http://creativecommons.org/publicdomain/mark/1.0/"
    assert fields["year_start"] == 1831 and fields["institution"] == "The Met" and "credit_line" not in fields
    assert fields["source_url"] == "https://www.metmuseum.org/art/collection/search/45434"  # the homepage
    metadata = fields["metadata"]
    assert metadata["place_of_origin"] == "Japan" and metadata["subjects"] == ["waves", "boats", "Mount Fuji"]
    assert metadata["collection"] == "Prints" and metadata["source"] == "gift of someone"
    assert {"label": "Subjects", "value": "waves; boats; Mount Fuji"} in metadata["iiif_metadata"]
