"""Retry the failed items of an import job as a new import job (see
:mod:`workers.ingest.retry_source` for how each failed item is read again)."""
from __future__ import annotations

from typing import Callable

from django.db import transaction

from archive.importers.base import Stats
from archive.models import Job, JobError
from workers import jobs

from .launch import run_job, start, submit
from .retry_source import RetrySource


def prepare_retry(job: Job, *, error_ids: list[int] | None = None, user=None) -> Job:
    """A queued import job over the (not yet retried) errors of ``job``, or just ``error_ids``;
    those errors point at it. Raises ValueError when there is nothing to retry."""
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
    new = prepare_retry(job, error_ids=error_ids, user=user)
    stats = run_job(new, progress=progress)
    new.refresh_from_db()
    return new, stats
