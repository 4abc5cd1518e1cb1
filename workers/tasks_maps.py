"""Celery task for map layouts (queue "maps"). Thin: the work is in :mod:`workers.layouts.build`."""
from __future__ import annotations

from celery import shared_task


@shared_task(name="workers.tasks_maps.run_layout_job", queue="maps", acks_late=True)
def run_layout_job(job_id: int) -> None:
    from workers.layouts.build import run_job

    run_job(job_id)


def enqueue(job) -> None:
    run_layout_job.apply_async(args=[job.pk], queue="maps")
