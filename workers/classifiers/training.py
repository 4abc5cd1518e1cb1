"""Train a classifier from its stored examples on one embedding model: a new ClassifierVersion.

The examples' vectors are read through :func:`workers.labeling.store.load_embeddings`; examples
without an embedding under the model are left out and counted in the version's figures (and
message). Too few examples, a single class or no embeddings at all end the version FAILED with a
message saying what to add.
"""
from __future__ import annotations

import numpy as np
from django.db import transaction
from django.db.models import Max

from archive.models import Classifier, ClassifierVersion, EmbeddingModel
from workers.labeling.store import load_embeddings

from .fit import TrainingError, fit
from .fit_multi import fit_multiclass


def new_version(classifier: Classifier, model: EmbeddingModel, *, user=None) -> ClassifierVersion:
    """A TRAINING version numbered after the classifier's last one."""
    with transaction.atomic():
        Classifier.objects.select_for_update().filter(pk=classifier.pk).first()
        number = (ClassifierVersion.objects.filter(classifier=classifier).aggregate(n=Max("number"))["n"] or 0) + 1
        return ClassifierVersion.objects.create(
            classifier=classifier, number=number, model=model, seed=classifier.seed,
            target_precision=classifier.target_precision, created_by=user,
        )


def examples_matrix(classifier: Classifier, model: EmbeddingModel) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(artwork_ids, matrix, y, without_embedding)`` of the classifier's examples under ``model``;
    ``y`` is 1 / 0 (positive / negative), or the class's position for a multi-class classifier."""
    if classifier.multiclass:
        position = dict(classifier.classes.values_list("pk", "position"))
        examples = {a: position[k] for a, k in classifier.examples.values_list("artwork_id", "klass_id")}
        what = "examples of every class"
    else:
        examples = {a: int(bool(p)) for a, p in classifier.examples.values_list("artwork_id", "positive")}
        what = "positive and negative examples"
    if not examples:
        raise TrainingError(f"this classifier has no examples yet: add {what} first")
    ids, matrix = load_embeddings(model.pk, sorted(examples))
    missing = len(examples) - len(ids)
    if len(ids) == 0:
        raise TrainingError(
            f"none of the {len(examples)} examples has an embedding under model {model.key}: embed them first (manage.py embed)"
        )
    y = np.asarray([examples[int(i)] for i in ids], dtype=np.int64)
    return ids, matrix, y, missing


def _fitted(version: ClassifierVersion, fitter):
    """``(fitted, metrics, missing)`` from ``fitter(matrix, y)`` on the version's examples, or
    ``None`` after storing the version FAILED with the reason."""
    classifier, model = version.classifier, version.model
    try:
        _ids, matrix, y, missing = examples_matrix(classifier, model)
        try:
            fitted = fitter(matrix, y)
        except TrainingError as exc:
            if missing:
                raise TrainingError(f"{exc} ({missing} example(s) have no embedding under model {model.key} and were left out)") from None
            raise
    except TrainingError as exc:
        version.state, version.message = ClassifierVersion.State.FAILED, str(exc)
        version.save(update_fields=["state", "message"])
        return None
    metrics = {**fitted.metrics, "without_embedding": missing, "model": model.key, "untrained_model": bool(model.untrained)}
    return fitted, metrics, missing


def _train_multiclass(version: ClassifierVersion) -> ClassifierVersion:
    classes = list(version.classifier.classes.select_related("label").order_by("position"))
    names = [c.label.name for c in classes]
    result = _fitted(version, lambda matrix, y: fit_multiclass(
        matrix, y, names, seed=version.seed, target_precision=version.target_precision))
    if result is None:
        return version
    fitted, metrics, missing = result
    model = version.model
    message = (
        f"test part: accuracy {metrics['accuracy']:.2f} over {len(names)} classes (most frequent class alone: "
        f"{metrics['chance_accuracy']:.2f}), macro F1 {metrics['macro_f1']:.2f}"
    )
    if not metrics["target_reached_on_validation"]:
        short = [n for n in names if not metrics["classes"][n]["target_reached_on_validation"]]
        message += (f" (no threshold reached precision {version.target_precision:.2f} on the validation part for "
                    f"{', '.join(short)}: best F1 used)")
    if missing:
        message += f"; {missing} example(s) without an embedding under {model.key} left out"
    version.weights = [[float(w) for w in row] for row in fitted.weights]
    version.intercepts = [float(b) for b in fitted.intercepts]
    version.thresholds = [float(t) for t in fitted.thresholds]
    version.class_ids = [c.pk for c in classes]
    version.metrics = metrics
    version.state, version.message = ClassifierVersion.State.READY, message
    version.save(update_fields=["weights", "intercepts", "thresholds", "class_ids", "metrics", "state", "message"])
    return version


def train_version(version: ClassifierVersion) -> ClassifierVersion:
    """Fit ``version`` (TRAINING) from its classifier's examples under its model; stores the
    weights, threshold(s) and figures (READY) or the reason (FAILED). Returns the version."""
    if version.classifier.multiclass:
        return _train_multiclass(version)
    result = _fitted(version, lambda matrix, y: fit(matrix, y, seed=version.seed, target_precision=version.target_precision))
    if result is None:
        return version
    fitted, metrics, missing = result
    model = version.model
    m = metrics["classes"]["positive"]
    message = (
        f"test part: precision {m['precision']:.2f}, recall {m['recall']:.2f}, F1 {m['f1']:.2f} "
        f"at threshold {fitted.threshold:.3f}"
    )
    if not metrics["target_reached_on_validation"]:
        message += f" (no threshold reached precision {version.target_precision:.2f} on the validation part: best F1 used)"
    if missing:
        message += f"; {missing} example(s) without an embedding under {model.key} left out"
    version.weights = [float(w) for w in fitted.weights]
    version.intercept = fitted.intercept
    version.threshold = fitted.threshold
    version.metrics = metrics
    version.state, version.message = ClassifierVersion.State.READY, message
    version.save(update_fields=["weights", "intercept", "threshold", "metrics", "state", "message"])
    return version
