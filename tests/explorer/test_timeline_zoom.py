"""The zoomable timeline on the small real archive: the points payload (every dated work within the
filters, its year, band and dominant colour), the viewport look-up (the works in a window, bounded,
with the filters; years outside the data a clear 400), the Hilbert curve behind the bands."""
from __future__ import annotations

import numpy as np
import pytest

from archive import colour
from explorer import timeline_points
from workers.layouts.export import rgb565

pytestmark = pytest.mark.django_db


@pytest.fixture
def painted(archive, aic_dir, settings, tmp_path_factory):
    """The palette stage over the archive (inside the test's transaction)."""
    from workers import palettes as stage

    settings.MEDIA_ROOT = tmp_path_factory.getbasetemp() / "media"
    ids = [a.pk for a in archive["artworks"]]
    assert stage.process(ids, {}).done == ids
    return archive


def decode(response):
    n = int(response["X-Timeline-Count"])
    body = response.content
    assert len(body) == 10 * n
    return (np.frombuffer(body, "<u4", n, 0), np.frombuffer(body, "<i2", n, 4 * n),
            np.frombuffer(body, "<u2", n, 6 * n), np.frombuffer(body, "<u2", n, 8 * n))


def test_points_payload_holds_every_dated_work_with_its_year_and_colour(client, painted):
    from archive.models import Artwork, ArtworkPalette

    dated = Artwork.objects.exclude(status="duplicate").filter(year_start__isnull=False)
    r = client.get("/api/v1/timeline/points/")
    assert r.status_code == 200 and r["Content-Type"] == "application/octet-stream"
    ids, years, bands, colours = decode(r)
    assert sorted(ids.tolist()) == sorted(dated.values_list("id", flat=True))
    expected_years = dict(dated.values_list("id", "year_start"))
    assert all(expected_years[i] == y for i, y in zip(ids.tolist(), years.tolist()))
    assert list(zip(years.tolist(), bands.tolist())) == sorted(zip(years.tolist(), bands.tolist()))
    palettes = dict(ArtworkPalette.objects.values_list("artwork_id", "colours"))
    for i, c in zip(ids.tolist(), colours.tolist()):
        want = rgb565(colour.lab_to_rgb(np.array([palettes[i][0]["lab"]])))[0] if i in palettes else 0
        assert c == want
    assert r["X-Timeline-Years"] == f"{min(expected_years.values())}-{max(expected_years.values())}"
    # Within a filter: its works only, each with the same year, band and colour as without it.
    whole = {i: (y, b, c) for i, y, b, c in zip(*(a.tolist() for a in (ids, years, bands, colours)))}
    some = decode(client.get("/api/v1/timeline/points/", {"classification": "painting"}))
    assert sorted(some[0].tolist()) == sorted(dated.filter(classification__iexact="painting").values_list("id", flat=True))
    assert all(whole[i] == (y, b, c) for i, y, b, c in zip(*(a.tolist() for a in some)))


def test_viewport_returns_the_works_in_the_window_with_the_filters(client, painted):
    ids, years, bands, _ = decode(client.get("/api/v1/timeline/points/"))
    lo, hi = int(years.min()), int(years.max())
    mid = int(np.median(years))
    window = {"year_from": lo, "year_to": mid, "band_from": 0, "band_to": 40000}
    inside = {int(i) for i, y, b in zip(ids, years, bands) if lo <= y <= mid and b <= 40000}
    data = client.get("/api/v1/timeline/viewport/", {**window, "limit": 200}).json()
    assert data["count"] == len(inside) and {r["artwork"]["id"] for r in data["results"]} == inside
    assert all(lo <= r["year"] <= mid and r["band"] <= 40000 for r in data["results"])
    assert any(r["artwork"]["thumbnail_url"] for r in data["results"])
    # Bounded: at most ``limit``, spread over the window, the count still the window's.
    two = client.get("/api/v1/timeline/viewport/", {**window, "limit": 2}).json()
    assert two["count"] == len(inside) and len(two["results"]) == min(2, len(inside))
    # The filters apply (and their own years give way to the window's).
    from archive.models import Artwork

    painting = set(Artwork.objects.filter(classification__iexact="painting").values_list("id", flat=True))
    only = client.get("/api/v1/timeline/viewport/", {**window, "limit": 200, "classification": "painting"}).json()
    assert {r["artwork"]["id"] for r in only["results"]} == inside & painting


def test_viewport_and_points_refuse_years_outside_the_data(client, painted):
    _, years, _, _ = decode(client.get("/api/v1/timeline/points/"))
    lo, hi = int(years.min()), int(years.max())
    r = client.get("/api/v1/timeline/viewport/", {"year_from": lo - 1, "year_to": hi})
    assert r.status_code == 400 and "outside the data" in r.json()["detail"] and f"from {lo} to {hi}" in r.json()["detail"]
    r = client.get("/api/v1/timeline/points/", {"year_to": hi + 1})
    assert r.status_code == 400 and "outside the data" in r.json()["detail"]
    assert client.get("/api/v1/timeline/viewport/", {"year_to": hi}).status_code == 400  # year_from missing
    assert client.get("/api/v1/timeline/viewport/", {"year_from": hi, "year_to": lo}).status_code == 400
    assert client.get("/api/v1/timeline/viewport/", {"year_from": lo, "year_to": hi, "limit": 201}).status_code == 400
    assert client.get("/api/v1/timeline/viewport/", {"year_from": lo, "year_to": hi, "band_from": 9, "band_to": 3}).status_code == 400
    schema = client.get("/api/v1/schema/", {"format": "json"}, HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert {"/api/v1/timeline/points/", "/api/v1/timeline/viewport/"} <= set(schema["paths"])


def test_hilbert_curve_visits_every_cell_once_in_steps_to_a_neighbour():
    side = 64
    qx, qy = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    d = timeline_points.hilbert_index(qx.ravel(), qy.ravel(), side)
    assert sorted(d.tolist()) == list(range(side * side))
    order = np.argsort(d)
    steps = np.abs(np.diff(qx.ravel()[order])) + np.abs(np.diff(qy.ravel()[order]))
    assert (steps == 1).all()


def test_bands_follow_the_default_map(client, painted):
    """With a ready map, a work's band is its place along the Hilbert curve through the map."""
    from archive.models import Layout, LayoutPoint

    artworks = [a for a in painted["artworks"] if a.year_start is not None and a.status != "duplicate"]
    layout = Layout.objects.create(name="m", slug="timeline-m", method="umap", state="ready", export_version=1, is_default=True)
    rng = np.random.default_rng(1)
    xy = rng.uniform(-5, 5, (len(artworks), 2))
    LayoutPoint.objects.bulk_create(LayoutPoint(layout=layout, artwork=a, x=x, y=y) for a, (x, y) in zip(artworks, xy))
    r = client.get("/api/v1/timeline/points/")
    assert r["X-Timeline-Band"] == "map:timeline-m"
    ids, _, bands, _ = decode(r)
    x0, y0 = xy.min(axis=0)
    span = (xy.max(axis=0) - xy.min(axis=0)).max()
    q = np.clip(((xy - [x0, y0]) / span * 256).astype(int), 0, 255)
    want = dict(zip((a.pk for a in artworks), timeline_points.hilbert_index(q[:, 0], q[:, 1]).tolist()))
    assert {int(i): int(b) for i, b in zip(ids, bands) if int(i) in want} == want
