"""The learning part of curator classifiers on arrays: split, threshold, figures, refusals."""
import numpy as np
import pytest

from workers.classifiers.fit import MIN_PER_CLASS, TrainingError, choose_threshold, fit, probabilities, split


def _blobs(n_pos=60, n_neg=140, dim=32, gap=1.0, seed=1):
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=dim)
    pos = rng.normal(size=(n_pos, dim)) + gap * centre
    neg = rng.normal(size=(n_neg, dim)) - gap * centre
    return np.vstack([pos, neg]).astype(np.float32), np.r_[np.ones(n_pos), np.zeros(n_neg)].astype(int)


def test_split_is_stratified_80_10_10_and_seeded():
    _, y = _blobs()
    train, val, test = split(y, seed=3)
    assert (len(train), len(val), len(test)) == (160, 20, 20)
    assert len(set(train) | set(val) | set(test)) == 200
    assert y[val].sum() == 6 and y[test].sum() == 6  # 30% positives in every part
    again = split(y, seed=3)
    assert all((a == b).all() for a, b in zip((train, val, test), again))
    assert not (split(y, seed=4)[2] == test).all()


def test_fit_separates_and_is_deterministic():
    X, y = _blobs()
    a = fit(X, y, seed=0, target_precision=0.9)
    b = fit(X, y, seed=0, target_precision=0.9)
    assert np.array_equal(a.weights, b.weights) and a.metrics == b.metrics
    m = a.metrics
    assert m["split"] == {"train": 160, "validation": 20, "test": 20, "seed": 0}
    assert np.array(m["confusion"]).sum() == 20
    assert m["classes"]["positive"]["f1"] > 0.8 and m["average_precision"] > 0.9
    assert m["C"] > 0 and 0 < m["threshold"] < 1
    assert m["pr_curve"][-1]["threshold"] is None and all(0 <= p["precision"] <= 1 for p in m["pr_curve"])
    p = probabilities(X, a.weights, a.intercept)
    assert p[y == 1].mean() > p[y == 0].mean()


def test_threshold_reaches_target_precision_or_says_so():
    y = np.array([0, 0, 1, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.5, 0.6, 0.8, 0.9])
    # The lowest score reaching the target, moved halfway (in log-odds) to the next lower score.
    threshold, reached = choose_threshold(y, p, 1.0)
    assert reached and 0.6 < threshold < 0.8
    threshold, reached = choose_threshold(y, p, 0.7)
    assert reached and 0.4 < threshold < 0.5
    assert ((p >= threshold) == (p >= 0.5)).all()
    threshold, reached = choose_threshold(np.array([1, 0, 1, 0]), np.array([0.2, 0.9, 0.4, 0.8]), 0.99)
    assert not reached and 0 < threshold < 1


def test_bad_examples_get_clear_errors():
    X, y = _blobs(n_pos=MIN_PER_CLASS - 1)
    with pytest.raises(TrainingError, match="too few examples: 9 positive and 140 negative"):
        fit(X, y)
    X, y = _blobs()
    with pytest.raises(TrainingError, match="all 200 examples are positive: add negative examples"):
        fit(X, np.ones(200, dtype=int))
    with pytest.raises(TrainingError, match="target precision"):
        fit(X, y, target_precision=1.5)


def _class_blobs(k=3, per=60, dim=32, gap=2.5, seed=2):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim))
    X = np.vstack([rng.normal(size=(per, dim)) + gap * centres[c] for c in range(k)]).astype(np.float32)
    return X, np.repeat(np.arange(k), per)


def test_multiclass_fit_separates_is_deterministic_and_has_per_class_figures():
    from workers.classifiers.fit_multi import class_probabilities, fit_multiclass

    X, y = _class_blobs()
    names = ["oil", "watercolour", "print"]
    a = fit_multiclass(X, y, names, seed=0, target_precision=0.9)
    b = fit_multiclass(X, y, names, seed=0, target_precision=0.9)
    assert np.array_equal(a.weights, b.weights) and a.metrics == b.metrics
    m = a.metrics
    assert m["split"] == {"train": 144, "validation": 18, "test": 18, "seed": 0}
    confusion = np.array(m["confusion"])
    assert confusion.shape == (3, 3) and (confusion.sum(axis=1) == 6).all()  # stratified: 6 of each class
    assert m["accuracy"] > 0.8 and m["macro_f1"] > 0.8 and m["chance_accuracy"] == pytest.approx(1 / 3)
    assert set(m["pr_curves"]) == set(names) and all(0 < m["thresholds"][n] < 1 for n in names)
    assert a.weights.shape == (3, 32) and a.intercepts.shape == (3,)
    p = class_probabilities(X, a.weights, a.intercepts)
    assert np.allclose(p.sum(axis=1), 1, atol=1e-5) and (p.argmax(axis=1) == y).mean() > 0.8
    assert not np.array_equal(fit_multiclass(X, y, names, seed=1).weights, a.weights)


def test_two_named_classes_give_two_softmax_rows_matching_the_logistic_model():
    from workers.classifiers.fit_multi import class_probabilities, fit_multiclass

    X, y = _blobs()
    a = fit_multiclass(X, y, ["painting", "drawing"], seed=0)
    assert a.weights.shape == (2, 32) and np.array_equal(np.array(a.metrics["confusion"]).shape, (2, 2))
    p = class_probabilities(X, a.weights, a.intercepts)
    assert np.allclose(p.sum(axis=1), 1, atol=1e-5) and (p.argmax(axis=1) == y).mean() > 0.8
    assert a.metrics["classes"]["drawing"]["f1"] > 0.8


def test_multiclass_bad_examples_get_clear_errors():
    from workers.classifiers.fit_multi import fit_multiclass

    X, y = _class_blobs()
    with pytest.raises(TrainingError, match="only “a” has examples \\(180\\): add examples of “b”, “c”"):
        fit_multiclass(X, np.zeros(180, dtype=int), ["a", "b", "c"])
    y2 = y.copy()
    y2[np.flatnonzero(y == 2)[: 60 - 5]] = 0
    with pytest.raises(TrainingError, match="too few examples: a 115, b 60, c 5; add at least 10 of each class"):
        fit_multiclass(X, y2, ["a", "b", "c"])
    with pytest.raises(TrainingError, match="too few examples: a 60, b 60, c 60, d 0"):
        fit_multiclass(X, y, ["a", "b", "c", "d"])
    with pytest.raises(TrainingError, match="at least two classes"):
        fit_multiclass(X, y, ["a"])
