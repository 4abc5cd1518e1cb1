"""Celery tasks of the ingest queue. Thin: load the Job, call the plain function, return a summary."""
from __future__ import annotations

from celery import shared_task

from archive.models import Job


def _summary(job_id: int, stats) -> dict:
    return {"job": job_id, "done": stats.done, "failed": stats.failed, "duplicates": stats.duplicates, "near_duplicates": stats.near_duplicates}


@shared_task(name="archive.import_job", queue="ingest")
def import_job(job_id: int) -> dict:
    """Run an import Job created by :func:`archive.importers.start` (the ``import --async`` path)."""
    from archive.importers import run_job
    from archive.importers.retry import run_retry_job

    job = Job.objects.get(pk=job_id)
    if job.is_final:
        return {"job": job_id, "skipped": f"job is {job.state}"}
    stats = run_retry_job(job) if "retry_of" in job.params else run_job(job)
    return _summary(job_id, stats)


def _start_and_run(location: str, kind: str | None, limit: int | None, options: dict) -> dict:
    from archive.importers import open_source, run_job, start

    source = open_source(location, kind=kind, **options)
    job = start(source, limit=limit)
    return _summary(job.pk, run_job(job, source=source))


@shared_task(name="archive.import_folder", queue="ingest")
def import_folder(location: str, limit: int | None = None, **options) -> dict:
    return _start_and_run(location, "folder", limit, options)


@shared_task(name="archive.import_metadata", queue="ingest")
def import_metadata(location: str, limit: int | None = None, **options) -> dict:
    return _start_and_run(location, "metadata", limit, options)


@shared_task(name="archive.import_iiif", queue="ingest")
def import_iiif(location: str, limit: int | None = None, **options) -> dict:
    return _start_and_run(location, "iiif", limit, options)


@shared_task(name="archive.import_aic_api", queue="ingest")
def import_aic_api(count: int) -> dict:
    from archive.importers import aic_api, run_job, start

    source = aic_api.source(count)
    job = start(source, limit=count)
    return _summary(job.pk, run_job(job, source=source))


@shared_task(name="archive.retry_import_errors", queue="ingest")
def retry_import_errors(job_id: int, error_ids: list[int] | None = None) -> dict:
    from archive.importers.retry import retry_errors

    new_job, stats = retry_errors(Job.objects.get(pk=job_id), error_ids=error_ids)
    return _summary(new_job.pk, stats)
