"""Switching the active embedding model without loss.

A new model is embedded (and labelled) beside the active one; the explorer keeps reading the
active model meanwhile. The new model becomes active once its coverage is complete:

* every eligible artwork (an ingested image) has an embedding under it, or is a recorded failure
  (a ``JobError``) of one of its embed jobs, so one unreadable image never blocks the switch;
* when another model is active (the explorer has labels to lose): every artwork embedded under it
  has its labels (a rank-1 row), or is a recorded failure of one of its label jobs. Checked on
  the rows, not on job states.

Curator decisions (``LabelDecision``) do not depend on the model. Curator thresholds are in the
active model's cosine units and are carried over at the switch (:mod:`workers.labeling.thresholds`).
Why a model is not activated yet is returned as a sentence, for the job's message.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet

from archive.models import Artwork, ArtworkEmbedding, ArtworkLabel, EmbeddingModel, Job, JobError
from workers.ml.registry import activate, active_model

log = logging.getLogger(__name__)

SAMPLE = 5  # artwork ids named in a reason


@dataclass(frozen=True)
class Activation:
    """The outcome of :func:`maybe_activate`: ``active`` afterwards, else why not (``waiting_for``
    is ``embeddings`` or ``labels``)."""

    active: bool
    reason: str = ""
    waiting_for: str = ""
    thresholds: dict | None = None

    def __bool__(self) -> bool:
        return self.active


def _failed(kind: str, model_id: int) -> QuerySet:
    """Failures recorded by this model's jobs of ``kind`` (its switch's jobs)."""
    return JobError.objects.filter(job__kind=kind, job__params__model_id=model_id, artwork=OuterRef("pk"))


def missing_embeddings(model: EmbeddingModel) -> QuerySet:
    """Eligible artworks with neither an embedding under ``model`` nor a recorded failure of its embed jobs."""
    from workers.embedding import candidates

    return (
        Artwork.objects.filter(pk__in=candidates({"model_id": model.pk}))
        .exclude(Exists(ArtworkEmbedding.objects.filter(model_id=model.pk, artwork=OuterRef("pk"))))
        .exclude(Exists(_failed(Job.Kind.EMBED, model.pk)))
    )


def missing_labels(model: EmbeddingModel) -> QuerySet:
    """Artworks embedded under ``model`` with neither labels under it (their rank-1 row) nor a
    recorded failure of its label jobs."""
    return (
        Artwork.objects.filter(Exists(ArtworkEmbedding.objects.filter(model_id=model.pk, artwork=OuterRef("pk"))))
        .exclude(Exists(ArtworkLabel.objects.filter(model_id=model.pk, rank=1, artwork=OuterRef("pk"))))
        .exclude(Exists(_failed(Job.Kind.LABEL, model.pk)))
    )


def _describe(queryset: QuerySet) -> tuple[int, str]:
    sample = list(queryset.order_by("pk").values_list("pk", flat=True)[:SAMPLE])
    if not sample:
        return 0, ""
    count = queryset.count()
    more = ", ..." if count > len(sample) else ""
    return count, f"{count} (e.g. artworks {', '.join(map(str, sample))}{more})"


def coverage_complete(model: EmbeddingModel) -> bool:
    return not missing_embeddings(model).exists()


def labels_complete(model: EmbeddingModel) -> bool:
    return not missing_labels(model).exists()


def blockers(model: EmbeddingModel, *, require_labels: bool) -> tuple[str, str]:
    """``(waiting_for, reason)``; both empty when ``model`` may become active."""
    count, text = _describe(missing_embeddings(model))
    if count:
        return "embeddings", (
            f"{text} eligible artworks have no embedding under {model.key} and no recorded failure; "
            f"run: manage.py embed --model {model.key} --activate-when-complete"
        )
    if require_labels:
        count, text = _describe(missing_labels(model))
        if count:
            return "labels", (
                f"{text} artworks embedded under {model.key} have no labels under it and no recorded failure; "
                f"run: manage.py label --model {model.key}"
            )
    return "", ""


def maybe_activate(model: EmbeddingModel | int, *, require_labels: bool | None = None) -> Activation:
    """Make ``model`` the active one if it is ready (see the module docstring). Labels are required
    when another model is active (default). Curator thresholds move to the new model's units."""
    from workers.labeling.thresholds import carry_thresholds

    if not isinstance(model, EmbeddingModel):
        model = EmbeddingModel.objects.get(pk=model)
    current = active_model()
    if current is not None and current.pk == model.pk:
        return Activation(True)
    if require_labels is None:
        require_labels = current is not None
    waiting_for, reason = blockers(model, require_labels=require_labels)
    if waiting_for:
        return Activation(False, f"model {model.key} is not active yet: {reason}", waiting_for)
    with transaction.atomic():
        carried = carry_thresholds(current, model) if current is not None else None
        activate(model)
    log.info("activated embedding model %s (thresholds: %s)", model.key, carried)
    return Activation(True, thresholds=carried)


def describe_activation(model: EmbeddingModel, outcome: Activation) -> str:
    if not outcome.active:
        return outcome.reason
    text = f"model {model.key} is now the active model"
    carried = outcome.thresholds or {}
    if any(carried.values()):
        text += (
            f"; curator thresholds: {carried.get('converted', 0)} converted to its units, "
            f"{carried.get('restored', 0)} restored, {carried.get('cleared', 0)} cleared (no statistics: derived thresholds apply)"
        )
    return text


def activate_if_requested(model: EmbeddingModel | int) -> Activation | None:
    """For the label stage's finish hook: if an embed job asked for ``model`` to be activated
    (``--activate-when-complete``), activate it when it is ready. None when nobody asked."""
    model_id = model.pk if isinstance(model, EmbeddingModel) else int(model)
    request = (
        Job.objects.filter(kind=Job.Kind.EMBED, state=Job.State.DONE, params__model_id=model_id, params__activate_when_complete=True)
        .order_by("-finished_at")
        .first()
    )
    if request is None:
        return None
    model = EmbeddingModel.objects.get(pk=model_id)
    if model.state == EmbeddingModel.State.ACTIVE:
        return Activation(True)
    if model.activated_at and request.finished_at and request.finished_at < model.activated_at:
        return None  # that request was fulfilled before; the model was retired since
    return maybe_activate(model)


# --- The pipeline's steps (see workers.pipeline) --------------------------------------------------

def after_embed(job: Job) -> str | None:
    """After an embed job: if it asked for its model to be activated when complete, do so once it
    is ready. When another model is active the new one first needs its labels, so a label job for
    it is started here; that job's end activates it. Returns what happened, for the job's message."""
    from workers.jobs import launch

    if not job.params.get("activate_when_complete"):
        return None
    model = EmbeddingModel.objects.get(pk=job.params["model_id"])
    outcome = maybe_activate(model)
    if outcome or outcome.waiting_for != "labels":
        return describe_activation(model, outcome)
    running = Job.objects.filter(kind=Job.Kind.LABEL, params__model_id=model.pk).exclude(state__in=Job.FINAL_STATES).first()
    if running is None:
        running = launch("label", {"model": model.key}, mode="missing")
        log.info("model %s embedded; label job %s started, the model is activated when it is done", model.key, running.pk)
    return (f"model {model.key}: every artwork is embedded; its labels are computed by job {running.pk}, "
            "and it becomes the active model when that job ends")


def after_label(job: Job) -> str | None:
    """After a label job: activate its model if an embed job asked for it and its coverage is now
    complete; say why not otherwise."""
    outcome = activate_if_requested(job.params["model_id"])
    if outcome is None:
        return None
    return describe_activation(EmbeddingModel.objects.get(pk=job.params["model_id"]), outcome)
