"""The neighbours stage: the stored kNN graph of one embedding model (``Job.Kind.NEIGHBOURS``).

For one batch of artwork ids, :func:`process` reads each artwork's K nearest other artworks from
the model's HNSW index, QUERY_CHUNK artworks per query (:func:`archive.vectors.neighbours_of`:
each stored vector is the query of one index scan, no vector leaves the database), and upserts one
:class:`~archive.models.ArtworkNeighbours` row per artwork (ids nearest first, cosine distances)
in one COPY per batch. Re-running replaces rows, never duplicates them.

Freshness: a work embedded after others lists its own neighbours (the embed job's follow-up,
:func:`after_embed`, writes its row), but the older works' lists are not rewritten. The graph is
made symmetric when it is read instead (the path also follows the rows that *list* a work, through
the GIN index on ``neighbours``), so a new work is reachable from its neighbours at once, with no
write to their rows and no lock between concurrent batches. Lists grow stale as the archive grows
(an old work's list misses newer, nearer works); ``--mode all`` rewrites them.

The backfill of an existing archive is the same stage over the artworks without a row
(``mode=missing``): chunked into job batches, resumable like every job, memory bounded by a batch.
"""
from __future__ import annotations

import logging
from collections import defaultdict

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from archive import vectors
from archive.models import ArtworkEmbedding, ArtworkNeighbours, EmbeddingModel
from workers.jobs import BatchResult, ItemError, Stage

log = logging.getLogger(__name__)

K = 12  # neighbours stored per artwork
EF_SEARCH = 64  # hnsw.ef_search of the look-ups (>= K; more finds the true neighbours more often)
QUERY_CHUNK = 64  # artworks whose neighbours one query reads
TWO_PHASE_CANDIDATES = 200  # candidates re-ranked per work where the model has the binary-quantized index


def two_phase(model_id: int) -> int | None:
    """Candidates of a two-phase look-up when the model's artworks are searched through their
    binary-quantized index (from VECTOR_TWO_PHASE_ABOVE artworks), else None."""
    return TWO_PHASE_CANDIDATES if vectors.index_exists(vectors.ARTWORK_EMBEDDINGS, model_id, binary=True) else None


def _model(params: dict) -> EmbeddingModel:
    if params.get("model_id"):
        found = EmbeddingModel.objects.filter(pk=int(params["model_id"])).first()
    elif params.get("model"):
        found = EmbeddingModel.objects.filter(key=params["model"]).first()
    else:
        from workers.ml import registry

        found = registry.active_model()
    if found is None:
        what = f"model {params['model']!r}" if params.get("model") else "an active model"
        raise ValueError(f"the neighbour graph needs embeddings: no {what}; run: manage.py embed first")
    return found


def prepare(params: dict) -> dict:
    model = _model(params)
    return {**params, "model": model.key, "model_id": model.pk, "dim": model.dim, "k": K, "untrained": model.untrained}


def candidates(params: dict):
    """Artworks embedded under the model."""
    return ArtworkEmbedding.objects.filter(model_id=params["model_id"]).values_list("artwork_id", flat=True)


def completed(params: dict):
    return ArtworkNeighbours.objects.filter(model_id=params["model_id"]).values_list("artwork_id", flat=True)


def reset(params: dict) -> None:
    ArtworkNeighbours.objects.filter(model_id=params["model_id"]).delete()


def nearest(ids: list[int], model_id: int, dim: int, k: int = K) -> dict[int, list[tuple[int, float]]]:
    """Each embedded artwork of ``ids``: its ``k`` nearest other artworks as (id, cosine distance),
    nearest first. Artworks without an embedding under the model are absent."""
    out: dict[int, list[tuple[int, float]]] = defaultdict(list)
    candidates = two_phase(model_id)
    for start in range(0, len(ids), QUERY_CHUNK):
        chunk = ids[start:start + QUERY_CHUNK]
        rows = vectors.neighbours_of(vectors.ARTWORK_EMBEDDINGS, model_id, chunk, dim=dim, limit=k + 1,
                                     key="artwork_id", ef_search=max(EF_SEARCH, k + 1), candidates=candidates)
        for source, other, distance in rows:
            out[int(source)]  # an artwork alone under its model still has a (empty) row
            if int(other) != int(source) and len(out[int(source)]) < k:
                out[int(source)].append((int(other), max(0.0, float(distance))))
    return dict(out)


def process(ids: list[int], params: dict) -> BatchResult:
    params = prepare(params) if "model_id" not in params or "dim" not in params else params
    result = BatchResult()
    found = nearest(list(ids), params["model_id"], params["dim"], int(params.get("k") or K))
    now = timezone.now()
    rows = []
    for artwork_id in ids:
        listed = found.get(int(artwork_id))
        if listed is None:
            result.errors.append(ItemError(artwork_id, f"no embedding under {params['model']} (embed it first, or it was deleted)"))
            continue
        # A rewritten list drops its landmark distances (they were for the old graph): the finish
        # step recomputes them when enough rows lack them.
        rows.append((artwork_id, params["model_id"], [a for a, _ in listed], [round(d, 6) for _, d in listed], now, None))
        result.done.append(artwork_id)
    if rows:
        vectors.copy_rows("archive_artworkneighbours", ["artwork_id", "model_id", "neighbours", "distances", "computed_at", "landmarks"],
                          rows, conflict=["model_id", "artwork_id"], update=["neighbours", "distances", "computed_at", "landmarks"])
    result.summary = {"rows": len(rows)}
    return result


def finish(job) -> None:
    """The graph's landmark distances (:mod:`workers.landmarks`), when more than a few of its rows
    have none (a backfill, a rewrite; not after each handful of new works): once the kernel's
    transaction around this hook has committed, in a transaction of their own (a minute or more of
    work on a large archive holds no lock of the hook's). A failure is logged and noted on the job:
    paths fall back to straight-line estimates meanwhile."""
    transaction.on_commit(lambda: refresh_landmarks(job))


def refresh_landmarks(job) -> None:
    """Recompute the model's landmark distances when they are stale and the graph is not too large
    for one process (PATH_LANDMARKS_MAX_WORKS); what stops it is noted on the job."""
    from workers import landmarks
    from workers.jobs import append_message, describe_exception

    model_id = int(job.params["model_id"])
    try:
        if not landmarks.stale(model_id):
            return
        skipped = landmarks.too_large(model_id)
        if skipped:
            log.warning("landmarks of model %s: %s", model_id, skipped)
            append_message(job, f"landmarks not computed: {skipped}")
            return
        landmarks.compute(model_id)
    except Exception as exc:  # noqa: BLE001 - a speed-up of the path: reported, never fatal
        log.exception("landmarks of model %s", model_id)
        append_message(job, f"landmarks not computed ({describe_exception(exc)[0]}); paths use straight-line estimates")


def after_embed(job) -> str | None:
    """The pipeline's step after an embed job: the neighbour lists of the artworks it embedded
    without one (unless NEIGHBOURS_AFTER_EMBED is off, or one is already running for the model)."""
    from archive.models import Job
    from workers.jobs import launch

    if not getattr(settings, "NEIGHBOURS_AFTER_EMBED", True) or not job.done or not job.params.get("model_id"):
        return None
    model_id = int(job.params["model_id"])
    running = Job.objects.filter(kind=Job.Kind.NEIGHBOURS, params__model_id=model_id).exclude(state__in=Job.FINAL_STATES).first()
    if running is not None:
        return f"neighbour graph: job {running.pk} is already running"
    started = launch("neighbours", {"model_id": model_id}, mode="missing")
    if not started.total:
        return None
    return f"neighbour graph of {started.total} artworks: job {started.pk}"


STAGE = Stage(
    kind="neighbours",
    queue="maps",
    description="Nearest-neighbour graph (for paths)",
    batch_size=256,
    candidates=candidates,
    completed=completed,
    reset=reset,
    process=process,
    prepare=prepare,
    finish=finish,
)
