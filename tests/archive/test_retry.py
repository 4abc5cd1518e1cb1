"""A failed item is retried from its JobError payload alone."""
from __future__ import annotations

import pytest

from workers.ingest.retry import retry_errors
from archive.models import Artwork, Job, JobError
from workers.ingest.tasks import import_folder, retry_import_errors

from .conftest import run_import, write_jpeg

pytestmark = pytest.mark.django_db


def test_retry_image_failure_after_the_file_is_fixed(tmp_path):
    csv = tmp_path / "works.csv"
    write_jpeg(tmp_path / "a.jpg", seed=1)
    (tmp_path / "b.jpg").write_bytes(b"")  # broken for now
    csv.write_text("id,title,date,file\n1,First,1890,a.jpg\n2,Second,c. 1700,b.jpg\n")
    job, stats, errors = run_import(csv)
    failed = Artwork.objects.get(source__startswith="metadata:", source_id="2")
    assert failed.status == "image_failed" and len(errors) == 1
    assert errors[0].payload["kind"] == "record" and errors[0].payload["record"]["source_id"] == "2"

    write_jpeg(tmp_path / "b.jpg", seed=2)  # the operator fixes the file
    new_job, new_stats = retry_errors(job)
    assert new_job.state == Job.State.DONE and new_stats.done == 1 and new_stats.failed == 0
    fixed = Artwork.objects.get(pk=failed.pk)
    assert fixed.status == "ok" and fixed.image_error == "" and fixed.year_start == 1700
    assert JobError.objects.get(pk=errors[0].pk).retried_in_id == new_job.pk
    # Nothing left to retry: said clearly, and no empty job is left behind.
    with pytest.raises(ValueError, match="no failed items left to retry"):
        retry_errors(job)
    assert Job.objects.filter(params__retry_of=job.pk).count() == 1


def test_retry_bad_row_rereads_that_row(tmp_path):
    csv = tmp_path / "works.csv"
    csv.write_text("id,title\n1,Fine\n,Missing id\n3,Also fine\n")
    job, stats, errors = run_import(csv)
    assert len(errors) == 1 and errors[0].payload == {
        "kind": "reread", "importer": "metadata", "params": errors[0].payload["params"], "position": 2,
    }
    csv.write_text("id,title\n1,Fine\n2,Missing id fixed\n3,Also fine\n")
    before = {a.source_id: a.updated_at for a in Artwork.objects.filter(source__startswith="metadata:")}
    new_job, new_stats = retry_errors(job)
    assert new_stats.done == 1 and new_stats.failed == 0
    assert Artwork.objects.get(source__startswith="metadata:", source_id="2").title == "Missing id fixed"
    # Only that row was read again: the others are untouched.
    assert {a.source_id: a.updated_at for a in Artwork.objects.filter(source__startswith="metadata:", source_id__in=["1", "3"])} == before


def test_retry_that_still_fails_records_a_new_error(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "broken.jpg").write_bytes(b"not an image")
    job, stats, errors = run_import(folder)
    new_job, new_stats = retry_errors(job)
    assert new_stats.failed == 1
    assert JobError.objects.get(job=new_job).reason == errors[0].reason
    assert not Artwork.objects.filter(source="folder").exists()


def test_celery_tasks_launch_batched_jobs(tmp_path, django_capture_on_commit_callbacks):
    """The ingest-queue tasks only launch: the job's plan and batches are process_batch tasks. Run
    eagerly (no broker): the import, then the retry of its failed item."""
    from workers.celery import app

    folder = tmp_path / "in"
    write_jpeg(folder / "ok.jpg", seed=3)
    (folder / "bad.jpg").write_bytes(b"")
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            job_id = import_folder.run(str(folder))
        job = Job.objects.get(pk=job_id)
        assert (job.state, job.done, job.failed) == (Job.State.DONE, 1, 1), job.message
        write_jpeg(folder / "bad.jpg", seed=4)
        with django_capture_on_commit_callbacks(execute=True):
            retry_id = retry_import_errors.run(job_id)
    finally:
        app.conf.task_always_eager = previous
    retried = Job.objects.get(pk=retry_id)
    assert (retried.state, retried.done, retried.failed) == (Job.State.DONE, 1, 0), retried.message
    assert retried.params["retry_of"] == job_id
    assert Artwork.objects.filter(source="folder", status="ok").count() == 2
    assert import_folder.queue == "ingest" and retry_import_errors.queue == "ingest"
