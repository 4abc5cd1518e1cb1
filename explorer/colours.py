"""Search by colour: one to three colours, each with how much of the image it should cover,
ranked by the cosine of palette signatures (:mod:`archive.colour`) through the palette method's
HNSW index, combinable with every search filter (:class:`explorer.search.Filters`).

Filters on years, classification and institution (the common ones) are checked on the palette
rows themselves, which carry copies of those artwork columns (kept by triggers, see
:class:`archive.models.ArtworkPalette`): a set the planner estimates small for the index it
would walk (WALK_FACTOR) is ranked exactly, read through the GiST index on the years or a b-tree
on (method, classification/institution, year_start); a larger one through an HNSW index with an iterative scan that checks the filter on
the row it reads anyway (no look-up per candidate): the partial index of the bucket holding the
filter's set when there is one (its classification, or the one or two periods its years fall in:
:mod:`archive.palette_indexes`), so that a filter keeping a few percent of the archive keeps a
large share of the bucket's entries; else the method's own index. Other filters (creator, label)
follow search by meaning (:func:`explorer.similar.nearest_in`): a small filtered set is ranked
exactly, a broad one through the index with an iterative scan that checks the filter on each
candidate by a look-up (and, should that scan stop short, ranked exactly).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from django.db import connection

from archive import colour, filter_indexes, palette_indexes, vectors
from archive.models import Artwork, ArtworkPalette

from .models_state import display_artworks
from .search import BadSearch, Filters, base_queryset
from .similar import BROAD_FACTOR, EF_SEARCH, MAX_SCAN_TUPLES, estimated_count, filter_condition

MAX_COLOURS = 3
MAX_RESULTS = 1000  # offset + limit: the ranking is a nearest-neighbour list, not a count
# A filtered set of at most this many artworks is ranked exactly; a larger one through the index
# (iterative scan). Lower than search by meaning's EXACT_LIMIT: exact ranking costs ~10 ms per
# 1,000 palettes on a busy 2-core machine, while the iterative scan of the small 216-d index
# finds 48 matches of a filter keeping 5 % of the archive in ~20 ms (bench/discovery.py).
EXACT_LIMIT = 2_000
# A filter estimated above this many artworks tries the index first without listing the set (the
# same bound as search by meaning: the planner's estimates of year ranges can be far off, and an
# iterative scan of a small set far from the query visits MAX_SCAN_TUPLES entries for nothing).
INDEX_FIRST_ABOVE = BROAD_FACTOR * 15_000
# Filters checked on the palette rows: a set is ranked through an HNSW index (the bucket's that
# holds it, else the method's) when its estimated size squared is at least WALK_FACTOR x the rows
# of that index, else exactly. bench/discovery.py at 300k: exact ranking costs ~3.7 us of backend
# CPU per row, the iterative scan about 2.5 ms / (the set's share of the index's rows) for a page
# of 48 (years 1600-1620 in its century's index, a fifth of it: 7.8 ms; in the method's, 3.4 %:
# 80 ms); they meet where set^2 = 2.5 / 0.0037 x rows, about 700 x rows (a 48,000-row index:
# 5,800 rows; the method's at 1M: 26,000).
WALK_FACTOR = 700
# The iterative scan with the filter on the row may visit this many index entries before it gives
# up (the set is then ranked exactly): a filter keeping 1 % of the archive needs ~100 x limit.
INLINE_MAX_SCAN_TUPLES = 40_000

# Seconds a search trusts what it learnt of the filter indexes (which exist, their rows): another
# process's new index is used that much later (as search by meaning's INDEX_KIND_SECONDS).
INDEX_SECONDS = 10.0

PALETTES = colour.PALETTES
PATHS: Counter = Counter()  # how searches on the rows were answered (bench/discovery.py, the tests)


@dataclass(frozen=True)
class ColourQuery:
    hexes: tuple[str, ...]
    amounts: tuple[float, ...]  # shares, summing to 1

    @property
    def vector(self) -> np.ndarray:
        labs = colour.rgb_to_lab(np.array([colour.parse_hex(h) for h in self.hexes], dtype=np.uint8))
        return colour.signature(labs, self.amounts)

    def as_params(self) -> dict:
        return {"colours": ",".join(h.lstrip("#") for h in self.hexes),
                "amounts": ",".join(str(round(a * 100)) for a in self.amounts)}


def _split(value) -> list[str]:
    if value is None:
        return []
    values = value if isinstance(value, (list, tuple)) else [value]
    return [part.strip() for v in values for part in str(v).split(",") if part.strip()]


def parse(colours, amounts=None) -> ColourQuery:
    """A query from ``colours`` ('#c03020,1f3a80' or a list) and optional ``amounts`` (percent
    each, any positive numbers: they are normalised; default equal). BadSearch says what is wrong."""
    hexes = _split(colours)
    if not hexes:
        raise BadSearch("pick at least one colour (colours=#rrggbb)")
    if len(hexes) > MAX_COLOURS:
        raise BadSearch(f"at most {MAX_COLOURS} colours, not {len(hexes)}")
    try:
        parsed = [colour.to_hex(colour.parse_hex(h)) for h in hexes]
    except ValueError as exc:
        raise BadSearch(str(exc)) from None
    raw = _split(amounts)
    if not raw:
        weights = [1.0] * len(parsed)
    else:
        if len(raw) != len(parsed):
            raise BadSearch(f"give one amount per colour: {len(parsed)} colours, {len(raw)} amounts")
        try:
            weights = [float(a) for a in raw]
        except ValueError:
            raise BadSearch("amounts are numbers (percent of the image), e.g. amounts=60,40") from None
        if any(not np.isfinite(w) or w <= 0 or w > 100 for w in weights):
            raise BadSearch("each amount is a percentage above 0 and at most 100")
    total = sum(weights)
    return ColourQuery(tuple(parsed), tuple(w / total for w in weights))


def _index_hits(query: np.ndarray, limit: int, where: str = "", params=(), *,
                max_scan_tuples: int = MAX_SCAN_TUPLES) -> list[tuple[int, float]]:
    """Through the method's HNSW index; with ``where`` an iterative scan (relaxed order, re-sorted)
    that goes on until ``limit`` candidates pass or ``max_scan_tuples`` index entries were visited."""
    rows = vectors.nearest(PALETTES, colour.METHOD, query, dim=colour.SIGNATURE_DIM, limit=limit,
                           ef_search=min(1000, max(EF_SEARCH, 2 * limit if where else limit)), columns=("artwork_id",),
                           where=where, params=params, iterative="relaxed_order" if where else None,
                           max_scan_tuples=max_scan_tuples if where else None)
    return [(int(r[2]), 1.0 - float(r[1])) for r in rows]


YEARS_RANGE = palette_indexes.YEARS_RANGE


def row_condition(filters: Filters) -> tuple[str, list] | None:
    """SQL over the palette row's own columns equal to ``filters`` (as :meth:`Filters.apply` on
    :func:`explorer.search.base_queryset`), or None when a filter needs the artwork (creator, label)."""
    return _conditions(filters, exact=True)


def estimate_condition(filters: Filters) -> tuple[str, list] | None:
    """:func:`row_condition` without its exact year comparisons, for the planner's estimate of the
    set: they restate the range's overlap, and taken as independent of it they would cut the
    estimate about four times (years 1600-1620 of 300k: 2,500 estimated for 10,000 rows)."""
    return _conditions(filters, exact=False)


def _conditions(filters: Filters, *, exact: bool) -> tuple[str, list] | None:
    if filters.creator or filters.label:
        return None
    parts, params = ["NOT duplicate"], []
    if filters.year_from is not None or filters.year_to is not None:
        # The years as a range, the GiST index's expression (archive migration 0026): a window of
        # years read from the index from both ends; the exact conditions follow.
        parts.append(f"{YEARS_RANGE} && int4range(%s::int, %s::int, '[]')")
        params += [filters.year_from, filters.year_to]
    if exact and filters.year_from is not None:
        parts.append("(year_end >= %s OR (year_end IS NULL AND year_start >= %s))")
        params += [filters.year_from, filters.year_from]
    if exact and filters.year_to is not None:
        # + 0: not an index condition. The range above bounds the read from both ends (with the
        # classification or institution: the GiST index on both, archive migration 0031); a b-tree
        # on (method, classification or institution, year_start) would list every earlier year for
        # a bitmap AND (years 1500-1501 at 1M: 164,515 entries, 19 of the exact ranking's 28 ms).
        parts.append("year_start + 0 <= %s")
        params.append(filters.year_to)
    if filters.institution:
        parts.append("institution = %s")
        params.append(filters.institution)
    if filters.classification:
        parts.append("classification = upper(%s)")
        params.append(filters.classification)
    return " AND ".join(parts), params


def _rows_sql(where: str) -> str:
    return f"FROM archive_artworkpalette WHERE method = %s AND {where}"


def estimated_rows(where: str, params: list) -> float:
    """PostgreSQL's estimate of the palette rows passing ``where`` (its plan, not a count)."""
    import json

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 {_rows_sql(where)}", [colour.METHOD, *params])
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return float(plan[0]["Plan"]["Plan Rows"])


def _exact_where(query: np.ndarray, where: str, params: list, limit: int) -> list[tuple[int, float]]:
    """Every palette passing ``where`` ranked exactly (MATERIALIZED: the distances are computed
    over the rows the b-tree finds; the HNSW index, which could miss some, is not used)."""
    cast = PALETTES.cast(colour.SIGNATURE_DIM)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH scored AS MATERIALIZED (SELECT artwork_id, {cast} <=> %s::vector({colour.SIGNATURE_DIM}) AS distance"
            f" {_rows_sql(where)}) SELECT artwork_id, distance FROM scored ORDER BY distance, artwork_id LIMIT %s",
            [vectors.to_literal(query), colour.METHOD, *params, int(limit)],
        )
        return [(int(a), 1.0 - float(d)) for a, d in cursor.fetchall()]


def _ranking_on_rows(query: np.ndarray, filters: Filters, where: str, params: list, limit: int) -> list[tuple[int, float]]:
    """Through the partial indexes of the buckets covering the filter (:mod:`archive.palette_indexes`:
    its classification, or the one or two periods holding its years: one iterative scan each,
    merged), else through the method's index, when the set is large enough for that (WALK_FACTOR);
    else, or when a scan comes back short of ``limit``, the set ranked exactly."""
    estimate = estimated_rows(*estimate_condition(filters))
    buckets = palette_indexes.covering(
        year_from=filters.year_from, year_to=filters.year_to, classification=filters.classification,
        institution=filters.institution, max_age=INDEX_SECONDS)
    if buckets:
        if estimate * estimate >= WALK_FACTOR * sum(rows for _, rows in buckets):
            hits = _bucket_hits(query, limit, where, params, [b for b, _ in buckets])
            if hits is not None:
                PATHS[f"{buckets[0][0].kind} index" + (f" x {len(buckets)}" if len(buckets) > 1 else "")] += 1
                return hits
    elif estimate * estimate >= WALK_FACTOR * _method_rows():
        hits = row_index_hits(query, limit, where, params)
        if len(hits) >= limit:
            PATHS["method index"] += 1
            return hits
    PATHS["exact"] += 1
    return _exact_where(query, where, params, limit)


def _method_rows() -> int:
    """The palettes the method's index holds (its reltuples: the planner's figure)."""
    return filter_indexes.indexed_rows(vectors.index_name(PALETTES, colour.METHOD), max_age=INDEX_SECONDS)


def row_index_hits(query: np.ndarray, limit: int, where: str, params: list, bucket=None) -> list[tuple[int, float]]:
    """The iterative scan with the row filter ``where`` through the method's HNSW index, or with
    ``bucket`` (:class:`archive.palette_indexes.Bucket`) through the bucket's (its predicate stated
    literally, for the planner to take it). Read in the index's order (``through_index``): else,
    for a set of some thousands, the planner may read it through the GiST index on the years, or
    all rows, and sort them (years 1600-1620 of 300k: 36 ms of backend CPU that way)."""
    condition = where
    if bucket is not None:  # a literal value: a % in it is no placeholder
        condition = bucket.condition().replace("%", "%%") + " AND " + where
    rows = vectors.nearest(PALETTES, colour.METHOD, query, dim=colour.SIGNATURE_DIM, limit=limit,
                           ef_search=min(1000, max(EF_SEARCH, 2 * limit)), columns=("artwork_id",), where=condition,
                           params=params, iterative="relaxed_order", max_scan_tuples=INLINE_MAX_SCAN_TUPLES,
                           through_index=True)
    return [(int(r[2]), 1.0 - float(r[1])) for r in rows]


def _bucket_hits(query: np.ndarray, limit: int, where: str, params: list, buckets) -> list[tuple[int, float]] | None:
    """The best ``limit`` of the union of the buckets' scans (each states its index's predicate
    literally, with the whole filter checked on the row), or None when one came back short (its
    part of the set may be small, or the scan stopped at INLINE_MAX_SCAN_TUPLES: not told apart)."""
    best: dict[int, float] = {}
    for bucket in buckets:
        hits = row_index_hits(query, limit, where, params, bucket)
        if len(hits) < limit:
            return None
        for artwork_id, similarity in hits:  # a work dated across two periods is in both
            best[artwork_id] = max(similarity, best.get(artwork_id, similarity))
    return sorted(best.items(), key=lambda hit: (-hit[1], hit[0]))[:limit]


def _exact(query: np.ndarray, ids: list[int], limit: int) -> list[tuple[int, float]]:
    rows = vectors.nearest_among(PALETTES, colour.METHOD, query, ids, dim=colour.SIGNATURE_DIM, limit=limit,
                                 key="artwork_id")
    return [(int(a), 1.0 - float(d)) for a, d in rows]


def ranking(query: np.ndarray, filters: Filters | None = None, *, limit: int = 24, include_drafts: bool = False) -> list[tuple[int, float]]:
    """``(artwork_id, similarity)`` of the ``limit`` artworks whose palettes are nearest ``query``
    (a signature) among those passing ``filters``, best first: always ``limit``, or all there are."""
    limit = min(int(limit), MAX_RESULTS)
    if not filters:
        hits = _index_hits(query, limit)
        # Short of ``limit``: a small archive whose HNSW graph did not reach every row (entries of
        # rows deleted since, not yet vacuumed, take places in it too): ranked exactly instead.
        return hits if len(hits) >= limit else _exact_where(query, "true", [], limit)
    on_rows = row_condition(filters)
    if on_rows is not None:
        return _ranking_on_rows(query, filters, *on_rows, limit)
    return ranking_by_lookup(query, filters, limit=limit, include_drafts=include_drafts)


def ranking_by_lookup(query: np.ndarray, filters: Filters, *, limit: int, include_drafts: bool = False) -> list[tuple[int, float]]:
    """The filters checked on the artworks (any filter; creator and label need it): a small set
    listed and ranked exactly, a large one by an iterative scan with a look-up per candidate."""
    queryset = filters.apply(base_queryset(), include_drafts=include_drafts, model=_model())
    hits = None
    if estimated_count(queryset) > INDEX_FIRST_ABOVE:
        hits = _index_hits(query, limit, *filter_condition(queryset))
        if len(hits) >= limit:
            return hits
    ids = list(queryset.order_by().values_list("id", flat=True)[: EXACT_LIMIT + 1])
    if len(ids) <= EXACT_LIMIT:
        return _exact(query, ids, limit)
    if hits is None:
        hits = _index_hits(query, limit, *filter_condition(queryset))
        if len(hits) >= limit:
            return hits
    return _exact(query, list(queryset.order_by().values_list("id", flat=True)), limit)


def _model():
    from .models_state import active_model

    return active_model()


def search(query: ColourQuery, filters: Filters | None = None, *, offset: int = 0, limit: int = 24,
           include_drafts: bool = False) -> list[tuple[Artwork, float]]:
    """Artworks for a colour query, best first, with their similarity (0-1)."""
    if offset < 0 or offset + limit > MAX_RESULTS:
        raise BadSearch(f"colour search shows the best {MAX_RESULTS} matches: offset + limit must be at most {MAX_RESULTS}")
    hits = ranking(query.vector, filters, limit=offset + limit, include_drafts=include_drafts)[offset:]
    found = display_artworks(a for a, _ in hits)
    return [(found[a], s) for a, s in hits if a in found]


def palette_of(artwork: Artwork) -> list[dict]:
    """The artwork's stored palette (largest share first), or [] before the palette stage ran."""
    row = ArtworkPalette.objects.filter(artwork=artwork, method=colour.METHOD).values_list("colours", flat=True).first()
    return list(row or [])


def query_for_palette(colours: list[dict], top: int = MAX_COLOURS) -> ColourQuery | None:
    """"More in these colours": the palette's largest colours with their shares."""
    chosen = colours[:top]
    if not chosen:
        return None
    total = sum(c["share"] for c in chosen) or 1.0
    return ColourQuery(tuple(c["hex"] for c in chosen), tuple(c["share"] / total for c in chosen))
