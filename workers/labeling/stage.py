"""The label stage: top-k zero-shot labels of every embedded artwork, per model.

``prepare`` only resolves the model (``params["model"]``: a registry key; default the active
model, else the configured default), so launching returns at once. ``process`` first makes sure
the label texts are ready (:mod:`.setup`: vocabulary, text embeddings, score statistics; done by
the job's first batch on a worker), then labels one batch: it reads the batch's embeddings,
scores them against every published label in chunks and replaces the batch's rows for that
model in one transaction. Nothing here touches another model's rows. Activating the model when
an embed job asked for it follows the job (:mod:`workers.pipeline`).
"""
from __future__ import annotations

import threading

import numpy as np
from django.conf import settings

from archive.models import ArtworkEmbedding, ArtworkLabel, EmbeddingModel
from workers.jobs import BatchResult, ItemError, Stage

from .models import model_for_work
from .scoring import DEFAULT_MAX_ROWS, LabelScorer
from .setup import ensure_texts
from .store import delete_rows, label_vectors_version, load_embeddings, load_label_vectors, write_top_k


def top_k(params: dict | None = None) -> int:
    return int((params or {}).get("top_k") or getattr(settings, "LABEL_TOP_K", 20))


def _model_id(params: dict) -> int:
    if params.get("model_id"):
        return int(params["model_id"])
    return model_for_work(params.get("model")).pk


def prepare(params: dict) -> dict:
    """Resolve the model (cheap: the texts are made ready inside the job, see :mod:`.setup`)."""
    model = model_for_work(params.get("model"))
    params = {k: v for k, v in params.items() if k != "texts_ready"}  # a retry makes them ready again
    return {**params, "model": model.key, "model_id": model.pk, "top_k": top_k(params), "untrained": model.untrained}


def candidates(params: dict):
    return ArtworkEmbedding.objects.filter(model_id=_model_id(params)).values_list("artwork_id", flat=True)


def completed(params: dict):
    # Every labelled artwork has exactly one rank-1 row per model: no DISTINCT over k rows each.
    return ArtworkLabel.objects.filter(model_id=_model_id(params), rank=1).values_list("artwork_id", flat=True)


def reset(params: dict) -> None:
    delete_rows(_model_id(params))


# The label matrix of a model, cached per process and reloaded when labels change.
_cache: dict[int, tuple[tuple, np.ndarray, LabelScorer]] = {}
_cache_lock = threading.Lock()


def scorer_for(model_id: int, k: int, max_rows: int = DEFAULT_MAX_ROWS) -> tuple[np.ndarray, LabelScorer]:
    version = (label_vectors_version(model_id), k, max_rows)
    with _cache_lock:
        cached = _cache.get(model_id)
        if cached is None or cached[0] != version:
            label_ids, matrix = load_label_vectors(model_id)
            if len(label_ids) == 0:
                raise RuntimeError(
                    f"no published label has a text embedding for model {model_id}; run the label job's prepare "
                    "(manage.py label) or load the vocabulary (manage.py load_vocabulary)"
                )
            cached = (version, label_ids, LabelScorer(matrix, k, max_rows=max_rows))
            _cache[model_id] = cached
        return cached[1], cached[2]


def label_artworks(artwork_ids: list[int], model=None, *, k: int | None = None, max_rows: int = DEFAULT_MAX_ROWS) -> BatchResult:
    """Label these artworks under ``model`` (an EmbeddingModel, pk or key): replaces their top-k rows."""
    model = model_for_work(model)
    label_ids, scorer = scorer_for(model.pk, k or top_k(), max_rows)
    ids, matrix = load_embeddings(model.pk, artwork_ids)
    result = BatchResult()
    present = set(ids.tolist())
    for artwork_id in artwork_ids:
        if artwork_id not in present:
            result.errors.append(ItemError(artwork_id, f"no embedding under model {model.key}", "run the embed stage for this model first"))
    if len(ids):
        norms = np.linalg.norm(matrix, axis=1)
        good = np.isfinite(norms) & (norms > 1e-6)
        if matrix.shape[1] != scorer.dim:
            raise ValueError(f"embeddings of model {model.key} have {matrix.shape[1]} dimensions, its label vectors {scorer.dim}")
        for artwork_id in ids[~good].tolist():
            result.errors.append(ItemError(artwork_id, "embedding is zero or not finite", "re-embed this artwork"))
        ids, matrix = ids[good], matrix[good] / norms[good, None]
        for chunk_ids, idx, vals in scorer.score_chunks([(ids, matrix)]):
            write_top_k(model.pk, chunk_ids, label_ids, idx, vals)
            result.done.extend(chunk_ids.tolist())
    return result


def process(artwork_ids: list[int], params: dict) -> BatchResult:
    model = EmbeddingModel.objects.get(pk=_model_id(params))
    ensure_texts(model, params.get("job_id"))
    return label_artworks(list(artwork_ids), model, k=top_k(params))


STAGE = Stage(
    kind="label",
    queue="label",
    description="Label artworks from the vocabulary",
    batch_size=int(getattr(settings, "LABEL_BATCH_SIZE", 2000)),
    candidates=candidates,
    completed=completed,
    reset=reset,
    process=process,
    prepare=prepare,
)
