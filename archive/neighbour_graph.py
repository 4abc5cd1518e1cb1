"""Reading the stored kNN graph (:class:`~archive.models.ArtworkNeighbours`, written by the
neighbours stage): the edges of a set of works in both directions, in one query, and the distance
of works to given targets (the search's two ends), in another.

Out-edges come from the works' own rows (a b-tree look-up by artwork id); in-edges from the rows
that list them (the GIN index on ``neighbours``), so the graph read is symmetric and a work whose
row was written after its neighbours' is still reached from them.

Where the rows carry landmark distances (:mod:`workers.landmarks`), :func:`edges_with_landmarks`
reads a round of the path in one statement: the edges and the landmark distances of the works
they reach (from the same table), instead of the edges and then each new work's embedding."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.db import connection, transaction

from . import vectors

TABLE = "archive_artworkneighbours"


def edges(model_id: int, ids: Sequence[int]) -> list[tuple[int, int, float, bool]]:
    """``(work, other, cosine distance, listed)`` for every edge of the stored graph at one of
    ``ids``, nearest first per work: ``listed`` is true when the work's own row lists ``other``
    (else only ``other``'s row lists the work). A work with no ``listed`` edge has no row of its own.
    ``other`` may have been deleted since the row was written (see :func:`target_distances`)."""
    if not len(ids):
        return []
    sql = (
        "SELECT work, other, min(distance) AS distance, bool_or(listed) FROM ("
        f" SELECT g.artwork_id AS work, n.other, n.distance, true AS listed FROM {TABLE} g,"
        " unnest(g.neighbours, g.distances) AS n(other, distance)"
        " WHERE g.model_id = %s AND g.artwork_id = ANY(%s)"
        " UNION ALL"
        f" SELECT n.other, g.artwork_id, n.distance, false FROM {TABLE} g,"
        " unnest(g.neighbours, g.distances) AS n(other, distance)"
        " WHERE g.model_id = %s AND g.neighbours && %s::bigint[] AND n.other = ANY(%s)"
        ") e GROUP BY work, other ORDER BY work, distance"
    )
    keys = [int(k) for k in ids]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")  # a few hundred rows: workers cost more than they save
        # The rows listing any of a few dozen works: the planner guesses a quarter of the table for
        # ``neighbours && ARRAY[64 ids]`` and reads all of it (345 ms at 100k) instead of the GIN index (< 5 ms).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(sql, [int(model_id), keys, int(model_id), keys, keys])
        return [(int(a), int(b), float(d), bool(listed)) for a, b, d, listed in cursor.fetchall()]


_EDGES = (
    "SELECT work, other, min(distance) AS distance, bool_or(listed) AS listed FROM ("
    f" SELECT g.artwork_id AS work, n.other, n.distance, true AS listed FROM {TABLE} g,"
    " unnest(g.neighbours, g.distances) AS n(other, distance)"
    " WHERE g.model_id = %(model)s AND g.artwork_id = ANY(%(ids)s)"
    " UNION ALL"
    f" SELECT n.other, g.artwork_id, n.distance, false FROM {TABLE} g,"
    " unnest(g.neighbours, g.distances) AS n(other, distance)"
    " WHERE g.model_id = %(model)s AND g.neighbours && %(ids)s::bigint[] AND n.other = ANY(%(ids)s)"
    ") x GROUP BY work, other"
)


def decode_landmarks(value) -> np.ndarray | None:
    """A row's stored landmark distances (float32), or None when it has none."""
    if value is None or not len(value):
        return None
    return np.frombuffer(bytes(value), dtype="<f4")


def edges_with_landmarks(model_id: int, ids: Sequence[int], known: Sequence[int] = ()) -> list[tuple[int, int, float, bool, bool | None, np.ndarray | None]]:
    """:func:`edges` and the works they reach, in one statement: ``(work, other, cosine distance,
    listed, alive, landmarks)`` for every edge at one of ``ids``, nearest first per work. For each
    distinct ``other`` not in ``known`` (the works the caller has read before): ``alive`` (False
    when it was deleted since the row listing it was written) and its landmark distances (None
    when its row has none, or it has no row yet); both None for a work in ``known``."""
    if not len(ids):
        return []
    sql = (
        f"WITH e AS ({_EDGES}),"
        " o AS (SELECT DISTINCT other FROM e WHERE other <> ALL(%(known)s::bigint[])),"
        " m AS (SELECT o.other, h.landmarks, h.artwork_id IS NOT NULL OR EXISTS (SELECT 1 FROM archive_artworkembedding v"
        "   WHERE v.model_id = %(model)s AND v.artwork_id = o.other) AS alive"
        f"  FROM o LEFT JOIN {TABLE} h ON h.model_id = %(model)s AND h.artwork_id = o.other)"
        " SELECT e.work, e.other, e.distance, e.listed, m.alive, m.landmarks FROM e LEFT JOIN m ON m.other = e.other"
        " ORDER BY e.work, e.distance"
    )
    params = {"model": int(model_id), "ids": [int(k) for k in ids], "known": [int(k) for k in known]}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")  # a few hundred rows: workers cost more than they save
        # The rows listing any of a few dozen works: the planner guesses a quarter of the table for
        # ``neighbours && ARRAY[64 ids]`` and reads all of it (345 ms at 100k) instead of the GIN index (< 5 ms).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(sql, params)
        return [(int(a), int(b), float(d), bool(listed), alive, decode_landmarks(marks))
                for a, b, d, listed, alive, marks in cursor.fetchall()]


def landmarks_of(model_id: int, ids: Sequence[int]) -> dict[int, np.ndarray]:
    """The stored landmark distances of each of ``ids`` that has them."""
    if not len(ids):
        return {}
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT artwork_id, landmarks FROM {TABLE} WHERE model_id = %s AND artwork_id = ANY(%s) AND landmarks IS NOT NULL",
                       [int(model_id), [int(k) for k in ids]])
        return {int(a): decode_landmarks(m) for a, m in cursor.fetchall()}


def target_distances(model_id: int, ids: Sequence[int], targets: Sequence[np.ndarray | str], *, dim: int) -> dict[int, tuple[float, ...]]:
    """Cosine distance of each of ``ids`` (artworks embedded under the model) to each target, by
    one index scan of their embedding rows; artworks without an embedding are absent."""
    if not len(ids):
        return {}
    space = vectors.ARTWORK_EMBEDDINGS
    cast = f"::{space.kind}({int(dim)})"
    columns = ", ".join(f"{space.vector_column}{cast} <=> %s{cast}" for _ in targets) or "NULL"
    sql = f"SELECT artwork_id, {columns} FROM {space.table} WHERE model_id = %s AND artwork_id = ANY(%s)"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*[vectors.to_literal(t) for t in targets], int(model_id), [int(k) for k in ids]])
        return {int(row[0]): tuple(float(x) for x in row[1:]) for row in cursor.fetchall()}

