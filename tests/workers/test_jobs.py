"""The job machinery in-process: fan-out, leases, progress, errors, pause/resume/cancel, recovery
and retry, driven through the real embed stage (test-tiny model) on real images."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from archive.images import ImageLimits, derivative_path, ingest_location
from archive.models import Artwork, ArtworkEmbedding, Job, JobBatch, JobError
from workers import jobs

pytestmark = pytest.mark.django_db


def ingest_artworks(folder: Path, count: int, source: str = "jobs-test") -> list[Artwork]:
    """Ingest the first ``count`` real images of ``folder`` into Artwork rows."""
    limits = ImageLimits.from_settings()
    rows = []
    for path in sorted(folder.glob("*.jpg"))[:count]:
        image = ingest_location(str(path), settings.DERIVATIVE_SIZES, Path(settings.MEDIA_ROOT), limits)
        rows.append(
            Artwork(source=source, source_id=path.stem, title=path.stem, sha256=image.sha256, phash=image.phash,
                    width=image.width, height=image.height, status=Artwork.Status.OK, original_location=str(path))
        )
    return Artwork.objects.bulk_create(rows)


@pytest.fixture
def corrupt():
    """Overwrite an artwork's 256px derivative with garbage; restored after the test (derivatives
    are shared by the whole test session)."""
    saved = {}

    def damage(artwork: Artwork) -> None:
        path = derivative_path(artwork.sha256, 256)
        saved.setdefault(path, path.read_bytes())
        path.write_bytes(b"this is not a JPEG")

    yield damage
    for path, data in saved.items():
        path.write_bytes(data)


@pytest.fixture
def artworks(aic_dir):
    return ingest_artworks(aic_dir / "images", 12)


@pytest.fixture
def tiny(settings):
    settings.CLIP_MODEL = "test-tiny"
    return {"model": "test-tiny"}


def run_all(job: Job) -> None:
    for batch_id in job.batches.order_by("seq").values_list("pk", flat=True):
        jobs.run_batch(batch_id, worker="test")
    job.refresh_from_db()


def test_launch_writes_batches_and_run_completes_job(artworks, tiny):
    job = jobs.launch("embed", tiny, batch_size=5, enqueue=False)
    assert job.state == Job.State.QUEUED and job.total == 12
    assert list(job.batches.order_by("seq").values_list("item_ids", flat=True)) == [
        [a.pk for a in artworks[i : i + 5]] for i in range(0, 12, 5)
    ]
    run_all(job)
    assert job.state == Job.State.DONE and job.done == 12 and job.failed == 0
    assert job.finished_at and job.rate > 0
    model_id = job.params["model_id"]
    assert ArtworkEmbedding.objects.filter(model_id=model_id).count() == 12
    # Running a batch again is a no-op: done batches are skipped, nothing is counted twice.
    first = job.batches.get(seq=0)
    assert jobs.run_batch(first.pk, worker="other").startswith("skipped (done)")
    job.refresh_from_db()
    assert job.done == 12
    # missing mode: nothing left; all mode: everything again, still one row per (artwork, model).
    again = jobs.launch("embed", tiny, enqueue=False)
    assert again.state == Job.State.DONE and again.total == 0
    redo = jobs.launch("embed", tiny, mode="all", enqueue=False)
    run_all(redo)
    assert redo.done == 12 and ArtworkEmbedding.objects.filter(model_id=model_id).count() == 12


def test_missing_mode_only_selects_artworks_without_output(artworks, tiny):
    job = jobs.launch("embed", tiny, enqueue=False, batch_size=4)
    jobs.run_batch(job.batches.get(seq=0).pk)
    job.refresh_from_db()
    jobs.cancel_job(job)
    follow_up = jobs.launch("embed", tiny, enqueue=False)
    assert follow_up.total == 8
    assert set(follow_up.batches.get().item_ids) == {a.pk for a in artworks[4:]}


def test_reset_mode_deletes_then_redoes(artworks, tiny):
    run_all(jobs.launch("embed", tiny, enqueue=False))
    model_id = ArtworkEmbedding.objects.values_list("model_id", flat=True).first()
    before = set(ArtworkEmbedding.objects.values_list("id", flat=True))
    job = jobs.launch("embed", tiny, mode="reset", enqueue=False)
    assert job.total == 12 and not ArtworkEmbedding.objects.filter(model_id=model_id).exists()
    run_all(job)
    after = set(ArtworkEmbedding.objects.values_list("id", flat=True))
    assert len(after) == 12 and not before & after


def test_corrupt_image_is_an_item_error_and_rest_of_batch_is_stored(artworks, tiny, corrupt):
    bad = artworks[3]
    corrupt(bad)
    job = jobs.launch("embed", tiny, enqueue=False)
    run_all(job)
    assert job.state == Job.State.DONE and job.done == 11 and job.failed == 1
    error = JobError.objects.get(job=job)
    assert error.artwork_id == bad.pk
    assert "unreadable" in error.reason and str(derivative_path(bad.sha256, 256)) in error.reason
    stored = set(ArtworkEmbedding.objects.values_list("artwork_id", flat=True))
    assert stored == {a.pk for a in artworks} - {bad.pk}


def test_retry_failed_makes_a_new_job_over_the_failed_items(artworks, tiny, corrupt):
    bad = artworks[0]
    original = derivative_path(bad.sha256, 256).read_bytes()
    corrupt(bad)
    job = jobs.launch("embed", tiny, enqueue=False)
    run_all(job)
    assert job.failed == 1
    derivative_path(bad.sha256, 256).write_bytes(original)  # the operator fixed the image
    new = jobs.retry_failed(job)
    assert new.total == 1 and new.params["retry_of"] == job.pk
    assert JobError.objects.get(job=job).retried_in_id == new.pk
    for batch_id in new.batches.values_list("pk", flat=True):
        jobs.run_batch(batch_id)
    new.refresh_from_db()
    assert new.state == Job.State.DONE and new.done == 1 and new.failed == 0
    assert ArtworkEmbedding.objects.filter(artwork=bad).count() == 1
    with pytest.raises(ValueError):
        jobs.retry_failed(job)  # nothing left to retry


def test_pause_skips_batches_and_resume_sends_them_again(artworks, tiny):
    job = jobs.launch("embed", tiny, batch_size=4, enqueue=False)
    batches = list(job.batches.order_by("seq").values_list("pk", flat=True))
    jobs.run_batch(batches[0])
    jobs.pause_job(job)
    assert jobs.run_batch(batches[1]) == "skipped (paused)"
    job.refresh_from_db()
    assert job.state == Job.State.PAUSED and job.done == 4
    assert JobBatch.objects.get(pk=batches[1]).state == JobBatch.State.PENDING
    # resume re-sends the not-done batches (to the broker after commit; this test's transaction
    # never commits, so we run them in-process instead).
    sent = jobs.resume_job(job)
    assert sent == 2
    job.refresh_from_db()
    assert job.state == Job.State.RUNNING
    for batch_id in batches[1:]:
        jobs.run_batch(batch_id)
    job.refresh_from_db()
    assert job.state == Job.State.DONE and job.done == 12


def test_cancel_stops_taking_batches(artworks, tiny):
    job = jobs.launch("embed", tiny, batch_size=4, enqueue=False)
    batches = list(job.batches.order_by("seq").values_list("pk", flat=True))
    jobs.run_batch(batches[0])
    jobs.cancel_job(job)
    assert jobs.run_batch(batches[1]) == "skipped (cancelled)"
    job.refresh_from_db()
    assert job.state == Job.State.CANCELLED and job.done == 4
    assert jobs.resume_job(job) == 0


def test_expired_lease_is_recovered_and_batch_counted_once(artworks, tiny):
    job = jobs.launch("embed", tiny, batch_size=6, enqueue=False)
    first, second = job.batches.order_by("seq")
    # A worker took the first batch and died: its lease runs out.
    batch, _ = jobs.lease_batch(first.pk, "dead-worker")
    assert jobs.run_batch(first.pk, worker="other") == "skipped (leased)"
    JobBatch.objects.filter(pk=first.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert jobs.recover(stale_seconds=3600) == 1  # the expired batch is claimed back and re-sent
    first.refresh_from_db()
    assert first.state == JobBatch.State.PENDING and first.worker == ""
    assert jobs.recover(stale_seconds=3600) == 0  # claimed once
    jobs.run_batch(first.pk, worker="new")
    jobs.run_batch(second.pk, worker="new")
    # The dead worker's late completion (if it ever came back) is not counted again.
    from workers.jobs import BatchResult

    assert not jobs.complete_batch(job, batch, "dead-worker", BatchResult(done=list(batch.item_ids)))
    job.refresh_from_db()
    assert job.state == Job.State.DONE and job.done == 12
    assert ArtworkEmbedding.objects.count() == 12


def test_stale_job_gets_pending_batches_resent(artworks, tiny):
    job = jobs.launch("embed", tiny, batch_size=6, enqueue=False)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=2))
    assert jobs.recover(stale_seconds=600) == 2
    assert jobs.recover(stale_seconds=600) == 0  # the heartbeat was renewed by the claim


def test_batches_the_broker_never_got_are_sent_by_the_next_recovery(artworks, tiny, settings):
    """A send that failed (broker down, broken connection) leaves the batches unsent; once the job
    has been quiet for a lease, the next recovery pass sends them, long before JOB_STALE_SECONDS."""
    settings.JOB_LEASE_SECONDS = 60
    job = jobs.launch("embed", tiny, batch_size=6, enqueue=False)
    first, second = job.batches.order_by("seq")
    jobs.sending.mark_sent([first.pk])
    assert jobs.recover(stale_seconds=3600) == 0  # the job is not quiet yet
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=90))
    assert jobs.recover(stale_seconds=3600) == 1  # only the batch that never reached the broker
    assert jobs.recover(stale_seconds=3600) == 0  # claimed once (the job's heartbeat was renewed)


def test_a_job_no_worker_takes_says_so_instead_of_an_eta(artworks, tiny, settings):
    from explorer.jobs import describe

    settings.JOB_WAITING_SECONDS = 30
    job = jobs.launch("embed", tiny, batch_size=6, enqueue=False)
    first = job.batches.order_by("seq").first()
    jobs.run_batch(first.pk, worker="w")
    job.refresh_from_db()
    assert not jobs.waiting(job)  # it just moved
    assert describe(job)["eta_seconds"] is not None and describe(job)["waiting"] is False
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=45))
    job.refresh_from_db()
    assert jobs.waiting(job)
    assert describe(job)["waiting"] is True and describe(job)["eta_seconds"] is None
    assert "waiting for a worker" in jobs.progress_line(job) and "ETA" not in jobs.progress_line(job)
    jobs.lease_batch(job.batches.order_by("seq").last().pk, "busy-worker")  # a worker holds a batch
    assert not jobs.waiting(job)
    jobs.pause_job(job)
    job.refresh_from_db()
    assert not jobs.waiting(job)  # paused is paused, not waiting


def test_missing_weights_fail_the_job_with_how_to(artworks, settings, tmp_path):
    job = jobs.launch("embed", {"model": f"ViT-B-32/{tmp_path / 'absent.safetensors'}"}, enqueue=False)
    assert job.state == Job.State.FAILED
    assert "CLIP_PRETRAINED=/path/to/" in job.message and "test-tiny" in job.message
    assert not job.batches.exists()


def test_unknown_stage_and_mode_are_refused():
    with pytest.raises(ValueError):
        jobs.launch("nope")
    with pytest.raises(ValueError):
        jobs.launch("embed", mode="some")


def test_difference_streams_sorted_ids():
    assert list(jobs._difference(iter([1, 2, 3, 5, 8, 9]), iter([0, 2, 4, 5, 9, 10]))) == [1, 3, 8]
    assert list(jobs._difference(iter([1, 2]), iter([]))) == [1, 2]


def test_ids_stream_from_any_queryset_shape(artworks):
    from archive.models import ArtworkEmbedding  # noqa: F401 - shape check only

    expected = sorted(a.pk for a in artworks)
    assert list(jobs._ids(Artwork.objects.order_by("-title"))) == expected
    assert list(jobs._ids(Artwork.objects.values_list("pk", flat=True).order_by("-pk"))) == expected
    doubled = Artwork.objects.filter(pk__in=expected).values_list("pk", flat=True).union(
        Artwork.objects.values_list("pk", flat=True), all=True
    )
    assert list(jobs._unique(sorted(doubled))) == expected


def test_progress_line_flags_an_untrained_model_and_rate_leaves_out_paused_time(artworks, tiny):
    job = jobs.launch("embed", tiny, batch_size=4, enqueue=False)
    batches = list(job.batches.order_by("seq").values_list("pk", flat=True))
    jobs.run_batch(batches[0])
    job.refresh_from_db()
    assert job.params["untrained"] is True
    assert jobs.progress_line(job).startswith(f"job {job.pk} embed (untrained model) running: 4/12 done")
    # It ran 100 s, then sat paused for an hour (timestamps moved back: no waiting in tests).
    jobs.pause_job(job)
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(started_at=now - timedelta(seconds=3700), paused_at=now - timedelta(seconds=3600))
    job.refresh_from_db()
    assert job.running_seconds(now) == pytest.approx(100, abs=1)
    jobs.resume_job(job)
    job.refresh_from_db()
    assert job.paused_at is None and job.paused_seconds == pytest.approx(3600, abs=5)
    jobs.run_batch(batches[1])
    job.refresh_from_db()
    assert job.rate == pytest.approx(8 / 100, rel=0.1)  # not 8 / 3700: the pause is not running time
    assert job.eta_seconds == pytest.approx(4 / job.rate)
    jobs.run_batch(batches[2])
    job.refresh_from_db()
    assert job.state == Job.State.DONE and job.rate == pytest.approx(12 / 100, rel=0.1)
    plain = Job(kind="embed", params={"model_key": "ViT-B-32/laion2b_s34b_b79k"}, state="queued")
    assert "untrained" not in jobs.progress_line(plain)


def test_weights_missing_on_a_worker_stop_the_job(artworks, tmp_path):
    """The weights were there when the job was launched, not on the worker that runs it: the
    job ends FAILED with the how-to, its other batches are not attempted, no item is failed."""
    import open_clip
    import torch

    from workers.ml import registry
    from workers.ml.clip import _add_local_configs

    _add_local_configs()
    weights = tmp_path / "tiny-weights.pt"
    torch.save(open_clip.create_model("test-tiny").state_dict(), weights)
    job = jobs.launch("embed", {"model": f"test-tiny/{weights}"}, batch_size=4, enqueue=False)
    assert job.state == Job.State.QUEUED, job.message
    weights.unlink()
    registry.unload(job.params["model_key"])  # a fresh worker process: nothing loaded yet
    first, *others = job.batches.order_by("seq").values_list("pk", flat=True)
    assert jobs.run_batch(first).startswith("stopped (CLIP weights for 'test-tiny'")
    job.refresh_from_db()
    assert job.state == Job.State.FAILED
    assert "CLIP_PRETRAINED=/path/to/" in job.message and "stopped by batch 0" in job.message
    assert [jobs.run_batch(b) for b in others] == ["skipped (failed)"] * len(others)
    assert job.failed == 0 and not JobError.objects.filter(job=job).exists()
    assert not ArtworkEmbedding.objects.exists()
    assert JobBatch.objects.get(pk=first).state == JobBatch.State.PENDING


def test_recovery_runs_the_finish_step_a_dead_worker_left(artworks, tiny, monkeypatch):
    """A worker that died between marking the job DONE and running its finish step (here: the
    HNSW index build deferred after a bulk load) leaves the step pending; recovery runs it."""
    from archive.vectors import ARTWORK_EMBEDDINGS, index_name
    from django.db import connection
    from workers import embedding

    monkeypatch.setattr(embedding, "INDEX_AFTER_LOAD", 0)  # this small job defers its index
    with connection.cursor() as cursor:  # FK checks at once, so an index can be built in the test's transaction
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    job = jobs.launch("embed", tiny, enqueue=False)
    assert job.params["index_after_load"] is True
    name = index_name(ARTWORK_EMBEDDINGS, job.params["model_id"])
    assert not embedding._index_exists(job.params["model_id"])
    run_all(job)
    assert job.state == Job.State.DONE and not job.finish_pending and embedding._index_exists(job.params["model_id"])
    # What a worker killed right after the DONE commit leaves behind:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX {name}")
    Job.objects.filter(pk=job.pk).update(finish_pending=True)
    jobs.recover(stale_seconds=3600)
    job.refresh_from_db()
    assert not job.finish_pending and embedding._index_exists(job.params["model_id"])
    assert not jobs.run_finish_hook(job)  # once only


VOCAB = [{"name": n, "slug": n.replace(" ", "-"), "group": "test", "source": "test"} for n in ("a boat", "a tree", "a face", "a horse")]


@pytest.mark.django_db(transaction=True)  # another connection holds a table lock
def test_connection_error_from_a_raw_cursor_gives_the_batch_back(aic_dir, settings):
    """A psycopg error that bypasses Django's cursor wrapper (here a lock timeout on the label
    stage's raw binary cursor) is transient: the batch is given back and re-raised for the task's
    retry, never recorded as failed items. The retry then completes it."""
    import psycopg
    from django.db import connection

    from workers.labeling import load_vocabulary

    settings.CLIP_MODEL = "test-tiny"
    artworks = ingest_artworks(aic_dir / "images", 8, source="raw-cursor-test")
    run_all(jobs.launch("embed", {"model": "test-tiny"}, enqueue=False))
    load_vocabulary(VOCAB)
    job = jobs.launch("label", {"model": "test-tiny", "top_k": 2}, batch_size=4, enqueue=False)
    first, second = job.batches.order_by("seq").values_list("pk", flat=True)
    jobs.run_batch(first)  # the label texts are made ready by the first batch
    with psycopg.connect(_libpq_url(), autocommit=False) as other:
        other.execute("SET lock_timeout = '10s'")
        other.execute("LOCK TABLE archive_artworkembedding IN ACCESS EXCLUSIVE MODE")
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        try:
            with pytest.raises(psycopg.OperationalError):
                jobs.run_batch(second)
            # The Celery task retries it with back-off; after the last retry the job says so.
            from workers.jobs.tasks import process_batch

            outcome = process_batch.apply(args=(second,), retries=process_batch.max_retries)
            assert outcome.failed() and isinstance(outcome.result, psycopg.OperationalError)
            assert "gave up after 8 retries (LockNotAvailable" in Job.objects.get(pk=job.pk).message
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = 0")
        other.rollback()
    batch = JobBatch.objects.get(pk=second)
    assert batch.state == JobBatch.State.PENDING and batch.worker == ""
    job.refresh_from_db()
    assert (job.state, job.done, job.failed) == (Job.State.RUNNING, 4, 0)
    assert not JobError.objects.filter(job=job).exists()
    jobs.run_batch(second)  # the retry
    job.refresh_from_db()
    assert (job.state, job.done, job.failed) == (Job.State.DONE, 8, 0)
    from archive.models import ArtworkLabel

    assert ArtworkLabel.objects.filter(rank=1, artwork__in=artworks).count() == len(artworks)


def _libpq_url() -> str:
    from tests.workers.test_celery import test_database_url

    return test_database_url()
