"""Which labels are shown: machine top-k rows that pass their threshold, plus curator decisions.

Threshold of a label under a model, first that applies:
  1. ``Label.threshold`` (set by a curator; in the model's cosine units),
  2. ``settings.LABEL_THRESHOLD`` (one global cosine threshold, if configured),
  3. the derived per-label threshold (``LabelEmbedding.default_threshold``, a high percentile of
     the label's scores over the archive, see :mod:`.stats`),
  4. none: every top-k row is shown.
Curator decisions (``LabelDecision``) do not depend on the model: ``rejected`` hides a label on an
artwork whatever its score, ``accepted`` shows it even below the threshold, ``added`` shows it
even when the model did not rank it. Only published labels are shown.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q, Subquery

from archive.models import Artwork, ArtworkLabel, Label, LabelDecision, LabelEmbedding

from .models import model_for_reading
from .stats import calibrated

Decision = LabelDecision.Decision


@dataclass
class ShownLabel:
    label: Label
    score: float | None = None  # cosine similarity under the model (None: curator-added only)
    calibrated: float | None = None  # z-score of the label's scores over the archive
    rank: int | None = None  # 1..k among the artwork's machine labels
    threshold: float | None = None
    decision: str | None = None  # accepted / added, or None for a machine label
    by_curator: bool = False


def threshold_for(label: Label, embedding: LabelEmbedding | None) -> float | None:
    if label.threshold is not None:
        return label.threshold
    configured = getattr(settings, "LABEL_THRESHOLD", None)
    if configured is not None:
        return float(configured)
    return embedding.default_threshold if embedding is not None else None


def visible_labels_for(artwork_ids, model=None, *, include_unpublished: bool = False) -> dict[int, list[ShownLabel]]:
    """``{artwork_id: [ShownLabel, ...]}`` for many artworks in a few queries: curator-added and
    accepted labels first, then machine labels by score."""
    model = model_for_reading(model)
    artwork_ids = [int(i) for i in artwork_ids]
    result: dict[int, list[ShownLabel]] = {i: [] for i in artwork_ids}
    decisions: dict[tuple[int, int], str] = {}
    decided_labels: dict[int, Label] = {}
    for d in LabelDecision.objects.filter(artwork_id__in=artwork_ids).select_related("label"):
        decisions[(d.artwork_id, d.label_id)] = d.decision
        decided_labels[d.label_id] = d.label
    rows = []
    if model is not None:
        rows = list(ArtworkLabel.objects.filter(artwork_id__in=artwork_ids, model=model).select_related("label").order_by("artwork_id", "rank"))
    labels = {r.label_id: r.label for r in rows} | decided_labels
    embeddings = {}
    if model is not None and labels:
        embeddings = {le.label_id: le for le in LabelEmbedding.objects.filter(model=model, label_id__in=list(labels)).only("label_id", "default_threshold", "score_mean", "score_std")}
    seen: set[tuple[int, int]] = set()
    for row in rows:
        label, emb = row.label, embeddings.get(row.label_id)
        if not (label.published or include_unpublished):
            continue
        decision = decisions.get((row.artwork_id, row.label_id))
        if decision == Decision.REJECTED:
            continue
        thr = threshold_for(label, emb)
        if decision is None and thr is not None and row.score < thr:
            continue
        seen.add((row.artwork_id, row.label_id))
        result[row.artwork_id].append(
            ShownLabel(
                label=label,
                score=row.score,
                calibrated=calibrated(row.score, getattr(emb, "score_mean", None), getattr(emb, "score_std", None)),
                rank=row.rank,
                threshold=thr,
                decision=decision,
                by_curator=decision is not None,
            )
        )
    for (artwork_id, label_id), decision in decisions.items():
        label = labels[label_id]
        if decision == Decision.REJECTED or (artwork_id, label_id) in seen or not (label.published or include_unpublished):
            continue
        result[artwork_id].append(ShownLabel(label=label, threshold=threshold_for(label, embeddings.get(label_id)), decision=decision, by_curator=True))
    for shown in result.values():
        shown.sort(key=lambda s: (not s.by_curator, -(s.score if s.score is not None else float("inf")), s.label.name))
    return result


def visible_labels(artwork: Artwork | int, model=None, *, include_unpublished: bool = False) -> list[ShownLabel]:
    """The labels shown for one artwork (see the module docstring for the rules)."""
    artwork_id = artwork.pk if isinstance(artwork, Artwork) else int(artwork)
    return visible_labels_for([artwork_id], model, include_unpublished=include_unpublished)[artwork_id]


def artworks_for_label(label: Label, model=None):
    """Artworks on which ``label`` is shown: curator-added/accepted first, then by score. The
    queryset is annotated with ``label_score`` (None for curator-only rows) and ``by_curator``."""
    model = model_for_reading(model)
    embedding = LabelEmbedding.objects.filter(model=model, label=label).first() if model is not None else None
    thr = threshold_for(label, embedding)
    machine = ArtworkLabel.objects.filter(label=label, model=model) if model is not None else ArtworkLabel.objects.none()
    if thr is not None:
        machine = machine.filter(score__gte=thr)
    curated = LabelDecision.objects.filter(label=label, decision__in=[Decision.ADDED, Decision.ACCEPTED])
    rejected = LabelDecision.objects.filter(label=label, decision=Decision.REJECTED)
    score = ArtworkLabel.objects.filter(label=label, model=model, artwork=OuterRef("pk")).values("score")[:1]
    return (
        Artwork.objects.filter(Q(pk__in=machine.values("artwork_id")) | Q(pk__in=curated.values("artwork_id")))
        .exclude(pk__in=rejected.values("artwork_id"))
        .annotate(label_score=Subquery(score), by_curator=Exists(curated.filter(artwork=OuterRef("pk"))))
        .order_by(F("by_curator").desc(), F("label_score").desc(nulls_last=True), "pk")
    )
