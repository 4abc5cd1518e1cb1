"""Re-run the failed items of an import job from their JobError payloads.

A payload is one of:
- ``{"kind": "record", "record": {...}}``: the record as read (catalogue fields and image
  locations); it is imported again as is (e.g. after the image file was fixed or a URL came back);
- ``{"kind": "reread", "importer": ..., "params": ..., "position": N}``: read row/line N of that
  source again (e.g. after the CSV row was corrected), or the whole source when N is null
  (an unreadable manifest or folder);
- ``{"kind": "job", "params": ...}``: the whole job could not start; run it again.

The retry is a new import Job whose source is :class:`RetrySource` (the errors of the old job
that point at it with ``retried_in``); it is planned and imported in batches like any import.
"""
from __future__ import annotations

from typing import Callable, Iterator

from django.db import transaction

from archive.models import Job, JobError

from .base import Record, RecordError, Source, Stats


def _records(error: JobError) -> Iterator[Record | RecordError]:
    from . import source_from_params

    payload = error.payload or {}
    kind = payload.get("kind")
    try:
        if kind == "record":
            yield Record.from_payload(payload)
        elif kind == "reread":
            source = source_from_params(payload["importer"], payload["params"])
            position = payload.get("position")
            yield from source.records(positions=None if position is None else {position})
        elif kind == "job":
            params = payload["params"]
            yield from source_from_params(params["importer"], params["params"]).records()
        else:
            yield RecordError(error.item, f"cannot retry: the error has no retry payload ({error.reason})")
    except Exception as exc:  # the source is still unreadable: a new error, the retry goes on
        yield RecordError(error.item, f"retry failed: {exc}", payload=payload)


class RetrySource(Source):
    """The failed items of import job ``of`` that are being retried by job ``retry``."""

    kind = "retry"

    def __init__(self, of: int, retry: int):
        self.of, self.retry = int(of), int(retry)

    def params(self) -> dict:
        return {"of": self.of, "retry": self.retry}

    def describe(self) -> str:
        return f"the failed items of job #{self.of}"

    def _errors(self):
        return JobError.objects.filter(job_id=self.of, retried_in_id=self.retry).order_by("id")

    def count(self) -> int | None:
        return self._errors().count()

    def records(self, positions: set[int] | None = None) -> Iterator[Record | RecordError]:
        for error in self._errors().iterator(chunk_size=500):
            yield from _records(error)


def prepare_retry(job: Job, *, error_ids: list[int] | None = None, user=None) -> Job:
    """A queued import job over the (not yet retried) errors of ``job``, or just ``error_ids``;
    those errors point at it. Raises ValueError when there is nothing to retry."""
    from workers import jobs

    from . import start

    if job.kind != Job.Kind.IMPORT:
        raise ValueError(f"job #{job.pk} is not an import job")
    errors = JobError.objects.filter(job=job, retried_in__isnull=True)
    if error_ids:
        errors = errors.filter(id__in=error_ids)
    with transaction.atomic():
        new = jobs.create_job(Job.Kind.IMPORT, {"retry_of": job.pk}, user=user)
        count = errors.update(retried_in=new)
        if not count:
            raise ValueError(f"job #{job.pk} has no failed items left to retry")
        start(RetrySource(job.pk, new.pk), job=new,
              extra={"retry_of": job.pk, "describe": f"retry of {count} failed items of job #{job.pk}"})
        jobs.set_total(new, count)  # the plan corrects it if an item re-reads more than one record
    new.refresh_from_db()
    return new


def launch_retry(job: Job, *, error_ids: list[int] | None = None, user=None) -> Job:
    """Retry the failed items of ``job`` on the ingest workers; returns the new job."""
    from . import submit

    new = prepare_retry(job, error_ids=error_ids, user=user)
    submit(new)
    return new


def retry_errors(
    job: Job,
    *,
    error_ids: list[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
    user=None,
) -> tuple[Job, Stats]:
    """Retry the failed items of ``job`` in this process; returns the new job and its counts."""
    from . import run_job

    new = prepare_retry(job, error_ids=error_ids, user=user)
    stats = run_job(new, progress=progress)
    new.refresh_from_db()
    return new, stats
