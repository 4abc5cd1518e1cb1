"""An import job is planned into batches of records that go through the job machinery: progress on
the Job row, pause/resume/cancel between batches, recovery of a dead worker's batch, and a plan
that resumes where a killed planner stopped."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from archive.importers import open_source
from workers.ingest.launch import run_job, start
from workers.ingest.plan import PLAN_SEQ, planned_items
from archive.models import Artwork, Job, JobBatch
from workers import jobs

from .conftest import settings_for_tests, write_jpeg

pytestmark = pytest.mark.django_db


def works_csv(tmp_path, n: int):
    path = tmp_path / "works.csv"
    path.write_text("id,title,date\n" + "".join(f"{i},Work {i},1890s\n" for i in range(n)))
    return path


def image_folder(tmp_path, n: int):
    folder = tmp_path / "in"
    for i in range(n):
        write_jpeg(folder / f"{i:02d}.jpg", seed=300 + i)
    return folder


def planned_job(location, **cfg) -> Job:
    """An import job whose plan ran (batches written, not run): what a worker sees after the plan task."""
    job = start(open_source(str(location)), cfg=settings_for_tests(**cfg))
    plan_batch = job.batches.get(seq=PLAN_SEQ)
    assert jobs.run_batch(plan_batch.pk, worker="planner").startswith("processed")
    job.refresh_from_db()
    return job


def record_batches(job: Job) -> list[int]:
    return list(job.batches.filter(seq__gt=PLAN_SEQ).order_by("seq").values_list("pk", flat=True))


def test_progress_and_rate_are_recorded(tmp_path):
    source = open_source(str(works_csv(tmp_path, 25)))
    job = start(source, cfg=settings_for_tests(metadata_batch_size=10))
    stats = run_job(job, source=source)
    job.refresh_from_db()
    assert (job.total, job.done, job.failed, job.state) == (25, 25, 0, Job.State.DONE)
    assert job.rate > 0 and job.started_at and job.finished_at
    assert stats.created == 25 and job.message.startswith("25 imported, 0 failed; warning: none of the 25 records names an image")
    assert Artwork.objects.get(source__startswith="metadata:", source_id="3").year_end == 1899
    # The plan and three batches of at most 10 records, each done, its records cleared.
    assert list(job.batches.order_by("seq").values_list("seq", "start", "size", "state")) == [
        (0, 0, 0, "done"), (1, 0, 10, "done"), (2, 10, 10, "done"), (3, 20, 5, "done"),
    ]
    assert not job.batches.exclude(records=None).exists()


def test_cancel_stops_between_batches_and_keeps_what_was_written(tmp_path):
    source = open_source(str(works_csv(tmp_path, 100)))
    job = start(source, cfg=settings_for_tests(metadata_batch_size=10))
    run_job(job, source=source, progress=lambda done, failed: jobs.cancel_job(job))
    job.refresh_from_db()
    assert job.state == Job.State.CANCELLED
    assert Artwork.objects.filter(source__startswith="metadata:").count() == job.done == 10
    assert planned_items(job) < 100  # the plan stopped too


def test_pause_and_resume_an_import_finishes_with_every_item(tmp_path):
    """Paused before its plan ran and again between batches; resuming never ends the job early."""
    folder = image_folder(tmp_path, 6)
    job = start(open_source(str(folder)), cfg=settings_for_tests(batch_size=2))
    plan_batch = job.batches.get(seq=PLAN_SEQ)
    jobs.pause_job(job)
    assert jobs.run_batch(plan_batch.pk) == "skipped (paused)"
    assert jobs.resume_job(job) == 1  # the plan is sent again
    job.refresh_from_db()
    assert job.state == Job.State.RUNNING, "a resumed import must not be marked done before it is planned"

    jobs.run_batch(plan_batch.pk)
    batches = record_batches(job)
    assert len(batches) == 3
    jobs.run_batch(batches[0])
    jobs.pause_job(job)
    assert jobs.run_batch(batches[1]) == "skipped (paused)"
    job.refresh_from_db()
    assert job.state == Job.State.PAUSED and job.done == 2
    assert jobs.resume_job(job) == 2
    job.refresh_from_db()
    assert job.state == Job.State.RUNNING
    for batch_id in batches[1:]:
        jobs.run_batch(batch_id)
    job.refresh_from_db()
    assert (job.state, job.total, job.done, job.failed) == (Job.State.DONE, 6, 6, 0)
    assert Artwork.objects.filter(source="folder", status="ok").count() == 6


def test_dead_workers_batch_is_recovered_and_counted_once(tmp_path):
    job = planned_job(image_folder(tmp_path, 4), batch_size=2)
    first, second = record_batches(job)
    held, _ = jobs.lease_batch(first, "dead-worker")  # a worker took it and died
    assert jobs.run_batch(first, worker="other") == "skipped (leased)"
    JobBatch.objects.filter(pk=first).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert jobs.recover(stale_seconds=3600) == 1
    assert JobBatch.objects.get(pk=first).state == JobBatch.State.PENDING
    jobs.run_batch(first, worker="new")
    jobs.run_batch(second, worker="new")
    from workers.jobs import BatchResult

    assert not jobs.complete_batch(job, held, "dead-worker", BatchResult(done=[1, 2]))  # a late completion is ignored
    job.refresh_from_db()
    assert (job.state, job.done, job.failed) == (Job.State.DONE, 4, 0)
    assert Artwork.objects.filter(source="folder").count() == 4


class PlannerDied(BaseException):
    """The planner's process ends here (as with SIGKILL: nothing in it runs after this)."""


def test_killed_planner_resumes_without_duplicating_or_losing_batches(tmp_path):
    from workers.ingest import plan

    job = start(open_source(str(works_csv(tmp_path, 55))), cfg=settings_for_tests(metadata_batch_size=10))
    plan_batch, _ = jobs.lease_batch(job.batches.get(seq=PLAN_SEQ).pk, "planner-1")
    sent = []

    def send_then_die(batch_ids):
        if len(sent) == 2:  # batch 3 is written, then the process dies before sending it
            raise PlannerDied()
        sent.extend(batch_ids)

    with pytest.raises(PlannerDied):
        plan.plan(job, plan_batch, send=send_then_die)
    assert planned_items(job) == 30 and len(sent) == 2
    JobBatch.objects.filter(pk=plan_batch.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert jobs.recover(stale_seconds=3600) == 1  # the plan's lease ran out: it is sent again

    resent = []
    plan_batch.refresh_from_db()
    again, _ = jobs.lease_batch(plan_batch.pk, "planner-2")
    result = plan.plan(job, again, send=resent.extend)
    jobs.complete_batch(job, again, "planner-2", result)
    batches = list(job.batches.filter(seq__gt=PLAN_SEQ).order_by("seq").values_list("pk", "start", "size"))
    assert [(start, size) for _, start, size in batches] == [(0, 10), (10, 10), (20, 10), (30, 10), (40, 10), (50, 5)]
    # Re-sent: the unsent batch the dead planner wrote (and the two it sent, still pending), then the new ones.
    assert resent[:3] == [pk for pk, _, _ in batches[:3]] and resent[3:] == [pk for pk, _, _ in batches[3:]]
    for pk, _, _ in batches:
        jobs.run_batch(pk)
    job.refresh_from_db()
    assert (job.state, job.total, job.done, job.failed) == (Job.State.DONE, 55, 55, 0)
    assert Artwork.objects.filter(source__startswith="metadata:").count() == 55


def test_unopenable_source_fails_the_job_with_the_reason(tmp_path):
    folder = image_folder(tmp_path, 1)
    job = start(open_source(str(folder)))
    # The source's params no longer open it (here: a mapping that was removed since).
    Job.objects.filter(pk=job.pk).update(params={**job.params, "params": {**job.params["params"], "mapping": "removed"}})
    job.refresh_from_db()
    run_job(job)
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and "cannot open the source" in job.message and "removed" in job.message
    error = job.errors.get()
    assert error.payload["kind"] == "job" and error.item == str(folder)


@pytest.mark.django_db(transaction=True)
def test_paused_inline_import_waits_until_resumed(tmp_path):
    """An import running in this process (the `import` command) waits while paused and goes on
    when resumed; resume's re-sent batches run here too (eager Celery: no broker)."""
    from workers.celery import app

    source = open_source(str(works_csv(tmp_path, 30)))
    job = start(source, cfg=settings_for_tests(metadata_batch_size=10))
    resumed = threading.Event()

    def resume():
        try:
            jobs.resume_job(job)
            resumed.set()
        finally:
            connections.close_all()  # this thread's connection

    def pause_once(done, failed):
        if not resumed.is_set() and Job.objects.get(pk=job.pk).done == 10:
            jobs.pause_job(job)
            threading.Timer(1.0, resume).start()

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        run_job(job, source=source, progress=pause_once)
    finally:
        app.conf.task_always_eager = previous
    job.refresh_from_db()
    assert resumed.is_set()
    assert (job.state, job.done, job.failed) == (Job.State.DONE, 30, 0)
    assert Artwork.objects.filter(source__startswith="metadata:").count() == 30
