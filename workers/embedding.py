"""The embed stage: CLIP image embeddings of every ingested artwork, per model, into pgvector.

Per batch: decode and preprocess the 256px derivatives in a thread pool while the model embeds
the previous micro-batch; each micro-batch's vectors are written with a binary COPY upsert keyed
on (artwork, model), on a writer thread while the model goes on (inline when the caller holds a
transaction, which another connection could not see). A missing or corrupt derivative is an
:class:`ItemError`; the rest of the batch is stored. Weights that cannot be loaded refuse the job
at ``prepare``, or stop it (:class:`StopJob`) on a worker that lacks them, with the message saying
how to provide them. Switching models is done without loss (:mod:`workers.switch`).
"""
from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np
from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import QuerySet
from django.utils import timezone

from archive import filter_indexes, storage
from archive.images import derivative_where, load_derivative, read_derivative
from archive.storage import StoreUnavailable
from archive.models import Artwork, ArtworkEmbedding, EmbeddingModel, Job
from archive.vectors import ARTWORK_EMBEDDINGS, binary_index_name, copy_arrays, ensure_artwork_index, index_name
from workers.ml.clip import WeightsMissing, preprocess_fingerprint
from workers.ml.registry import active_model, get_embedder, register
from workers.jobs import BatchResult, ItemError, Stage, StopJob, append_message, describe_exception

log = logging.getLogger(__name__)

DERIVATIVE_SIZE = 256
# Jobs adding more vectors than this build the model's HNSW index after the load (faster than
# inserting into the index row by row); smaller jobs create it up front.
INDEX_AFTER_LOAD = int(getattr(settings, "EMBED_INDEX_AFTER_LOAD", 20_000))


# --- Which artworks -----------------------------------------------------------------------------
def candidates(params: dict) -> QuerySet:
    """Artworks with an ingested image (exact duplicates share their original's image)."""
    return Artwork.objects.filter(status=Artwork.Status.OK).exclude(sha256="").values_list("pk", flat=True)


def completed(params: dict) -> QuerySet:
    return ArtworkEmbedding.objects.filter(model_id=params["model_id"]).values_list("artwork_id", flat=True)


def reset(params: dict) -> None:
    """Delete the model's embeddings; the registry then records the preprocessing of the new ones."""
    ArtworkEmbedding.objects.filter(model_id=params["model_id"]).delete()
    if params.get("preprocess"):
        EmbeddingModel.objects.filter(pk=params["model_id"]).update(
            preprocess=params["preprocess"], preprocess_fingerprint=preprocess_fingerprint(params["preprocess"])
        )


# --- Before fan-out -----------------------------------------------------------------------------
# What the stored vectors were made from besides the model's own preprocessing.
INPUT = {"input": f"{DERIVATIVE_SIZE}px JPEG derivative"}


def preprocessing(embedder) -> dict:
    return {**embedder.preprocess_description, **INPUT}


def check_preprocessing(model: EmbeddingModel, embedder, mode: str) -> dict:
    """The preprocessing the job's vectors will be made with. Refuses to mix vectors made with
    other preprocessing into a model's rows unless the job starts over (``reset``); a registry
    row without a description (older versions) adopts this one."""
    now = preprocessing(embedder)
    fingerprint = preprocess_fingerprint(now)
    if model.preprocess and model.preprocess_fingerprint != fingerprint and mode != "reset":
        changed = {k: (model.preprocess.get(k), now.get(k)) for k in sorted(set(model.preprocess) | set(now))
                   if model.preprocess.get(k) != now.get(k)}
        details = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
        raise ValueError(
            f"model {model.key}: the image preprocessing differs from the one its embeddings were made with "
            f"({details}). Re-embed every artwork with: manage.py embed --model {model.key} --mode reset"
        )
    if not model.preprocess:
        EmbeddingModel.objects.filter(pk=model.pk).update(preprocess=now, preprocess_fingerprint=fingerprint)
    return now


def prepare(params: dict) -> dict:
    """Load the model once (WeightsMissing refuses the job with its how-to), register it, check
    its preprocessing, and decide when to build its HNSW index."""
    embedder = get_embedder(params.get("model") or None)
    model = register(embedder)
    params["preprocess"] = check_preprocessing(model, embedder, params.get("mode", "missing"))
    params.update(model_id=model.pk, model_key=model.key, dim=model.dim, untrained=model.untrained)
    if params.get("activate_when_complete") is None:
        params["activate_when_complete"] = active_model() is None
    existing = ArtworkEmbedding.objects.filter(model_id=model.pk).count() if params.get("mode") != "reset" else 0
    to_add = candidates(params).count() - existing
    has_index = _index_exists(model.pk)
    params["index_after_load"] = to_add > INDEX_AFTER_LOAD and not has_index
    if not params["index_after_load"] and not has_index:
        ensure_artwork_index(model.pk, model.dim)
    return params


def _index_exists(model_id: int) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_indexes WHERE indexname = ANY(%s)",
            [[index_name(ARTWORK_EMBEDDINGS, model_id), binary_index_name(ARTWORK_EMBEDDINGS, model_id)]],
        )
        return cursor.fetchone() is not None


# --- One batch ----------------------------------------------------------------------------------
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


_pool_size = 0


def pool_threads() -> int:
    """Threads reading, decoding and preprocessing images: ``EMBED_DECODE_THREADS`` (CPU count) on a
    local folder; on a remote store at least ``EMBED_READ_THREADS``, since each read mostly waits
    on the network (tens of ms per GET) and only a few threads' worth of decoding runs at once."""
    threads = int(getattr(settings, "EMBED_DECODE_THREADS", 0) or os.cpu_count() or 2)
    if storage.local_path(storage.public()) is None:
        threads = max(threads, int(getattr(settings, "EMBED_READ_THREADS", 32) or 0))
    return threads


def decode_pool() -> ThreadPoolExecutor:
    """Threads that read, decode and preprocess images (I/O, PIL and torchvision release the GIL)."""
    global _pool, _pool_size
    threads = pool_threads()
    with _pool_lock:
        if _pool is None or _pool_size != threads:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="embed-decode")
            _pool_size = threads
    return _pool


def micro_batch_size(embedder) -> int:
    configured = int(getattr(settings, "EMBED_MICRO_BATCH", 0) or 0)
    if configured:
        return configured
    return 256 if str(embedder.device).startswith("cuda") else 64


def describe_image_error(exc: BaseException, sha256: str) -> str:
    path = derivative_where(sha256, DERIVATIVE_SIZE)
    if isinstance(exc, FileNotFoundError):
        return f"image derivative missing: {path} (re-import the artwork to rebuild it)"
    return f"image derivative unreadable: {path}: {exc.__class__.__name__}: {exc} (re-import the artwork)"


def _load(embedder, sha256: str):
    return embedder.prepare_image(load_derivative(sha256, DERIVATIVE_SIZE))


def _read(embedder, sha256: str) -> bytes:
    """The derivative's JPEG bytes, for decoding on the GPU (:meth:`ClipEmbedder.batch_from_jpegs`)."""
    return read_derivative(sha256, DERIVATIVE_SIZE)


def embed_artworks(
    embedder, items: Sequence[tuple[int, str]], on_vectors: Callable[[list[int], np.ndarray], None] | None = None
) -> tuple[list[int], np.ndarray, list[ItemError]]:
    """Embed (artwork id, sha256) pairs. Decoding of micro-batch k+1 overlaps the model on k;
    ``on_vectors(ids, vectors)`` is called with each micro-batch's result (e.g. to write it).
    Returns the ids that worked, their vectors (rows in the same order) and the failures."""
    pool = decode_pool()
    size = micro_batch_size(embedder)
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    ok_ids: list[int] = []
    vectors: list[np.ndarray] = []
    errors: list[ItemError] = []

    on_gpu = getattr(embedder, "gpu_decode", False)
    loader = _read if on_gpu else _load

    def submit(chunk) -> list[Future]:
        return [pool.submit(loader, embedder, sha) for _, sha in chunk]

    pending = submit(chunks[0]) if chunks else []
    for index, chunk in enumerate(chunks):
        following = submit(chunks[index + 1]) if index + 1 < len(chunks) else []
        tensors, ids = [], []
        for (artwork_id, sha), future in zip(chunk, pending):
            try:
                tensors.append(future.result())
                ids.append(artwork_id)
            except StoreUnavailable:
                raise  # the store is away, not the image: the batch is retried, nothing is failed
            except Exception as exc:  # noqa: BLE001 - one bad image never aborts the batch
                errors.append(ItemError(artwork_id, describe_image_error(exc, sha)))
        batch = None
        if tensors and on_gpu:
            batch, kept, failed = embedder.batch_from_jpegs(tensors)
            errors.extend(ItemError(ids[position], reason) for position, reason in failed)
            ids = [ids[position] for position in kept]
        elif tensors:
            batch = embedder.batch_from_prepared(tensors)
        if batch is not None:
            out = embedder.embed_batch(batch)
            finite = np.isfinite(out).all(axis=1)
            if not finite.all():
                errors.extend(ItemError(i, "the model produced a non-finite embedding (NaN or infinity)")
                              for i, ok in zip(ids, finite) if not ok)
                ids, out = [i for i, ok in zip(ids, finite) if ok], out[finite]
            if on_vectors is not None and ids:
                on_vectors(ids, out)
            vectors.append(out)
            ok_ids.extend(ids)
        pending = following
    matrix = np.concatenate(vectors) if vectors else np.zeros((0, embedder.dim), dtype=np.float32)
    return ok_ids, matrix, errors


def store_embeddings(model_id: int, ids: Sequence[int], matrix: np.ndarray) -> int:
    """Upsert one row per (artwork, model) with a binary COPY (float32 values exactly as given)."""
    n = len(ids)
    now = np.datetime64(timezone.now().replace(tzinfo=None), "us")  # Django's now() is UTC
    return copy_arrays(
        ArtworkEmbedding._meta.db_table,
        {
            "artwork_id": np.asarray(ids, dtype=np.int64),
            "model_id": np.full(n, model_id, dtype=np.int64),
            "vector": np.asarray(matrix, dtype=np.float32).reshape(n, -1),
            "created_at": np.full(n, now),
        },
        conflict=["artwork_id", "model_id"],
        update=["vector", "created_at"],
    )


_writer: ThreadPoolExecutor | None = None


def _write_on_thread(model_id: int, ids: list[int], matrix: np.ndarray) -> int:
    try:
        return store_embeddings(model_id, ids, matrix)
    except BaseException:
        connections.close_all()  # this thread's connection may be broken: the next write reconnects
        raise


class Writer:
    """Writes micro-batches of vectors while the model computes the next ones: on one writer
    thread with its own database connection, or inline when this thread is inside a transaction
    (rows it has not committed would be invisible to the writer's connection). :meth:`wait`
    returns once everything is written and raises the first write error."""

    def __init__(self, model_id: int):
        global _writer
        self.model_id = model_id
        self.futures: list[Future] = []
        self.inline = connection.in_atomic_block
        if not self.inline:
            with _pool_lock:
                if _writer is None:
                    _writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed-write")

    def __call__(self, ids: list[int], matrix: np.ndarray) -> None:
        if self.inline:
            store_embeddings(self.model_id, ids, matrix)
        else:
            self.futures.append(_writer.submit(_write_on_thread, self.model_id, list(ids), matrix))

    def wait(self) -> None:
        error = None
        for future in self.futures:
            try:
                future.result()
            except BaseException as exc:  # noqa: BLE001 - wait for every write, raise the first error
                error = error or exc
        if self.futures:
            # Like the heartbeat thread: no connection is left open between batches (an idle
            # worker holds none, and a database restart between batches is never noticed late).
            _writer.submit(connections.close_all).result()
        if error is not None:
            raise error


def load_embedder(key: str):
    """The embedder for a batch; missing weights on this worker stop the job (every batch would fail)."""
    try:
        return get_embedder(key)
    except WeightsMissing as exc:
        raise StopJob(str(exc)) from exc


def process(ids: list[int], params: dict) -> BatchResult:
    embedder = load_embedder(params["model_key"])
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
    writer = Writer(params["model_id"])
    try:
        ok_ids, _, errors = embed_artworks(embedder, items, on_vectors=writer)
    except BaseException:
        try:
            writer.wait()  # never leave a write running behind a failed batch
        except BaseException:  # noqa: BLE001 - the embedding error is the one to report
            pass
        raise
    writer.wait()
    result.errors.extend(errors)
    result.done = ok_ids
    return result


# --- After the job ------------------------------------------------------------------------------
def finish(job: Job) -> None:
    """Build the model's HNSW index if the load deferred it, or the binary-quantized one when the
    model's rows have grown past VECTOR_TWO_PHASE_ABOVE, and its institutions' partial indexes
    (:mod:`archive.filter_indexes`) (what follows an embed job, such as
    placing the new works on the maps or activating the model, is in :mod:`workers.pipeline`)."""
    params = job.params
    ensure_artwork_index(params["model_id"], params["dim"])
    # Institutions that crossed VECTOR_FILTER_INDEX_MIN (or left the range) get (lose) their index,
    # once the hook's transaction has committed: CONCURRENTLY, so searches and writes go on.
    transaction.on_commit(lambda: institution_indexes(job, params["model_id"], params["dim"]))


def institution_indexes(job: Job, model_id: int, dim: int) -> None:
    """The model's institution indexes brought up to date (:func:`archive.filter_indexes.ensure`).
    A failure is logged and noted on the job: search works without them (more slowly), so it
    holds up nothing the pipeline does next; ``manage.py vector_filter_indexes`` runs it again."""
    try:
        filter_indexes.ensure(model_id, dim, progress=log.info)
    except Exception as exc:  # noqa: BLE001 - an optional speed-up: reported, never fatal
        log.exception("institution indexes of model %s", model_id)
        append_message(job, f"institution indexes not built ({describe_exception(exc)[0]}); "
                            "run: manage.py vector_filter_indexes")


STAGE = Stage(
    kind="embed",
    queue="embed",
    description="Compute image embeddings",
    batch_size=0,  # settings.JOB_BATCH_SIZE
    candidates=candidates,
    completed=completed,
    reset=reset,
    process=process,
    prepare=prepare,
    finish=finish,
)
