"""Stream vectors from PostgreSQL into one float32 array, and reduce them to ~50 dimensions.

Rows come through a server-side binary cursor in chunks (pgvector's binary format is read with
``numpy.frombuffer``), straight into a preallocated array: no Django model instance per row.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Iterator

import numpy as np
from django.db import connection, transaction

from archive import vectors

CHUNK_ROWS = 20_000
PCA_DIMS = 50
PCA_FIT_SAMPLE = 100_000


@dataclass
class VectorSet:
    """Vectors of the points of a map. ``keys`` identify points (artwork ids, or face ids for a
    face map); ``artwork_ids`` is the artwork each point belongs to."""

    keys: np.ndarray  # int64
    artwork_ids: np.ndarray  # int64
    X: np.ndarray  # float32 (n, d)

    def __len__(self) -> int:
        return len(self.keys)


def subset_sql(subset: dict, model_id: int | None) -> tuple[str, str, list]:
    """(count SQL, select SQL, params) selecting ``key, artwork_id, vector`` rows ordered by key.

    ``subset``: {} (whole archive), {"label": slug}, {"collection": slug} or {"faces": true}.
    Select rows return (key, artwork_id, vector); both statements take the same params.
    """
    if subset.get("faces"):
        where = "NOT f.not_a_face"
        params: list = []
        if subset.get("face_model"):
            where += " AND f.model = %s"
            params.append(subset["face_model"])
        base = f"FROM archive_face f WHERE {where}"
        return f"SELECT count(*) {base}", f"SELECT f.id, f.artwork_id, f.vector {base} ORDER BY f.id", params
    if model_id is None:
        raise ValueError("an artwork map needs an embedding model")
    where = ["e.model_id = %s", "a.status <> 'duplicate'"]
    params = [model_id]
    if subset.get("label"):
        where.append(
            "(e.artwork_id IN (SELECT al.artwork_id FROM archive_artworklabel al JOIN archive_label l ON l.id = al.label_id "
            "WHERE l.slug = %s AND al.model_id = %s) OR e.artwork_id IN (SELECT d.artwork_id FROM archive_labeldecision d "
            "JOIN archive_label l ON l.id = d.label_id WHERE l.slug = %s AND d.decision IN ('accepted', 'added'))) "
            "AND e.artwork_id NOT IN (SELECT d.artwork_id FROM archive_labeldecision d JOIN archive_label l ON l.id = d.label_id "
            "WHERE l.slug = %s AND d.decision = 'rejected')"
        )
        params += [subset["label"], model_id, subset["label"], subset["label"]]
    if subset.get("collection"):
        where.append(
            "e.artwork_id IN (SELECT ci.artwork_id FROM archive_collectionitem ci JOIN archive_collection c "
            "ON c.id = ci.collection_id WHERE c.slug = %s)"
        )
        params.append(subset["collection"])
    base = "FROM archive_artworkembedding e JOIN archive_artwork a ON a.id = e.artwork_id WHERE " + " AND ".join(where)
    return f"SELECT count(*) {base}", f"SELECT e.artwork_id, e.artwork_id, e.vector {base} ORDER BY e.artwork_id", params


def stream_vectors(select_sql: str, params: list, *, chunk_rows: int = CHUNK_ROWS) -> Iterator[tuple[list[tuple], np.ndarray]]:
    """Run ``select_sql`` (whose LAST column is a vector) through a server-side binary cursor and
    yield ``(rows without the vector, float32 (m, d) vectors)`` per chunk of ``chunk_rows`` rows."""
    vectors.register()
    connection.ensure_connection()
    raw = connection.connection
    width = None
    with transaction.atomic():
        with raw.cursor(name=f"map_vectors_{uuid.uuid4().hex[:12]}", binary=True) as cur:
            cur.itersize = chunk_rows
            cur.execute(select_sql, params)
            while True:
                rows = cur.fetchmany(chunk_rows)
                if not rows:
                    break
                chunk = np.stack([_as_array(r[-1]) for r in rows])
                if width is None:
                    width = chunk.shape[1]
                elif chunk.shape[1] != width:
                    raise ValueError(f"vectors of different widths in one map: {width} and {chunk.shape[1]}")
                yield [r[:-1] for r in rows], chunk


def load_vectors(subset: dict, model_id: int | None, *, exclude_keys: np.ndarray | None = None, progress=None) -> VectorSet:
    """All vectors of a subset as one float32 array, streamed in chunks of CHUNK_ROWS rows.

    ``exclude_keys`` (sorted int64) drops points already on a map (incremental placement).
    ``progress(rows_read)`` is called after each chunk.
    """
    count_sql, select_sql, params = subset_sql(subset, model_id)
    with connection.cursor() as cursor:
        cursor.execute(count_sql, params)
        total = int(cursor.fetchone()[0])
    keys = np.empty(total, dtype=np.int64)
    artwork_ids = np.empty(total, dtype=np.int64)
    X: np.ndarray | None = None
    n = 0
    for rows, chunk in stream_vectors(select_sql, params):
        if X is None:
            X = np.empty((total, chunk.shape[1]), dtype=np.float32)
        m = min(len(rows), total - n)  # rows added after the count are left for the next placement
        keys[n : n + m] = [r[0] for r in rows[:m]]
        artwork_ids[n : n + m] = [r[1] for r in rows[:m]]
        X[n : n + m] = chunk[:m]
        n += m
        if progress:
            progress(n)
    if X is None:
        X = np.empty((0, 0), dtype=np.float32)
    keys, artwork_ids, X = keys[:n], artwork_ids[:n], X[:n]
    if exclude_keys is not None and len(exclude_keys):
        keep = ~np.isin(keys, exclude_keys)
        keys, artwork_ids, X = keys[keep], artwork_ids[keep], X[keep]
    return VectorSet(keys=keys, artwork_ids=artwork_ids, X=X)


def _as_array(value) -> np.ndarray:
    # pgvector's binary loader gives Vector objects (numpy-backed), its text loader numpy arrays.
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)


def normalise(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, so Euclidean distance ranks like cosine distance (CLIP's metric)."""
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (X / norms).astype(np.float32, copy=False)


def fit_reducer(X: np.ndarray, *, dims: int = PCA_DIMS, seed: int = 0):
    """A PCA to ``dims`` dimensions (randomized SVD), fitted on at most PCA_FIT_SAMPLE rows, or
    ``None`` when the vectors are already that narrow."""
    from sklearn.decomposition import PCA

    n, d = X.shape
    k = min(dims, d, max(n - 1, 1))
    if k >= d:
        return None
    sample = X
    if n > PCA_FIT_SAMPLE:
        rng = np.random.default_rng(seed)
        sample = X[np.sort(rng.choice(n, PCA_FIT_SAMPLE, replace=False))]
    return PCA(n_components=k, svd_solver="randomized", random_state=seed).fit(normalise(sample))


def apply_reducer(reducer, X: np.ndarray, chunk: int = 200_000) -> np.ndarray:
    """Normalise then project (in chunks, to bound memory)."""
    if reducer is None:
        return normalise(X)
    out = np.empty((len(X), reducer.n_components_), dtype=np.float32)
    for start in range(0, len(X), chunk):
        out[start : start + chunk] = reducer.transform(normalise(X[start : start + chunk]))
    return out
