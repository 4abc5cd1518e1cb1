"""Place newly embedded artworks on an existing layout without moving the points already there.

Two ways, chosen per layout when it is built:

* the fitted model (PCA + UMAP / openTSNE embedding), pickled next to the exports, and its
  ``transform`` (UMAP: new points embedded against the fixed training graph; openTSNE: only the
  new points are optimised against the fixed reference embedding);
* for layouts above ``MAP_MODEL_MAX_POINTS`` points, where the pickle (training data, kNN graph,
  index) would take gigabytes and minutes to load, k-nearest-neighbour interpolation: each new
  point goes to the median position of its k nearest mapped neighbours in the full embedding
  space, found with pgvector's HNSW index (``archive.vectors.nearest``). This is how openTSNE
  initialises transformed points, minus the optimisation.
"""
from __future__ import annotations

import numpy as np
from django.db import connection

from archive import vectors

from . import fit as fitting
from .reduce import VectorSet, apply_reducer

KNN_K = 10


def existing_points(layout, *, faces: bool) -> tuple[np.ndarray, np.ndarray]:
    """(sorted keys int64, coords float32 (n, 2)) of the points already on ``layout``."""
    key = "face_id" if faces else "artwork_id"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {key}, x, y FROM archive_layoutpoint WHERE layout_id = %s ORDER BY {key}", [layout.pk])
        rows = cursor.fetchall()
    if not rows:
        return np.empty(0, np.int64), np.empty((0, 2), np.float32)
    arr = np.asarray(rows, dtype=np.float64)
    return arr[:, 0].astype(np.int64), arr[:, 1:].astype(np.float32)


def place_with_model(payload: dict, X: np.ndarray) -> np.ndarray:
    Y = apply_reducer(payload["reducer"], X)
    return fitting.transform(payload["method"], payload["model"], Y)


def place_by_neighbours(layout, vs: VectorSet, *, faces: bool, model_value, k: int = KNN_K) -> np.ndarray:
    """Median position of each new point's k nearest points already on the layout."""
    keys, coords = existing_points(layout, faces=faces)
    if not len(keys):
        raise ValueError("the layout has no points to place new ones near")
    if faces:
        space, where = vectors.FACES, "id IN (SELECT face_id FROM archive_layoutpoint WHERE layout_id = %s)"
    else:
        space, where = vectors.ARTWORK_EMBEDDINGS, "artwork_id IN (SELECT artwork_id FROM archive_layoutpoint WHERE layout_id = %s)"
    columns = () if faces else ("artwork_id",)
    out = np.empty((len(vs), 2), dtype=np.float32)
    dim = vs.X.shape[1]
    for i in range(len(vs)):
        rows = vectors.nearest(space, model_value, vs.X[i], dim=dim, limit=k, where=where, params=[layout.pk],
                               columns=columns, ef_search=max(40, 4 * k))
        hit_keys = np.asarray([r[2] if columns else r[0] for r in rows], dtype=np.int64)
        pos = np.searchsorted(keys, hit_keys)
        pos = pos[(pos < len(keys))]
        pos = pos[keys[pos] == hit_keys[: len(pos)]] if len(pos) else pos
        out[i] = np.median(coords[pos], axis=0) if len(pos) else np.median(coords, axis=0)
    return out
