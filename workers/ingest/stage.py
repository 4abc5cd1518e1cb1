"""The import as a stage of the job kernel (queue "ingest").

An import job's batch 0 is its plan (:mod:`workers.ingest.plan`); every later batch holds
records and is imported by :func:`workers.ingest.batch.ingest`. Both go through
``workers.jobs.run_batch`` like every other stage: lease, heartbeat, errors and counts recorded
exactly once with the batch, recovery of batches whose worker died.
"""
from __future__ import annotations

from django.conf import settings
from django.db import connection

from archive.importers.base import (
    ImportSettings,
    Record,
    Stats,
    item_from_json,
    summary_text,
)
from archive.models import Job, JobBatch
from workers.jobs import (
    TRANSIENT_ERRORS,
    BatchResult,
    ItemError,
    Stage,
    describe_exception,
)

from . import batch as ingest
from . import plan
from .launch import start_from_params
from .retry import launch_retry

SUMMARY_COUNTS = ("created", "updated", "duplicates", "near_duplicates", "image_failed_rows", "enriched", "skipped", "records", "no_image",
                  "untitled")


def run_batch(job: Job, batch: JobBatch, options: dict) -> BatchResult:
    """Plan (batch 0) or import one batch of records. ``options`` (an in-process run): ``source``
    (already opened), ``cfg`` (ImportSettings), ``send`` (how new batches are run), ``tick``,
    ``stats`` (a Stats that this batch's counts are added to), ``on_total``."""
    if batch.seq == plan.PLAN_SEQ:
        return plan.plan(job, batch, source=options.get("source"), send=options.get("send"), on_total=options.get("on_total"))
    cfg = options.get("cfg") or ImportSettings.from_settings()
    items = [item_from_json(data) for data in batch.records or []]
    stats = Stats()
    try:
        outcome = ingest.ingest(items, cfg, stats, tick=options.get("tick"))
    except TRANSIENT_ERRORS:
        raise
    except Exception as exc:  # noqa: BLE001 - every record of the batch is recorded with what re-runs it
        reason, detail = describe_exception(exc)
        errors = [
            ItemError(None, f"batch failed: {reason}", detail, item=item.label, payload=item.payload())
            if isinstance(item, Record) else ItemError(None, item.reason, item.detail, item=item.item, payload=item.payload)
            for item in items
        ]
        return BatchResult(errors=errors)
    if options.get("stats") is not None:
        options["stats"].add(stats)
    return BatchResult(done=outcome.done, errors=outcome.errors, summary=stats.counts())


def totals(job: Job) -> dict[str, int]:
    """The job's counts summed over its done batches (created, updated, duplicates, ...)."""
    names = ", ".join(f"coalesce(sum((summary->>'{name}')::bigint), 0)" for name in SUMMARY_COUNTS)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {names} FROM {JobBatch._meta.db_table} WHERE job_id = %s AND seq > %s", [job.pk, plan.PLAN_SEQ])
        row = cursor.fetchone()
    counts = dict(zip(SUMMARY_COUNTS, (int(v) for v in row)))
    counts.update(done=job.done, failed=job.failed)
    return counts


def finish(job: Job) -> None:
    """The finished job's message: what was imported, failed, linked and flagged. A plan that
    stopped before the end of its source leaves the job FAILED, with why."""
    counts = totals(job)
    message = summary_text(counts)
    stopped = JobBatch.objects.filter(job=job, seq=plan.PLAN_SEQ).values_list("summary", flat=True).first() or {}
    if stopped.get("stopped"):
        Job.objects.filter(pk=job.pk).update(state=Job.State.FAILED, message=f"{stopped['stopped']}; {message}")
    elif not (counts["done"] or counts["failed"] or counts["skipped"]):
        what = (job.params or {}).get("describe") or "the source"
        Job.objects.filter(pk=job.pk).update(
            state=Job.State.FAILED,
            message=f"found nothing to import in {what}: no image files and no records (see docs/ingest.md for what each source reads)",
        )
    else:
        warnings = import_warnings(job, counts)
        Job.objects.filter(pk=job.pk).update(message="; ".join([message, *(f"warning: {w}" for w in warnings)]))


def import_warnings(job: Job, counts: dict[str, int]) -> list[str]:
    """What a curator should know about an import that succeeded: nothing named an image, nothing had a title."""
    warnings = []
    records = counts["records"]
    importer = (job.params or {}).get("importer")
    if records and counts["no_image"] == records and importer != "folder":
        warnings.append(
            f"none of the {records} records names an image (the mapping found no image file or URL field), "
            "so they are metadata only; give --mapping with an 'image' section (or --with-images where the mapping "
            "fetches images only when asked)"
        )
    if records and counts["untitled"] == records:
        warnings.append(f"none of the {records} records has a title (the mapping found no title field)")
    return warnings


def retry(job: Job, user=None) -> Job:
    return launch_retry(job, user=user)


STAGE = Stage(
    kind="import",
    queue="ingest",
    description="Import a source (folder, metadata file or IIIF manifest)",
    batch_size=int(getattr(settings, "INGEST_BATCH_SIZE", 256)),
    run_batch=run_batch,
    finish=finish,
    retry=retry,
    start=start_from_params,
)
