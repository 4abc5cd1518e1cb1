"""Active learning: which artworks to show a curator next ("label more").

Scores every artwork with an embedding under the version's model (streamed in keyset pages by
:func:`workers.labeling.store.iter_embeddings`; about a second per 100,000 on one core) and keeps,
among those that are not examples yet, the ones the classifier is least sure about (closest to
its threshold, in log-odds) and the most confident positives. Answering them and training again
is one round.
"""
from __future__ import annotations

import numpy as np

from archive.models import ClassifierVersion
from workers.labeling.store import iter_embeddings

from .applying import score


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def _keep(best: tuple[np.ndarray, np.ndarray, np.ndarray], ids, keys, probs, limit: int):
    """Merge (ids, keys, probs) into the ``limit`` smallest keys so far."""
    ids = np.concatenate([best[0], ids])
    keys = np.concatenate([best[1], keys])
    probs = np.concatenate([best[2], probs])
    if len(keys) > limit:
        top = np.argpartition(keys, limit - 1)[:limit]
        ids, keys, probs = ids[top], keys[top], probs[top]
    return ids, keys, probs


def suggestions(version: ClassifierVersion, *, limit: int = 24, chunk_size: int = 8192) -> dict:
    """``{"uncertain": [(artwork_id, p)], "confident": [(artwork_id, p)]}``: the ``limit`` artworks
    that are not examples whose probability is nearest the threshold (most uncertain first), and
    the ``limit`` most probable positives (best first)."""
    examples = set(version.classifier.examples.values_list("artwork_id", flat=True))
    empty = (np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32))
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
