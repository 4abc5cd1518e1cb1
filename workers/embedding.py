"""The embed stage: CLIP image embeddings of every ingested artwork, per model, into pgvector.

Per batch: decode and preprocess the 256px derivatives in a thread pool while the model embeds
the previous micro-batch, then write all vectors with one COPY upsert keyed on (artwork, model).
A missing or corrupt derivative is an :class:`ItemError`; the rest of the batch is stored.
Weights that cannot be loaded refuse the job at ``prepare`` with the message saying how to
provide them. Switching models is done without loss: a new model is embedded beside the active
one and only activated (see :func:`maybe_activate`) once every artwork has its embedding and its
label job is done.
"""
from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Sequence

import numpy as np
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from archive.images import derivative_path, load_derivative
from archive.models import Artwork, ArtworkEmbedding, EmbeddingModel, Job
from archive.vectors import ARTWORK_EMBEDDINGS, copy_rows, ensure_hnsw_index, index_name
from workers.ml.registry import activate, active_model, get_embedder, register
from workers.stages import BatchResult, ItemError, Stage

log = logging.getLogger(__name__)

DERIVATIVE_SIZE = 256
# Jobs adding more vectors than this build the model's HNSW index after the load (faster than
# inserting into the index row by row); smaller jobs create it up front.
INDEX_AFTER_LOAD = int(os.environ.get("EMBED_INDEX_AFTER_LOAD", 20_000))


# --- Which artworks -----------------------------------------------------------------------------
def candidates(params: dict) -> QuerySet:
    """Artworks with an ingested image (exact duplicates share their original's image)."""
    return Artwork.objects.filter(status=Artwork.Status.OK).exclude(sha256="").values_list("pk", flat=True)


def completed(params: dict) -> QuerySet:
    return ArtworkEmbedding.objects.filter(model_id=params["model_id"]).values_list("artwork_id", flat=True)


def reset(params: dict) -> None:
    ArtworkEmbedding.objects.filter(model_id=params["model_id"]).delete()


# --- Before fan-out -----------------------------------------------------------------------------
def prepare(params: dict) -> dict:
    """Load the model once (WeightsMissing refuses the job with its how-to), register it, and
    decide when to build its HNSW index."""
    embedder = get_embedder(params.get("model") or None)
    model = register(embedder)
    if model.preprocess_fingerprint and model.preprocess_fingerprint != embedder.fingerprint:
        raise ValueError(
            f"model {model.key}: its image preprocessing changed since its embeddings were made "
            f"({model.preprocess_fingerprint} -> {embedder.fingerprint}); re-embed with --mode reset"
        )
    params.update(model_id=model.pk, model_key=model.key, dim=model.dim, untrained=model.untrained)
    if params.get("activate_when_complete") is None:
        params["activate_when_complete"] = active_model() is None
    existing = ArtworkEmbedding.objects.filter(model_id=model.pk).count() if params.get("mode") != "reset" else 0
    to_add = candidates(params).count() - existing
    has_index = _index_exists(model.pk)
    params["index_after_load"] = to_add > INDEX_AFTER_LOAD and not has_index
    if not params["index_after_load"] and not has_index:
        ensure_hnsw_index(ARTWORK_EMBEDDINGS, model.pk, model.dim)
    return params


def _index_exists(model_id: int) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [index_name(ARTWORK_EMBEDDINGS, model_id)])
        return cursor.fetchone() is not None


# --- One batch ----------------------------------------------------------------------------------
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def decode_pool() -> ThreadPoolExecutor:
    """Threads that decode and preprocess images (PIL and torchvision release the GIL)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            threads = int(getattr(settings, "EMBED_DECODE_THREADS", 0) or os.cpu_count() or 2)
            _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="embed-decode")
    return _pool


def micro_batch_size(embedder) -> int:
    configured = int(getattr(settings, "EMBED_MICRO_BATCH", 0) or 0)
    if configured:
        return configured
    return 256 if str(embedder.device).startswith("cuda") else 64


def describe_image_error(exc: BaseException, sha256: str) -> str:
    path = derivative_path(sha256, DERIVATIVE_SIZE)
    if isinstance(exc, FileNotFoundError):
        return f"image derivative missing: {path} (re-import the artwork to rebuild it)"
    return f"image derivative unreadable: {path}: {exc.__class__.__name__}: {exc} (re-import the artwork)"


def _load(embedder, sha256: str):
    return embedder.prepare_image(load_derivative(sha256, DERIVATIVE_SIZE))


def embed_artworks(embedder, items: Sequence[tuple[int, str]]) -> tuple[list[int], np.ndarray, list[ItemError]]:
    """Embed (artwork id, sha256) pairs. Decoding of micro-batch k+1 overlaps the model on k.
    Returns the ids that worked, their vectors (rows in the same order) and the failures."""
    pool = decode_pool()
    size = micro_batch_size(embedder)
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    ok_ids: list[int] = []
    vectors: list[np.ndarray] = []
    errors: list[ItemError] = []

    def submit(chunk) -> list[Future]:
        return [pool.submit(_load, embedder, sha) for _, sha in chunk]

    pending = submit(chunks[0]) if chunks else []
    for index, chunk in enumerate(chunks):
        following = submit(chunks[index + 1]) if index + 1 < len(chunks) else []
        tensors, ids = [], []
        for (artwork_id, sha), future in zip(chunk, pending):
            try:
                tensors.append(future.result())
                ids.append(artwork_id)
            except Exception as exc:  # noqa: BLE001 - one bad image never aborts the batch
                errors.append(ItemError(artwork_id, describe_image_error(exc, sha)))
        if tensors:
            vectors.append(embedder.embed_batch(embedder.batch_from_prepared(tensors)))
            ok_ids.extend(ids)
        pending = following
    matrix = np.concatenate(vectors) if vectors else np.zeros((0, embedder.dim), dtype=np.float32)
    return ok_ids, matrix, errors


def vector_literal(vector: np.ndarray) -> str:
    """pgvector's text form; float32 precision is all a vector column keeps."""
    return "[" + ",".join(map("{:.7g}".format, vector.tolist())) + "]"


def store_embeddings(model_id: int, ids: Sequence[int], matrix: np.ndarray) -> int:
    """Upsert one row per (artwork, model) with COPY."""
    now = timezone.now()
    rows = ((artwork_id, model_id, vector_literal(vec), now) for artwork_id, vec in zip(ids, matrix))
    return copy_rows(
        ArtworkEmbedding._meta.db_table,
        ["artwork_id", "model_id", "vector", "created_at"],
        rows,
        conflict=["artwork_id", "model_id"],
        update=["vector", "created_at"],
    )


def process(ids: list[int], params: dict) -> BatchResult:
    embedder = get_embedder(params["model_key"])
    shas = dict(Artwork.objects.filter(pk__in=ids).values_list("pk", "sha256"))
    result = BatchResult()
    items = []
    for artwork_id in ids:
        sha = shas.get(artwork_id)
        if sha is None:
            result.errors.append(ItemError(artwork_id, "artwork no longer exists"))
        elif not sha:
            result.errors.append(ItemError(artwork_id, "artwork has no ingested image"))
        else:
            items.append((artwork_id, sha))
    ok_ids, matrix, errors = embed_artworks(embedder, items)
    result.errors.extend(errors)
    if ok_ids:
        store_embeddings(params["model_id"], ok_ids, matrix)
    result.done = ok_ids
    return result


# --- After the job ------------------------------------------------------------------------------
def coverage_complete(model: EmbeddingModel) -> bool:
    """True when every candidate artwork has an embedding of ``model``."""
    from workers.jobs import select_ids

    return next(iter(select_ids(STAGE, {"model_id": model.pk}, "missing")), None) is None


def labels_done(model: EmbeddingModel) -> bool:
    """True when a label job for ``model`` finished (params carry model_id or model_key)."""
    from django.db.models import Q

    return Job.objects.filter(
        Q(params__model_id=model.pk) | Q(params__model_key=model.key), kind=Job.Kind.LABEL, state=Job.State.DONE
    ).exists()


def maybe_activate(model: EmbeddingModel | int, *, require_labels: bool | None = None) -> bool:
    """Make ``model`` the active one if it is ready: every artwork embedded and (when another model
    is active, so the explorer has labels to lose) its label job done. Curator decisions are
    model-independent and stay. Returns True when ``model`` is active afterwards."""
    if not isinstance(model, EmbeddingModel):
        model = EmbeddingModel.objects.get(pk=model)
    current = active_model()
    if current is not None and current.pk == model.pk:
        return True
    if not coverage_complete(model):
        return False
    if require_labels is None:
        require_labels = current is not None
    if require_labels and not labels_done(model):
        return False
    activate(model)
    log.info("activated embedding model %s", model.key)
    return True


def finish(job: Job) -> None:
    """Build the model's HNSW index if the load deferred it; then, if asked, activate the model
    once it is ready. When another model is active the new one first needs its labels, so a label
    job for it is started here; the label job's end activates it (see ``activate_if_requested``)."""
    params = job.params
    if not _index_exists(params["model_id"]):
        ensure_hnsw_index(ARTWORK_EMBEDDINGS, params["model_id"], params["dim"])
    from workers.layouts.auto import place_after_embed

    place_after_embed(job)  # newly embedded artworks go onto the ready maps of this model
    if not params.get("activate_when_complete"):
        return
    model = EmbeddingModel.objects.get(pk=params["model_id"])
    if maybe_activate(model) or not coverage_complete(model) or labels_done(model):
        return
    from workers.jobs import launch

    running = Job.objects.filter(kind=Job.Kind.LABEL, params__model_id=model.pk).exclude(state__in=Job.FINAL_STATES)
    if not running.exists():
        label_job = launch("label", {"model": model.key}, mode="missing")
        log.info("model %s embedded; label job %s started, the model is activated when it is done", model.key, label_job.pk)


STAGE = Stage(
    kind="embed",
    queue="embed",
    batch_size=0,  # settings.JOB_BATCH_SIZE
    candidates=candidates,
    completed=completed,
    reset=reset,
    process=process,
    prepare=prepare,
    finish=finish,
)


def activate_if_requested(model: EmbeddingModel | int) -> bool:
    """For the label stage's finish hook: activate ``model`` if an embed job asked for it
    (``--activate-when-complete``) and it is now ready."""
    model_id = model.pk if isinstance(model, EmbeddingModel) else int(model)
    asked = Job.objects.filter(
        kind=Job.Kind.EMBED, state=Job.State.DONE, params__model_id=model_id, params__activate_when_complete=True
    ).exists()
    return asked and maybe_activate(model_id)
