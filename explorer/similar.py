"""Visually similar artworks: kNN over the active model's embeddings (archive.vectors.nearest)."""
from __future__ import annotations

import dataclasses
import json
from collections import Counter

import numpy as np
from django.conf import settings
from django.db import connection

from archive import filter_indexes, vectors
from archive.models import Artwork, EmbeddingModel

from .models_state import display_artworks

# HNSW candidate list size; bench/browse.py and bench/vectors.py measure the recall this buys (target >= 0.97 @ 10).
EF_SEARCH = getattr(settings, "EXPLORER_EF_SEARCH", 128)  # recall@10 0.986 at 1M (64: 0.956), docs/perf/vectors.md
# Nearest neighbours within a filtered set: at most this many artworks are ranked exactly (every
# distance computed); a larger set is searched through the HNSW index with an iterative scan that
# checks the filter on each candidate the index yields, until ``limit`` of them pass.
EXACT_LIMIT = getattr(settings, "EXPLORER_EXACT_KNN_LIMIT", 15_000)  # listed and ranked in ~50-80 ms at 1M (bench/browse.py)
# How far an iterative scan may go (index entries visited) before it gives up; the set is then
# ranked exactly, so every filter still gets its full ``limit`` (or all it has).
MAX_SCAN_TUPLES = getattr(settings, "EXPLORER_MAX_SCAN_TUPLES", 100_000)
BROAD_FACTOR = 5  # a filter estimated at more than this many times EXACT_LIMIT tries the index first
# Two-phase search (a model with the binary-quantized index, see archive.vectors.ensure_artwork_index):
# this many candidates by Hamming distance are re-ranked exactly (at least the number asked for).
RERANK_CANDIDATES = getattr(settings, "VECTOR_RERANK_CANDIDATES", 200)
# ... and within a filter (100 asked for) this many per result: twice was too few (recall@100 0.83
# on half the archive, bench/vectors.py), eight times keeps it with the halfvec index's.
RERANK_FACTOR_IN = 8
# Whether a model is searched in two phases (has the binary-quantized index) is looked up in the
# catalogue at most this often per process: a round trip less per search. A model switches when
# an embed job ends; this process sees it within this many seconds.
INDEX_KIND_SECONDS = 10.0
# Within an institution that has its own index and more filters: the walk over the institution's
# graph visits ~200 x works / matches candidates (~30 us each), ranking the matches exactly costs
# ~7 us each, so the walk pays when matches^2 >= WALK_FACTOR x works (200 x 30 / 7).
WALK_FACTOR = 860
# Which path each search within a filter took ("institution index", "exact", "index", ...), counted
# per process: bench/vectors.py prints it beside each filter's figures.
PATHS: Counter = Counter()


def two_phase(model: EmbeddingModel) -> bool:
    return vectors.index_exists(vectors.ARTWORK_EMBEDDINGS, model.pk, binary=True, max_age=INDEX_KIND_SECONDS)


def artwork_vector(artwork_id: int, model: EmbeddingModel) -> np.ndarray | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT vector::text FROM archive_artworkembedding WHERE artwork_id = %s AND model_id = %s",
            [artwork_id, model.pk],
        )
        row = cursor.fetchone()
    return vectors.from_value(row[0]) if row else None


def nearest_artworks(
    model: EmbeddingModel, query: np.ndarray, *, limit: int = 12, exclude: set[int] = frozenset(), ef_search: int | None = None
) -> list[tuple[int, float]]:
    """``(artwork_id, similarity)`` of the nearest artworks to ``query`` (cosine similarity):
    through the model's halfvec HNSW index, or in two phases when it has the binary-quantized one."""
    if two_phase(model):
        rows = vectors.nearest_two_phase(
            vectors.ARTWORK_EMBEDDINGS, model.pk, query, dim=model.dim, limit=limit + len(exclude),
            candidates=max(RERANK_CANDIDATES, 2 * (limit + len(exclude))), columns=("artwork_id",),
        )
    else:
        rows = vectors.nearest(
            vectors.ARTWORK_EMBEDDINGS,
            model.pk,
            query,
            dim=model.dim,
            limit=limit + len(exclude),
            ef_search=max(ef_search or EF_SEARCH, limit + len(exclude)),
            columns=("artwork_id",),
        )
    out = [(int(r[2]), 1.0 - float(r[1])) for r in rows if int(r[2]) not in exclude]
    return out[:limit]


def exact_nearest(model: EmbeddingModel, query: np.ndarray, artwork_ids: list[int], *, limit: int) -> list[tuple[int, float]]:
    """``(artwork_id, similarity)`` of the nearest among ``artwork_ids``, every distance computed
    (the ids are looked up through the (artwork, model) unique index; no HNSW, so nothing that
    passes the filter is missed)."""
    if not artwork_ids:
        return []
    space = vectors.ARTWORK_EMBEDDINGS
    expr = f"{space.cast(model.dim)} <=> %s::{space.kind}({int(model.dim)})"
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH scored AS MATERIALIZED (SELECT artwork_id, {expr} AS distance FROM archive_artworkembedding"
            " WHERE model_id = %s AND artwork_id = ANY(%s))"
            " SELECT artwork_id, distance FROM scored ORDER BY distance, artwork_id LIMIT %s",
            [vectors.to_literal(query), model.pk, list(artwork_ids), int(limit)],
        )
        return [(int(a), 1.0 - float(d)) for a, d in cursor.fetchall()]


def estimated_count(queryset) -> float:
    """PostgreSQL's estimate of how many rows ``queryset`` returns (its plan, not a count)."""
    if queryset.query.is_empty():  # .none(): Django runs no query (and EXPLAIN says nothing)
        return 0.0
    plan = json.loads(queryset.order_by().values("id").explain(format="json"))
    return float(plan[0]["Plan"]["Plan Rows"])


def filter_condition(queryset, column: str = "artwork_id") -> tuple[str, list]:
    """SQL that keeps rows whose ``column`` is in ``queryset`` (an Artwork queryset), checked row by
    row: ``OFFSET 0`` keeps PostgreSQL from turning it into a join, which would lose the index
    order the iterative scan relies on (each candidate costs one primary-key look-up)."""
    sql, params = queryset.order_by().values("id").query.sql_with_params()
    return f"EXISTS (SELECT 1 FROM ({sql}) AS f WHERE f.id = {column} OFFSET 0)", list(params)


def index_nearest_in(
    model: EmbeddingModel, query: np.ndarray, queryset, *, limit: int, condition: tuple[str, list] | None = None
) -> list[tuple[int, float]]:
    """The filtered set's nearest works through the HNSW index with an iterative scan
    (``hnsw.iterative_scan = relaxed_order``, re-sorted): the scan goes on until ``limit``
    candidates pass the filter or MAX_SCAN_TUPLES index entries were visited. With ``condition``
    (:func:`row_condition`: the filter is on columns the embedding row carries) each candidate is
    checked on the row itself, not by a look-up of the artwork (a fifth less server CPU for half
    of 300,000 works, docs/perf/vectors.md)."""
    where, params = condition if condition is not None else filter_condition(queryset)
    return _iterative_scan(model, query, where, params, limit=limit)


def _iterative_scan(model: EmbeddingModel, query: np.ndarray, where: str, params: list, *, limit: int) -> list[tuple[int, float]]:
    """``(artwork_id, similarity)`` of the ``limit`` nearest rows passing ``where`` through the
    model's kind of index (two-phase or halfvec), scanning on until ``limit`` pass or
    MAX_SCAN_TUPLES index entries were visited."""
    if two_phase(model):
        rows = vectors.nearest_two_phase(
            vectors.ARTWORK_EMBEDDINGS, model.pk, query, dim=model.dim, limit=limit,
            candidates=max(RERANK_CANDIDATES, RERANK_FACTOR_IN * limit), where=where, params=params, columns=("artwork_id",),
            iterative=True, max_scan_tuples=MAX_SCAN_TUPLES,
        )
    else:
        rows = vectors.nearest(
            vectors.ARTWORK_EMBEDDINGS, model.pk, query, dim=model.dim, limit=limit, where=where, params=params,
            ef_search=max(EF_SEARCH, 2 * limit),  # the first 2 x limit candidates, re-sorted (recall)
            iterative="relaxed_order", max_scan_tuples=MAX_SCAN_TUPLES, columns=("artwork_id",),
        )
    return [(int(r[2]), 1.0 - float(r[1])) for r in rows]


def institution_index_nearest(
    model: EmbeddingModel, query: np.ndarray, institution: str, *, limit: int, condition: tuple[str, list] | None = None
) -> list[tuple[int, float]]:
    """The nearest works of one institution through its own partial HNSW index
    (:mod:`archive.filter_indexes`; the query states the index's predicate literally, so the
    planner takes it). With ``condition`` (SQL and params: the other filters, from
    :func:`row_condition` or :func:`filter_condition`) the scan checks it on each candidate: it
    walks the institution's graph only, until ``limit`` pass or MAX_SCAN_TUPLES were visited."""
    # model_id is nearest()'s own; the rest goes in as SQL beside bound parameters: a % in the
    # institution's name is doubled so that it is not read as a placeholder.
    where = filter_indexes.institution_predicate(institution).replace("%", "%%")
    params: list = []
    if condition is not None:
        where, params = f"{where} AND {condition[0]}", list(condition[1])
    return _iterative_scan(model, query, where, params, limit=limit)


# Filters the embedding rows carry a copy of (migration 0028): checked on the row the index scan
# reads anyway, where any other filter costs a look-up of the artwork per candidate.
ROW_FILTERS = ("institution", "classification")


def row_condition(filters) -> tuple[str, list] | None:
    """SQL (and params) for ``filters`` on the embedding row's own columns, when it sets nothing
    but ROW_FILTERS (duplicates left out, as :func:`explorer.search.base_queryset` does); else None."""
    if filters is None or not filters:
        return None
    if any(getattr(filters, f.name) not in ("", None) for f in dataclasses.fields(filters) if f.name not in ROW_FILTERS):
        return None
    parts, params = [], []
    if filters.institution:
        parts.append("institution = %s")
        params.append(filters.institution)
    if filters.classification:
        parts.append("classification = upper(%s)")  # as the filter's iexact compares: upper() on the server
        params.append(filters.classification)
    return " AND ".join(parts + ["NOT duplicate"]), params


def _institution_index(model: EmbeddingModel, filters) -> tuple[str, int]:
    """(institution, works its index holds) when the institution of ``filters`` has its own
    index under ``model``; else ("", 0)."""
    institution = getattr(filters, "institution", "") if filters is not None else ""
    if not institution:
        return "", 0
    works = filter_indexes.indexed_works(model.pk, institution, binary=two_phase(model), max_age=INDEX_KIND_SECONDS)
    return (institution, works) if works else ("", 0)


def nearest_in(model: EmbeddingModel, query: np.ndarray, queryset, *, limit: int, filters=None) -> list[tuple[int, float]]:
    """The ``limit`` nearest artworks among those of ``queryset`` (a filtered Artwork queryset),
    nearest first: always ``limit`` of them, or all the set has.

    ``filters`` (an :class:`explorer.search.Filters`, the conditions ``queryset`` was made with):
    when its institution has its own partial index, the search walks that index; with more
    filters, checking them on each candidate, when the set is large enough for that walk to beat
    ranking it exactly (WALK_FACTOR). Should the walk find fewer than ``limit``, the paths below run.

    A set of at most EXACT_LIMIT artworks is ranked exactly; a larger one through the index
    (:func:`index_nearest_in`). The planner's estimate of the set's size picks the order: a filter
    estimated far above EXACT_LIMIT tries the index first (no need to list the set); otherwise the
    set's ids are listed (up to EXACT_LIMIT + 1) to decide. When the index scan stops at
    MAX_SCAN_TUPLES with fewer than ``limit`` (a large set far from the query), the whole set is
    ranked exactly."""
    more = filters is not None and bool(dataclasses.replace(filters, institution=""))
    on_row = row_condition(filters)
    institution, works = _institution_index(model, filters)
    estimate = None
    if institution:
        if more:
            estimate = estimated_count(queryset)
        if not more or estimate * estimate >= WALK_FACTOR * works:
            condition = None if not more else on_row or filter_condition(queryset)
            hits = institution_index_nearest(model, query, institution, limit=limit, condition=condition)
            if len(hits) >= limit:
                PATHS["institution index" + ("" if not more else " + filters on the row" if on_row else " + filters")] += 1
                return hits
    hits = None
    if (estimated_count(queryset) if estimate is None else estimate) > BROAD_FACTOR * EXACT_LIMIT:
        hits = index_nearest_in(model, query, queryset, limit=limit, condition=on_row)
        if len(hits) >= limit:
            PATHS["model index" + (", filters on the row" if on_row else "")] += 1
            return hits
    ids = list(queryset.order_by().values_list("id", flat=True)[: EXACT_LIMIT + 1])
    if len(ids) <= EXACT_LIMIT:
        PATHS["exact"] += 1
        return exact_nearest(model, query, ids, limit=limit)
    if hits is None:
        hits = index_nearest_in(model, query, queryset, limit=limit, condition=on_row)
        if len(hits) >= limit:
            PATHS["model index" + (", filters on the row" if on_row else "")] += 1
            return hits
    PATHS["exact (index scan fell short)"] += 1
    return exact_nearest(model, query, list(queryset.order_by().values_list("id", flat=True)), limit=limit)


def similar_to(artwork: Artwork, model: EmbeddingModel | None, *, limit: int = 12) -> list[tuple[Artwork, float]]:
    """Artworks that look like ``artwork`` under ``model`` (empty if it has no embedding)."""
    if model is None:
        return []
    query = artwork_vector(artwork.pk, model)
    if query is None:
        return []
    hits = nearest_artworks(model, query, limit=limit, exclude={artwork.pk})
    found = display_artworks(a for a, _ in hits)
    return [(found[a], s) for a, s in hits if a in found]
