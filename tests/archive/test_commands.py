"""The import management commands: auto-detection, progress, clear messages."""
from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from archive.models import Artwork, Job

from .conftest import write_jpeg

pytestmark = pytest.mark.django_db


def test_import_folder_command(tmp_path, capsys):
    write_jpeg(tmp_path / "in" / "one.jpg", seed=1)
    (tmp_path / "in" / "two.jpg").write_bytes(b"junk")
    call_command("import", str(tmp_path / "in"))
    out, err = capsys.readouterr()
    assert "1 imported, 1 failed" in out
    assert "two.jpg: not an image" in err
    assert Job.objects.get().kind == "import"


def test_kind_specific_commands(tmp_path):
    write_jpeg(tmp_path / "in" / "one.jpg", seed=2)
    call_command("import_folder", str(tmp_path / "in"), verbosity=0)
    csv = tmp_path / "m.csv"
    csv.write_text("id,title\nx,Title\n")
    call_command("import_metadata", str(csv), "--mapping", "generic", verbosity=0)
    assert Artwork.objects.filter(source__regex=r"^(folder|metadata:)").count() == 2


def test_missing_source_and_unknown_mapping_are_clear(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("import", str(tmp_path / "nowhere"))
    with pytest.raises(CommandError, match="give a SOURCE"):
        call_command("import")
    csv = tmp_path / "odd.csv"
    csv.write_text("colour,shape\nred,round\n")
    with pytest.raises(CommandError, match="pass --mapping"):
        call_command("import", str(csv))
    with pytest.raises(CommandError, match="unknown mapping"):
        call_command("import", str(csv), "--mapping", "nonesuch")


def test_everything_failing_is_a_command_error(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(b"")
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import", str(tmp_path / "in"), verbosity=0)


def test_aic_api_unreachable_gives_a_clear_message(settings):
    settings.AIC_API_URL = "http://127.0.0.1:9/api/v1"  # nothing listens here, as without internet
    with pytest.raises(CommandError) as info:
        call_command("import", aic_api=5)
    message = str(info.value)
    assert "cannot reach the Art Institute of Chicago API" in message
    assert "Give a SOURCE" in message


def test_aic_api_default_source(settings, http_dir):
    """The open-API path against a local stand-in serving the API's JSON shape and IIIF images."""
    folder, base = http_dir
    records = [
        {"id": 27992, "title": "A Sunday on La Grande Jatte", "artist_display": "Georges Seurat\nFrench, 1859-1891",
         "date_display": "1884-86", "date_start": 1884, "date_end": 1886, "medium_display": "Oil on canvas",
         "image_id": "img-a", "is_public_domain": True, "credit_line": "Helen Birch Bartlett Memorial Collection"},
        {"id": 28560, "title": "The Bedroom", "artist_display": "Vincent van Gogh", "date_display": "1889",
         "medium_display": "Oil on canvas", "image_id": "img-b", "is_public_domain": True},
    ]
    (folder / "api" / "v1" / "artworks").mkdir(parents=True)
    (folder / "api" / "v1" / "artworks" / "search").write_text(json.dumps({"data": records, "config": {"iiif_url": f"{base}/iiif/2"}}))
    for i, image_id in enumerate(["img-a", "img-b"]):
        write_jpeg(folder / "iiif" / "2" / image_id / "full" / "843," / "0" / "default.jpg", seed=10 + i)
    settings.AIC_API_URL = f"{base}/api/v1"
    call_command("import", aic_api=2, verbosity=0)
    work = Artwork.objects.get(source="aic", source_id="27992")
    assert work.status == "ok" and (work.year_start, work.year_end) == (1884, 1886)
    assert work.creator.startswith("Georges Seurat") and work.rights.startswith("CC0")
    assert Artwork.objects.filter(source="aic", status="ok").count() == 2


def test_async_import_sends_the_plan_to_the_ingest_queue(tmp_path, capsys, django_capture_on_commit_callbacks):
    """--async sends the job's plan to the ingest queue; run eagerly here (no broker): the plan
    writes a batch of records and sends it, and that batch imports the image."""
    from workers.celery import app

    write_jpeg(tmp_path / "in" / "one.jpg", seed=5)
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True) as sent:
            call_command("import", str(tmp_path / "in"), "--async")
    finally:
        app.conf.task_always_eager = previous
    assert "Queued import job" in capsys.readouterr().out
    assert len(sent) >= 1
    job = Job.objects.get()
    assert job.state == Job.State.DONE and job.done == 1, job.message
    assert list(job.batches.order_by("seq").values_list("seq", "state", "size")) == [(0, "done", 0), (1, "done", 1)]
    assert job.batches.get(seq=1).records is None  # cleared once imported


def test_unreachable_url_is_a_clear_error(http_dir):
    folder, base = http_dir
    with pytest.raises(CommandError, match="HTTP 404"):
        call_command("import", f"{base}/nothing-here.json")


@pytest.mark.django_db(transaction=True)
def test_wait_follows_the_job_on_the_workers(tmp_path, capsys):
    """--wait sends the job to the ingest queue and follows it to the end with a progress bar, as
    `embed --wait` does (eager Celery stands in for a worker: the job runs as it is sent)."""
    from workers.celery import app

    write_jpeg(tmp_path / "in" / "one.jpg", seed=6)
    write_jpeg(tmp_path / "in" / "two.jpg", seed=7)
    (tmp_path / "in" / "bad.jpg").write_bytes(b"nope")
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        call_command("import", str(tmp_path / "in"), "--wait", "--batch-size", "1")
    finally:
        app.conf.task_always_eager = previous
    out, err = capsys.readouterr()
    job = Job.objects.get()
    assert (job.state, job.total, job.done, job.failed) == (Job.State.DONE, 3, 2, 1)
    assert job.batches.count() == 4 and job.params["batch_size"] == 1
    assert f"job {job.pk} import done: 2/3 done, 1 failed" in out
    assert "2 imported, 1 failed (2 new, 0 updated" in out and "bad.jpg: not an image" in err
