"""Plan an import job: stream its source into JobBatch rows that hold the records, and send each
batch as soon as it is written, so ingest workers start while the plan goes on.

The plan is the job's batch 0, leased and heart-beaten like any other batch, so a planner that
dies is noticed (its lease runs out) and re-sent by recovery. A plan is resumable: every record
batch stores where in the source's stream it starts and how many items it holds, so a resumed plan
skips the items already written (the stream of a source is the same on every read: folders are
walked in name order, files read front to back) and re-sends the batches a dead planner wrote but
may not have sent. Writing a batch that already exists is a no-op, so two planners never
duplicate a batch.

Items that the database could not store (a source id with a NUL character, text that is not valid
UTF-8, such as a file name in another encoding) become errors here, with the rest going on.
"""
from __future__ import annotations

import itertools
import logging
from typing import Callable, Iterable, Iterator

from django.db.models import F

from archive import storable
from archive.importers.base import (
    ImportSettings,
    Record,
    RecordError,
    Source,
    _clean_json,
    item_to_json,
)
from archive.models import Job, JobBatch
from workers import jobs
from workers.jobs import BatchResult, ItemError

from .retry_source import source_from_params

log = logging.getLogger(__name__)
PLAN_SEQ = 0  # an import job's batch 0 is its plan


def open_job_source(params: dict) -> Source:
    return source_from_params(params["importer"], params["params"])


def plan(
    job: Job,
    batch: JobBatch,
    *,
    source: Source | None = None,
    send: Callable[[list[int]], None] | None = None,
    on_total: Callable[[int | None], None] | None = None,
) -> BatchResult:
    """Write (or finish writing) the record batches of import ``job``; ``send(batch_ids)`` hands
    each new batch to the workers (default: the ingest queue)."""
    params = job.params
    send = send or (lambda ids: jobs.enqueue_batches(job, ids))
    if source is None:
        try:
            source = open_job_source(params)
        except Exception as exc:  # noqa: BLE001 - any reason the source cannot be opened is the job's message
            where = (params.get("params") or {}).get("location", "?")
            message = f"cannot open the source: {exc}"
            jobs.finish_job(job, state=Job.State.FAILED, message=message)
            return BatchResult(errors=[ItemError(None, message, jobs.describe_exception(exc)[1], item=str(where),
                                                 payload={"kind": "job", "params": params})])
    sizes = ImportSettings.from_settings(batch_size=params.get("batch_size"), metadata_batch_size=params.get("metadata_batch_size"))
    limit = params.get("limit")

    last = JobBatch.objects.filter(job=job, seq__gt=PLAN_SEQ).order_by("-seq").values("seq", "start", "size").first()
    planned = last["start"] + last["size"] if last else 0
    seq = last["seq"] + 1 if last else PLAN_SEQ + 1
    if last:
        # A resumed plan: the batches an earlier planner wrote may never have been sent.
        unsent = list(JobBatch.objects.filter(job=job, seq__gt=PLAN_SEQ, state=JobBatch.State.PENDING).order_by("seq").values_list("pk", flat=True))
        if unsent:
            send(unsent)
    else:
        total = source.count()
        if limit:
            total = min(total, limit) if total is not None else limit
        jobs.set_total(job, total or 0)
        if on_total:
            on_total(total)

    stream: Iterable = source.records()
    if limit:
        stream = itertools.islice(stream, limit)
    stream = itertools.islice(stream, planned, None)
    try:
        for items in _batches(stream, sizes):
            batch_id = _write_batch(job, seq, planned, [item_to_json(_storable(item, source)) for item in items])
            planned += len(items)
            seq += 1
            Job.objects.filter(pk=job.pk, total__lt=planned).update(total=planned)
            send([batch_id])
            if jobs.current_state(job) == Job.State.CANCELLED:
                log.info("import job %s was cancelled while planning (%d items planned)", job.pk, planned)
                return BatchResult(summary={"planned": planned})
    except jobs.TRANSIENT_ERRORS:
        raise  # the task retries; the resumed plan goes on from the last batch written
    except Exception as exc:  # noqa: BLE001 - a reader bug: keep what is planned, say how to go on
        reason, detail = jobs.describe_exception(exc)
        message = f"stopped reading the source after {planned} items: {reason}"
        log.exception("import job %s: planning failed", job.pk)
        # The batches already planned are still imported; the job then ends FAILED (see stage.finish).
        return BatchResult(errors=[ItemError(None, message + "; a retry reads the source again", detail,
                                             item=source.describe(), payload=storable.json_value(source.reread_payload(None)))],
                           summary={"planned": planned, "stopped": message})
    Job.objects.filter(pk=job.pk).update(total=planned)
    return BatchResult(summary={"planned": planned})


def _batches(stream: Iterable[Record | RecordError], cfg: ImportSettings) -> Iterator[list[Record | RecordError]]:
    batch: list[Record | RecordError] = []
    with_images = 0
    for item in stream:
        batch.append(item)
        if isinstance(item, Record) and item.images:
            with_images += 1
        if with_images >= cfg.batch_size or len(batch) >= cfg.metadata_batch_size:
            yield batch
            batch, with_images = [], 0
    if batch:
        yield batch


def _write_batch(job: Job, seq: int, start: int, records: list[dict]) -> int:
    """Insert batch ``seq`` unless it exists (a second planner of the same job); returns its id."""
    JobBatch.objects.bulk_create(
        [JobBatch(job=job, seq=seq, start=start, size=len(records), records=records)], ignore_conflicts=True
    )
    return JobBatch.objects.filter(job=job, seq=seq).values_list("pk", flat=True).get()


def _storable(item: Record | RecordError, source: Source) -> Record | RecordError:
    """The item as the database can store it: a record it cannot store becomes an error."""
    if isinstance(item, RecordError):
        return RecordError(storable.text(item.item), storable.text(item.reason), storable.text(item.detail),
                           storable.json_value(item.payload or {}))
    label = storable.text(item.label)
    if "\x00" in item.source or "\x00" in item.source_id:
        return RecordError(label, "the source id contains a NUL character (\\x00); correct the source and retry",
                           payload=storable.json_value(source.reread_payload(item.position)))
    why = storable.problem([item.source, item.source_id, item.images, item.item, item.fields])
    if why == "not valid UTF-8 text":
        return RecordError(
            label, "not valid UTF-8 text (a file name or value in another encoding); rename the file or re-save the "
            "source as UTF-8, then retry", payload=storable.json_value(source.reread_payload(item.position)),
        )
    if why:  # NUL characters or NaN in catalogue values: dropped, as the upsert would
        item.fields = _clean_json(item.fields)
        item.images = [location.replace("\x00", "") for location in item.images]
        item.item = item.item.replace("\x00", "")
    return item


def planned_items(job: Job) -> int:
    """How many items of the source the job's plan has written so far."""
    last = JobBatch.objects.filter(job=job, seq__gt=PLAN_SEQ).order_by("-seq").values(end=F("start") + F("size")).first()
    return last["end"] if last else 0
