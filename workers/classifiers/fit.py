"""Fit and evaluate a binary linear classifier on embeddings: no database, arrays in, a dict out.

The examples are split 80/10/10 (stratified, seeded): the regularisation ``C`` of a class-balanced
logistic regression is chosen by stratified cross-validation on the training part, the decision
threshold on the validation part (the lowest probability whose precision reaches the target; when
none does, the one with the best F1, and the figures say so), and the test part, never seen
before, gives the confusion matrix, precision, recall, F1 and the precision-recall curve.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegressionCV
from sklearn.metrics import average_precision_score, confusion_matrix, precision_recall_curve, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold, train_test_split

MIN_PER_CLASS = 10  # so that the validation and test parts each hold at least one of every class
CS = np.logspace(-2, 3, 6)  # 0.01 ... 1000, by factors of 10
CURVE_POINTS = 50


class TrainingError(ValueError):
    """The examples cannot make a classifier; the message says what to add."""


@dataclass
class Fitted:
    weights: np.ndarray  # (dim,) over L2-normalised vectors
    intercept: float
    threshold: float
    metrics: dict


def normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def probabilities(matrix: np.ndarray, weights: np.ndarray, intercept: float) -> np.ndarray:
    """P(positive) of each row (raw embeddings; normalised here as in training)."""
    z = normalise(matrix) @ np.asarray(weights, dtype=np.float32) + np.float32(intercept)
    return (1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))).astype(np.float32)


def check_examples(y: np.ndarray) -> None:
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    if positives == 0 or negatives == 0:
        missing = "negative" if negatives == 0 else "positive"
        raise TrainingError(
            f"all {len(y)} examples are {'positive' if negatives == 0 else 'negative'}: add {missing} examples "
            f"(at least {MIN_PER_CLASS}) so the classifier has two classes to separate"
        )
    if min(positives, negatives) < MIN_PER_CLASS:
        raise TrainingError(
            f"too few examples: {positives} positive and {negatives} negative; add at least {MIN_PER_CLASS} of each "
            f"(the 80/10/10 split needs some of both in every part)"
        )


def split(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the training, validation and test parts (80/10/10, stratified, seeded)."""
    index = np.arange(len(y))
    train, rest = train_test_split(index, test_size=0.2, stratify=y, random_state=seed)
    val, test = train_test_split(rest, test_size=0.5, stratify=y[rest], random_state=seed)
    return np.sort(train), np.sort(val), np.sort(test)


def choose_threshold(y: np.ndarray, p: np.ndarray, target: float) -> tuple[float, bool]:
    """The lowest threshold whose precision on (y, p) reaches ``target`` (and, True); else the
    threshold of the best F1 (and, False); moved down to halfway to the next lower score."""
    precision, recall, thresholds = precision_recall_curve(y, p)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    reached = np.flatnonzero(precision >= target)
    if len(reached):
        return _margin(p, float(thresholds[reached[0]])), True
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
    return _margin(p, float(thresholds[int(np.argmax(f1))])), False


def _margin(p: np.ndarray, at: float) -> float:
    """Halfway (in log-odds) between the score ``at`` and the next lower one: the same split of the
    validation part, without putting the threshold exactly on one example's score."""
    below = p[p < at]
    if not len(below):
        return at
    logit = lambda q: np.log(np.clip(q, 1e-7, 1 - 1e-7) / (1 - np.clip(q, 1e-7, 1 - 1e-7)))  # noqa: E731
    mid = (logit(at) + logit(float(below.max()))) / 2
    return float(1 / (1 + np.exp(-mid)))


def _curve(y: np.ndarray, p: np.ndarray) -> list[dict]:
    precision, recall, thresholds = precision_recall_curve(y, p)
    points = [{"recall": float(r), "precision": float(q), "threshold": float(t)} for r, q, t in zip(recall[:-1], precision[:-1], thresholds)]
    points.append({"recall": float(recall[-1]), "precision": float(precision[-1]), "threshold": None})
    if len(points) > CURVE_POINTS:
        keep = np.unique(np.linspace(0, len(points) - 1, CURVE_POINTS).round().astype(int))
        points = [points[i] for i in keep]
    return points


def fit(matrix: np.ndarray, y: np.ndarray, *, seed: int = 0, target_precision: float = 0.9) -> Fitted:
    """Train and evaluate (see the module docstring). ``y``: 1 positive, 0 negative. Deterministic
    for a seed. Raises :class:`TrainingError` for examples that cannot make a classifier."""
    y = np.asarray(y, dtype=np.int64)
    check_examples(y)
    if not 0 < target_precision <= 1:
        raise TrainingError(f"the target precision must be above 0 and at most 1, got {target_precision}")
    X = normalise(matrix).astype(np.float64)
    train, val, test = split(y, seed)
    folds = int(min(5, np.bincount(y[train]).min()))
    model = LogisticRegressionCV(
        Cs=CS, cv=StratifiedKFold(n_splits=max(2, folds), shuffle=True, random_state=seed),
        class_weight="balanced", scoring="neg_log_loss", max_iter=2000, random_state=seed,
        l1_ratios=(0.0,), use_legacy_attributes=False,
    )
    model.fit(X[train], y[train])
    weights, intercept = model.coef_[0].astype(np.float64), float(model.intercept_[0])
    p_val = probabilities(X[val], weights, intercept)
    threshold, reached = choose_threshold(y[val], p_val, target_precision)
    p_test = probabilities(X[test], weights, intercept)
    predicted = (p_test >= threshold).astype(np.int64)
    precision, recall, f1, support = precision_recall_fscore_support(y[test], predicted, labels=[0, 1], zero_division=0)
    matrix_ = confusion_matrix(y[test], predicted, labels=[0, 1])
    metrics = {
        "examples": {"positive": int(y.sum()), "negative": int(len(y) - y.sum())},
        "split": {"train": len(train), "validation": len(val), "test": len(test), "seed": seed},
        "C": float(np.asarray(model.C_).ravel()[0]),
        "cv_folds": max(2, folds),
        "target_precision": float(target_precision),
        "threshold": threshold,
        "target_reached_on_validation": reached,
        # rows: true class (negative, positive); columns: predicted class
        "confusion": matrix_.tolist(),
        "classes": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, name in enumerate(("negative", "positive"))
        },
        "accuracy": float((predicted == y[test]).mean()),
        "average_precision": float(average_precision_score(y[test], p_test)),
        "pr_curve": _curve(y[test], p_test),
    }
    return Fitted(weights=weights, intercept=intercept, threshold=threshold, metrics=metrics)
