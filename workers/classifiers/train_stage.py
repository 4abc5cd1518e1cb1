"""The ``train_classifier`` job (label queue): one batch that trains a new version of a classifier
on an embedding model (the active one unless the request names another), like a layout job: the
same lease, heartbeat and recovery. With ``apply`` set, a good version is applied to the archive
(an ``apply_classifier`` job) when training ends.
"""
from __future__ import annotations

from django.db import transaction

from archive.models import Classifier, ClassifierVersion, EmbeddingModel, Job, JobBatch
from workers import jobs
from workers.jobs import BatchResult, ItemError

from .training import new_version, train_version


def _model(params: dict) -> EmbeddingModel:
    if params.get("model_id"):
        model = EmbeddingModel.objects.filter(pk=int(params["model_id"])).first()
        if model is None:
            raise ValueError(f"no embedding model with id {params['model_id']}")
        return model
    model = EmbeddingModel.objects.filter(state=EmbeddingModel.State.ACTIVE).first()
    if model is None:
        raise ValueError("no embedding model is active: embed the archive first (manage.py embed --activate)")
    return model


def start(params: dict, *, mode: str = "missing", user=None, enqueue: bool = True) -> Job:
    """A training job for ``classifier_id`` (and ``model_id``, ``apply``); raises ValueError."""
    try:
        classifier = Classifier.objects.select_related("label").get(pk=int(params["classifier_id"]))
    except (KeyError, TypeError, ValueError, Classifier.DoesNotExist):
        raise ValueError(f"train_classifier needs the id of an existing classifier (got {params.get('classifier_id')!r})") from None
    model = _model(params)
    with transaction.atomic():
        version = new_version(classifier, model, user=user)
        job = jobs.create_job(
            Job.Kind.TRAIN_CLASSIFIER,
            {"classifier_id": classifier.pk, "label": classifier.label.slug, "version_id": version.pk,
             "version": version.number, "model_id": model.pk, "model": model.key, "apply": bool(params.get("apply"))},
            total=1, user=user,
        )
        version.job = job
        version.save(update_fields=["job"])
        batch = JobBatch.objects.create(job=job, seq=0, item_ids=[])
        if enqueue:
            jobs.enqueue_batches(job, [batch.pk])
    return job


def run_job(job: Job) -> ClassifierVersion:
    """Run a training job in this process through the kernel (tests, commands)."""
    batch = JobBatch.objects.get(job=job, seq=0)
    jobs.run_batch(batch.pk)
    return ClassifierVersion.objects.get(pk=job.params["version_id"])


def run_batch(job: Job, batch: JobBatch, options: dict) -> BatchResult:
    version = ClassifierVersion.objects.select_related("classifier", "model").get(pk=job.params["version_id"])
    if version.state != ClassifierVersion.State.TRAINING:  # a re-run after a lost lease: already trained
        return BatchResult(summary={"state": version.state, "message": version.message})
    version = train_version(version)
    if version.state == ClassifierVersion.State.FAILED:
        return BatchResult(
            errors=[ItemError(None, version.message, item=f"classifier {job.params.get('label')} v{version.number}", payload=job.params)],
            summary={"state": version.state, "message": version.message},
        )
    return BatchResult(summary={"state": version.state, "message": version.message})


def finish(job: Job) -> None:
    """The job's message is the version's; a version that could not be trained fails the job;
    ``apply`` starts the apply job of a good one."""
    version = ClassifierVersion.objects.get(pk=job.params["version_id"])
    if version.state != ClassifierVersion.State.READY:
        Job.objects.filter(pk=job.pk).update(state=Job.State.FAILED, message=version.message or "training failed")
        return
    message = f"version {version.number}: {version.message}"
    if job.params.get("apply"):
        applied = jobs.launch(Job.Kind.APPLY_CLASSIFIER, {"version_id": version.pk}, mode="all", user=job.created_by)
        message += f"; applying as job #{applied.pk}"
    Job.objects.filter(pk=job.pk).update(message=message)


STAGE = jobs.Stage(
    kind="train_classifier",
    queue="label",
    description="Train a curator's classifier from its examples",
    launchable=False,
    batch_size=1,
    run_batch=run_batch,
    start=start,
    finish=finish,
)
