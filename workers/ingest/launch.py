"""Start and run import jobs. An import is a Job: its plan (:mod:`.plan`) cuts the source's stream
into batches of records, and each batch is imported (:mod:`.batch`) on the ingest workers or in
this process, through the same job kernel as every stage (:mod:`.stage`). Entry points:

- :func:`launch` - start an import on the ingest workers (dashboard, API, ``import --wait``);
- :func:`start` + :func:`run_job` - record an import Job and run it in this process
  (``import`` without ``--wait``, tests, benchmarks); :func:`import_location` does both;
- :func:`start_from_params` - the stage's ``start``: a request's params (source and options) to a launched job;
- :func:`workers.ingest.retry.launch_retry` / ``retry_errors`` - re-run the failed items of a job.
"""
from __future__ import annotations

import time
from typing import Callable

from django.db import transaction

from archive.importers import open_source
from archive.importers.base import ImportSettings, Source, Stats
from archive.models import Job, JobBatch
from workers import jobs

from .plan import PLAN_SEQ

# What an import job may be given besides its source (see archive.importers.open_source).
OPTIONS = {"mapping", "kind", "with_images", "canvases", "sidecar", "source_name", "encoding", "limit", "overwrite_other", "on_match",
           "include", "exclude"}


def start(
    source: Source, *, limit: int | None = None, user=None, extra: dict | None = None, cfg: ImportSettings | None = None,
    job: Job | None = None,
) -> Job:
    """Record a queued import Job for a source, with its plan batch (batch 0). Run it with
    :func:`run_job` in this process or send it to the ingest workers with :func:`submit`.
    ``job``: an existing, empty import Job to use (a retry creates its job first)."""
    sizes = cfg or ImportSettings.from_settings()
    params = {
        "importer": source.kind, "params": source.params(), "limit": limit, "describe": source.describe(),
        # Recorded so that a resumed plan cuts the stream into the same batches on any machine.
        "batch_size": sizes.batch_size, "metadata_batch_size": sizes.metadata_batch_size,
    }
    params.update(extra or {})
    with transaction.atomic():
        if job is None:
            job = jobs.create_job(Job.Kind.IMPORT, params, user=user)
        else:
            Job.objects.filter(pk=job.pk).update(params=params)
            job.params = params
        JobBatch.objects.create(job=job, seq=PLAN_SEQ)
    return job


def submit(job: Job) -> int:
    """Send an import job's plan to the ingest queue (after the current transaction commits); the
    plan then sends each batch of records as it writes it. Returns the number of tasks sent."""
    return jobs.enqueue_batches(job, JobBatch.objects.filter(job=job, seq=PLAN_SEQ).values_list("pk", flat=True))


def launch(source: Source, *, limit: int | None = None, user=None, extra: dict | None = None) -> Job:
    """Start an import on the ingest workers (the dashboard, the API, ``import --async/--wait``)."""
    job = start(source, limit=limit, user=user, extra=extra)
    submit(job)
    return job


def run_job(
    job: Job,
    *,
    source: Source | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_total: Callable[[int | None], None] | None = None,
    cfg: ImportSettings | None = None,
    tick: Callable[[], None] | None = None,
) -> Stats:
    """Run an import Job in this process: its plan, and each batch right after the plan writes it,
    all through ``workers.jobs.run_batch`` (the same leases, counts and errors as on workers).

    ``progress(done, failed)`` is called after each batch, ``tick()`` (from a decoding thread) as
    each image is done, ``on_total(n)`` once the source is counted. A paused job waits here until
    it is resumed; a cancelled one stops. Returns the counts of the batches run here (``done`` and
    ``failed`` are the job's)."""
    stats = Stats()
    worker = jobs.worker_name()
    options: dict = {"source": source, "cfg": cfg, "tick": tick, "stats": stats, "on_total": on_total}

    def run_here(batch_id: int) -> None:
        while True:
            outcome = jobs.run_batch(batch_id, worker, options=options)
            if outcome != "skipped (paused)":
                break
            while jobs.current_state(job) == Job.State.PAUSED:
                time.sleep(0.5)
        if progress and outcome.startswith("processed"):
            progress(*JobBatch.objects.values_list("done", "failed").get(pk=batch_id))

    options["send"] = lambda batch_ids: [run_here(batch_id) for batch_id in batch_ids]
    for batch_id in JobBatch.objects.filter(job=job, seq=PLAN_SEQ).values_list("pk", flat=True):
        run_here(batch_id)
    # Batches of an earlier run of this job (a resumed plan re-sends them too; this catches the rest).
    for batch_id in JobBatch.objects.filter(job=job).exclude(state=JobBatch.State.DONE).order_by("seq").values_list("pk", flat=True):
        run_here(batch_id)
    job.refresh_from_db()
    stats.done, stats.failed = job.done, job.failed
    return stats


def import_location(location: str, *, limit: int | None = None, cfg: ImportSettings | None = None, **options) -> tuple[Job, Stats]:
    """Open, record and run an import in this process (tests, benchmarks, scripts)."""
    source = open_source(location, **options)
    job = start(source, limit=limit, cfg=cfg)
    stats = run_job(job, source=source, cfg=cfg)
    job.refresh_from_db()
    return job, stats


def start_from_params(params: dict, *, mode: str = "missing", user=None) -> Job:
    """An import job from a request (dashboard, API): ``source`` (a folder, metadata file or IIIF
    manifest URL), ``limit`` and the options of :func:`archive.importers.open_source`. Raises
    ValueError (a :class:`SourceError` for a source that cannot be opened)."""
    params = dict(params)
    params.pop("mode", None)
    location = str(params.pop("source", "") or "").strip()
    if not location:
        raise ValueError("an import needs a source: a folder, metadata file or IIIF manifest URL")
    unknown = set(params) - OPTIONS
    if unknown:
        raise ValueError(f"unknown import option(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(OPTIONS))}")
    limit = params.pop("limit", None)
    try:
        limit = int(limit) if limit not in (None, "") else None
        # From a request: local paths only inside IMPORT_ALLOWED_ROOTS (archive.importers.policy).
        source = open_source(location, operator=False, **{k: v for k, v in params.items() if v not in (None, "")})
    except TypeError as exc:
        raise ValueError(str(exc)) from exc
    return launch(source, limit=limit, user=user)
