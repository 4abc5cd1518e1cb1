"""The round trip of a curator collection through IIIF: real artworks imported from
aic-artwall are exported as a IIIF Collection of manifests, the JSON is served by a plain local
HTTP server (as another site would host it), and the project's own importer reads it into a
cleared archive: every work comes back, with its image and every catalogue and metadata field."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.test import Client

from archive import images
from archive.models import Artwork, Collection, JobError
from explorer.iiif import check
from tests.archive.conftest import http_dir, run_import  # noqa: F401 (http_dir is a fixture)

pytestmark = pytest.mark.django_db

FIELDS = ("title", "creator", "display_date", "year_start", "year_end", "medium", "classification", "institution",
          "rights", "rights_url", "credit_line", "source_url", "iiif_image_service")
# metadata an import keeps about itself (where it read the record), not the record's fields.
BOOKKEEPING = {"import_origin"}


def save(folder: Path, url: str, base: str, client: Client) -> dict:
    """GET a IIIF document from the archive and write it where its id says it is served."""
    response = client.get(url[len(base):])
    assert response.status_code == 200, url
    assert response["Content-Type"].startswith("application/ld+json")
    document = json.loads(response.content)
    assert document["id"] == url
    assert check.problems(document) == [], url
    path = folder / url[len(base) + 1:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return document


def test_collection_export_reimports_every_work_image_and_field(aic_dir, http_dir, tmp_path, settings):  # noqa: F811
    www, base = http_dir
    first_media, second_media = tmp_path / "media-one", tmp_path / "media-two"
    settings.MEDIA_ROOT = first_media
    job, stats, errors = run_import(aic_dir, limit=24)
    assert errors == [] and stats.done == 24
    originals = {a.source_url: a for a in Artwork.objects.all()}
    assert len(originals) == stats.done
    collection = Collection.objects.create(title="Eighteenth century", slug="eighteenth-century", is_public=True)
    from explorer import collecting

    collecting.add_items(collection, list(Artwork.objects.order_by("id").values_list("id", flat=True)))

    # The export, hosted elsewhere: ids built from the public base URL, files written under it;
    # the images are the first archive's derivatives at /media/.
    settings.IIIF_BASE_URL = base
    client = Client()
    export = save(www, f"{base}/collections/{collection.slug}/export.iiif.json", base, client)
    assert len(export["items"]) == len(originals)
    for item in export["items"]:
        assert item["id"].startswith(f"{base}/iiif/artwork/")
        save(www, item["id"], base, client)
    (www / "media").symlink_to(first_media, target_is_directory=True)

    # A fresh archive: no artworks, no collections, another media folder.
    Collection.objects.all().delete()
    Artwork.objects.all().delete()
    settings.MEDIA_ROOT = second_media
    job, stats, errors = run_import(f"{base}/collections/{collection.slug}/export.iiif.json")
    assert [e.reason for e in errors] == []
    assert stats.done == len(originals)
    again = {a.source_url: a for a in Artwork.objects.all()}
    assert set(again) == set(originals)
    for url, before in originals.items():
        after = again[url]
        assert after.status == Artwork.Status.OK
        for name in FIELDS:
            assert getattr(after, name) == getattr(before, name), (url, name)
        for key, value in before.metadata.items():
            if key not in BOOKKEEPING:
                assert after.metadata.get(key) == value, (url, key)
        assert after.metadata["identifier"] == f"aic:{before.source_id}"
        assert after.iiif_manifest_url == f"{base}/iiif/artwork/{before.pk}/manifest.json"
        # The image: the first archive's largest derivative, which is the original file itself
        # when it fits (the same bytes), else a copy of it at that size.
        largest = max(settings.DERIVATIVE_SIZES)
        assert after.metadata["canvas_size"] == [before.width, before.height]
        if max(before.width, before.height) <= largest:
            assert (after.sha256, after.width, after.height) == (before.sha256, before.width, before.height)
        else:
            assert max(after.width, after.height) == largest
            assert images.hamming(after.phash, before.phash) <= 6
        assert images.derivatives_exist(after.sha256, tuple(settings.DERIVATIVE_SIZES), second_media)
    assert not JobError.objects.filter(job=job).exists()
