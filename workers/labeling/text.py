"""Label text embeddings: prompt ensembles embedded in batches and cached per (label, model).

The text embedding of a label is the L2-normalised mean of the normalised embeddings of its
prompt sentences (:mod:`.prompts`). Rows live in ``LabelEmbedding`` with the fingerprint of the
sentences, so only new or edited labels are embedded again.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
from django.utils import timezone
from tqdm import tqdm

from archive.models import Label, LabelEmbedding
from archive.models.labels import ICONCLASS_GROUP, TRAINED_GROUP
from archive.vectors import LABEL_EMBEDDINGS, copy_rows

from .prompts import fingerprint, prompts_for, templates_for

TEXT_BATCH = 256  # sentences per embed_texts call


def ensemble(vectors: np.ndarray) -> np.ndarray:
    """Normalised mean of normalised vectors."""
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    mean = vectors.mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def stale_labels(model, labels: Iterable[Label]) -> list[tuple[Label, list[str], str]]:
    """The labels whose cached embedding for ``model`` is missing or made from other prompts,
    with their prompt sentences and fingerprint."""
    labels = list(labels)
    cached = dict(
        LabelEmbedding.objects.filter(model=model, label__in=[l.pk for l in labels]).values_list("label_id", "prompts_fingerprint")
    )
    templates: dict[str, list[str]] = {}
    stale = []
    for label in labels:
        if label.group not in templates:
            templates[label.group] = templates_for(label.group)
        prompts = prompts_for(label, templates[label.group])
        fp = fingerprint(prompts)
        if cached.get(label.pk) != fp:
            stale.append((label, prompts, fp))
    return stale


def ensure_label_embeddings(
    model,
    labels: Iterable[Label] | None = None,
    *,
    embedder=None,
    progress: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Embed the prompt ensembles of ``labels`` (default: every published label) that have no
    current embedding for ``model``; each batch of ~TEXT_BATCH sentences is committed as it is
    written, so an interrupted run resumes where it stopped. ``on_progress(done, total)`` is
    called after each batch. Returns how many labels were (re-)embedded."""
    if labels is None:
        # Iconclass subjects are not scored: their rows are derived from the labels mapped to them.
        labels = Label.objects.filter(published=True).exclude(group__in=[TRAINED_GROUP, ICONCLASS_GROUP]).only("id", "name", "prompt", "group")
    stale = stale_labels(model, labels)
    if not stale:
        return 0
    if embedder is None:
        from workers.ml.registry import get_embedder

        embedder = get_embedder(model.key)
    if embedder.dim != model.dim:
        raise ValueError(f"embedder {embedder.key} has {embedder.dim} dimensions but model row {model.key} says {model.dim}")
    bar = tqdm(total=len(stale), desc=f"label texts ({model.key})", unit="label", disable=not progress)
    pending: list[tuple[Label, list[str], str]] = []
    written = 0

    def flush():
        nonlocal written
        if not pending:
            return
        texts = [s for _, prompts, _ in pending for s in prompts]
        vectors = embedder.embed_texts(texts)
        now = timezone.now()
        rows, start = [], 0
        for label, prompts, fp in pending:
            vec = ensemble(vectors[start : start + len(prompts)])
            start += len(prompts)
            rows.append((label.pk, model.pk, vec, fp, now, None, None, None, None))
        copy_rows(
            LABEL_EMBEDDINGS.table,
            ["label_id", "model_id", "vector", "prompts_fingerprint", "created_at", "score_mean", "score_std", "default_threshold", "stats_count"],
            rows,
            conflict=["label_id", "model_id"],
            # Score statistics of a re-embedded label are kept (approximate) until the next
            # prepare/apply_label recomputes them, rather than leaving it with no threshold.
            update=["vector", "prompts_fingerprint", "created_at"],
        )
        written += len(pending)
        bar.update(len(pending))
        pending.clear()
        if on_progress is not None:
            on_progress(written, len(stale))

    count = 0
    for item in stale:
        pending.append(item)
        count += len(item[1])
        if count >= TEXT_BATCH:
            flush()
            count = 0
    flush()
    bar.close()
    return written


def label_vector(label: Label, model, *, embedder=None) -> np.ndarray:
    """The (cached, refreshed if its prompts changed) text embedding of one label."""
    from .store import load_label_vectors

    ensure_label_embeddings(model, [label], embedder=embedder)
    _, matrix = load_label_vectors(model.pk, published_only=False, label_ids=[label.pk])
    return matrix[0]
