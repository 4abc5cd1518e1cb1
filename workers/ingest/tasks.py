"""Celery tasks of the ingest queue that start imports. Thin: open the source and launch the job.

The work itself runs as the job's batches (``workers.process_batch`` on the ingest queue): first
the plan, which reads the source and writes batches of records, then one task per batch.
"""
from __future__ import annotations

from celery import shared_task

from archive.models import Job


def _launch(location: str, kind: str | None, limit: int | None, options: dict) -> int:
    from archive.importers import open_source

    from .launch import launch

    return launch(open_source(location, kind=kind, **options), limit=limit).pk


@shared_task(name="archive.import_folder", queue="ingest")
def import_folder(location: str, limit: int | None = None, **options) -> int:
    return _launch(location, "folder", limit, options)


@shared_task(name="archive.import_metadata", queue="ingest")
def import_metadata(location: str, limit: int | None = None, **options) -> int:
    return _launch(location, "metadata", limit, options)


@shared_task(name="archive.import_iiif", queue="ingest")
def import_iiif(location: str, limit: int | None = None, **options) -> int:
    return _launch(location, "iiif", limit, options)


@shared_task(name="archive.import_aic_api", queue="ingest")
def import_aic_api(count: int) -> int:
    from archive.importers import aic_api

    from .launch import launch

    return launch(aic_api.source(count), limit=count).pk


@shared_task(name="archive.retry_import_errors", queue="ingest")
def retry_import_errors(job_id: int, error_ids: list[int] | None = None) -> int:
    from .retry import launch_retry

    return launch_retry(Job.objects.get(pk=job_id), error_ids=error_ids).pk
