"""Database side of labelling: read artwork/label vectors, write and delete ArtworkLabel rows.

Only this model's rows are ever written or deleted (``model_id`` is in every statement), so the
labels of another model (e.g. the active one while a new model is being labelled) are untouched.
"""
from __future__ import annotations

from typing import Iterable, Iterator, Sequence

import numpy as np
import psycopg
from psycopg.types import TypeInfo
from django.db import connection, transaction

from archive import iconclass_rows, label_counts
from archive.vectors import copy_arrays

from .scoring import rows_for

TABLE = "archive_artworklabel"
CONFLICT = ("artwork_id", "model_id", "label_id")


class _RawVectorLoader(psycopg.adapt.Loader):
    """Leave pgvector's binary value as bytes; :func:`_stack` decodes a whole page at once."""

    format = psycopg.pq.Format.BINARY

    def load(self, data) -> bytes:
        return bytes(data)


def _vector_cursor():
    """A psycopg cursor on Django's connection with binary results, vectors left as raw bytes
    (Django's own cursors bind client-side, which cannot return binary)."""
    connection.ensure_connection()
    conn = connection.connection
    cursor = psycopg.Cursor(conn)
    cursor.format = psycopg.pq.Format.BINARY
    for name in ("vector", "halfvec"):  # label embeddings are vector, artwork embeddings halfvec
        info = TypeInfo.fetch(conn, name)
        if info is None:
            raise RuntimeError(f"the pgvector extension (>= 0.8, type {name}) is not installed in this database")
        cursor.adapters.register_loader(info.oid, _RawVectorLoader)
    return cursor


def _stack(rows: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, float32 matrix)`` from rows of (id, raw binary vector): one numpy decode per page.
    pgvector's binary form is int16 dim, int16 unused, then dim big-endian float32 (``vector``) or
    float16 (``halfvec``)."""
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    raw = [r[1] for r in rows]
    dim = int.from_bytes(raw[0][:2], "big")
    width = (len(raw[0]) - 4) // max(dim, 1)
    if width not in (2, 4) or any(len(b) != 4 + width * dim for b in raw):
        raise ValueError("vectors of different dimensions in one model's rows")
    record = np.dtype([("dim", ">u2"), ("unused", ">u2"), ("v", ">f4" if width == 4 else ">f2", (dim,))])
    return ids, np.frombuffer(b"".join(raw), dtype=record)["v"].astype(np.float32)


def load_embeddings(model_id: int, artwork_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """``(artwork_ids, matrix)`` of the given artworks' embeddings under one model, by artwork id.
    Artworks without an embedding are simply absent."""
    with _vector_cursor() as cursor:
        cursor.execute(
            "SELECT artwork_id, vector FROM archive_artworkembedding WHERE model_id = %s AND artwork_id = ANY(%s) "
            "ORDER BY artwork_id",
            [model_id, [int(i) for i in artwork_ids]],
        )
        return _stack(cursor.fetchall())


def iter_embeddings(model_id: int, chunk_size: int = 4096, after: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream every embedding of one model in ``(artwork_ids, matrix)`` chunks (keyset pages by
    artwork id, so no long-running transaction or server-side cursor is held)."""
    while True:
        with _vector_cursor() as cursor:
            cursor.execute(
                "SELECT artwork_id, vector FROM archive_artworkembedding WHERE model_id = %s AND artwork_id > %s "
                "ORDER BY artwork_id LIMIT %s",
                [model_id, after, chunk_size],
            )
            rows = cursor.fetchall()
        if not rows:
            return
        ids, matrix = _stack(rows)
        yield ids, matrix
        after = int(ids[-1])


def load_label_vectors(model_id: int, *, published_only: bool = True, label_ids: Iterable[int] | None = None):
    """``(label_ids, matrix)`` of the cached label text embeddings of one model, by label id."""
    sql = (
        "SELECT le.label_id, le.vector FROM archive_labelembedding le JOIN archive_label l ON l.id = le.label_id "
        "WHERE le.model_id = %s"
    )
    params: list = [model_id]
    if published_only:
        sql += " AND l.published"
    if label_ids is not None:
        sql += " AND le.label_id = ANY(%s)"
        params.append([int(i) for i in label_ids])
    with _vector_cursor() as cursor:
        cursor.execute(sql + " ORDER BY le.label_id", params)
        return _stack(cursor.fetchall())


def label_vectors_version(model_id: int) -> tuple:
    """A cheap fingerprint of the published label vectors of a model (changes when a label is
    added, removed, (un)published or re-embedded), for per-process caching of the label matrix."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), coalesce(sum(hashtext(le.prompts_fingerprint || ':' || le.label_id::text)::bigint), 0) "
            "FROM archive_labelembedding le JOIN archive_label l ON l.id = le.label_id WHERE le.model_id = %s AND l.published",
            [model_id],
        )
        return tuple(cursor.fetchone())


def write_top_k(model_id: int, ids: np.ndarray, label_ids: np.ndarray, idx: np.ndarray, vals: np.ndarray) -> int:
    """Replace these artworks' top-k rows for this model (delete + COPY upsert in one transaction,
    so a re-run never duplicates and never leaves stale ranks). Returns the rows written."""
    columns = rows_for(ids, label_ids, idx, vals)
    columns["model_id"] = np.full(len(columns["rank"]), model_id, dtype=np.int64)
    with transaction.atomic():
        delete_rows(model_id, ids)
        written = copy_arrays(TABLE, columns, conflict=CONFLICT, update=("score", "rank"))
        label_counts.rows_added(model_id, ids)
        iconclass_rows.derive(model_id, ids)  # their Iconclass subjects follow the new rows
        return written


def delete_rows(model_id: int, artwork_ids: Sequence[int] | np.ndarray | None = None) -> int:
    """Delete this model's top-k ArtworkLabel rows (of the given artworks, or all of them); the rows
    of curator-trained classifiers (rank 0) are theirs to replace. All of them (a reset) also
    takes the Iconclass rows derived from them; a batch's are rewritten by :func:`write_top_k`."""
    with transaction.atomic(), connection.cursor() as cursor:
        if artwork_ids is None:
            iconclass_rows.clear(model_id)
        label_counts.rows_removed(model_id, artwork_ids)  # the stored per-label counts follow
        if artwork_ids is None:
            cursor.execute(f"DELETE FROM {TABLE} WHERE model_id = %s AND rank > 0", [model_id])
        else:
            cursor.execute(
                f"DELETE FROM {TABLE} WHERE model_id = %s AND artwork_id = ANY(%s) AND rank > 0", [model_id, [int(i) for i in artwork_ids]]
            )
        return cursor.rowcount
