"""Re-run the failed items of an import job from their JobError payloads.

A payload is one of:
- ``{"kind": "record", "record": {...}}``: the record as read (catalogue fields and image
  locations); it is imported again as is (e.g. after the image file was fixed or a URL came back);
- ``{"kind": "reread", "importer": ..., "params": ..., "position": N}``: read row/line N of that
  source again (e.g. after the CSV row was corrected), or the whole source when N is null
  (an unreadable manifest or folder);
- ``{"kind": "job", "params": ...}``: the whole job could not start; run it again.
The retry is a new import Job; each retried JobError points at it (``retried_in``).
"""
from __future__ import annotations

from typing import Callable, Iterator

from archive.models import Job, JobError

from . import base, source_from_params
from .base import Record, RecordError, Stats


def _records(errors: list[JobError]) -> Iterator[Record | RecordError]:
    for error in errors:
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


def retry_errors(
    job: Job,
    *,
    error_ids: list[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
    user=None,
) -> tuple[Job, Stats]:
    """Retry the (not yet retried) errors of ``job``, or just ``error_ids``; returns the new job."""
    from workers import jobs

    errors = JobError.objects.filter(job=job, retried_in__isnull=True)
    if error_ids:
        errors = errors.filter(id__in=error_ids)
    errors = list(errors.order_by("id"))
    new_job = jobs.create_job(
        Job.Kind.IMPORT,
        {"retry_of": job.pk, "errors": [e.pk for e in errors], "describe": f"retry of {len(errors)} failed items of job #{job.pk}"},
        user=user,
    )
    JobError.objects.filter(id__in=[e.pk for e in errors]).update(retried_in=new_job)
    stats = base.run(new_job, _records(errors), total=len(errors), progress=progress)
    new_job.refresh_from_db()
    return new_job, stats


def run_retry_job(job: Job, progress=None) -> Stats:
    """Run a retry job created elsewhere (params ``retry_of`` and ``errors``), e.g. by a Celery task."""
    errors = list(JobError.objects.filter(id__in=job.params.get("errors", [])).order_by("id"))
    JobError.objects.filter(id__in=[e.pk for e in errors]).update(retried_in=job)
    return base.run(job, _records(errors), total=len(errors), progress=progress)
