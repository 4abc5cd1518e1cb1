"""Curator thresholds across a model switch.

``Label.threshold`` is a cosine score in the units of the **active** model (what every page and
query compares against). Cosines of two models are not comparable, so when a new model becomes
active each curator threshold is carried over by its meaning: the same z-score under the label's
score statistics (:mod:`.stats`), ``t_new = mean_new + (t_old - mean_old) / std_old * std_new``,
i.e. it keeps the label shown on about the same share of the archive. The old value is kept on
the old model's ``LabelEmbedding.threshold``; where statistics are missing on either side the new
model's kept value is restored if there is one, else the threshold is cleared and the label's
derived threshold applies.
"""
from __future__ import annotations

from archive.models import Label, LabelEmbedding
from archive.models.labels import TRAINED_GROUP


def convert(threshold: float, old: LabelEmbedding | None, new: LabelEmbedding | None) -> float | None:
    """``threshold`` (old model's units) in the new model's units, or None without statistics."""
    if old is None or new is None:
        return None
    if old.score_mean is None or new.score_mean is None or not old.score_std or new.score_std is None:
        return None
    return float(new.score_mean + (threshold - old.score_mean) / old.score_std * new.score_std)


def carry_thresholds(old_model, new_model) -> dict[str, int]:
    """Move every curator threshold from ``old_model``'s units to ``new_model``'s (call it in the
    transaction that activates ``new_model``). Returns counts: converted, restored, cleared."""
    # A curator-trained label's threshold is a probability of its classifier, not a cosine: not converted.
    labels = list(Label.objects.filter(threshold__isnull=False).exclude(group=TRAINED_GROUP).only("id", "threshold"))
    counts = {"converted": 0, "restored": 0, "cleared": 0}
    if not labels:
        return counts
    ids = [label.pk for label in labels]
    old = {le.label_id: le for le in LabelEmbedding.objects.filter(model=old_model, label_id__in=ids)}
    new = {le.label_id: le for le in LabelEmbedding.objects.filter(model=new_model, label_id__in=ids)}
    kept = []
    for label in labels:
        previous = old.get(label.pk)
        if previous is not None:
            previous.threshold = label.threshold
            kept.append(previous)
        value = convert(label.threshold, previous, new.get(label.pk))
        if value is not None:
            counts["converted"] += 1
        elif new.get(label.pk) is not None and new[label.pk].threshold is not None:
            value = new[label.pk].threshold
            counts["restored"] += 1
        else:
            counts["cleared"] += 1
        label.threshold = value
    LabelEmbedding.objects.bulk_update(kept, ["threshold"], batch_size=1000)
    Label.objects.bulk_update(labels, ["threshold"], batch_size=1000)
    return counts
