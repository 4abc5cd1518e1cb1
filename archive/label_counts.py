"""Stored per-(label, model) artwork counts (``LabelCount``), kept current where label rows change.

A label is shown on an artwork when its machine row (``ArtworkLabel``) is at or above the
label's effective threshold and no curator decided on the pair, or when a curator added or
accepted it. Counting that on read scans every label row (20M at 1M artworks); instead:

* the label stage calls :func:`rows_removed` / :func:`rows_added` around each batch it writes
  (``workers.labeling.store``), which adjust the counts by the batch's own rows;
* a curator decision recounts its one label (:func:`refresh` with ``label_ids``);
* anything that rewrites many rows at once (publishing a prompt label re-ranks every artwork's
  top-k) calls :func:`refresh` for the whole model; so does ``manage.py refresh_label_counts``.

Each row stores the threshold it was counted with. Thresholds move (the label stage re-derives
them before each run, a curator sets one), so every write first recounts the labels whose stored
threshold no longer matches (:func:`refresh_stale`). All count writes of a model hold one
transaction-scoped advisory lock, so concurrent batches and recounts never lose an update.

Threshold of a label under a model, first that applies: ``Label.threshold``,
``settings.LABEL_THRESHOLD``, the derived ``LabelEmbedding.default_threshold``, none (all rows).
"""
from __future__ import annotations

from typing import Iterable, Sequence

from django.conf import settings
from django.db import connection, transaction

from archive.models.labels import TRAINED_GROUP

LOCK_NAMESPACE = 0x4C43  # "LC": advisory lock key is (namespace, model id)

# The effective threshold of label ``l`` under model %(model)s (NULL: show every row).
THRESHOLD_SQL = (
    "coalesce(l.threshold, %(fixed)s::float8, (SELECT le.default_threshold FROM archive_labelembedding le"
    " WHERE le.label_id = l.id AND le.model_id = %(model)s))"
)

# Machine rows at or above the threshold, minus those a curator decided on, plus added/accepted.
_COUNT_SQL = """
SELECT t.label_id, t.thr,
  (SELECT count(*) FROM archive_artworklabel al
    WHERE al.label_id = t.label_id AND al.model_id = %(model)s AND al.score >= coalesce(t.thr, '-infinity'::float8))
  - (SELECT count(*) FROM archive_labeldecision d
      JOIN archive_artworklabel al ON al.artwork_id = d.artwork_id AND al.label_id = d.label_id AND al.model_id = %(model)s
    WHERE d.label_id = t.label_id AND al.score >= coalesce(t.thr, '-infinity'::float8))
  + (SELECT count(*) FROM archive_labeldecision d WHERE d.label_id = t.label_id AND d.decision IN ('added', 'accepted'))
FROM unnest(%(ids)s::bigint[], %(thresholds)s::float8[]) AS t(label_id, thr)
"""

_UPSERT_SQL = """
INSERT INTO archive_labelcount (label_id, model_id, count, threshold, updated_at)
SELECT label_id, %(model)s, n, thr, now() FROM unnest(%(ids)s::bigint[], %(counts)s::bigint[], %(thresholds)s::float8[])
  AS c(label_id, n, thr)
ON CONFLICT (model_id, label_id) DO UPDATE SET count = EXCLUDED.count, threshold = EXCLUDED.threshold, updated_at = now()
"""

# Per-label count of these artworks' shown machine rows, by each count row's own threshold.
_DELTA_SQL = """
UPDATE archive_labelcount lc SET count = lc.count + %(sign)s * d.n, updated_at = now()
FROM (SELECT al.label_id, count(*) AS n FROM archive_artworklabel al
      JOIN archive_labelcount c ON c.label_id = al.label_id AND c.model_id = al.model_id
      WHERE al.model_id = %(model)s AND al.artwork_id = ANY(%(artworks)s) AND al.rank > 0
        AND al.score >= coalesce(c.threshold, '-infinity'::float8)
        AND NOT EXISTS (SELECT 1 FROM archive_labeldecision dd WHERE dd.label_id = al.label_id AND dd.artwork_id = al.artwork_id)
      GROUP BY al.label_id) d
WHERE lc.model_id = %(model)s AND lc.label_id = d.label_id
"""


def fixed_threshold() -> float | None:
    """``settings.LABEL_THRESHOLD`` (one threshold for every label), or None."""
    value = getattr(settings, "LABEL_THRESHOLD", None)
    return float(value) if value is not None else None


def _lock(cursor, model_id: int) -> None:
    cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, int(model_id)])


def effective_thresholds(model_id: int, label_ids: Iterable[int] | None = None) -> dict[int, float | None]:
    """``{label_id: threshold}`` under the model (None: no threshold), for all or some labels."""
    sql = f"SELECT l.id, {THRESHOLD_SQL} FROM archive_label l"
    params: dict = {"fixed": fixed_threshold(), "model": int(model_id)}
    if label_ids is not None:
        sql += " WHERE l.id = ANY(%(ids)s)"
        params["ids"] = [int(i) for i in label_ids]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return dict(cursor.fetchall())


def _recount(cursor, model_id: int, thresholds: dict[int, float | None]) -> int:
    if not thresholds:
        return 0
    ids = list(thresholds)
    cursor.execute(_COUNT_SQL, {"model": model_id, "ids": ids, "thresholds": [thresholds[i] for i in ids]})
    rows = cursor.fetchall()
    cursor.execute(_UPSERT_SQL, {
        "model": model_id, "ids": [r[0] for r in rows], "counts": [r[2] for r in rows], "thresholds": [r[1] for r in rows],
    })
    return len(rows)


def refresh(model_id: int, label_ids: Iterable[int] | None = None) -> int:
    """Recount exactly the given labels (all labels if None) under the model; returns how many.

    Each label costs an index range scan over its rows above the threshold (the
    ``(label, model, -score)`` index), so a full refresh reads each shown row once."""
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor, model_id)
        return _recount(cursor, int(model_id), effective_thresholds(model_id, label_ids))


def refresh_all(label_ids: Iterable[int] | None = None) -> int:
    """:func:`refresh` under every model that has label rows or counts."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM archive_embeddingmodel m WHERE EXISTS (SELECT 1 FROM archive_labelcount c WHERE c.model_id = m.id)"
            " OR EXISTS (SELECT 1 FROM archive_artworklabel al WHERE al.model_id = m.id AND al.rank = 1)"
        )
        models = [r[0] for r in cursor.fetchall()]
    labels = None if label_ids is None else list(label_ids)
    return sum(refresh(m, labels) for m in models)


def stale_labels(cursor, model_id: int) -> dict[int, float | None]:
    """Labels whose count row is missing or was made with another threshold: ``{id: threshold}``."""
    cursor.execute(
        f"SELECT l.id, {THRESHOLD_SQL} AS thr FROM archive_label l"
        " LEFT JOIN archive_labelcount lc ON lc.label_id = l.id AND lc.model_id = %(model)s"
        f" WHERE lc.id IS NULL OR lc.threshold IS DISTINCT FROM {THRESHOLD_SQL}",
        {"fixed": fixed_threshold(), "model": int(model_id)},
    )
    return dict(cursor.fetchall())


def refresh_stale(model_id: int) -> int:
    """Recount the labels whose stored count is missing or out of date (threshold changed)."""
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor, model_id)
        return _recount(cursor, int(model_id), stale_labels(cursor, model_id))


def _adjust(model_id: int, artwork_ids: Sequence[int], sign: int) -> None:
    ids = [int(i) for i in artwork_ids]
    if not ids:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor, model_id)  # held until the caller's transaction ends
        if sign < 0:
            # Before this transaction changed anything: recount what is stale from committed rows.
            # (After the write it would count this batch's new rows twice.)
            _recount(cursor, int(model_id), stale_labels(cursor, model_id))
        cursor.execute(_DELTA_SQL, {"sign": sign, "model": int(model_id), "artworks": ids})


def rows_removed(model_id: int, artwork_ids: Sequence[int] | None) -> None:
    """Call inside the writer's transaction *before* deleting these artworks' rows of the model
    (``None``: all of the model's rows)."""
    if artwork_ids is None:
        with transaction.atomic(), connection.cursor() as cursor:
            _lock(cursor, model_id)
            cursor.execute(
                "UPDATE archive_labelcount lc SET updated_at = now(), count = (SELECT count(*) FROM archive_labeldecision d"
                " WHERE d.label_id = lc.label_id AND d.decision IN ('added', 'accepted')) WHERE lc.model_id = %s"
                # the rows of curator-trained labels (rank 0) are not deleted with the top-k rows
                ' AND lc.label_id NOT IN (SELECT id FROM archive_label WHERE "group" = %s)',
                [int(model_id), TRAINED_GROUP],
            )
        return
    _adjust(model_id, artwork_ids, -1)


def rows_added(model_id: int, artwork_ids: Sequence[int]) -> None:
    """Call inside the writer's transaction *after* writing these artworks' rows of the model."""
    _adjust(model_id, artwork_ids, +1)


def counts(model_id: int) -> dict[int, int]:
    """``{label_id: count}`` as stored for the model (one small indexed read)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT label_id, count FROM archive_labelcount WHERE model_id = %s", [int(model_id)])
        return dict(cursor.fetchall())


def stored(model_id: int, label_id: int) -> tuple[int, float | None] | None:
    """``(count, threshold it was made with)`` of one label, or None when not counted yet."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count, threshold FROM archive_labelcount WHERE model_id = %s AND label_id = %s", [int(model_id), int(label_id)])
        row = cursor.fetchone()
    return (int(row[0]), row[1]) if row else None


def count_now(model_id: int, label_id: int, threshold: float | None) -> int:
    """One label's count computed now (not stored), e.g. while its stored count is stale."""
    with connection.cursor() as cursor:
        cursor.execute(_COUNT_SQL, {"model": int(model_id), "ids": [int(label_id)], "thresholds": [threshold]})
        return int(cursor.fetchone()[2])
