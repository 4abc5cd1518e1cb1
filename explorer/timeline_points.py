"""The zoomable timeline: every dated artwork as a point at (year, band), sent as one compact
binary payload, and a bounded viewport look-up for the thumbnails of the works in view.

The **band** (the vertical position, 0-65535) puts similar works near each other within a
period: for an artwork on the default ready map it is the artwork's place along a Hilbert curve
through the map (a 256 x 256 grid over the map's bounds: works close on the map, which places them
by visual similarity, are close on the curve, hence in the band); for one not on a map it is the
CIELAB hue of its dominant colour (greys at the bottom, dark to light). The band of an artwork
depends on it alone (the map's bounds, its own point or palette), never on the filters, so the
payload and the viewport look-up agree.

Payload (:func:`points_payload`): for n points, column after column, little-endian: ids uint32
(4n bytes), years int16 (2n), bands uint16 (2n), colours uint16 (2n: the dominant colour as
RGB565, 0 without a palette, as the map's export writes it): 10 bytes a point, 10 MB at 1M.
Rows are sorted by year, then band.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from django.core.cache import cache
from django.db import connection

from archive import colour
from archive.models import Layout
from workers.layouts.export import rgb565

from .models_state import display_artworks
from .search import BadSearch, Filters, base_queryset
from .timeline import data_range

BAND_LEVELS = 65536
HILBERT_SIDE = 256  # cells a side: 256 x 256 = 65,536 positions along the curve
GREY_BANDS = 4096  # greys take the bottom of the hue scale, dark to light
MAX_VIEWPORT_LIMIT = 200
# A viewport's year range may hold at most this many works passing the filters (the look-up reads
# them all to place them in bands); the page asks for thumbnails only once a few hundred are in view.
MAX_VIEWPORT_ROWS = 50_000
FETCH = 50_000  # rows per fetch from the server-side cursor


@dataclass
class Points:
    ids: np.ndarray  # uint32
    years: np.ndarray  # int16
    bands: np.ndarray  # uint16
    colours: np.ndarray  # uint16 RGB565, 0 none
    layout: str | None  # the map the bands come from

    def __len__(self) -> int:
        return len(self.ids)

    def payload(self) -> bytes:
        return b"".join(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
                        for a in (self.ids, self.years, self.bands, self.colours))


def default_layout() -> Layout | None:
    """The map whose positions give the bands: the default ready artwork map (else the first)."""
    return (Layout.objects.filter(state=Layout.State.READY, export_version__gt=0, subset={})
            .order_by("-is_default", "pk").first())


def _layout_bounds(layout: Layout) -> tuple[float, float, float] | None:
    """(x0, y0, span) of the map's points (cached per export version)."""
    key = f"timeline-bounds:{layout.pk}:{layout.export_version}"
    found = cache.get(key)
    if found is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT min(x), min(y), max(x), max(y) FROM archive_layoutpoint"
                           " WHERE layout_id = %s AND face_id IS NULL", [layout.pk])
            x0, y0, x1, y1 = cursor.fetchone()
        found = (x0, y0, max(x1 - x0, y1 - y0, 1e-9)) if x0 is not None else ()
        cache.set(key, found, 3600)
    return tuple(found) or None


def hilbert_index(qx: np.ndarray, qy: np.ndarray, side: int = HILBERT_SIDE) -> np.ndarray:
    """Position along the Hilbert curve of cells (qx, qy) in a ``side`` x ``side`` grid (a power
    of two): neighbouring positions are neighbouring cells."""
    x = qx.astype(np.int64).copy()
    y = qy.astype(np.int64).copy()
    d = np.zeros(len(x), dtype=np.int64)
    s = side // 2
    while s > 0:
        rx = ((x & s) > 0).astype(np.int64)
        ry = ((y & s) > 0).astype(np.int64)
        d += s * s * ((3 * rx) ^ ry)
        # rotate the quadrant
        flip = (ry == 0) & (rx == 1)
        x = np.where(flip, side - 1 - x, x)
        y = np.where(flip, side - 1 - y, y)
        swap = ry == 0
        x, y = np.where(swap, y, x), np.where(swap, x, y)
        s //= 2
    return d


def hue_bands(L: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bands from a CIELAB colour: greys (chroma under 8) at the bottom by lightness, the others
    by hue angle above them."""
    hue = np.mod(np.arctan2(b, a), 2 * math.pi) / (2 * math.pi)
    coloured = GREY_BANDS + hue * (BAND_LEVELS - 1 - GREY_BANDS)
    grey = np.clip(L, 0, 100) / 100 * (GREY_BANDS - 1)
    return np.where(np.hypot(a, b) < 8, grey, coloured)


def _query(filters: Filters, year_from: int, year_to: int, *, include_drafts: bool, model, layout: Layout | None):
    dated = filters.apply(base_queryset(), model=model, include_drafts=include_drafts).filter(
        year_start__gte=year_from, year_start__lte=year_to)
    sql, params = dated.order_by().values("id", "year_start").query.sql_with_params()
    point = ("LEFT JOIN archive_layoutpoint lp ON lp.layout_id = %s AND lp.artwork_id = f.id AND lp.face_id IS NULL"
             if layout else "")
    xy = "COALESCE(lp.x, 'NaN'), COALESCE(lp.y, 'NaN')" if layout else "'NaN'::float, 'NaN'::float"
    return (
        # NaN for a missing palette or map point: every column a float, read into numpy at once.
        f"SELECT f.id, f.year_start, COALESCE((p.colours->0->'lab'->>0)::float, 'NaN'),"
        f" COALESCE((p.colours->0->'lab'->>1)::float, 'NaN'), COALESCE((p.colours->0->'lab'->>2)::float, 'NaN'),"
        f" {xy}"
        f" FROM ({sql}) f LEFT JOIN archive_artworkpalette p ON p.artwork_id = f.id AND p.method = %s {point}",
        [*params, colour.METHOD, *([layout.pk] if layout else [])],
    )


def _columns(rows: list[tuple], bounds) -> tuple[np.ndarray, ...]:
    n = len(rows)
    table = np.array(rows, dtype=np.float64).reshape(n, 7)
    ids, years, lab, xy = table[:, 0].astype(np.int64), table[:, 1].astype(np.int64), table[:, 2:5], table[:, 5:7]
    has_palette = ~np.isnan(lab[:, 0])
    bands = np.full(n, BAND_LEVELS // 2, dtype=np.float64)
    bands[has_palette] = hue_bands(lab[has_palette, 0], lab[has_palette, 1], lab[has_palette, 2])
    on_map = ~np.isnan(xy[:, 0])
    if bounds is not None and on_map.any():
        x0, y0, span = bounds
        q = np.clip(((xy[on_map] - [x0, y0]) / span * HILBERT_SIDE).astype(np.int64), 0, HILBERT_SIDE - 1)
        bands[on_map] = hilbert_index(q[:, 0], q[:, 1])
    colours = np.zeros(n, dtype=np.uint16)
    if has_palette.any():
        colours[has_palette] = rgb565(colour.lab_to_rgb(lab[has_palette]))
    return ids, years, np.clip(np.rint(bands), 0, BAND_LEVELS - 1).astype(np.uint16), colours


def year_range(filters: Filters, year_from: int | None = None, year_to: int | None = None) -> tuple[int, int, int, int] | None:
    """(year_from, year_to, data_from, data_to): the range asked (default: the filters', else the
    data's); None when no artwork is dated. A year outside the data is a BadSearch with its range."""
    lo, hi = data_range()
    if lo is None:
        return None
    asked = {"year_from": filters.year_from if year_from is None else year_from,
             "year_to": filters.year_to if year_to is None else year_to}
    for name, year in asked.items():
        if year is not None and not lo <= year <= hi:
            raise BadSearch(f"{name} {year} is outside the data: the archive's dated works are from {lo} to {hi}")
    start = lo if asked["year_from"] is None else asked["year_from"]
    end = hi if asked["year_to"] is None else asked["year_to"]
    if start > end:
        raise BadSearch("year_from is after year_to")
    return start, end, lo, hi


def points(filters: Filters, *, include_drafts: bool = False, model=None, year_from=None, year_to=None,
           max_rows: int | None = None) -> Points:
    """Every dated artwork passing ``filters`` (year_start within the range) as a point, sorted by
    year and band. ``max_rows``: a BadSearch when more works than that are in the range."""
    found = year_range(filters, year_from, year_to)
    empty = Points(*(np.zeros(0, dtype=t) for t in (np.uint32, np.int16, np.uint16, np.uint16)), None)
    if found is None:
        return empty
    start, end, _, _ = found
    layout = default_layout()
    bounds = _layout_bounds(layout) if layout else None
    if bounds is None:
        layout = None
    sql, params = _query(filters, start, end, include_drafts=include_drafts, model=model, layout=layout)
    parts = []
    total = 0
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH):
            total += len(rows)
            if max_rows is not None and total > max_rows:
                raise BadSearch(f"more than {max_rows:,} works between {start} and {end}: narrow the years")
            parts.append(_columns(rows, bounds))
    if not parts:
        return empty
    ids, years, bands, colours = (np.concatenate(c) for c in zip(*parts))
    order = np.lexsort((ids, bands, years))
    return Points(ids[order].astype(np.uint32), years[order].astype(np.int16), bands[order], colours[order],
                  layout.slug if layout else None)


def viewport(filters: Filters, year_from: int, year_to: int, band_from: int = 0, band_to: int = BAND_LEVELS - 1, *,
             limit: int = 100, include_drafts: bool = False, model=None) -> tuple[list[tuple], int]:
    """The works in a window of the timeline: year_start from ``year_from`` to ``year_to`` (both
    within the data, else a BadSearch with its range), band from ``band_from`` to ``band_to``, with
    the filters (their own years are replaced by the window's). At most ``limit`` of them, spread
    evenly over the window's (year, band) order: ``([(artwork, year, band, colour)], count in the window)``."""
    if not 1 <= limit <= MAX_VIEWPORT_LIMIT:
        raise BadSearch(f"limit must be from 1 to {MAX_VIEWPORT_LIMIT}")
    if not 0 <= band_from <= band_to <= BAND_LEVELS - 1:
        raise BadSearch(f"bands are 0-{BAND_LEVELS - 1}, band_from at most band_to")
    unyeared = Filters(**{**filters.__dict__, "year_from": None, "year_to": None})
    found = points(unyeared, include_drafts=include_drafts, model=model, year_from=year_from, year_to=year_to,
                   max_rows=MAX_VIEWPORT_ROWS)
    inside = np.flatnonzero((found.bands >= band_from) & (found.bands <= band_to))
    count = len(inside)
    if count > limit:
        inside = inside[np.linspace(0, count - 1, limit).round().astype(np.int64)]
    artworks = display_artworks(int(i) for i in found.ids[inside])
    out = [(artworks[int(found.ids[i])], int(found.years[i]), int(found.bands[i]), int(found.colours[i]))
           for i in inside if int(found.ids[i]) in artworks]
    return out, count
