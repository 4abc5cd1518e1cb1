"""Per-label score statistics over the archive: calibration and default thresholds.

Raw cosine scores are not comparable across labels: some prompts sit closer to every image than
others. For each (label, model) we keep the mean and standard deviation of the label's scores over
the archive (a random sample of up to ``LABEL_STATS_SAMPLE`` artwork embeddings) and a *derived
threshold*, the ``LABEL_THRESHOLD_PERCENTILE``-th percentile of those scores. The calibrated
score of a row is its z-score ``(score - mean) / std``: "how unusually well this label fits this
artwork", comparable across labels, computed on read so it never goes stale in 20M rows.
"""
from __future__ import annotations

import numpy as np
from django.conf import settings
from django.db import connection

from archive.models import LabelEmbedding

from .scoring import normalise_rows
from .store import load_embeddings, load_label_vectors

LABEL_CHUNK = 1024  # labels per matrix product when computing statistics


def percentile() -> float:
    return float(getattr(settings, "LABEL_THRESHOLD_PERCENTILE", 95.0))


def sample_size() -> int:
    return int(getattr(settings, "LABEL_STATS_SAMPLE", 10_000))


def sample_embeddings(model_id: int, size: int | None = None, seed: int = 0) -> np.ndarray:
    """Up to ``size`` random artwork embeddings of a model (normalised), all of them if fewer."""
    ids = sample_ids(model_id, sample_size() if size is None else size, seed)
    parts = [load_embeddings(model_id, ids[i : i + 2000])[1] for i in range(0, len(ids), 2000)]
    parts = [p for p in parts if len(p)]
    return normalise_rows(np.concatenate(parts)) if parts else np.zeros((0, 0), dtype=np.float32)


def sample_ids(model_id: int, size: int, seed: int = 0) -> np.ndarray:
    """Random artwork ids with an embedding under the model, without shipping every id to Python."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM archive_artworkembedding WHERE model_id = %s", [model_id])
        total = cursor.fetchone()[0]
        ids = np.zeros(0, dtype=np.int64)
        if total > max(10 * size, 100_000):
            # a Bernoulli sample larger than asked for (short by chance: practically never), trimmed below
            cursor.execute("SELECT setseed(%s)", [((seed % 1000) / 1000.0)])
            cursor.execute(
                "SELECT artwork_id FROM archive_artworkembedding WHERE model_id = %s AND random() < %s",
                [model_id, min(1.0, 1.2 * size / total)],
            )
            ids = np.array([row[0] for row in cursor.fetchall()], dtype=np.int64)
        if len(ids) < min(size, total):
            cursor.execute("SELECT artwork_id FROM archive_artworkembedding WHERE model_id = %s", [model_id])
            ids = np.array([row[0] for row in cursor.fetchall()], dtype=np.int64)
    if len(ids) > size:
        ids = np.random.default_rng(seed).choice(ids, size=size, replace=False)
    return np.sort(ids)


def summarise(scores: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column-wise mean, std and q-th percentile of a (samples x labels) score matrix."""
    return scores.mean(axis=0), scores.std(axis=0), np.percentile(scores, q, axis=0)


def compute_label_stats(model, *, sample: np.ndarray | None = None, published_only: bool = False) -> int:
    """Store mean/std/derived threshold of every label with an embedding for ``model``, over a
    sample of the archive's embeddings. Returns the number of labels updated (0 when the model
    has no artwork embeddings yet)."""
    if sample is None:
        sample = sample_embeddings(model.pk)
    if len(sample) == 0:
        return 0
    label_ids, matrix = load_label_vectors(model.pk, published_only=published_only)
    if len(label_ids) == 0:
        return 0
    q = percentile()
    updates = []
    by_label = {le.label_id: le for le in LabelEmbedding.objects.filter(model=model, label_id__in=label_ids.tolist()).only("id", "label_id")}
    for start in range(0, len(label_ids), LABEL_CHUNK):
        scores = sample @ normalise_rows(matrix[start : start + LABEL_CHUNK]).T
        mean, std, thr = summarise(scores, q)
        for j, label_id in enumerate(label_ids[start : start + LABEL_CHUNK]):
            le = by_label.get(int(label_id))
            if le is None:
                continue
            le.score_mean, le.score_std, le.default_threshold = float(mean[j]), float(std[j]), float(thr[j])
            le.stats_count = len(sample)
            updates.append(le)
    LabelEmbedding.objects.bulk_update(updates, ["score_mean", "score_std", "default_threshold", "stats_count"], batch_size=1000)
    return len(updates)


def store_exact_stats(model, label, scores: np.ndarray) -> None:
    """Statistics of one label from its scores over the whole archive (see apply_label)."""
    if len(scores) == 0:
        return
    mean, std, thr = summarise(scores.reshape(-1, 1), percentile())
    LabelEmbedding.objects.filter(model=model, label=label).update(
        score_mean=float(mean[0]), score_std=float(std[0]), default_threshold=float(thr[0]), stats_count=len(scores)
    )


def calibrated(score: float | None, mean: float | None, std: float | None) -> float | None:
    if score is None or mean is None or not std:
        return None
    return (score - mean) / std


def store_sampled_stats(model, label) -> int:
    """Statistics of one label over a sample of the archive (as :func:`compute_label_stats` makes
    them for the vocabulary). Returns the sample size (0: no embeddings)."""
    sample = sample_embeddings(model.pk)
    if len(sample) == 0:
        return 0
    _, matrix = load_label_vectors(model.pk, published_only=False, label_ids=[label.pk])
    if len(matrix) == 0:
        return 0
    store_exact_stats(model, label, sample @ normalise_rows(matrix)[0])
    return len(sample)
