"""Label browsing: published labels with counts, a label's artworks ranked by score (keyset pages),
and the labels shown on one artwork. Curator decisions override machine labels: a rejected label is
hidden, an added one is shown."""
from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from archive.models import Artwork, ArtworkLabel, Label, LabelDecision, LabelEmbedding

from .models_state import active_model, display_artworks

PAGE_SIZE = 48
COUNTS_CACHE_SECONDS = 300

REJECTED = LabelDecision.Decision.REJECTED
ADDED = LabelDecision.Decision.ADDED
ACCEPTED = LabelDecision.Decision.ACCEPTED


class BadCursor(ValueError):
    """A keyset cursor that does not parse."""


def encode_cursor(score: float, row_id: int) -> str:
    return f"{score!r}_{row_id}"


def decode_cursor(cursor: str | None) -> tuple[float, int] | None:
    if not cursor:
        return None
    try:
        score, _, row_id = cursor.rpartition("_")
        value = float(score), int(row_id)
    except (TypeError, ValueError):
        raise BadCursor(f"bad cursor {cursor!r}: expected SCORE_ID as returned in 'next'") from None
    if value[0] != value[0] or value[0] in (float("inf"), float("-inf")) or not 0 <= value[1] < 2**63:
        raise BadCursor(f"bad cursor {cursor!r}")
    return value


def published_labels(group: str = "", name: str = ""):
    labels = Label.objects.filter(published=True)
    if group:
        labels = labels.filter(group=group)
    if name:
        labels = labels.filter(name__icontains=name)
    return labels.order_by("group", "name")


def label_groups() -> list[str]:
    return list(Label.objects.filter(published=True).values_list("group", flat=True).distinct().order_by("group"))


def _global_threshold():
    value = getattr(settings, "LABEL_THRESHOLD", None)
    return float(value) if value is not None else None


# The threshold a label is shown at, first that applies (the labeling engine's rule):
# Label.threshold, settings.LABEL_THRESHOLD, LabelEmbedding.default_threshold (derived), none.
THRESHOLD_SQL = (
    "coalesce(l.threshold, %s::float8, (SELECT le.default_threshold FROM archive_labelembedding le"
    " WHERE le.label_id = l.id AND le.model_id = %s), '-infinity'::float8)"
)


def thresholds(labels, model_id: int | None) -> dict[int, float | None]:
    """Effective display threshold of each label under the model."""
    derived = {}
    if model_id is not None:
        derived = dict(
            LabelEmbedding.objects.filter(model_id=model_id, label__in=[l.pk for l in labels]).values_list("label_id", "default_threshold")
        )
    fixed = _global_threshold()
    out = {}
    for label in labels:
        if label.threshold is not None:
            out[label.pk] = label.threshold
        elif fixed is not None:
            out[label.pk] = fixed
        else:
            out[label.pk] = derived.get(label.pk)
    return out


def label_counts(model_id: int | None) -> dict[int, int]:
    """Artworks shown under each published label (machine rows above threshold, minus rejected,
    plus added). Cached for a few minutes: on millions of rows this is a full scan."""
    key = f"explorer:label_counts:{model_id}"
    counts = cache.get(key)
    if counts is not None:
        return counts
    counts: dict[int, int] = {}
    with connection.cursor() as cursor:
        if model_id is not None:
            cursor.execute(
                """
                SELECT al.label_id, count(*) FROM archive_artworklabel al
                JOIN archive_label l ON l.id = al.label_id
                WHERE al.model_id = %s AND l.published AND al.score >= """ + THRESHOLD_SQL + """
                  AND NOT EXISTS (SELECT 1 FROM archive_labeldecision d WHERE d.label_id = al.label_id
                                  AND d.artwork_id = al.artwork_id)
                GROUP BY al.label_id
                """,
                [model_id, _global_threshold(), model_id],
            )
            counts.update({label_id: n for label_id, n in cursor.fetchall()})
        cursor.execute("SELECT label_id, count(*) FROM archive_labeldecision WHERE decision IN ('added', 'accepted') GROUP BY label_id")
        for label_id, n in cursor.fetchall():
            counts[label_id] = counts.get(label_id, 0) + n
    cache.set(key, counts, COUNTS_CACHE_SECONDS)
    return counts


_UNSET = object()


def label_count(label: Label, model_id: int | None, threshold=_UNSET) -> int:
    """Artworks shown under one label (the label page's headline).

    Machine rows above the threshold are counted from the ``(label, model, -score)`` index alone
    (an index-only scan: no heap visits, ~20k rows per label at 20M rows); the few artworks curators
    decided on are then corrected for with a small join."""
    curated = LabelDecision.objects.filter(label=label, decision__in=[ADDED, ACCEPTED]).count()
    if model_id is None:
        return curated
    if threshold is _UNSET:
        threshold = thresholds([label], model_id)[label.pk]
    above = " AND al.score >= %s" if threshold is not None else ""
    extra = [threshold] if threshold is not None else []
    with connection.cursor() as c:
        c.execute(
            "SELECT count(*) FROM archive_artworklabel al WHERE al.label_id = %s AND al.model_id = %s" + above,
            [label.pk, model_id, *extra],
        )
        machine = c.fetchone()[0]
        c.execute(
            "SELECT count(*) FROM archive_labeldecision d JOIN archive_artworklabel al ON al.artwork_id = d.artwork_id"
            " AND al.label_id = d.label_id AND al.model_id = %s WHERE d.label_id = %s" + above,
            [model_id, label.pk, *extra],
        )
        decided = c.fetchone()[0]
    return machine - decided + curated


def forget_counts() -> None:
    model = active_model()
    cache.delete(f"explorer:label_counts:{model.pk if model else None}")


@dataclass
class LabelPage:
    items: list  # [(artwork, score or None, added: bool)]
    next_cursor: str | None


def label_page(
    label: Label, *, model_id: int | None, cursor: str | None = None, limit: int = PAGE_SIZE, threshold=_UNSET
) -> LabelPage:
    """One page of a label's artworks, best score first, keyset-paginated on (score, row id).

    The first page starts with the artworks curators added or confirmed by hand; machine-labelled
    artworks follow, above the label's threshold and without the ones curators decided on.
    """
    after = decode_cursor(cursor)
    limit = max(1, min(int(limit), 200))
    items: list = []
    if after is None:
        curated_ids = list(
            LabelDecision.objects.filter(label=label, decision__in=[ADDED, ACCEPTED])
            .order_by("-created_at").values_list("artwork_id", flat=True)[:200]
        )
        if curated_ids:
            found = display_artworks(curated_ids)
            items.extend((found[a], None, True) for a in curated_ids if a in found)
    if model_id is None:
        return LabelPage(items, None)
    if threshold is _UNSET:
        threshold = thresholds([label], model_id)[label.pk]
    sql = [
        "SELECT al.id, al.artwork_id, al.score FROM archive_artworklabel al",
        "WHERE al.label_id = %s AND al.model_id = %s",
    ]
    params: list = [label.pk, model_id]
    if threshold is not None:
        sql.append("AND al.score >= %s")
        params.append(threshold)
    if after is not None:
        sql.append("AND al.score <= %s AND (al.score < %s OR al.id < %s)")
        params += [after[0], after[0], after[1]]
    sql.append(
        "AND NOT EXISTS (SELECT 1 FROM archive_labeldecision d WHERE d.label_id = al.label_id"
        " AND d.artwork_id = al.artwork_id)"
        " ORDER BY al.score DESC, al.id DESC LIMIT %s"
    )
    params.append(limit + 1)
    with connection.cursor() as c:
        c.execute(" ".join(sql), params)
        rows = c.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    artworks = display_artworks(r[1] for r in rows)
    items.extend((artworks[r[1]], r[2], False) for r in rows if r[1] in artworks)
    next_cursor = encode_cursor(rows[-1][2], rows[-1][0]) if more and rows else None
    return LabelPage(items, next_cursor)


@dataclass
class ShownLabel:
    label: Label
    score: float | None
    decision: str  # "", accepted, added


def artwork_labels(artwork: Artwork, *, model_id: int | None, include_rejected: bool = False) -> list[ShownLabel]:
    """Labels shown on an artwork: machine labels above their threshold unless rejected, plus the
    ones curators added. With ``include_rejected`` (curator view) rejected ones come back too,
    with decision "rejected"."""
    decisions = {d.label_id: d.decision for d in LabelDecision.objects.filter(artwork=artwork)}
    shown: dict[int, ShownLabel] = {}
    if model_id is not None:
        rows = (
            ArtworkLabel.objects.filter(artwork=artwork, model_id=model_id, label__published=True)
            .select_related("label")
            .order_by("-score")
        )
        rows = list(rows)
        limits = thresholds([r.label for r in rows], model_id)
        for row in rows:
            threshold = limits[row.label_id]
            if threshold is not None and row.score < threshold and decisions.get(row.label_id) != ACCEPTED:
                continue
            decision = decisions.get(row.label_id, "")
            if decision == REJECTED and not include_rejected:
                continue
            shown[row.label_id] = ShownLabel(row.label, row.score, decision)
    added_ids = [label_id for label_id, d in decisions.items() if d in (ADDED, ACCEPTED) and label_id not in shown]
    if include_rejected:
        added_ids += [label_id for label_id, d in decisions.items() if d == REJECTED and label_id not in shown]
    for label in Label.objects.filter(pk__in=added_ids):
        shown[label.pk] = ShownLabel(label, None, decisions[label.pk])
    return sorted(shown.values(), key=lambda s: (s.decision not in (ADDED, ACCEPTED), -(s.score or 0.0)))


def decide(artwork: Artwork, label: Label, decision: str, user) -> LabelDecision | None:
    """Record (or clear, with decision "clear") a curator's decision on one artwork's label."""
    if decision == "clear":
        LabelDecision.objects.filter(artwork=artwork, label=label).delete()
        forget_counts()
        return None
    if decision not in LabelDecision.Decision.values:
        raise ValueError(f"unknown decision {decision!r}: use accepted, rejected, added or clear")
    row, _ = LabelDecision.objects.update_or_create(
        artwork=artwork, label=label, defaults={"decision": decision, "user": user if user and user.is_authenticated else None}
    )
    forget_counts()
    return row
