"""Classifiers across a model switch: retrained from their stored examples on the new model.

A label job for a model that is not the one a classifier's applied version was trained on (the
label job a switch runs before it activates the new model) retrains each applied classifier on
that model, here, in seconds (figures recomputed before the switch completes), and starts the job
that applies each good new version to the archive under the new model. The old model's rows and
versions stay, so switching back finds them. A pipeline step (see :mod:`workers.pipeline`).
"""
from __future__ import annotations

from archive.models import Classifier, ClassifierVersion, EmbeddingModel, Job

from .training import new_version, train_version


def retrain_for(model: EmbeddingModel, *, user=None) -> dict:
    """Train a new version on ``model`` of every applied classifier whose applied version is on
    another model and start its apply job. Returns {"ready": [...], "failed": [...], "jobs": [...]}."""
    from workers.jobs import launch

    out: dict = {"ready": [], "failed": [], "jobs": []}
    stale = Classifier.objects.select_related("label", "applied_version").filter(applied_version__isnull=False).exclude(
        applied_version__model=model
    )
    for classifier in stale:
        version = train_version(new_version(classifier, model, user=user))
        if version.state != ClassifierVersion.State.READY:
            out["failed"].append(f"{classifier.label.slug}: {version.message}")
            continue
        out["ready"].append(classifier.label.slug)
        out["jobs"].append(launch(Job.Kind.APPLY_CLASSIFIER, {"version_id": version.pk}, mode="all", user=user).pk)
    return out


def retrain_after_label(job: Job) -> str | None:
    """Pipeline step after a label job: retrain the applied classifiers on its model."""
    model = EmbeddingModel.objects.filter(pk=job.params.get("model_id")).first()
    if model is None:
        return None
    out = retrain_for(model, user=job.created_by)
    if not out["ready"] and not out["failed"]:
        return None
    line = f"classifiers retrained on {model.key}: {len(out['ready'])} ready"
    if out["jobs"]:
        line += f" (applied by job{'s' if len(out['jobs']) > 1 else ''} {', '.join(f'#{j}' for j in out['jobs'])})"
    if out["failed"]:
        line += f"; {len(out['failed'])} failed: " + "; ".join(out["failed"])
    return line
