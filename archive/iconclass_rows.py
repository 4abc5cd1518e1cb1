"""Iconclass labels of artworks, derived from the vocabulary labels mapped to Iconclass notations.

An artwork on which "Saint John the Baptist" is shown (its machine row at or above the label's
threshold and not rejected, or a curator added or accepted it) gets the Iconclass subject that
label is mapped to, ``11H(JOHN THE BAPTIST)``, and every broader subject up the ``parent``
chain: ``11H`` (saints), ``11`` (Christian religion), ``1`` (Religion and Magic). So a broad
subject's page and count gather everything below it, each artwork once.

The derived rows are ordinary ``ArtworkLabel`` rows of the Iconclass labels (group
``iconclass``) with ``rank`` 0 (outside the top-k) and as score the best score among the labels
that put them there (1.0 where only a curator's decision did). Label pages, artwork labels, the
API, the exports and the stored counts therefore treat them like any other label. They are
rewritten per artwork by the label stage (each batch, in its transaction), by a curator decision
on the artwork, and for a whole model by :func:`derive` without artworks (``manage.py
refresh_label_counts`` and ``load_vocabulary`` do that); the stored counts (``LabelCount``)
follow in the same transaction.
"""
from __future__ import annotations

from typing import Sequence

from django.db import connection, transaction

from archive import label_counts
from archive.models.labels import ICONCLASS_GROUP

# Each mapped label's Iconclass subject and that subject's ancestors: (label_id, iconclass label id).
_CLOSURE = """
WITH RECURSIVE up(src, ic) AS (
  SELECT v.id, i.id FROM archive_label v
    JOIN archive_label i ON i."group" = %(group)s AND i.notation = v.notation AND i.published
   WHERE v."group" <> %(group)s AND v.notation <> '' AND v.published
  UNION
  SELECT up.src, l.parent_id FROM up JOIN archive_label l ON l.id = up.ic
   WHERE l.parent_id IS NOT NULL
)
"""

_INSERT = _CLOSURE + """
, shown AS (
  SELECT al.artwork_id, al.label_id, al.score FROM archive_artworklabel al JOIN archive_label l ON l.id = al.label_id
   WHERE al.model_id = %(model)s AND al.rank > 0 {artworks_al}
     AND l.id IN (SELECT src FROM up)
     AND (al.score >= coalesce({threshold}, '-infinity'::float8)
          OR EXISTS (SELECT 1 FROM archive_labeldecision d WHERE d.label_id = al.label_id
                     AND d.artwork_id = al.artwork_id AND d.decision = 'accepted'))
     AND NOT EXISTS (SELECT 1 FROM archive_labeldecision d WHERE d.label_id = al.label_id
                     AND d.artwork_id = al.artwork_id AND d.decision = 'rejected')
  UNION ALL
  SELECT d.artwork_id, d.label_id, coalesce((SELECT al.score FROM archive_artworklabel al WHERE al.artwork_id = d.artwork_id
         AND al.label_id = d.label_id AND al.model_id = %(model)s), 1.0)
    FROM archive_labeldecision d
   WHERE d.decision IN ('added', 'accepted') {artworks_d} AND d.label_id IN (SELECT src FROM up)
)
INSERT INTO archive_artworklabel AS al (artwork_id, label_id, model_id, score, rank)
SELECT s.artwork_id, up.ic, %(model)s, max(s.score), 0 FROM shown s JOIN up ON up.src = s.label_id
 GROUP BY s.artwork_id, up.ic
ON CONFLICT (artwork_id, model_id, label_id) DO UPDATE SET score = EXCLUDED.score, rank = 0
"""

_DELETE = """
DELETE FROM archive_artworklabel al USING archive_label l
 WHERE l.id = al.label_id AND l."group" = %(group)s AND al.model_id = %(model)s {artworks_al}
"""

# The batch path counts as it writes: the rows a DELETE or INSERT returns adjust the stored counts
# in the same statement (as archive.label_counts' delta, by each count row's own threshold).
_COUNT_CHANGE = """
UPDATE archive_labelcount lc SET count = lc.count + %(sign)s * d.n, updated_at = now()
FROM (SELECT g.label_id, count(*) AS n FROM changed g
      JOIN archive_labelcount c ON c.label_id = g.label_id AND c.model_id = %(model)s
      WHERE g.score >= coalesce(c.threshold, '-infinity'::float8)
        AND NOT EXISTS (SELECT 1 FROM archive_labeldecision dd WHERE dd.label_id = g.label_id AND dd.artwork_id = g.artwork_id)
      GROUP BY g.label_id) d
WHERE lc.model_id = %(model)s AND lc.label_id = d.label_id
"""
_RETURNING = " RETURNING al.label_id, al.artwork_id, al.score"


def _counted(statement: str, *, recursive: bool) -> str:
    """``statement`` (a DELETE or an INSERT ... RETURNING) as a data-modifying CTE whose rows
    adjust the stored counts."""
    if recursive:  # the INSERT starts with the WITH RECURSIVE of the closure: extend that WITH
        head, _, insert = statement.rpartition("INSERT INTO")
        return f"{head}, changed AS (INSERT INTO{insert}{_RETURNING}) {_COUNT_CHANGE}"
    return f"WITH changed AS ({statement}{_RETURNING}) {_COUNT_CHANGE}"


def _sql(template: str, artworks: bool) -> str:
    return template.format(
        artworks_al="AND al.artwork_id = ANY(%(artworks)s)" if artworks else "",
        artworks_d="AND d.artwork_id = ANY(%(artworks)s)" if artworks else "",
        threshold=label_counts.THRESHOLD_SQL,
    )


def derive(model_id: int, artwork_ids: Sequence[int] | None = None) -> int | None:
    """Rewrite the Iconclass rows of these artworks (all artworks if None) under the model from
    their shown mapped labels; the stored counts follow (a batch's adjusted by the rows its
    statements return, a whole model's recounted). Returns the rows written for a whole model
    (None for a batch)."""
    params = {"group": ICONCLASS_GROUP, "model": int(model_id), "fixed": label_counts.fixed_threshold()}
    some = artwork_ids is not None
    if some:
        params["artworks"] = [int(i) for i in artwork_ids]
        if not params["artworks"]:
            return None
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [label_counts.LOCK_NAMESPACE, int(model_id)])
        if some:  # after the delete no row of these artworks conflicts: every returned row is new
            cursor.execute(_counted(_sql(_DELETE, True), recursive=False), params | {"sign": -1})
            cursor.execute(_counted(_sql(_INSERT, True), recursive=True), params | {"sign": 1})
            written = None
        else:
            cursor.execute(_sql(_DELETE, False), params)
            cursor.execute(_sql(_INSERT, False), params)
            written = cursor.rowcount
    if not some:
        label_counts.refresh(model_id, iconclass_label_ids())
    return written


def clear(model_id: int, artwork_ids: Sequence[int] | None = None) -> None:
    """Delete the Iconclass rows of these artworks (all if None) under the model, counts following."""
    params = {"group": ICONCLASS_GROUP, "model": int(model_id)}
    some = artwork_ids is not None
    if some:
        params["artworks"] = [int(i) for i in artwork_ids]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [label_counts.LOCK_NAMESPACE, int(model_id)])
        if some:
            cursor.execute(_counted(_sql(_DELETE, True), recursive=False), params | {"sign": -1})
        else:
            cursor.execute(_sql(_DELETE, False), params)
    if not some:
        label_counts.refresh(model_id, iconclass_label_ids())


def iconclass_label_ids() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute('SELECT id FROM archive_label WHERE "group" = %s', [ICONCLASS_GROUP])
        return [r[0] for r in cursor.fetchall()]


def labelled_models() -> list[int]:
    """Models with machine label rows (the ones whose Iconclass rows :func:`derive` rewrites)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM archive_embeddingmodel m WHERE EXISTS"
            " (SELECT 1 FROM archive_artworklabel al WHERE al.model_id = m.id AND al.rank = 1)"
        )
        return [r[0] for r in cursor.fetchall()]
