"""Landmark distances on the stored kNN graph: the path's estimate of how far a work is from its goal.

The path between two artworks (:mod:`explorer.path`) searches the stored graph from both ends. The
straight-line distance between two embeddings says little once works are unrelated (every far
work is about as far), so that search expands a ball of works around each end. Distances *along
the graph* do: for COUNT landmark works ``l``, each work stores ``D_l(v)``, its shortest distance
to ``l`` along the graph (each step weighted by its chord, the path's unit), and
``max_l |D_l(v) - D_l(goal)|`` is a lower bound of the distance left from ``v`` to the goal (the
triangle inequality on the graph; the ALT heuristic, Goldberg & Harrelson 2005).

:func:`compute` reads the model's whole graph once (one COPY of its edges), chooses the landmarks
farthest first (each new one the work farthest from those chosen), runs one Dijkstra per landmark
(scipy, both directions of every edge, as the path reads the graph) and writes each row's
distances (COUNT float32, little-endian). Memory: the graph's edges and COUNT distances per work
(425 MB measured at 300k works, about 1.5 GB expected at a million). The neighbours stage's
``finish`` runs it when more than STALE_SHARE of the rows have none (a backfill, ``--mode all``);
rows written after it have none until the next run, and the path gives such a work the estimate
of the work it was reached from. The graph grows,
so stored distances can only overstate what is left (a new work is a shortcut): the estimate stays
an estimate, the path stays a path on the graph.
"""
from __future__ import annotations

import logging

import numpy as np
from django.conf import settings
from django.db import connection, transaction

log = logging.getLogger(__name__)

TABLE = "archive_artworkneighbours"
COUNT = 64  # landmarks (float32 each per work; at 300k, 32 gave CPU p95 115 ms a path, 64: 84 ms)
BLOCK = 8 << 20  # bytes of the COPY parsed at a time (tuples of 38 bytes)
STALE_SHARE = 0.05  # recompute when more than this share of the rows has no landmark distances
_EDGE = np.dtype([("fields", ">i2"), ("l1", ">i4"), ("work", ">i8"), ("l2", ">i4"), ("other", ">i8"), ("l3", ">i4"), ("distance", ">f8")])


def _edges(model_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(work, other, cosine distance) of every stored edge of the model: one binary COPY, parsed in
    blocks of BLOCK bytes as it arrives (fixed-size tuples after the 19-byte header)."""
    works, others, dists = [], [], []
    pending = bytearray()
    header = 19

    def parse(final: bool = False) -> None:
        nonlocal header
        if header:
            if len(pending) < header:
                return
            del pending[:header]
            header = 0
        whole = len(pending) // _EDGE.itemsize
        if whole and (final or len(pending) >= BLOCK):
            rows = np.frombuffer(bytes(pending[: whole * _EDGE.itemsize]), dtype=_EDGE)
            if not ((rows["fields"] == 3).all() and (rows["l1"] == 8).all() and (rows["l2"] == 8).all() and (rows["l3"] == 8).all()):
                raise ValueError("unexpected row in the graph's COPY (a NULL neighbour or distance?): landmarks not computed")
            works.append(rows["work"].astype(np.int64))
            others.append(rows["other"].astype(np.int64))
            dists.append(rows["distance"].astype(np.float64))
            del pending[: whole * _EDGE.itemsize]

    with connection.cursor() as cursor, cursor.copy(
        f"COPY (SELECT g.artwork_id, n.other, n.distance FROM {TABLE} g, unnest(g.neighbours, g.distances) AS n(other, distance)"
        f" WHERE g.model_id = {int(model_id)}) TO STDOUT WITH (FORMAT BINARY)"
    ) as copy:
        for chunk in copy:
            pending += chunk
            parse()
    parse(final=True)
    if not works:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    return np.concatenate(works), np.concatenate(others), np.concatenate(dists)


def distances(ids: np.ndarray, work: np.ndarray, other: np.ndarray, cosine: np.ndarray, count: int = COUNT,
              seed: int = 0) -> np.ndarray:
    """(len(ids), count) float32: each work's distance along the graph (edges both ways, weighted
    by chord) to each of ``count`` landmarks chosen farthest first; inf where unreachable."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    n = len(ids)
    a, b = np.searchsorted(ids, work), np.searchsorted(ids, other)
    chord = np.sqrt(2.0 * np.maximum(cosine, 0.0)) + 1e-9  # > 0: a stored zero would read as no edge
    graph = coo_matrix((chord, (a, b)), shape=(n, n)).tocsr()
    graph = graph.maximum(graph.T)
    out = np.empty((n, min(count, n)), dtype=np.float32)
    nearest = np.full(n, np.inf)
    pick = int(np.random.default_rng(seed).integers(n))
    for i in range(out.shape[1]):
        reach = dijkstra(graph, directed=False, indices=pick)
        out[:, i] = reach
        nearest = np.minimum(nearest, reach)
        pick = int(np.argmax(nearest))  # the farthest from every landmark so far (inf: a component none reaches)
    return out


def compute(model_id: int, count: int = COUNT) -> dict:
    """Choose the model's landmarks and write every stored row's distances to them."""
    work, other, cosine = _edges(model_id)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT artwork_id FROM {TABLE} WHERE model_id = %s ORDER BY artwork_id", [int(model_id)])
        rows = np.array([r[0] for r in cursor.fetchall()], dtype=np.int64)
    ids = np.union1d(rows, other)  # a listed work without a row of its own is still on the graph
    if not len(rows):
        return {"rows": 0, "landmarks": 0}
    found = distances(ids, work, other, cosine, min(count, len(rows)))  # a tiny archive: one landmark per row at most
    mine = found[np.searchsorted(ids, rows)]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS _landmarks")
        cursor.execute("CREATE TEMP TABLE _landmarks (artwork_id bigint, landmarks bytea) ON COMMIT DROP")
        with cursor.copy("COPY _landmarks (artwork_id, landmarks) FROM STDIN") as copy:
            for artwork_id, values in zip(rows.tolist(), mine.astype("<f4")):
                copy.write_row((artwork_id, values.tobytes()))
        cursor.execute(f"UPDATE {TABLE} g SET landmarks = t.landmarks FROM _landmarks t"
                       " WHERE g.model_id = %s AND g.artwork_id = t.artwork_id", [int(model_id)])
        cursor.execute("DROP TABLE _landmarks")
    log.info("landmarks of model %s: %d rows, %d landmarks", model_id, len(rows), found.shape[1])
    return {"rows": int(len(rows)), "landmarks": int(found.shape[1])}


def max_works() -> int:
    """PATH_LANDMARKS_MAX_WORKS: the largest graph computed in one process (its memory grows with
    the works: ~1.5 GB at a million)."""
    return int(getattr(settings, "PATH_LANDMARKS_MAX_WORKS", 4_000_000))


def too_large(model_id: int) -> str:
    """Why the model's graph is too large for :func:`compute` here, or "" when it is not."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {TABLE} WHERE model_id = %s", [int(model_id)])
        rows = int(cursor.fetchone()[0])
    if rows <= max_works():
        return ""
    return (f"{rows:,} works on the graph, more than PATH_LANDMARKS_MAX_WORKS ({max_works():,}; about 1.5 GB of "
            "memory a million works): raise it on a worker with the memory")


def stale(model_id: int, count: int = COUNT) -> bool:
    """Whether more than STALE_SHARE of the model's rows have no landmark distances (or distances
    to another number of landmarks than ``count``)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), count(*) FILTER (WHERE landmarks IS NULL OR length(landmarks) <> 4 * least(%s, t.total))"
                       f" FROM {TABLE}, (SELECT count(*) AS total FROM {TABLE} WHERE model_id = %s) t"
                       " WHERE model_id = %s", [int(count), int(model_id), int(model_id)])
        total, missing = cursor.fetchone()
    return bool(total) and missing > STALE_SHARE * total

