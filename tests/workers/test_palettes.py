"""Colour palettes on the real shared paintings: the CIELAB conversion against reference values,
a painting's stored palette against one checked independently from its pixels, the stage through
the job machinery, and search by colour (alone and within filters)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from archive import colour, vectors
from archive.images import read_derivative
from archive.models import Artwork, ArtworkPalette, Job
from explorer import colours as colour_search
from explorer.search import BadSearch, Filters
from tests.explorer.test_doppelganger_support import add_artwork
from workers import palettes as stage

pytestmark = pytest.mark.django_db

PAINTINGS = ["100026", "100342", "100343", "100344", "100352", "100356", "101077", "102087", "102088", "102098",
             "10281", "10287", "105698", "109220", "109926", "11022"]


def add_paintings(aic_dir, ids=PAINTINGS, year=1800):
    made = []
    for index, aic_id in enumerate(ids):
        art = add_artwork(aic_dir / "images" / f"{aic_id}.jpg", source="palette-aic", source_id=aic_id, title=aic_id)
        Artwork.objects.filter(pk=art.pk).update(year_start=year + index, year_end=year + index)
        made.append(art)
    return made


def pixels_lab(sha256: str) -> np.ndarray:
    """The 256 px derivative's pixels in CIELAB, read through the storage seam."""
    with Image.open(io.BytesIO(read_derivative(sha256, 256))) as im:
        return colour.rgb_to_lab(np.asarray(im.convert("RGB")).reshape(-1, 3))


@pytest.mark.parametrize("rgb, lab", [
    ((255, 0, 0), (53.24, 80.09, 67.20)), ((0, 255, 0), (87.73, -86.18, 83.18)), ((0, 0, 255), (32.30, 79.19, -107.86)),
    ((255, 255, 255), (100.0, 0.0, 0.0)), ((0, 0, 0), (0.0, 0.0, 0.0)), ((128, 128, 128), (53.59, 0.0, 0.0)),
])
def test_rgb_to_lab_matches_reference_values(rgb, lab):
    assert np.allclose(colour.rgb_to_lab(np.array([rgb], dtype=np.uint8))[0], lab, atol=0.05)
    assert tuple(colour.lab_to_rgb(np.array(lab))) == rgb


def test_signature_is_unit_length_and_near_colours_are_similar():
    red, dark_red, blue = (colour.rgb_to_lab(np.array([c], dtype=np.uint8))[0] for c in ((200, 30, 30), (170, 25, 35), (30, 40, 200)))
    s_red, s_dark, s_blue = (colour.signature([c], [1.0]) for c in (red, dark_red, blue))
    assert s_red.shape == (colour.SIGNATURE_DIM,) and abs(np.linalg.norm(s_red) - 1) < 1e-5
    assert float(s_red @ s_dark) > 0.5 > float(s_red @ s_blue)
    with pytest.raises(ValueError):
        colour.signature([red], [0.0])


def test_palette_of_a_painting_matches_its_pixels(aic_dir):
    (art,) = add_paintings(aic_dir, ["100026"])
    result = stage.process([art.pk], {})
    assert result.done == [art.pk] and not result.errors
    row = ArtworkPalette.objects.get(artwork=art, method=colour.METHOD)
    colours = row.colours
    assert 1 <= len(colours) <= colour.PALETTE_SIZE
    assert abs(sum(c["share"] for c in colours) - 1) < 1e-3
    assert [c["share"] for c in colours] == sorted((c["share"] for c in colours), reverse=True)
    # Checked independently from the derivative's own pixels: each pixel to its nearest palette
    # colour gives about the stored shares, the palette's share-weighted mean is the image's mean
    # colour, and the palette explains the image far better than its mean colour alone.
    labs = pixels_lab(art.sha256)
    centres = np.array([c["lab"] for c in colours])
    nearest = np.argmin(((labs[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    shares = np.bincount(nearest, minlength=len(colours)) / len(labs)
    assert np.abs(shares - [c["share"] for c in colours]).max() < 0.08
    weighted = (centres * np.array([c["share"] for c in colours])[:, None]).sum(0)
    assert colour.delta_e(weighted, labs.mean(0)) < 3.0
    error = colour.delta_e(labs, centres[nearest]).mean()
    assert error < 0.6 * colour.delta_e(labs, labs.mean(0)).mean()
    for c in colours:
        assert c["hex"] == colour.to_hex(colour.lab_to_rgb(c["lab"]))
    # The stored signature is the palette's.
    with vectors_text() as fetch:
        stored = fetch(row.pk)
    assert np.allclose(stored, colour.palette_signature(colours), atol=1e-5)


class vectors_text:
    def __enter__(self):
        from django.db import connection

        def fetch(pk):
            with connection.cursor() as cursor:
                cursor.execute("SELECT vector::text FROM archive_artworkpalette WHERE id = %s", [pk])
                return vectors.from_value(cursor.fetchone()[0])
        return fetch

    def __exit__(self, *exc):
        return False


def test_rerun_replaces_rows_and_bad_items_are_reported(aic_dir):
    (art,) = add_paintings(aic_dir, ["100342"])
    stage.process([art.pk], {})
    stage.process([art.pk], {})
    assert ArtworkPalette.objects.filter(artwork=art).count() == 1
    no_image = Artwork.objects.create(source="t", source_id="none", title="metadata only")
    lost = Artwork.objects.create(source="t", source_id="lost", sha256="0" * 64, status=Artwork.Status.OK)
    result = stage.process([no_image.pk, lost.pk, 999_999_999, art.pk], {})
    assert result.done == [art.pk]
    reasons = {e.artwork_id: e.reason for e in result.errors}
    assert "no image" in reasons[no_image.pk] and "derivative missing" in reasons[lost.pk]
    assert "no longer exists" in reasons[999_999_999]
    with pytest.raises(ValueError, match="unknown palette method"):
        stage.prepare({"method": "rgb-histogram"})


def test_palette_job_runs_through_the_job_machinery(aic_dir, django_capture_on_commit_callbacks):
    from workers import jobs
    from workers.celery import app

    arts = add_paintings(aic_dir, PAINTINGS[:3])
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            job = jobs.launch("palette", {})
    finally:
        app.conf.task_always_eager = eager
    job.refresh_from_db()
    assert job.state == Job.State.DONE and job.done == 3 and job.failed == 0
    assert set(ArtworkPalette.objects.values_list("artwork_id", flat=True)) == {a.pk for a in arts}
    assert vectors.index_exists(colour.PALETTES, colour.METHOD)
    again = jobs.launch("palette", {}, enqueue=False)
    assert again.state == Job.State.DONE and again.total == 0


def near_share(sha256: str, hex_colour: str, within: float = 20.0) -> float:
    """Share of the image's pixels within ``within`` (CIE76) of a colour: computed from the pixels."""
    target = colour.rgb_to_lab(np.array([colour.parse_hex(hex_colour)], dtype=np.uint8))[0]
    return float((colour.delta_e(pixels_lab(sha256), target) < within).mean())


@pytest.fixture
def palette_archive(aic_dir):
    arts = add_paintings(aic_dir)
    assert stage.process([a.pk for a in arts], {}).done == [a.pk for a in arts]
    return arts


def test_search_by_colour_ranks_images_dominated_by_it_first(palette_archive):
    # The colour that covers most of some painting: its largest palette colour.
    rows = {r.artwork_id: r.colours for r in ArtworkPalette.objects.all()}
    top_id = max(rows, key=lambda a: rows[a][0]["share"])
    query = colour_search.parse(rows[top_id][0]["hex"])
    found = colour_search.search(query, limit=len(palette_archive))
    assert len(found) == len(palette_archive)
    shares = {a.pk: near_share(a.sha256, query.hexes[0]) for a in palette_archive}
    ranked = [a.pk for a, _ in found]
    # The best match is the painting with the most pixels near the colour (counted here from the
    # pixels), and the first third hold more of it than the last third.
    assert ranked[0] == max(shares, key=shares.get)
    third = len(ranked) // 3
    assert np.mean([shares[a] for a in ranked[:third]]) > 2 * np.mean([shares[a] for a in ranked[-third:]])
    sims = [s for _, s in found]
    assert sims == sorted(sims, reverse=True) and 0 < sims[-1] <= sims[0] <= 1.0001


def test_search_by_colour_within_filters(palette_archive):
    rows = {r.artwork_id: r.colours for r in ArtworkPalette.objects.all()}
    top_id = max(rows, key=lambda a: rows[a][0]["share"])
    query = colour_search.parse(rows[top_id][0]["hex"])
    best = colour_search.search(query, limit=1)[0][0]
    years = sorted(a.year_start for a in Artwork.objects.filter(pk__in=[x.pk for x in palette_archive]))
    # A filter that leaves the best match out: only artworks passing it, ranked as without it.
    if best.year_start > years[0]:
        filters = Filters(year_to=best.year_start - 1)
    else:
        filters = Filters(year_from=best.year_start + 1)
    found = colour_search.search(query, filters, limit=50)
    allowed = set(filters.apply(Artwork.objects.all()).values_list("id", flat=True))
    assert found and best.pk not in {a.pk for a, _ in found} and {a.pk for a, _ in found} <= allowed
    unfiltered = [a.pk for a, _ in colour_search.search(query, limit=50) if a.pk in allowed]
    assert [a.pk for a, _ in found] == unfiltered


def test_two_colours_with_amounts():
    q = colour_search.parse("#c03020,1f3a80", "70,30")
    assert q.hexes == ("#c03020", "#1f3a80") and q.amounts == pytest.approx((0.7, 0.3))
    assert q.vector.shape == (colour.SIGNATURE_DIM,)
    assert colour_search.parse(["#abc"]).hexes == ("#aabbcc",)


@pytest.mark.parametrize("colours, amounts, message", [
    ("", None, "at least one colour"), ("#12345", None, "not a colour"), ("red", None, "not a colour"),
    ("#111111,#222222,#333333,#444444", None, "at most 3"), ("#111111,#222222", "50", "one amount per colour"),
    ("#111111", "abc", "numbers"), ("#111111", "0", "above 0"), ("#111111", "nan", "above 0"),
])
def test_bad_colour_queries_are_clear_errors(colours, amounts, message):
    with pytest.raises(BadSearch, match=message):
        colour_search.parse(colours, amounts)


def test_an_import_starts_the_palette_job(aic_dir, tmp_path, settings, django_capture_on_commit_callbacks):
    """The pipeline's step after an import: the new works get their palettes, once."""
    import shutil

    from django.core.management import call_command

    from workers.celery import app

    settings.PALETTES_AFTER_IMPORT = True
    folder = tmp_path / "in"
    folder.mkdir()
    for aic_id in PAINTINGS[:2]:
        shutil.copy(aic_dir / "images" / f"{aic_id}.jpg", folder / f"{aic_id}.jpg")
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            call_command("import", str(folder), verbosity=0)
    finally:
        app.conf.task_always_eager = eager
    imported = set(Artwork.objects.filter(status=Artwork.Status.OK).values_list("pk", flat=True))
    assert len(imported) == 2
    job = Job.objects.get(kind=Job.Kind.PALETTE)
    assert job.state == Job.State.DONE and job.done == 2
    assert set(ArtworkPalette.objects.values_list("artwork_id", flat=True)) == imported
    assert f"job {job.pk}" in Job.objects.get(kind=Job.Kind.IMPORT).message


def test_palette_rows_carry_the_artworks_filter_columns(palette_archive):
    """Triggers copy years, classification (upper case), institution and duplicate status onto the
    palette rows when written, and write an artwork's change through; the colour search within
    those filters (checked on the rows) then agrees with the filters on the artworks."""
    art = palette_archive[0]
    Artwork.objects.filter(pk=art.pk).update(classification="Print", institution="Tate", year_start=1650, year_end=1660)
    row = ArtworkPalette.objects.get(artwork=art)
    assert (row.year_start, row.year_end, row.classification, row.institution, row.duplicate) == (1650, 1660, "PRINT", "Tate", False)
    Artwork.objects.filter(pk=palette_archive[1].pk).update(status=Artwork.Status.DUPLICATE)
    assert ArtworkPalette.objects.get(artwork=palette_archive[1]).duplicate
    # A palette written after the artwork changed takes the artwork's values too.
    assert stage.process([art.pk], {}).done == [art.pk]
    assert ArtworkPalette.objects.get(artwork=art).classification == "PRINT"
    query = colour_search.parse(ArtworkPalette.objects.get(artwork=art).colours[0]["hex"])
    for filters in (Filters(classification="print"), Filters(institution="Tate", year_from=1655), Filters(year_to=1805),
                    Filters(year_from=1803, year_to=1810)):
        on_rows = colour_search.ranking(query.vector, filters, limit=10)
        by_lookup = colour_search.ranking_by_lookup(query.vector, filters, limit=10)
        assert on_rows == by_lookup
        allowed = set(filters.apply(Artwork.objects.exclude(status=Artwork.Status.DUPLICATE)).values_list("id", flat=True))
        assert {a for a, _ in on_rows} <= allowed and len(on_rows) == min(10, len(allowed))
    assert [a for a, _ in colour_search.ranking(query.vector, Filters(classification="print"), limit=5)] == [art.pk]
