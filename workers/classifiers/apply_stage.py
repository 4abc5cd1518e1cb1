"""The ``apply_classifier`` job (label queue): a trained classifier version scores every artwork
with an embedding under its model, in batches (progress, pause/resume/cancel, recovery like every
stage), writing its label's rows (:mod:`.applying`). At the end the version becomes the
classifier's applied one, its threshold the label's, and the label's stored count is recounted.
Applying an older version again is the roll-back. A multi-class version does the same for the
labels of its classes (each class label gets its class's threshold and is published).
"""
from __future__ import annotations

from django.db import transaction

from archive import label_counts
from archive.models import ArtworkEmbedding, Classifier, ClassifierClass, ClassifierVersion, Label
from workers.jobs import BatchResult, Stage

from .applying import apply_to_artworks


def prepare(params: dict) -> dict:
    version = None
    if params.get("version_id"):
        version = ClassifierVersion.objects.select_related("classifier__label", "model").filter(pk=int(params["version_id"])).first()
        if version is None:
            raise ValueError(f"no classifier version with id {params['version_id']}")
    elif params.get("classifier_id"):
        version = (
            ClassifierVersion.objects.select_related("classifier__label", "model")
            .filter(classifier_id=int(params["classifier_id"]), state=ClassifierVersion.State.READY, model__state="active")
            .order_by("-number").first()
        )
        if version is None:
            raise ValueError("this classifier has no trained version under the active model: train it first")
    else:
        raise ValueError("apply_classifier needs a classifier_id or a version_id")
    if version.state != ClassifierVersion.State.READY:
        raise ValueError(f"version {version.number} is not trained ({version.get_state_display()}): {version.message}")
    class_labels = []
    if version.class_ids:
        labels_of = dict(ClassifierClass.objects.filter(pk__in=version.class_ids).values_list("pk", "label_id"))
        gone = [c for c in version.class_ids if c not in labels_of]
        if gone:
            raise ValueError(f"version {version.number} was trained on classes that no longer exist: train again")
        class_labels = [labels_of[c] for c in version.class_ids]
    return {
        **params, "class_label_ids": class_labels, "version_id": version.pk, "version": version.number, "classifier_id": version.classifier_id,
        "label_id": version.classifier.label_id, "label": version.classifier.label.slug, "model_id": version.model_id,
        "model": version.model.key,
    }


def candidates(params: dict):
    return ArtworkEmbedding.objects.filter(model_id=params["model_id"]).values_list("artwork_id", flat=True)


def completed(params: dict):
    return ArtworkEmbedding.objects.none().values_list("artwork_id", flat=True)  # always scores everything


def reset(params: dict) -> None:
    """Nothing to delete first: each batch replaces the label's rows of its artworks."""


def process(artwork_ids: list[int], params: dict) -> BatchResult:
    version = ClassifierVersion.objects.select_related("classifier").get(pk=params["version_id"])
    summary = apply_to_artworks(version, artwork_ids)
    return BatchResult(done=list(artwork_ids), summary=summary)


def finish(job) -> None:
    version = ClassifierVersion.objects.get(pk=job.params["version_id"])
    class_labels = job.params.get("class_label_ids") or []
    with transaction.atomic():
        Classifier.objects.filter(pk=version.classifier_id).update(applied_version=version)
        if class_labels:
            for label_id, threshold in zip(class_labels, version.thresholds):
                Label.objects.filter(pk=label_id).update(threshold=threshold, published=True)
        else:
            Label.objects.filter(pk=job.params["label_id"]).update(threshold=version.threshold, published=True)
    label_counts.refresh(version.model_id, class_labels or [job.params["label_id"]])


STAGE = Stage(
    kind="apply_classifier",
    queue="label",
    description="Apply a curator's classifier to the archive",
    launchable=False,
    batch_size=5000,
    candidates=candidates,
    completed=completed,
    reset=reset,
    process=process,
    prepare=prepare,
    finish=finish,
)
