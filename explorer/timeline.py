"""The timeline: artworks along their dates (the parsed ``year_start``), in bins over a range of
years, with the search filters; each bin has its count and a few of its works, ordered by the hue
of their dominant colour so that works that look alike (in colour) sit together within a period."""
from __future__ import annotations

import math
from dataclasses import dataclass

from django.db.models import Count, F, IntegerField, Max, Min
from django.db.models.functions import Floor

from archive import colour
from archive.models import ArtworkPalette

from .models_state import display_artworks
from .search import BadSearch, Filters, base_queryset

MAX_BINS = 200
MAX_PER_BIN = 24


@dataclass
class Bin:
    start: int
    end: int
    count: int
    artworks: list


@dataclass
class Timeline:
    year_from: int
    year_to: int
    data_from: int | None
    data_to: int | None
    width: int
    bins: list[Bin]
    total: int


def data_range(qs=None) -> tuple[int | None, int | None]:
    """The earliest and latest year of the dated artworks (read through the artwork_years index)."""
    agg = (qs if qs is not None else base_queryset()).aggregate(lo=Min("year_start"), hi=Max("year_start"))
    return agg["lo"], agg["hi"]


def build(filters: Filters, *, bins: int = 40, per_bin: int = 6, include_drafts: bool = False, model=None) -> Timeline:
    """The timeline of the artworks passing ``filters`` over their year range (default: the
    data's). Years outside the data are a BadSearch with the data's range."""
    if not 1 <= bins <= MAX_BINS:
        raise BadSearch(f"bins must be from 1 to {MAX_BINS}")
    if not 0 <= per_bin <= MAX_PER_BIN:
        raise BadSearch(f"per_bin must be from 0 to {MAX_PER_BIN}")
    lo, hi = data_range()
    if lo is None:
        return Timeline(filters.year_from or 0, filters.year_to or 0, None, None, 1, [], 0)
    year_from = lo if filters.year_from is None else filters.year_from
    year_to = hi if filters.year_to is None else filters.year_to
    for name, year in (("year_from", filters.year_from), ("year_to", filters.year_to)):
        if year is not None and not lo <= year <= hi:
            raise BadSearch(f"{name} {year} is outside the data: the archive's dated works are from {lo} to {hi}")
    if year_from > year_to:
        raise BadSearch("year_from is after year_to")
    width = max(1, math.ceil((year_to - year_from + 1) / bins))
    dated = filters.apply(base_queryset(), model=model, include_drafts=include_drafts).filter(
        year_start__gte=year_from, year_start__lte=year_to)
    counts = dict(
        dated.order_by().annotate(bin=Floor((F("year_start") - year_from) / width, output_field=IntegerField()))
        .values_list("bin").annotate(n=Count("id")).values_list("bin", "n")
    )
    out = []
    for index in range(math.ceil((year_to - year_from + 1) / width)):
        start = year_from + index * width
        end = min(year_to, start + width - 1)
        count = int(counts.get(index, 0))
        ids = []
        if count and per_bin:
            ids = list(dated.filter(year_start__gte=start, year_start__lte=end).exclude(sha256="")
                       .order_by("year_start", "id").values_list("id", flat=True)[:per_bin])
        out.append(Bin(start, end, count, _by_hue(ids)))
    return Timeline(year_from, year_to, lo, hi, width, out, sum(b.count for b in out))


def _hue(colours: list[dict]) -> float:
    if not colours:
        return 10.0  # no palette yet: after every hue
    L, a, b = colours[0]["lab"]
    if math.hypot(a, b) < 8:  # greys and near-greys first, dark to light
        return -1.0 + L / 1000
    return math.atan2(b, a) % (2 * math.pi)


def _by_hue(ids: list[int]) -> list:
    """The artworks, ordered by the hue of their dominant colour (CIELAB hue angle)."""
    found = display_artworks(ids)
    palettes = dict(ArtworkPalette.objects.filter(artwork_id__in=ids, method=colour.METHOD).values_list("artwork_id", "colours"))
    return sorted((found[i] for i in ids if i in found), key=lambda a: (_hue(palettes.get(a.pk, [])), a.pk))
