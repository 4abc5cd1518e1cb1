"""Place newly embedded artworks on an existing layout without moving the points already there.

Two ways, chosen per layout when it is built:

* the fitted model (PCA + UMAP / openTSNE embedding), kept under ``MAP_MODEL_ROOT``, and its
  ``transform`` (UMAP: new points embedded against the fixed training graph; openTSNE: only the
  new points are optimised against the fixed reference embedding);
* for layouts above ``MAP_MODEL_MAX_POINTS`` points, where the pickle (training data, kNN graph,
  index) would take gigabytes and minutes to load, k-nearest-neighbour interpolation: each new
  point goes to the median position of its k nearest points *on this layout* in the full
  embedding space (cosine). This is how openTSNE initialises transformed points, minus the
  optimisation.

The neighbours are found exactly, by streaming the layout's own points with their vectors out of
PostgreSQL in chunks and keeping a running top-k per new point with numpy. An HNSW query over the
whole archive filtered to the layout's points would lose most of its candidates on a subset map
(a label or collection map is a small part of the archive) and is approximate; one pass over the
layout's vectors is exact, bounded in memory (one chunk of vectors and one block of similarities
at a time) and costs one matrix product per chunk.
"""
from __future__ import annotations

import numpy as np
from django.db import connection

from . import fit as fitting
from .reduce import VectorSet, apply_reducer, normalise, stream_vectors

KNN_K = 10
QUERY_BLOCK = 512  # new points per similarity block: 512 x 20,000 float32 = 40 MB


def existing_keys(layout, *, faces: bool) -> np.ndarray:
    """Sorted keys (artwork ids, or face ids for a face map) of the points already on ``layout``."""
    key = "face_id" if faces else "artwork_id"
    parts = []
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {key} FROM archive_layoutpoint WHERE layout_id = %s ORDER BY {key}", [layout.pk])
        while True:
            rows = cursor.fetchmany(100_000)
            if not rows:
                break
            parts.append(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


def place_with_model(payload: dict, X: np.ndarray) -> np.ndarray:
    Y = apply_reducer(payload["reducer"], X)
    return fitting.transform(payload["method"], payload["model"], Y)


def layout_vectors_sql(layout, *, faces: bool) -> tuple[str, list]:
    """SELECT (key, x, y, vector) of every point on ``layout``."""
    if faces:
        return ("SELECT p.face_id, p.x, p.y, f.vector FROM archive_layoutpoint p JOIN archive_face f ON f.id = p.face_id "
                "WHERE p.layout_id = %s", [layout.pk])
    if not layout.model_id:
        raise ValueError(f"map {layout.slug} records no embedding model: rebuild it (build_map --rebuild)")
    return ("SELECT p.artwork_id, p.x, p.y, e.vector FROM archive_layoutpoint p JOIN archive_artworkembedding e "
            "ON e.artwork_id = p.artwork_id AND e.model_id = %s WHERE p.layout_id = %s", [layout.model_id, layout.pk])


def nearest_positions(Q: np.ndarray, chunks, k: int = KNN_K) -> tuple[np.ndarray, np.ndarray]:
    """Running exact top-k by cosine similarity of each row of ``Q`` over ``chunks`` of
    ``(xy float32 (c, 2), vectors (c, d))``. Returns (similarities (m, k), positions (m, k, 2));
    slots not filled (fewer than k points seen) have similarity -inf."""
    m = len(Q)
    Q = normalise(np.asarray(Q, dtype=np.float32))
    best_s = np.full((m, k), -np.inf, dtype=np.float32)
    best_xy = np.zeros((m, k, 2), dtype=np.float32)
    for xy, C in chunks:
        C = normalise(np.asarray(C, dtype=np.float32))
        kk = min(k, len(C))
        for start in range(0, m, QUERY_BLOCK):
            end = min(start + QUERY_BLOCK, m)
            S = Q[start:end] @ C.T
            idx = np.argpartition(-S, kk - 1, axis=1)[:, :kk] if kk < len(C) else np.broadcast_to(np.arange(len(C)), (end - start, len(C)))
            all_s = np.concatenate([best_s[start:end], np.take_along_axis(S, idx, 1)], axis=1)
            all_xy = np.concatenate([best_xy[start:end], xy[idx]], axis=1)
            top = np.argpartition(-all_s, k - 1, axis=1)[:, :k]
            best_s[start:end] = np.take_along_axis(all_s, top, 1)
            best_xy[start:end] = np.take_along_axis(all_xy, top[:, :, None], 1)
    return best_s, best_xy


def place_by_neighbours(layout, vs: VectorSet, *, faces: bool, k: int = KNN_K) -> np.ndarray:
    """Median position of each new point's k nearest points already on ``layout`` (exact, cosine)."""
    sql, params = layout_vectors_sql(layout, faces=faces)
    chunks = ((np.asarray([r[1:3] for r in rows], dtype=np.float32), X) for rows, X in stream_vectors(sql, params))
    sims, xy = nearest_positions(vs.X, chunks, k)
    found = np.isfinite(sims)
    if not found.any():
        raise ValueError("the layout has no points with vectors to place new ones near")
    xy = np.where(found[:, :, None], xy, np.nan)
    return np.nanmedian(xy, axis=1).astype(np.float32)
