"""Active learning: which artworks to show a curator next ("label more").

Scores every artwork with an embedding under the version's model (streamed in keyset pages by
:func:`workers.labeling.store.iter_embeddings`; about a second per 100,000 on one core) and keeps,
among those that are not examples yet, the ones the classifier is least sure about (closest to
its threshold, in log-odds) and the most confident positives. Answering them and training again
is one round.

For a multi-class version "least sure" is the smallest margin between the two most probable
classes, "most confident" the highest probability of the most probable class among those passing
that class's threshold; each suggestion carries the index of its most probable class.
"""
from __future__ import annotations

import numpy as np

from archive.models import ClassifierVersion
from workers.labeling.store import iter_embeddings

from .applying import score


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def _keep(best: tuple, ids, keys, probs, limit: int, classes=None):
    """Merge (ids, keys, probs, classes) into the ``limit`` smallest keys so far."""
    if classes is None:
        classes = np.zeros(len(ids), np.int64)
    ids = np.concatenate([best[0], ids])
    keys = np.concatenate([best[1], keys])
    probs = np.concatenate([best[2], probs])
    classes = np.concatenate([best[3], classes])
    if len(keys) > limit:
        top = np.argpartition(keys, limit - 1)[:limit]
        ids, keys, probs, classes = ids[top], keys[top], probs[top], classes[top]
    return ids, keys, probs, classes


def suggestions(version: ClassifierVersion, *, limit: int = 24, chunk_size: int = 8192) -> dict:
    """``{"uncertain": [(artwork_id, p)], "confident": [(artwork_id, p)]}``: the ``limit`` artworks
    that are not examples whose probability is nearest the threshold (most uncertain first), and
    the ``limit`` most probable positives (best first)."""
    examples = set(version.classifier.examples.values_list("artwork_id", flat=True))
    if version.class_ids:
        return _class_suggestions(version, examples, limit, chunk_size)
    empty = (np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))
    uncertain, confident = empty, empty
    threshold = float(_logit(np.asarray([version.threshold]))[0])
    for ids, matrix in iter_embeddings(version.model_id, chunk_size=chunk_size):
        fresh = np.fromiter((int(i) not in examples for i in ids), dtype=bool, count=len(ids))
        if not fresh.any():
            continue
        ids, matrix = ids[fresh], matrix[fresh]
        p = score(version, matrix)
        uncertain = _keep(uncertain, ids, np.abs(_logit(p) - threshold).astype(np.float32), p, limit)
        confident = _keep(confident, ids, -p, p, limit)
    order_u = np.argsort(uncertain[1], kind="stable")
    order_c = np.argsort(confident[1], kind="stable")
    return {
        "uncertain": [(int(uncertain[0][i]), float(uncertain[2][i])) for i in order_u],
        "confident": [(int(confident[0][i]), float(confident[2][i])) for i in order_c if confident[2][i] >= version.threshold],
    }


def _class_suggestions(version: ClassifierVersion, examples: set, limit: int, chunk_size: int) -> dict:
    """Multi-class: ``{"uncertain": [(id, p, class index)], "confident": [...]}`` (see the module docstring)."""
    empty = (np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))
    uncertain, confident = empty, empty
    thresholds = np.asarray(version.thresholds, dtype=np.float32)
    for ids, matrix in iter_embeddings(version.model_id, chunk_size=chunk_size):
        fresh = np.fromiter((int(i) not in examples for i in ids), dtype=bool, count=len(ids))
        if not fresh.any():
            continue
        ids, matrix = ids[fresh], matrix[fresh]
        p = score(version, matrix)
        two = np.sort(p, axis=1)[:, -2:]
        best = p.argmax(axis=1)
        top = two[:, 1]
        uncertain = _keep(uncertain, ids, (two[:, 1] - two[:, 0]).astype(np.float32), top, limit, best)
        passing = top >= thresholds[best]
        confident = _keep(confident, ids[passing], -top[passing], top[passing], limit, best[passing])
    order_u = np.argsort(uncertain[1], kind="stable")
    order_c = np.argsort(confident[1], kind="stable")
    return {
        "uncertain": [(int(uncertain[0][i]), float(uncertain[2][i]), int(uncertain[3][i])) for i in order_u],
        "confident": [(int(confident[0][i]), float(confident[2][i]), int(confident[3][i])) for i in order_c],
    }
