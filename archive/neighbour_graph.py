"""Reading the stored kNN graph (:class:`~archive.models.ArtworkNeighbours`, written by the
neighbours stage): the edges of a set of works, in both directions, with each far end's distance
to given targets, in one query.

Out-edges come from the works' own rows (the b-tree of ``(model_id, artwork_id)``); in-edges from
the rows that list them (the GIN index on ``neighbours``), so the graph read is symmetric and a
work whose row was written after its neighbours' is still reached from them."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.db import connection

from . import vectors

TABLE = "archive_artworkneighbours"


def edges(model_id: int, ids: Sequence[int], *, dim: int, targets: Sequence[np.ndarray] = ()) -> list[tuple]:
    """``(work, other, cosine distance, listed, *cosine distance of other to each target)`` for every
    edge of the stored graph at one of ``ids``, nearest first per work: ``listed`` is true when the
    work's own row lists ``other`` (else only ``other``'s row lists the work). A work with no
    ``listed`` edge has no row of its own. Others without an embedding under the model (deleted
    since) are left out."""
    if not len(ids):
        return []
    space = vectors.ARTWORK_EMBEDDINGS
    cast = f"::{space.kind}({int(dim)})"
    extra = "".join(f", v.vector{cast} <=> %s{cast}" for _ in targets)
    sql = (
        "WITH listed AS ("
        f" SELECT g.artwork_id AS work, n.other, n.distance, true AS listed FROM {TABLE} g,"
        " unnest(g.neighbours, g.distances) AS n(other, distance)"
        " WHERE g.model_id = %s AND g.artwork_id = ANY(%s)"
        " UNION ALL"
        f" SELECT n.other AS work, g.artwork_id AS other, n.distance, false FROM {TABLE} g,"
        " unnest(g.neighbours, g.distances) AS n(other, distance)"
        " WHERE g.model_id = %s AND g.neighbours && %s::bigint[] AND n.other = ANY(%s)"
        "), edge AS (SELECT work, other, min(distance) AS distance, bool_or(listed) AS listed FROM listed GROUP BY work, other)"
        f" SELECT e.work, e.other, e.distance, e.listed{extra} FROM edge e"
        f" JOIN {space.table} v ON v.model_id = %s AND v.artwork_id = e.other"
        " ORDER BY e.work, e.distance"
    )
    keys = [int(k) for k in ids]
    params = [int(model_id), keys, int(model_id), keys, keys] + [vectors.to_literal(t) for t in targets] + [int(model_id)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]
