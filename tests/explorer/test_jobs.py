"""Starting and retrying jobs from the operators' dashboard and the API, for every kind: the jobs
run for real, eagerly in this process (Celery's always-eager mode stands in for the broker)."""
from __future__ import annotations

import pytest

from archive.models import Artwork, ArtworkEmbedding, Job, JobError, Layout

from ..archive.conftest import write_jpeg

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_sent_tasks(django_capture_on_commit_callbacks):
    """Tasks sent after the request's transaction commits run right here, to the end."""
    from workers.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield lambda: django_capture_on_commit_callbacks(execute=True)
    finally:
        app.conf.task_always_eager = previous


def a_folder(tmp_path, good: int = 2, broken: int = 0):
    folder = tmp_path / "incoming"
    for i in range(good):
        write_jpeg(folder / f"work{i}.jpg", seed=900 + i)
    for i in range(broken):
        (folder / f"broken{i}.jpg").write_bytes(b"")
    return folder


def test_dashboard_starts_an_import(operator_client, tmp_path, run_sent_tasks, settings):
    settings.IMPORT_ALLOWED_ROOTS = [str(tmp_path)]  # the dashboard reads local paths only there
    folder = a_folder(tmp_path)
    with run_sent_tasks():
        r = operator_client.post("/jobs/", {"kind": "import", "mode": "missing", "source": str(folder)})
    job = Job.objects.get(kind="import")
    assert r.status_code == 302 and r["Location"] == f"/jobs/{job.pk}/"
    assert (job.state, job.total, job.done, job.failed) == (Job.State.DONE, 2, 2, 0), job.message
    assert job.batches.count() == 2  # the plan and one batch of records
    assert set(Artwork.objects.filter(source="folder").values_list("source_id", flat=True)) == {
        "incoming/work0.jpg", "incoming/work1.jpg",
    }
    page = operator_client.get(r["Location"]).content.decode()
    assert "2 imported, 0 failed" in page
    # The parameters read as JSON, not as a Python dict repr.
    assert "&quot;importer&quot;: &quot;folder&quot;" in page and "{&#x27;" not in page


def test_api_starts_an_import_and_refuses_bad_sources(operator_client, tmp_path, run_sent_tasks, settings):
    settings.IMPORT_ALLOWED_ROOTS = [str(tmp_path)]  # the API reads local paths only there
    folder = a_folder(tmp_path, good=1)
    with run_sent_tasks():
        r = operator_client.post("/api/v1/jobs/", {"kind": "import", "params": {"source": str(folder), "limit": 1}},
                                 content_type="application/json")
    assert r.status_code == 201, r.content
    job = Job.objects.get(pk=r.json()["id"])
    assert job.kind == "import" and job.state == Job.State.DONE and job.done == 1
    for params, message in (
        ({}, "an import needs a source"),
        ({"source": str(tmp_path / "nowhere")}, "does not exist"),
        ({"source": str(folder), "mapping": "nonesuch"}, "unknown mapping"),
        ({"source": str(folder), "colour": "red"}, "unknown import option(s) colour"),
    ):
        r = operator_client.post("/api/v1/jobs/", {"kind": "import", "params": params}, content_type="application/json")
        assert r.status_code == 400 and message in r.json()["detail"], (params, r.content)
    r = operator_client.post("/jobs/", {"kind": "import", "source": str(tmp_path / "nowhere")}, follow=True)
    assert "does not exist" in r.content.decode()


def test_dashboard_and_api_start_artwork_stages(operator_client, archive, run_sent_tasks, django_capture_on_commit_callbacks):
    with run_sent_tasks():
        r = operator_client.post("/jobs/", {"kind": "embed", "mode": "missing"})
    job = Job.objects.get(kind="embed")
    assert r.status_code == 302 and job.state == Job.State.DONE and "Nothing to do" in job.message
    with django_capture_on_commit_callbacks() as sent:  # queued, not run: face detection is slow
        r = operator_client.post("/api/v1/jobs/", {"kind": "faces", "mode": "missing"}, content_type="application/json")
    assert r.status_code == 201 and r.json()["kind"] == "faces" and r.json()["state"] == "queued"
    faces = Job.objects.get(kind="faces")
    assert len(sent) == 1 and faces.batches.exists() and faces.total == len(archive["artworks"])


def test_dashboard_and_api_start_layout_jobs(operator_client, archive, run_sent_tasks):
    with run_sent_tasks():
        r = operator_client.post("/jobs/", {"kind": "layout", "mode": "missing", "method": "tsne"})
    job = Job.objects.get(kind="layout")
    assert r.status_code == 302 and r["Location"] == f"/jobs/{job.pk}/"
    assert job.state == Job.State.DONE, job.message
    layout = Layout.objects.get(job=job)
    assert layout.method == "tsne" and layout.point_count == ArtworkEmbedding.objects.count()
    with run_sent_tasks():
        r = operator_client.post("/api/v1/jobs/", {"kind": "layout", "mode": "all", "params": {"method": "tsne"}},
                                 content_type="application/json")
    assert r.status_code == 201, r.content
    again = Job.objects.get(pk=r.json()["id"])
    assert again.state == Job.State.DONE and again.params["rebuild"] is True and "built" in again.message
    r = operator_client.post("/api/v1/jobs/", {"kind": "layout", "params": {"method": "pca"}}, content_type="application/json")
    assert r.status_code == 400 and "unknown method" in r.json()["detail"]


def test_retry_of_an_import_reruns_its_failed_records(operator_client, tmp_path, run_sent_tasks):
    from workers.ingest.launch import import_location

    folder = a_folder(tmp_path, good=1, broken=1)
    job, _ = import_location(str(folder))
    error = job.errors.get()
    assert job.failed == 1 and "empty file" in error.reason
    write_jpeg(folder / "broken0.jpg", seed=950)  # the operator fixes the file
    with run_sent_tasks():
        r = operator_client.post(f"/api/v1/jobs/{job.pk}/retry/")
    assert r.status_code == 200, r.content
    retry = Job.objects.get(pk=r.json()["id"])
    assert (retry.kind, retry.state, retry.done, retry.failed) == ("import", Job.State.DONE, 1, 0), retry.message
    assert retry.params["retry_of"] == job.pk and JobError.objects.get(pk=error.pk).retried_in_id == retry.pk
    assert Artwork.objects.get(source_id="incoming/broken0.jpg").status == "ok"
    # Nothing left to retry: a clear 4xx, from the API and the dashboard.
    r = operator_client.post(f"/api/v1/jobs/{job.pk}/retry/")
    assert r.status_code == 409 and "no failed items left to retry" in r.json()["detail"]
    r = operator_client.post(f"/jobs/{job.pk}/retry/", follow=True)
    assert r.status_code == 200 and "no failed items left to retry" in r.content.decode()


def test_retry_of_an_embed_job_redoes_its_failed_artworks(operator_client, operator, archive, run_sent_tasks):
    artwork = archive["artworks"][0]
    failed = Job.objects.create(kind="embed", state="done", params={"model": "test-tiny", "mode": "missing"},
                                total=60, done=59, failed=1, created_by=operator)
    error = JobError.objects.create(job=failed, artwork=artwork, item=str(artwork.pk), reason="image derivative unreadable",
                                    payload={"artwork_id": artwork.pk})
    with run_sent_tasks():
        r = operator_client.post(f"/jobs/{failed.pk}/retry/")
    retry = Job.objects.exclude(pk=failed.pk).get(kind="embed")
    assert r.status_code == 302 and r["Location"] == f"/jobs/{retry.pk}/"
    assert (retry.state, retry.total, retry.done, retry.failed) == (Job.State.DONE, 1, 1, 0), retry.message
    assert retry.params["retry_of"] == failed.pk and JobError.objects.get(pk=error.pk).retried_in_id == retry.pk
    # Errors that name no artwork cannot be redone by an embed job: a clear 4xx, never a 500.
    other = Job.objects.create(kind="embed", state="failed", params={"model": "test-tiny"})
    JobError.objects.create(job=other, item="batch 3", reason="batch failed: worker lost")
    r = operator_client.post(f"/api/v1/jobs/{other.pk}/retry/")
    assert r.status_code == 409 and "no failed artworks left to retry" in r.json()["detail"]
    r = operator_client.post(f"/jobs/{other.pk}/retry/", follow=True)
    assert r.status_code == 200 and "no failed artworks left to retry" in r.content.decode()
