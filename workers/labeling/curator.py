"""A label typed by a curator, scored over the whole archive on demand.

:func:`score_label` answers "which artworks look most like this?" from the per-model HNSW index
(fast, approximate, for a preview). :func:`apply_label` makes the label part of the stored
labelling: it streams every embedding of the model, and inserts the label into the top-k rows of
each artwork where it now ranks among the k best (re-ranking that artwork's rows and dropping
the one that falls out), so the label's page and the artworks' pages show it. Artworks that have
not been labelled under the model yet are left to the label stage, which scores every published
label. It also stores the label's exact score statistics over the archive. The explorer runs the
same work as a job (:mod:`.curator_job`, kind ``score_label``) on the label queue.
"""
from __future__ import annotations

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from archive import label_counts
from archive.models import Label
from archive.vectors import ARTWORK_EMBEDDINGS, copy_arrays, nearest

from .models import model_for_work
from .stats import store_exact_stats
from .store import CONFLICT, TABLE, iter_embeddings
from .text import label_vector


def top_k() -> int:
    return int(getattr(settings, "LABEL_TOP_K", 20))


def score_label(label: Label, model=None, limit: int = 200, *, ef_search: int | None = None) -> list[tuple[int, float]]:
    """The ``limit`` artworks most similar to the label's prompt ensemble: ``[(artwork_id, cosine)]``,
    best first, via the model's HNSW index."""
    model = model_for_work(model)
    vec = label_vector(label, model)
    rows = nearest(
        ARTWORK_EMBEDDINGS, model.pk, vec, dim=model.dim, limit=limit, columns=["artwork_id"],
        ef_search=ef_search or max(40, min(1000, int(limit))),
    )
    return [(int(artwork_id), 1.0 - float(distance)) for _id, distance, artwork_id in rows]


_RERANK = f"""
UPDATE {TABLE} al SET rank = r.rn
FROM (SELECT id, row_number() OVER (PARTITION BY artwork_id ORDER BY score DESC, label_id) AS rn
      FROM {TABLE} WHERE model_id = %s AND artwork_id = ANY(%s) AND rank > 0) r
WHERE al.id = r.id AND al.rank IS DISTINCT FROM r.rn
"""


def apply_to_chunk(label: Label, model, vec: np.ndarray, ids: np.ndarray, matrix: np.ndarray, k: int) -> tuple[int, int, np.ndarray]:
    """Enter ``label`` (text vector ``vec``) into the stored top-k of these artworks (their
    embeddings under ``model``) where it now ranks among the k best; artworks not labelled under
    the model are left alone. Returns (rows inserted, rows evicted, the chunk's scores)."""
    matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    scores = (matrix @ vec).astype(np.float32)
    id_list = [int(i) for i in ids]
    if not id_list:
        return 0, 0, scores
    with connection.cursor() as cursor:
        # How full, and how good at the bottom, each artwork's top-k is without this label.
        cursor.execute(
            f"SELECT artwork_id, count(*) FILTER (WHERE label_id <> %s), min(score) FILTER (WHERE label_id <> %s), "
            f"bool_or(label_id = %s) FROM {TABLE} WHERE model_id = %s AND artwork_id = ANY(%s) AND rank > 0 GROUP BY artwork_id",
            [label.pk, label.pk, label.pk, model.pk, id_list],
        )
        state = {a: (n, lowest, had) for a, n, lowest, had in cursor.fetchall()}
    enter_ids, enter_scores, affected = [], [], []
    for artwork_id, score in zip(id_list, scores.tolist()):
        if artwork_id not in state:
            continue  # not labelled under this model yet: the label stage will score it
        others, lowest, had = state[artwork_id]
        if had:
            affected.append(artwork_id)
        if others < k or score > lowest:
            enter_ids.append(artwork_id)
            enter_scores.append(score)
            if not had:
                affected.append(artwork_id)
    if not affected:
        return 0, 0, scores
    inserted = evicted = 0
    with transaction.atomic():
        label_counts.rows_removed(model.pk, affected)  # the stored per-label counts follow the re-ranking
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {TABLE} WHERE model_id = %s AND label_id = %s AND artwork_id = ANY(%s)", [model.pk, label.pk, affected])
        if enter_ids:
            inserted = copy_arrays(
                TABLE,
                {
                    "artwork_id": np.asarray(enter_ids, dtype=np.int64),
                    "label_id": np.full(len(enter_ids), label.pk, dtype=np.int64),
                    "model_id": np.full(len(enter_ids), model.pk, dtype=np.int64),
                    "score": np.asarray(enter_scores, dtype=np.float64),
                    "rank": np.full(len(enter_ids), k, dtype=np.int16),
                },
                conflict=CONFLICT,
                update=("score", "rank"),
            )
        with connection.cursor() as cursor:
            cursor.execute(_RERANK, [model.pk, affected])
            cursor.execute(f"DELETE FROM {TABLE} WHERE model_id = %s AND artwork_id = ANY(%s) AND rank > %s", [model.pk, affected, k])
            evicted = cursor.rowcount
        label_counts.rows_added(model.pk, affected)
    return inserted, evicted, scores


def apply_label(label: Label, model=None, *, k: int | None = None, chunk_size: int = 8192, progress: bool = False) -> dict:
    """Insert ``label`` into the stored top-k of every labelled artwork where it now belongs, in
    this process (streaming every embedding of the model; the explorer runs it as a job instead,
    see :mod:`.curator_job`). Returns ``{"scored", "inserted", "evicted"}`` counts (evicted: rows
    that fell out of a top-k). Other models' rows are never touched. Stores the label's exact
    score statistics over the archive."""
    model = model_for_work(model)
    k = k or top_k()
    vec = label_vector(label, model)
    all_scores: list[np.ndarray] = []
    inserted = evicted = 0
    chunks = iter_embeddings(model.pk, chunk_size=chunk_size)
    if progress:
        from tqdm import tqdm

        chunks = tqdm(chunks, desc=f"apply label {label.slug}", unit="chunk")
    for ids, matrix in chunks:
        added, dropped, scores = apply_to_chunk(label, model, vec, ids, matrix, k)
        inserted += added
        evicted += dropped
        all_scores.append(scores)
    scores = np.concatenate(all_scores) if all_scores else np.zeros(0, dtype=np.float32)
    store_exact_stats(model, label, scores)
    return {"scored": int(len(scores)), "inserted": inserted, "evicted": evicted}
