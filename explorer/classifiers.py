"""The work behind the classifier pages and API: describe a classifier and its versions, start
its training and apply jobs (the jobs themselves are :mod:`workers.classifiers`)."""
from __future__ import annotations

from archive.models import Classifier, ClassifierVersion, EmbeddingModel, Job
from workers import jobs
from workers.classifiers import train_stage
from workers.classifiers.curating import example_counts
from workers.classifiers.fit import MIN_PER_CLASS


def describe_version(version: ClassifierVersion | None, *, full: bool = False) -> dict | None:
    if version is None:
        return None
    out = {
        "id": version.pk, "number": version.number, "state": version.state, "message": version.message,
        "model": version.model.key, "untrained_model": bool(version.model.untrained), "seed": version.seed,
        "target_precision": version.target_precision, "threshold": version.threshold, "job": version.job_id,
        "created_at": version.created_at.isoformat(),
    }
    m = version.metrics or {}
    out["multiclass"] = bool(version.class_ids)
    out["test_f1"] = m.get("macro_f1") if version.class_ids else ((m.get("classes") or {}).get("positive") or {}).get("f1")
    if version.class_ids:
        out["thresholds"] = m.get("thresholds")
        # the same in class order (a JSON object's key order does not survive the database)
        out["class_thresholds"] = [[n, (m.get("thresholds") or {}).get(n)] for n in m.get("class_names", [])]
    if full:
        out["metrics"] = m
    else:
        out["positive"] = (m.get("classes") or {}).get("positive")
    return out


def describe(classifier: Classifier, *, versions: bool = True) -> dict:
    counts = example_counts(classifier)
    out = {
        "id": classifier.pk, "name": classifier.label.name, "slug": classifier.label.slug, "label_id": classifier.label_id,
        "description": classifier.label.description, "published": classifier.label.published,
        "target_precision": classifier.target_precision, "seed": classifier.seed,
        "multiclass": classifier.multiclass,
        "classes": [
            {"id": c.pk, "name": c.label.name, "slug": c.label.slug, "label_id": c.label_id, "key": c.position + 1,
             "published": c.label.published, "examples": counts.get(c.label.name, 0)}
            for c in classifier.classes.select_related("label")
        ] if classifier.multiclass else [],
        "examples": counts, "needed_per_class": MIN_PER_CLASS,
        "ready_to_train": bool(counts) and min(counts.values()) >= MIN_PER_CLASS,
        "applied_version": describe_version(classifier.applied_version),
        "created_by": classifier.created_by.get_username() if classifier.created_by else None,
        "created_at": classifier.created_at.isoformat(),
    }
    if versions:
        out["versions"] = [describe_version(v) for v in classifier.versions.select_related("model").order_by("-number")]
    return out


def train(classifier: Classifier, *, apply: bool = False, user=None) -> Job:
    """Start the training job (ValueError when it cannot start, e.g. no active model)."""
    return train_stage.start({"classifier_id": classifier.pk, "apply": apply}, user=user)


def version_of(classifier: Classifier, number: int | None) -> ClassifierVersion:
    """The given version, or the newest trained one under the active model; ValueError if none."""
    versions = classifier.versions.select_related("model")
    if number is not None:
        version = versions.filter(number=int(number)).first()
        if version is None:
            raise ValueError(f"this classifier has no version {number}")
        return version
    version = versions.filter(state=ClassifierVersion.State.READY, model__state=EmbeddingModel.State.ACTIVE).order_by("-number").first()
    if version is None:
        raise ValueError("this classifier has no trained version under the active model: train it first")
    return version


def apply(classifier: Classifier, number: int | None = None, *, user=None) -> Job:
    """Start the job that applies a version (default: the newest trained one) to the archive;
    applying an older version is the roll-back. ValueError when it cannot start."""
    version = version_of(classifier, number)
    if version.state != ClassifierVersion.State.READY:
        raise ValueError(f"version {version.number} is not trained: {version.message or version.get_state_display()}")
    job = jobs.launch(Job.Kind.APPLY_CLASSIFIER, {"version_id": version.pk}, mode="all", user=user)
    if job.state == Job.State.FAILED:
        raise ValueError(job.message)
    return job
