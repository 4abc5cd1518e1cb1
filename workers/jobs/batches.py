"""One batch: lease it, keep the lease alive, run its stage, record the outcome exactly once,
finish the job when its last batch is recorded and run the job's after-steps (the stage's
``finish`` hook, then the pipeline's follow-ups)."""
from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from archive.models import Artwork, Job, JobBatch, JobError

from . import registry
from .contract import TRANSIENT_ERRORS, BatchResult, ItemError, StopJob
from .lifecycle import (
    append_message,
    describe_exception,
    finish_job,
    record_errors,
    record_progress,
)

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def lease_seconds() -> int:
    return int(getattr(settings, "JOB_LEASE_SECONDS", 120))


def lease_batch(batch_id: int, worker: str) -> tuple[JobBatch | None, str]:
    """Take a batch for ``worker`` (SELECT ... FOR UPDATE SKIP LOCKED). Returns (batch, why-not)."""
    now = timezone.now()
    with transaction.atomic():
        batch = JobBatch.objects.select_for_update(skip_locked=True).filter(pk=batch_id).first()
        if batch is None:
            exists = JobBatch.objects.filter(pk=batch_id).exists()
            return None, "locked" if exists else "gone"
        if batch.state == JobBatch.State.DONE:
            return None, "done"
        if batch.state == JobBatch.State.RUNNING and batch.lease_expires_at and batch.lease_expires_at > now:
            return None, "leased"
        state = Job.objects.values_list("state", flat=True).get(pk=batch.job_id)
        if state == Job.State.PAUSED:
            return None, "paused"
        if state in Job.FINAL_STATES:
            return None, state
        batch.state = JobBatch.State.RUNNING
        batch.lease_expires_at = now + timedelta(seconds=lease_seconds())
        batch.worker = worker[:255]
        batch.attempts += 1
        batch.save(update_fields=["state", "lease_expires_at", "worker", "attempts", "updated_at"])
    Job.objects.filter(pk=batch.job_id, state=Job.State.QUEUED).update(
        state=Job.State.RUNNING, started_at=now, heartbeat_at=now
    )
    return batch, ""


def release_batch(batch: JobBatch, worker: str) -> None:
    """Give a leased batch back (pending) so it can be taken again, e.g. before a retry."""
    JobBatch.objects.filter(pk=batch.pk, worker=worker[:255], state=JobBatch.State.RUNNING).update(
        state=JobBatch.State.PENDING, lease_expires_at=None, worker=""
    )


class Heartbeat:
    """Renews a batch lease (and the job's heartbeat) from a thread while the batch is processed."""

    def __init__(self, batch: JobBatch, worker: str):
        self.batch, self.worker = batch, worker[:255]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{batch.pk}", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        interval = max(lease_seconds() / 3.0, 0.5)
        try:
            while not self._stop.wait(interval):
                now = timezone.now()
                JobBatch.objects.filter(pk=self.batch.pk, worker=self.worker, state=JobBatch.State.RUNNING).update(
                    lease_expires_at=now + timedelta(seconds=lease_seconds())
                )
                Job.objects.filter(pk=self.batch.job_id).update(heartbeat_at=now)
        except Exception:  # noqa: BLE001 - a missed heartbeat only lets another worker take over
            log.exception("heartbeat for batch %s failed", self.batch.pk)
        finally:
            connections.close_all()


def run_batch(batch_id: int, worker: str | None = None, *, options: dict | None = None) -> str:
    """Lease one batch, run its stage on it and record the outcome. Idempotent: a batch that is
    done, held by a live worker, or whose job is paused/cancelled is skipped. Transient database
    errors propagate (after giving the lease back) so the task can retry; any other error fails
    the batch's items with a readable reason; :class:`~workers.jobs.contract.StopJob` (e.g. weights missing
    on this worker) ends the whole job FAILED. The stage gets the job's params plus ``job_id``;
    ``options`` go to a stage's ``run_batch`` (an in-process import passes its progress callbacks).
    Returns what happened, for logs and tests."""
    worker = worker or worker_name()
    batch, why = lease_batch(batch_id, worker)
    if batch is None:
        return f"skipped ({why})"
    job = Job.objects.get(pk=batch.job_id)
    ids = [int(i) for i in batch.item_ids]
    try:
        stage = registry.get_stage(job.kind)
        with Heartbeat(batch, worker):
            if stage.run_batch is not None:
                result = stage.run_batch(job, batch, dict(options or {}))
            else:
                result = stage.process(ids, {**job.params, "job_id": job.pk})
    except TRANSIENT_ERRORS:
        _drop_broken_connection()
        try:
            release_batch(batch, worker)
        except Exception:  # noqa: BLE001 - the database is away: the lease runs out and recovery re-sends
            log.warning("job %s: could not give batch %s back", job.pk, batch.pk, exc_info=True)
        raise
    except StopJob as exc:
        release_batch(batch, worker)
        log.error("job %s stopped by batch %s on %s: %s", job.pk, batch.pk, worker, exc)
        finish_job(job, state=Job.State.FAILED, message=f"{exc}\n(stopped by batch {batch.seq} on worker {worker})")
        return f"stopped ({str(exc).splitlines()[0]})"
    except Exception as exc:  # noqa: BLE001 - a broken batch is recorded, not retried forever
        reason, detail = describe_exception(exc)
        log.exception("job %s batch %s failed", job.pk, batch.pk)
        if ids:
            result = BatchResult(errors=[ItemError(i, f"batch failed: {reason}", detail) for i in ids])
        else:
            result = BatchResult(errors=[ItemError(None, f"batch failed: {reason}", detail, item=f"job {job.pk} batch {batch.seq}")])
    complete_batch(job, batch, worker, result)
    maybe_finish(job)
    return f"processed ({len(result.done)} done, {len(result.errors)} failed)"


def _drop_broken_connection() -> None:
    """Errors that bypass Django's cursor wrapper do not mark its connection as failed; close it
    when it no longer works, so the next query (giving the lease back, the retry) reconnects."""
    conn = connections["default"]
    if conn.connection is not None and not conn.in_atomic_block and not conn.is_usable():
        conn.close()


def complete_batch(job: Job, batch: JobBatch, worker: str, result) -> bool:
    """Record a batch's result exactly once: errors, counters and the batch's DONE state commit
    together, and only if this worker still holds the batch."""
    with transaction.atomic():
        locked = JobBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.state == JobBatch.State.DONE or (locked.worker and locked.worker != worker[:255]):
            return False
        errors = [
            JobError(artwork_id=e.artwork_id, item=e.item or str(e.artwork_id), reason=e.reason, detail=e.detail,
                     payload=e.payload if e.payload is not None else {"artwork_id": e.artwork_id})
            for e in result.errors
        ]
        if errors:
            ids = [e.artwork_id for e in errors if e.artwork_id is not None]
            existing = set(Artwork.objects.filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
            for error in errors:
                if error.artwork_id not in existing:
                    error.artwork_id = None
            record_errors(job, errors)
        locked.state = JobBatch.State.DONE
        locked.done, locked.failed = len(result.done), len(result.errors)
        locked.lease_expires_at = None
        locked.records = None  # an import batch's records are in the archive (or in its errors) now
        locked.summary = result.summary or {}
        locked.save(update_fields=["state", "done", "failed", "lease_expires_at", "records", "summary", "updated_at"])
        record_progress(job, done=len(result.done), failed=len(result.errors))
    return True


def maybe_finish(job: Job) -> bool:
    """Finish the job if no batch is left (exactly once: the job row is locked and its state
    checked), then run the stage's ``finish`` hook."""
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        if locked.is_final or locked.state == Job.State.PAUSED:
            return False
        batches = JobBatch.objects.filter(job_id=job.pk)
        # A job without batch rows is not fanned out (a layout job) or not planned yet: its own
        # task finishes it, never this.
        if not batches.exists() or batches.exclude(state=JobBatch.State.DONE).exists():
            return False
        message = f"{locked.done} done, {locked.failed} failed" if locked.failed else f"{locked.done} done"
        finish_job(locked, message=message, hook=True)
    job.refresh_from_db()
    run_finish_hook(job)
    return True


FINISH_LOCK = 0x4A0B  # advisory lock class of finish hooks: (FINISH_LOCK, job id)


def run_finish_hook(job: Job) -> bool:
    """Run the after-steps of a DONE job whose steps are pending, once: its stage's ``finish``
    hook (e.g. build the HNSW index deferred by a bulk load), then the pipeline's follow-ups
    (:mod:`workers.pipeline`: placement on the maps, model activation). A session advisory lock on the job keeps a
    running hook (an index build can take long) from being started twice; if its worker dies, the
    lock goes with the connection and :func:`recover` runs the hook. Returns True if it ran here."""
    conn = connections["default"]
    with conn.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [FINISH_LOCK, job.pk % 2**31])
        if not cursor.fetchone()[0]:
            return False
    try:
        job.refresh_from_db()
        if not job.finish_pending or job.state != Job.State.DONE:
            return False
        try:
            hook = getattr(registry.get_stage(job.kind), "finish", None)
            if hook is not None:
                with transaction.atomic():
                    hook(job)
            # Then what the pipeline starts after this kind of job (each step in its own
            # transaction: a follow-up that fails does not undo the stage's own finish).
            for line in registry.follow_up(job):
                append_message(job, line)
        except TRANSIENT_ERRORS:
            log.warning("finish hook of job %s: database unavailable; recovery runs it again", job.pk, exc_info=True)
            return False
        except Exception as exc:  # noqa: BLE001 - the job's items are done; report the hook's failure
            log.exception("finish hook of job %s failed", job.pk)
            append_message(job, f"after-job step failed: {describe_exception(exc)[0]}")
        Job.objects.filter(pk=job.pk).update(finish_pending=False)
        job.finish_pending = False
        return True
    finally:
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [FINISH_LOCK, job.pk % 2**31])
        except TRANSIENT_ERRORS:
            pass  # the connection is gone, and the session's lock with it
