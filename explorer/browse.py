"""Label browsing: published labels with counts, a label's artworks ranked by score (keyset pages),
and the labels shown on one artwork. Curator decisions override machine labels: a rejected label is
hidden, an added one is shown."""
from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Count
from django.db.models.functions import Lower

from archive import iconclass_rows, label_counts as stored_counts
from archive.models import Artwork, ArtworkLabel, Label, LabelCount, LabelDecision
from archive.models.labels import ICONCLASS_GROUP

from .models_state import active_model, display_artworks

PAGE_SIZE = 48

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
    return labels.order_by("group", Lower("name"), "name")


def label_groups() -> list[str]:
    return list(Label.objects.filter(published=True).values_list("group", flat=True).distinct().order_by("group"))


def thresholds(labels, model_id: int | None) -> dict[int, float | None]:
    """Effective display threshold of each label under the model (see archive.label_counts)."""
    if model_id is None:
        return {label.pk: label.threshold for label in labels}
    return stored_counts.effective_thresholds(model_id, [label.pk for label in labels])


def label_counts(model_id: int | None) -> dict[int, int]:
    """Artworks shown under each label: the stored counts (``archive.label_counts``), one small
    read. Without a model only curator-added/accepted artworks are shown, counted from the
    decisions."""
    if model_id is not None:
        return stored_counts.counts(model_id)
    return dict(
        LabelDecision.objects.filter(decision__in=[ADDED, ACCEPTED]).values("label_id").annotate(n=Count("id")).values_list("label_id", "n")
    )


_UNSET = object()


def label_count(label: Label, model_id: int | None, threshold=_UNSET) -> int:
    """Artworks shown under one label (the label page's headline): the stored count while it was
    made with the label's current threshold, else counted now (an index range scan over the
    label's rows above the threshold; the next label batch or decision stores it again)."""
    if model_id is None:
        return LabelDecision.objects.filter(label=label, decision__in=[ADDED, ACCEPTED]).count()
    if threshold is _UNSET:
        threshold = thresholds([label], model_id)[label.pk]
    row = stored_counts.stored(model_id, label.pk)
    if row is not None and row[1] == threshold:
        return row[0]
    return stored_counts.count_now(model_id, label.pk, threshold)


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


def artwork_labels(
    artwork: Artwork, *, model_id: int | None, include_rejected: bool = False, include_drafts: bool = False
) -> list[ShownLabel]:
    """Labels shown on an artwork: machine labels above their threshold unless rejected, plus the
    ones curators added. Only published labels, unless ``include_drafts``. With
    ``include_rejected`` (curator view) rejected ones come back too, with decision "rejected"."""
    decisions = {d.label_id: d.decision for d in LabelDecision.objects.filter(artwork=artwork)}
    labels = Label.objects.all() if include_drafts else Label.objects.filter(published=True)
    shown: dict[int, ShownLabel] = {}
    if model_id is not None:
        rows = list(
            ArtworkLabel.objects.filter(artwork=artwork, model_id=model_id, label__in=labels)
            .select_related("label")
            .order_by("-score")
        )
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
    for label in labels.filter(pk__in=added_ids):
        shown[label.pk] = ShownLabel(label, None, decisions[label.pk])
    return sorted(shown.values(), key=lambda s: (s.decision not in (ADDED, ACCEPTED), -(s.score or 0.0)))


def _recount(label: Label, artwork: Artwork | None = None) -> None:
    """Store the label's count again under every model that counts it (after a decision); a label
    mapped to Iconclass also rewrites the artwork's Iconclass rows (and their counts)."""
    model_ids = set(LabelCount.objects.filter(label=label).values_list("model_id", flat=True))
    model = active_model()
    if model is not None:
        model_ids.add(model.pk)
    for model_id in sorted(model_ids):
        stored_counts.refresh(model_id, [label.pk])
        if artwork is not None and label.notation and label.group != ICONCLASS_GROUP:
            iconclass_rows.derive(model_id, [artwork.pk])


def decide(artwork: Artwork, label: Label, decision: str, user) -> LabelDecision | None:
    """Record (or clear, with decision "clear") a curator's decision on one artwork's label; the
    label's stored count follows in the same transaction."""
    if decision != "clear" and decision not in LabelDecision.Decision.values:
        raise ValueError(f"unknown decision {decision!r}: use accepted, rejected, added or clear")
    with transaction.atomic():
        if decision == "clear":
            LabelDecision.objects.filter(artwork=artwork, label=label).delete()
            row = None
        else:
            row, _ = LabelDecision.objects.update_or_create(
                artwork=artwork, label=label,
                defaults={"decision": decision, "user": user if user and user.is_authenticated else None},
            )
        _recount(label, artwork)
    return row


@dataclass
class IconclassContext:
    """What a label page shows of Iconclass: the notation and its link, the broader subjects
    (root first), the narrower ones with their counts, and how the label relates to the others."""

    notation: str
    uri: str
    chain: list  # broader Iconclass labels, root first (not the label itself)
    children: list  # [(label, count)] narrower Iconclass subjects, by notation
    subject: Label | None  # the Iconclass label a vocabulary label is mapped to
    mapped: list  # vocabulary labels mapped to this Iconclass subject


def iconclass_context(label: Label, model_id: int | None) -> IconclassContext | None:
    """None for a label without a notation."""
    if not label.notation:
        return None
    if label.group != ICONCLASS_GROUP:
        subject = Label.objects.filter(group=ICONCLASS_GROUP, notation=label.notation, published=True).first()
        return IconclassContext(label.notation, label.iconclass_uri, [], [], subject, [])
    chain, seen, parent_id = [], {label.pk}, label.parent_id
    while parent_id is not None and parent_id not in seen:  # a handful of levels
        parent = Label.objects.filter(pk=parent_id).only("id", "slug", "name", "notation", "parent_id", "group").first()
        if parent is None:
            break
        chain.append(parent)
        seen.add(parent.pk)
        parent_id = parent.parent_id
    counts = label_counts(model_id)
    children = [(c, counts.get(c.pk, 0)) for c in label.children.filter(published=True).order_by("notation")]
    mapped = list(Label.objects.filter(notation=label.notation, published=True).exclude(group=ICONCLASS_GROUP).order_by("name"))
    return IconclassContext(label.notation, label.iconclass_uri, chain[::-1], children, None, mapped)
