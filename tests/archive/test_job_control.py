"""An import job can be paused, resumed and cancelled between batches; progress is on the Job row."""
from __future__ import annotations

import threading
import time

import pytest

from archive.importers import base
from archive.importers.base import Record
from archive.models import Artwork, Job
from workers import jobs

from .conftest import settings_for_tests

pytestmark = pytest.mark.django_db


def records(n, on_each=None):
    for i in range(n):
        if on_each:
            on_each(i)
        yield Record(source="t", source_id=str(i), fields={"title": f"Work {i}", "display_date": "1890s"}, item=f"row {i}")


def test_cancel_stops_between_batches_and_keeps_what_was_written():
    job = jobs.create_job(Job.Kind.IMPORT, {"describe": "test"})
    cfg = settings_for_tests(metadata_batch_size=10)

    def cancel_at(i):
        if i == 25:
            jobs.cancel_job(job)

    with pytest.raises(jobs.JobCancelled):
        base.run(job, records(100, cancel_at), cfg=cfg, total=100)
    job.refresh_from_db()
    assert job.state == Job.State.CANCELLED and "cancelled" in job.message
    stored = Artwork.objects.filter(source="t").count()
    assert 10 <= stored < 100 and job.done == stored


def test_progress_and_rate_are_recorded():
    job = jobs.create_job(Job.Kind.IMPORT, {})
    stats = base.run(job, records(25), cfg=settings_for_tests(metadata_batch_size=10), total=25)
    job.refresh_from_db()
    assert (job.total, job.done, job.failed, job.state) == (25, 25, 0, Job.State.DONE)
    assert job.rate > 0 and job.started_at and job.finished_at
    assert stats.created == 25
    assert Artwork.objects.get(source="t", source_id="3").year_end == 1899


@pytest.mark.django_db(transaction=True)
def test_pause_waits_until_resumed():
    job = jobs.create_job(Job.Kind.IMPORT, {})
    paused_at = {}

    def pause_at(i):
        if i == 12:
            jobs.pause_job(job)
            paused_at["t"] = time.monotonic()
            threading.Timer(1.5, jobs.resume_job, args=(job,)).start()

    base.run(job, records(30, pause_at), cfg=settings_for_tests(metadata_batch_size=10), total=30)
    job.refresh_from_db()
    assert job.state == Job.State.DONE and job.done == 30
    assert time.monotonic() - paused_at["t"] >= 1.0
