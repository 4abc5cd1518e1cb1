"""Celery task for map layouts (queue "maps"). Thin: the work is in :mod:`workers.layouts.build`."""
from __future__ import annotations

from celery import shared_task


# Acknowledged on receipt: a 1M-point layout can run longer than Redis' visibility timeout (1 h), and
# a late ack would then have the broker hand the same job to a second worker. The Job row says
# whether it finished; a lost run is simply requested again (build_map).
@shared_task(name="workers.tasks_maps.run_layout_job", acks_late=False)
def run_layout_job(job_id: int) -> None:
    from workers.layouts.build import run_job

    run_job(job_id)


def enqueue(job) -> None:
    """Send a layout job to the "maps" queue."""
    run_layout_job.apply_async(args=[job.pk], queue="maps")
