"""Score artworks with a trained ClassifierVersion and write its label rows.

A classifier's output is ordinary ``ArtworkLabel`` rows of its ``Label`` (so the label browser,
search and map filters, the artwork page and the API show it): ``score`` is the probability of the
positive class, ``rank`` is 0, which marks rows outside the vocabulary's top-k (the label stage's
re-ranking and replacement leave them alone). Rows are kept from ``STORE_FLOOR`` up (or from the
threshold when it is lower), so a curator can lower the shown threshold without applying again;
``Label.threshold`` is the version's threshold. Curator decisions win as for every label.

A multi-class version writes, per artwork, one row: the label of its most probable class with that
probability (kept from the class's floor up, and shown from the class's threshold, which is that
class label's ``Label.threshold``); the rows of the other classes' labels of the artwork go.
"""
from __future__ import annotations

import numpy as np
from django.db import connection, transaction

from archive.models import ClassifierVersion
from archive.vectors import copy_arrays
from workers.labeling.store import TABLE, load_embeddings

from .fit import probabilities
from .fit_multi import class_probabilities

STORE_FLOOR = 0.5
TRAINED_RANK = 0  # rank of a classifier row: outside the vocabulary's 1..k


def floor_for(version: ClassifierVersion) -> float:
    return float(min(STORE_FLOOR, version.threshold if version.threshold is not None else STORE_FLOOR))


def score(version: ClassifierVersion, matrix: np.ndarray) -> np.ndarray:
    """P(positive) per row; for a multi-class version (rows, classes) probabilities."""
    if version.class_ids:
        return class_probabilities(matrix, np.asarray(version.weights, dtype=np.float32), np.asarray(version.intercepts, dtype=np.float32))
    return probabilities(matrix, np.asarray(version.weights, dtype=np.float32), float(version.intercept))


def class_floors(version: ClassifierVersion) -> np.ndarray:
    return np.minimum(STORE_FLOOR, np.asarray(version.thresholds, dtype=np.float32))


def write_rows(label_id: int, model_id: int, ids: np.ndarray, scores: np.ndarray, floor: float) -> int:
    """Replace the label's rows of these artworks under the model by those scoring >= ``floor``."""
    ids = np.asarray(ids, dtype=np.int64)
    return write_class_rows([label_id], model_id, ids, np.full(len(ids), label_id, dtype=np.int64), scores, scores >= floor)


def write_class_rows(label_ids: list[int], model_id: int, ids: np.ndarray, row_labels: np.ndarray, scores: np.ndarray,
                     keep: np.ndarray) -> int:
    """Replace the rows of these labels for these artworks under the model by one row per kept
    artwork: (artwork, its label in ``row_labels``, its score)."""
    ids = np.asarray(ids, dtype=np.int64)
    with transaction.atomic():
        with connection.cursor() as cursor:
            # One probe of the unique (artwork, model, label) index per id. Written so that the
            # (label, model, -score) index cannot serve it ("label_id + 0"): through that one the
            # planner scans every row of the label per batch, quadratic over a whole apply job.
            one = len(label_ids) == 1  # one label: the plain equality, as the planner has always seen it
            cursor.execute(
                f"DELETE FROM {TABLE} t USING unnest(%s::bigint[]) AS u(id) "
                f"WHERE t.artwork_id = u.id AND t.model_id = %s AND t.label_id + 0 {'= %s' if one else '= ANY(%s)'}",
                [[int(i) for i in ids], int(model_id), int(label_ids[0]) if one else [int(i) for i in label_ids]],
            )
        n = int(keep.sum())
        if not n:
            return 0
        return copy_arrays(
            TABLE,
            {
                "artwork_id": ids[keep],
                "label_id": np.asarray(row_labels, dtype=np.int64)[keep],
                "model_id": np.full(n, model_id, dtype=np.int64),
                "score": scores[keep].astype(np.float64),
                "rank": np.full(n, TRAINED_RANK, dtype=np.int16),
            },
        )  # a plain COPY: this transaction deleted the label's rows of these artworks first


def apply_to_artworks(version: ClassifierVersion, artwork_ids) -> dict:
    """Score these artworks (those with an embedding under the version's model) and write rows."""
    ids, matrix = load_embeddings(version.model_id, artwork_ids)
    if not len(ids):
        return {"scored": 0, "written": 0, "positive": 0}
    if version.class_ids:
        return _apply_classes(version, ids, matrix)
    scores = score(version, matrix)
    written = write_rows(version.classifier.label_id, version.model_id, ids, scores, floor_for(version))
    return {"scored": int(len(ids)), "written": written, "positive": int((scores >= version.threshold).sum())}


def _apply_classes(version: ClassifierVersion, ids: np.ndarray, matrix: np.ndarray) -> dict:
    from archive.models import ClassifierClass

    labels_of = dict(ClassifierClass.objects.filter(pk__in=version.class_ids).values_list("pk", "label_id"))
    class_labels = np.asarray([labels_of[c] for c in version.class_ids], dtype=np.int64)
    p = score(version, matrix)
    best = p.argmax(axis=1)
    top = p[np.arange(len(ids)), best]
    thresholds = np.asarray(version.thresholds, dtype=np.float32)
    written = write_class_rows(class_labels.tolist(), version.model_id, ids, class_labels[best], top, top >= class_floors(version)[best])
    shown = top >= thresholds[best]
    per_class = np.bincount(best[shown], minlength=len(class_labels))
    return {"scored": int(len(ids)), "written": written, "positive": int(shown.sum()),
            "per_class": {str(int(c)): int(n) for c, n in zip(version.class_ids, per_class)}}
