"""Imports of the real collections (small subsets to stay fast): idempotent re-imports, mappings."""
from __future__ import annotations

import pytest

from archive.images import derivative_path
from archive.importers import open_source
from archive.importers.metadata import MetadataSource, MultiSource
from archive.models import Artwork, Job, NearDuplicate

from .conftest import run_import

pytestmark = pytest.mark.django_db


def snapshot(source):
    return {
        a.source_id: (a.id, a.title, a.creator, a.display_date, a.year_start, a.year_end, a.sha256, a.phash, a.status, a.width, a.height)
        for a in Artwork.objects.filter(source=source)
    }


def test_aic_folder_import_is_idempotent(aic_dir):
    source = open_source(str(aic_dir))
    assert isinstance(source, MultiSource) and len(source.parts) == 8  # the eight collection.json files

    job, stats, errors = run_import(aic_dir, limit=30)
    assert errors == [] and stats.done == 30 and job.state == Job.State.DONE
    assert job.total == 30 and job.done == 30 and job.rate > 0
    first = snapshot("aic")
    assert len(first) == 30
    work = Artwork.objects.get(source="aic", source_id="109220")
    assert work.title == "Annunciation to the Shepherds"
    assert work.creator.startswith("After Jacobo Bassano")
    assert (work.display_date, work.year_start, work.year_end) == ("c. 1710", 1710, 1710)
    assert work.institution == "Art Institute of Chicago" and work.rights.startswith("CC0")
    assert work.iiif_image_service == "https://www.artic.edu/iiif/2/ec272cba-5f5c-dcc1-00e3-00dfdb042a52"
    assert work.metadata["collection"] == "eighteenth_century"
    assert work.original_location.endswith("images/109220.jpg")
    assert (work.width, work.height) == (843, 1053)
    assert all(derivative_path(work.sha256, s).exists() for s in (128, 256, 512, 1024))

    near_before = NearDuplicate.objects.count()
    job2, stats2, errors2 = run_import(aic_dir, limit=30)
    assert errors2 == [] and stats2.done == 30 and stats2.created == 0 and stats2.updated == 30
    assert snapshot("aic") == first
    assert Artwork.objects.filter(source="aic").count() == 30
    assert NearDuplicate.objects.count() == near_before


def test_culturecraft_metadata_import_is_idempotent(culturecraft_dir):
    source = open_source(str(culturecraft_dir))
    assert isinstance(source, MetadataSource) and source.mapping.name == "culturecraft"
    job, stats, errors = run_import(culturecraft_dir / "metadata.csv", limit=30)
    assert errors == [] and stats.done == 30
    first = snapshot("culturecraft")
    work = Artwork.objects.get(source="culturecraft", source_id="nypl:510d47d9-4b3f-a3d9-e040-e00a18064a99")
    assert work.title == "Cystoseira granulata" and work.creator == "Anna Atkins"
    assert work.year_start == 1843 and work.institution == "The New York Public Library"
    assert work.metadata["alt_text"] == "Cyanotype of algae on blue background"
    assert (work.width, work.height) == (1024, 1024)

    job2, stats2, errors2 = run_import(culturecraft_dir, limit=30)
    assert errors2 == [] and stats2.created == 0
    assert snapshot("culturecraft") == first


def test_culturecraft_images_as_plain_folder_link_to_metadata_rows(culturecraft_dir):
    """The same bytes imported twice under different records are stored once and linked."""
    run_import(culturecraft_dir / "metadata.csv", limit=5)  # images 0.jpg .. 4.jpg
    job, stats, errors = run_import(culturecraft_dir / "images", kind="folder", limit=40)
    assert errors == []
    folder_rows = Artwork.objects.filter(source="folder")
    assert folder_rows.count() == 40
    first_40 = sorted(p.name for p in (culturecraft_dir / "images").iterdir())[:40]
    expected = {f"{i}.jpg" for i in range(5)} & set(first_40)
    linked = folder_rows.filter(status="duplicate")
    # The images already imported through metadata.csv are exact duplicates of those rows.
    assert expected and {r.source_id.rsplit("/", 1)[-1] for r in linked} == expected
    for row in linked:
        assert row.duplicate_of.source == "culturecraft" and row.duplicate_of.sha256 == row.sha256


def test_tate_mapping_on_real_jsonl(tate_dir):
    job, stats, errors = run_import(tate_dir / "artworks.jsonl.gz", limit=2000)
    assert errors == [] and stats.done == 2000 and job.total == 2000
    rows = Artwork.objects.filter(source="tate")
    assert rows.count() == 2000 and set(rows.values_list("status", flat=True)) == {"no_image"}
    first = rows.get(source_id="A00001")
    assert first.creator == "Robert Blake" and first.institution == "Tate"
    assert first.display_date == "date not known" and first.year_start is None
    assert first.credit_line == "Presented by Mrs John Richmond 1922"
    assert "kneeling" in first.metadata["subjects"]
    assert "people > actions: postures and motions > kneeling" in first.metadata["subject_paths"]
    assert first.metadata["thumbnail_url"].startswith("http://www.tate.org.uk/")
    assert first.original_location == ""  # thumbnails are fetched only with --with-images
    # Every record with a date gets a year range; only "date not known" stays open.
    assert not rows.filter(year_start=None).exclude(display_date="date not known").exists()
    assert rows.exclude(year_start=None).count() > 800
    # Re-import: same rows, nothing duplicated.
    job2, stats2, _ = run_import(tate_dir / "artworks.jsonl.gz", limit=2000)
    assert stats2.created == 0 and rows.count() == 2000
