"""Fit and evaluate a multi-class linear classifier on embeddings (several named classes at once,
e.g. oil / watercolour / print): no database, arrays in, a dict out.

The same recipe as the binary :mod:`.fit`: a stratified, seeded 80/10/10 split; a class-balanced
multinomial logistic regression whose ``C`` is chosen by stratified cross-validation on the
training part (log-loss; the newton-cg solver); per class, a threshold on the validation part (one-vs-rest: the lowest
probability of that class whose precision reaches the target, else its best F1); on the test part
the N x N confusion matrix of the most probable class, precision / recall / F1 / support per class
and a one-vs-rest precision-recall curve per class. An artwork gets the label of its most probable
class when that probability passes the class's threshold.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegressionCV
from sklearn.metrics import average_precision_score, confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold

from .fit import CS, MIN_PER_CLASS, TrainingError, _curve, choose_threshold, normalise, split


@dataclass
class FittedMulti:
    weights: np.ndarray  # (classes, dim) over L2-normalised vectors
    intercepts: np.ndarray  # (classes,)
    thresholds: np.ndarray  # (classes,)
    metrics: dict


def class_probabilities(matrix: np.ndarray, weights: np.ndarray, intercepts: np.ndarray) -> np.ndarray:
    """(rows, classes) softmax probabilities (raw embeddings; normalised here as in training)."""
    z = normalise(matrix) @ np.asarray(weights, dtype=np.float32).T + np.asarray(intercepts, dtype=np.float32)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def check_classes(y: np.ndarray, names: list[str]) -> None:
    """Refuse examples that cannot make a classifier of these classes, saying what to add."""
    if len(names) < 2:
        raise TrainingError("a multi-class classifier needs at least two classes")
    counts = np.bincount(y, minlength=len(names)) if len(y) else np.zeros(len(names), dtype=int)
    having = [i for i, n in enumerate(counts) if n]
    if not having:
        raise TrainingError("this classifier has no examples yet: add examples of every class first")
    if len(having) == 1:
        only = having[0]
        others = ", ".join(f"“{n}”" for i, n in enumerate(names) if i != only)
        raise TrainingError(
            f"only “{names[only]}” has examples ({counts[only]}): add examples of {others} "
            f"(at least {MIN_PER_CLASS} of each class) so the classifier has classes to separate"
        )
    if counts.min() < MIN_PER_CLASS:
        listed = ", ".join(f"{n} {int(c)}" for n, c in zip(names, counts))
        raise TrainingError(
            f"too few examples: {listed}; add at least {MIN_PER_CLASS} of each class "
            f"(the 80/10/10 split needs every class in every part)"
        )


def fit_multiclass(matrix: np.ndarray, y: np.ndarray, names: list[str], *, seed: int = 0, target_precision: float = 0.9) -> FittedMulti:
    """Train and evaluate (see the module docstring). ``y``: the class index (0..len(names)-1) of
    each row. Deterministic for a seed. Raises :class:`TrainingError` for unusable examples."""
    y = np.asarray(y, dtype=np.int64)
    names = list(names)
    check_classes(y, names)
    if not 0 < target_precision <= 1:
        raise TrainingError(f"the target precision must be above 0 and at most 1, got {target_precision}")
    k = len(names)
    X = normalise(matrix).astype(np.float64)
    train, val, test = split(y, seed)
    folds = max(2, int(min(5, np.bincount(y[train], minlength=k).min())))
    model = LogisticRegressionCV(
        Cs=CS, cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed),
        class_weight="balanced", scoring="neg_log_loss", max_iter=2000, random_state=seed,
        l1_ratios=(0.0,), use_legacy_attributes=False, solver="newton-cg",
    )  # the multinomial (softmax) loss; newton-cg: the same optimum as lbfgs in about a fifth of the CPU time here
    model.fit(X[train], y[train])
    weights, intercepts = model.coef_.astype(np.float64), model.intercept_.astype(np.float64)
    if k == 2:  # scikit-learn keeps one row (class 1 against class 0): as two softmax rows, the same probabilities
        weights, intercepts = np.vstack([-weights[0] / 2, weights[0] / 2]), np.array([-intercepts[0] / 2, intercepts[0] / 2])
    p_val = class_probabilities(X[val], weights, intercepts)
    chosen = [choose_threshold((y[val] == c).astype(np.int64), p_val[:, c], target_precision) for c in range(k)]
    thresholds = np.asarray([t for t, _ in chosen], dtype=np.float64)
    p_test = class_probabilities(X[test], weights, intercepts)
    predicted = p_test.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(y[test], predicted, labels=list(range(k)), zero_division=0)
    top = p_test[np.arange(len(test)), predicted]
    labelled = top >= thresholds[predicted]
    classes = {}
    curves = {}
    for c, name in enumerate(names):
        truth = (y[test] == c).astype(np.int64)
        classes[name] = {
            "precision": float(precision[c]), "recall": float(recall[c]), "f1": float(f1[c]), "support": int(support[c]),
            "threshold": float(thresholds[c]), "target_reached_on_validation": bool(chosen[c][1]),
            "average_precision": float(average_precision_score(truth, p_test[:, c])),
        }
        curves[name] = _curve(truth, p_test[:, c])
    metrics = {
        "multiclass": True,
        "class_names": names,
        "examples": {name: int(n) for name, n in zip(names, np.bincount(y, minlength=k))},
        "split": {"train": len(train), "validation": len(val), "test": len(test), "seed": seed},
        "C": float(np.asarray(model.C_).ravel()[0]),
        "cv_folds": folds,
        "target_precision": float(target_precision),
        "thresholds": {name: float(t) for name, t in zip(names, thresholds)},
        "target_reached_on_validation": all(r for _, r in chosen),
        # rows: true class, columns: predicted (most probable) class, both in class_names order
        "confusion": confusion_matrix(y[test], predicted, labels=list(range(k))).tolist(),
        "classes": classes,
        "accuracy": float((predicted == y[test]).mean()),
        "chance_accuracy": float(np.bincount(y[test], minlength=k).max() / len(test)),
        "macro_f1": float(np.mean(f1)),
        "mean_average_precision": float(np.mean([classes[n]["average_precision"] for n in names])),
        # with the thresholds: the share of the test part that gets a label, and how often it is right
        "labelled_share": float(labelled.mean()),
        "labelled_accuracy": float((predicted[labelled] == y[test][labelled]).mean()) if labelled.any() else None,
        "pr_curves": curves,
    }
    return FittedMulti(weights=weights, intercepts=intercepts, thresholds=thresholds, metrics=metrics)
