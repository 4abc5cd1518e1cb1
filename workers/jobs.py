"""Job lifecycle: create, fan out in batches, progress, per-item errors, pause/resume/cancel,
recovery, retry of failed items, finish.

Every stage (import, embed, label, faces, layout) records its run as a :class:`archive.models.Job`
through these functions, whether it runs inside a Celery worker, a management command or a test.
Counters are updated with single atomic UPDATEs so concurrent workers never lose increments.

Batch stages (see :mod:`workers.stages`) are started with :func:`launch`: it selects the items,
writes :class:`archive.models.JobBatch` rows (the job's own record of what is left) and sends one
Celery task per batch to the stage's queue. An import is started by ``archive.importers.launch``
instead: its batch 0 plans the source into batches of records. :func:`run_batch` is what the
task does, for every stage. Recovery (:func:`recover`, :func:`resume_job`) reads the batch rows,
so it never depends on the broker redelivering a lost message.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from datetime import timedelta
from typing import Any, Iterable, Iterator

import psycopg
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, transaction
from django.db.models import F
from django.db.models.query import FlatValuesListIterable
from django.utils import timezone

from archive import storable
from archive.models import Artwork, Job, JobBatch, JobError

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised inside a running stage when an operator cancelled its job."""


def create_job(kind: str, params: dict[str, Any] | None = None, *, total: int = 0, user=None) -> Job:
    return Job.objects.create(kind=kind, params=params or {}, total=total, created_by=user)


def start_job(job: Job, *, total: int | None = None) -> Job:
    now = timezone.now()
    fields = {"state": Job.State.RUNNING, "heartbeat_at": now}
    if job.started_at is None:
        fields["started_at"] = now
    if total is not None:
        fields["total"] = total
    Job.objects.filter(pk=job.pk).update(**fields)
    job.refresh_from_db()
    return job


def set_total(job: Job, total: int) -> None:
    Job.objects.filter(pk=job.pk).update(total=total)
    job.total = total


def record_progress(job: Job, *, done: int = 0, failed: int = 0, message: str | None = None) -> Job:
    """Add to the job's counters and refresh its rate, heartbeat and in-memory copy."""
    now = timezone.now()
    updates: dict[str, Any] = {"done": F("done") + done, "failed": F("failed") + failed, "heartbeat_at": now}
    if message is not None:
        updates["message"] = message
    Job.objects.filter(pk=job.pk).update(**updates)
    job.refresh_from_db(
        fields=["done", "failed", "state", "started_at", "total", "message", "heartbeat_at", "paused_at", "paused_seconds"]
    )
    if job.started_at:
        job.rate = (job.done + job.failed) / max(job.running_seconds(now), 1e-6)
        Job.objects.filter(pk=job.pk).update(rate=job.rate)
    return job


def record_error(
    job: Job,
    item: str,
    reason: str,
    *,
    detail: str = "",
    payload: dict[str, Any] | None = None,
    artwork_id: int | None = None,
) -> JobError:
    return JobError.objects.create(
        job=job,
        item=storable.text(item)[:10_000],
        reason=storable.text(reason)[:500],
        detail=storable.text(detail),
        payload=storable.json_value(payload or {}),
        artwork_id=artwork_id,
    )


def record_errors(job: Job, errors: list[JobError]) -> None:
    """Bulk-insert unsaved JobError instances (their ``job`` is set here). Text the database cannot
    store (NUL characters, undecodable bytes) is cleaned first: an error record never fails."""
    for error in errors:
        error.job = job
        error.item = storable.text(error.item)[:10_000]
        error.reason = storable.text(error.reason)[:500]
        error.detail = storable.text(error.detail)
        error.payload = storable.json_value(error.payload or {})
    JobError.objects.bulk_create(errors, batch_size=1000)


def describe_exception(exc: BaseException) -> tuple[str, str]:
    """A one-line reason and a traceback for an unexpected error."""
    reason = f"{exc.__class__.__name__}: {exc}"
    return reason[:500], "".join(traceback.format_exception(exc))


def current_state(job: Job) -> str:
    job.state = Job.objects.values_list("state", flat=True).get(pk=job.pk)
    return job.state


def check_cancelled(job: Job) -> None:
    if current_state(job) == Job.State.CANCELLED:
        raise JobCancelled(f"job {job.pk} was cancelled")


def finish_job(job: Job, *, state: str = Job.State.DONE, message: str | None = None, hook: bool = False) -> Job:
    """Mark the job finished unless an operator already cancelled it. ``hook``: its stage's
    finish hook is still to run (see :func:`run_finish_hook`)."""
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        if locked.state != Job.State.CANCELLED:
            locked.state = state
            locked.finish_pending = hook and state == Job.State.DONE
        locked.finished_at = timezone.now()
        if message is not None:
            locked.message = message
        if locked.started_at:
            locked.rate = (locked.done + locked.failed) / max(locked.running_seconds(locked.finished_at), 1e-6)
        locked.save(update_fields=["state", "finished_at", "message", "rate", "finish_pending"])
    job.refresh_from_db()
    return job


def cancel_job(job: Job) -> None:
    Job.objects.filter(pk=job.pk).exclude(state__in=Job.FINAL_STATES).update(
        state=Job.State.CANCELLED, finished_at=timezone.now()
    )


def pause_job(job: Job) -> None:
    Job.objects.filter(pk=job.pk, state__in=[Job.State.RUNNING, Job.State.QUEUED]).update(
        state=Job.State.PAUSED, paused_at=timezone.now()
    )


def resume_job(job: Job) -> int:
    """Un-pause the job (if paused) and re-send every batch that is not done and not held by a live
    worker. Also the way to restart a job whose worker died or whose messages were lost. Returns
    the number of batches sent. The pause is left out of the job's running time (its rate)."""
    now = timezone.now()
    with transaction.atomic():
        paused = Job.objects.select_for_update().filter(pk=job.pk, state=Job.State.PAUSED).first()
        if paused is not None:
            away = (now - paused.paused_at).total_seconds() if paused.paused_at and paused.started_at else 0.0
            Job.objects.filter(pk=job.pk).update(
                state=Job.State.RUNNING, heartbeat_at=now, paused_at=None, paused_seconds=F("paused_seconds") + away
            )
    job.refresh_from_db()
    if job.is_final:
        return 0
    now = timezone.now()
    ids = list(
        JobBatch.objects.filter(job=job)
        .exclude(state=JobBatch.State.DONE)
        .exclude(state=JobBatch.State.RUNNING, lease_expires_at__gt=now)
        .order_by("seq")
        .values_list("pk", flat=True)
    )
    JobBatch.objects.filter(pk__in=ids, state=JobBatch.State.RUNNING, lease_expires_at__lte=now).update(
        state=JobBatch.State.PENDING, lease_expires_at=None, worker=""
    )
    sent = enqueue_batches(job, ids)
    maybe_finish(job)
    return sent


# --- Fan-out ------------------------------------------------------------------------------------
MODES = ("missing", "all", "reset")
# Django turns psycopg's errors into its own only where they pass through its cursor wrapper
# (execute, executemany, fetch*, connect, commit). COPY (``cursor.copy``) and the raw psycopg
# cursors of the vector readers raise psycopg's classes directly. OperationalError covers a lost
# connection, an admin shutdown, lock and statement timeouts, deadlocks and serialisation failures.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError,
)


def _batch_size(stage) -> int:
    return int(stage.batch_size or getattr(settings, "JOB_BATCH_SIZE", 256))


def _ids(queryset) -> Iterator[int]:
    """Stream the ids of a queryset of artworks (or of an id values_list) in ascending order."""
    if getattr(queryset, "_iterable_class", None) is not FlatValuesListIterable:
        queryset = queryset.values_list("pk", flat=True)
    return queryset.order_by().order_by(*queryset.query.values_select[:1] or ["pk"]).iterator(chunk_size=20_000)


def _difference(left: Iterable[int], right: Iterable[int]) -> Iterator[int]:
    """Ids in ``left`` and not in ``right``; both ascending. Constant memory, one pass each."""
    right_iter = iter(right)
    current = next(right_iter, None)
    for value in left:
        while current is not None and current < value:
            current = next(right_iter, None)
        if current != value:
            yield value


def _unique(ids: Iterable[int]) -> Iterator[int]:
    previous = None
    for value in ids:
        if value != previous:
            yield value
            previous = value


def select_ids(stage, params: dict, mode: str) -> Iterator[int]:
    """The artwork ids a job over ``stage`` covers, ascending, each once."""
    candidates = _unique(_ids(stage.candidates(params)))
    if mode == "missing":
        return _difference(candidates, _ids(stage.completed(params)))
    return candidates


def write_batches(job: Job, ids: Iterable[int], batch_size: int) -> tuple[int, int]:
    """Write JobBatch rows for the ids (in bulk, a few thousand rows per INSERT). Returns (batches, items)."""
    pending: list[JobBatch] = []
    seq = items = 0
    for chunk in _chunks(ids, batch_size):
        pending.append(JobBatch(job=job, seq=seq, item_ids=chunk))
        seq += 1
        items += len(chunk)
        if len(pending) >= 500:
            JobBatch.objects.bulk_create(pending)
            pending = []
    if pending:
        JobBatch.objects.bulk_create(pending)
    return seq, items


def _chunks(ids: Iterable[int], size: int) -> Iterator[list[int]]:
    chunk: list[int] = []
    for value in ids:
        chunk.append(int(value))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def enqueue_batches(job: Job, batch_ids: Iterable[int]) -> int:
    """Send one task per batch to the stage's queue (after the current transaction commits).

    A broker that cannot be reached is not fatal: the batches stay pending and are re-sent by
    ``manage.py jobs resume`` or by the next worker that starts."""
    batch_ids = list(batch_ids)
    if not batch_ids:
        return 0
    queue = _queue_for(job.kind)

    def send():
        from workers.celery import app
        from workers.tasks import process_batch

        if app.conf.task_always_eager:
            for batch_id in batch_ids:
                process_batch.apply(args=(batch_id,))
            return
        try:
            with app.connection_for_write() as conn:
                with conn.Producer() as producer:
                    for batch_id in batch_ids:
                        process_batch.apply_async(args=(batch_id,), queue=queue, producer=producer)
        except Exception as exc:  # broker down: keep the batches pending, say how to re-send
            log.warning("job %s: could not send %d batches to %s: %s", job.pk, len(batch_ids), queue, exc)
            Job.objects.filter(pk=job.pk).update(
                message=f"Broker unavailable ({exc.__class__.__name__}: {exc}); the batches are kept and are sent "
                f"when a worker starts or with: manage.py jobs resume {job.pk}"
            )

    transaction.on_commit(send)
    return len(batch_ids)


def _queue_for(kind: str) -> str:
    from workers.stages import get_stage

    return get_stage(kind).queue


def launch(
    kind: str,
    params: dict[str, Any] | None = None,
    mode: str = "missing",
    user=None,
    *,
    ids: Iterable[int] | None = None,
    batch_size: int | None = None,
    enqueue: bool = True,
) -> Job:
    """Start a batch stage over the artworks it applies to.

    ``mode``: ``missing`` (candidates without output for these params), ``all`` (every candidate,
    overwriting), ``reset`` (delete the stage's outputs for these params, then all). ``ids``
    restricts the job to those artworks (used by :func:`retry_failed`). ``enqueue=False`` writes the
    batches without sending tasks (run them with :func:`run_batch`, e.g. in tests). Returns the Job; when the
    stage cannot run (e.g. weights missing) the Job is FAILED with the stage's message.
    """
    from workers.stages import get_stage

    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    stage = get_stage(kind)
    if stage.candidates is None:
        raise ValueError(f"{kind} jobs do not run over existing artworks; start them with their own command ({kind})")
    params = dict(params or {})
    params["mode"] = mode
    job = create_job(kind, params, user=user)
    try:
        with transaction.atomic():
            params = dict(stage.prepare(dict(params)) or params)
    except Exception as exc:  # noqa: BLE001 - any refusal to start becomes the job's message
        message = str(exc) if not isinstance(exc, (KeyError, AttributeError, TypeError)) else describe_exception(exc)[0]
        log.warning("job %s (%s) cannot start: %s", job.pk, kind, message)
        return finish_job(job, state=Job.State.FAILED, message=message)
    params["mode"] = mode
    Job.objects.filter(pk=job.pk).update(params=params)
    job.params = params
    # One transaction: the batches appear all at once (or not at all), the id streams use plain
    # server-side cursors, and the tasks are sent when it commits.
    with transaction.atomic():
        if mode == "reset":
            stage.reset(params)
        if ids is not None:
            selected: Iterable[int] = sorted({int(i) for i in ids})
        else:
            selected = select_ids(stage, params, "all" if mode == "reset" else mode)
        batches, items = write_batches(job, selected, int(batch_size or _batch_size(stage)))
        Job.objects.filter(pk=job.pk).update(total=items, heartbeat_at=timezone.now())
        job.total = items
        if batches and enqueue:
            enqueue_batches(job, JobBatch.objects.filter(job=job).order_by("seq").values_list("pk", flat=True))
    if batches == 0:
        finish_job(job, message="Nothing to do: every item already has this stage's output.", hook=True)
        run_finish_hook(job)
        return job
    job.refresh_from_db()
    return job


# --- One batch ----------------------------------------------------------------------------------
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
    the batch's items with a readable reason; :class:`~workers.stages.StopJob` (e.g. weights missing
    on this worker) ends the whole job FAILED. The stage gets the job's params plus ``job_id``;
    ``options`` go to a stage's ``run_batch`` (an in-process import passes its progress callbacks).
    Returns what happened, for logs and tests."""
    from workers.stages import BatchResult, ItemError, StopJob, get_stage

    worker = worker or worker_name()
    batch, why = lease_batch(batch_id, worker)
    if batch is None:
        return f"skipped ({why})"
    job = Job.objects.get(pk=batch.job_id)
    ids = [int(i) for i in batch.item_ids]
    try:
        stage = get_stage(job.kind)
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
    """Run the ``finish`` hook of a DONE job whose hook is pending (e.g. build the HNSW index
    deferred by a bulk load, switch models), once. A session advisory lock on the job keeps a
    running hook (an index build can take long) from being started twice; if its worker dies, the
    lock goes with the connection and :func:`recover` runs the hook. Returns True if it ran here."""
    from workers.stages import get_stage

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
            hook = getattr(get_stage(job.kind), "finish", None)
            if hook is not None:
                with transaction.atomic():
                    hook(job)
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


def append_message(job: Job, text: str) -> None:
    """Add a line to the job's message (what an operator reads in ``jobs show`` and the dashboard)."""
    from django.db.models import Value
    from django.db.models.functions import Concat

    Job.objects.filter(pk=job.pk, message="").update(message=text)
    Job.objects.filter(pk=job.pk).exclude(message="").exclude(message__endswith=text).update(
        message=Concat(F("message"), Value("\n" + text))
    )
    job.refresh_from_db(fields=["message"])


# --- Recovery -----------------------------------------------------------------------------------
def recover(*, stale_seconds: int | None = None) -> int:
    """Re-send lost batches of unfinished jobs; safe to run from every worker at any time.

    * a RUNNING batch whose lease expired (its worker died) is claimed back to PENDING and re-sent;
    * PENDING batches of a job that made no progress for ``JOB_STALE_SECONDS`` (lost messages,
      or a broker that was down at launch) are re-sent;
    * a DONE job whose finish hook is still pending (its worker died after marking it done) gets
      the hook run here (:func:`run_finish_hook`), e.g. the deferred HNSW index is built.
    Claims are single UPDATEs, so two workers recovering at once do not both re-send a batch.
    Returns the number of batches sent."""
    now = timezone.now()
    stale = stale_seconds if stale_seconds is not None else int(getattr(settings, "JOB_STALE_SECONDS", 900))
    live = [Job.State.QUEUED, Job.State.RUNNING]
    sent = 0
    expired = (
        JobBatch.objects.filter(job__state__in=live, state=JobBatch.State.RUNNING, lease_expires_at__lt=now)
        .values_list("pk", "job_id")
    )
    by_job: dict[int, list[int]] = {}
    for batch_id, job_id in expired:
        claimed = JobBatch.objects.filter(pk=batch_id, state=JobBatch.State.RUNNING, lease_expires_at__lt=now).update(
            state=JobBatch.State.PENDING, lease_expires_at=None, worker=""
        )
        if claimed:
            by_job.setdefault(job_id, []).append(batch_id)
    cutoff = now - timedelta(seconds=stale)
    for job_id in Job.objects.filter(state__in=live, heartbeat_at__lt=cutoff).values_list("pk", flat=True):
        if Job.objects.filter(pk=job_id, heartbeat_at__lt=cutoff).update(heartbeat_at=now):
            pending = JobBatch.objects.filter(job_id=job_id, state=JobBatch.State.PENDING).values_list("pk", flat=True)
            by_job.setdefault(job_id, []).extend(pending)
    for job_id, batch_ids in by_job.items():
        job = Job.objects.get(pk=job_id)
        sent += enqueue_batches(job, sorted(set(batch_ids)))
        log.info("job %s: re-sent %d lost batches", job_id, len(set(batch_ids)))
    for job in Job.objects.filter(state__in=live).exclude(batches__state__in=[JobBatch.State.PENDING, JobBatch.State.RUNNING]):
        if job.batches.exists():
            maybe_finish(job)
    # Jobs marked DONE whose finish hook never ran (the worker died in between): run it now.
    for job in Job.objects.filter(state=Job.State.DONE, finish_pending=True).order_by("pk"):
        if run_finish_hook(job):
            log.info("job %s: ran its pending finish step", job.pk)
    return sent


# --- Retry --------------------------------------------------------------------------------------
def retry_failed(job: Job, user=None) -> Job:
    """A new job of the same kind and params over the failed items of ``job`` that have not been
    retried yet; their JobError rows point at it (``retried_in``). A stage with its own ``retry``
    (the import: failed records are read again from their error payloads) decides how. Raises
    ValueError when there is nothing to retry."""
    from workers.stages import get_stage

    stage = get_stage(job.kind)
    if stage.retry is not None:
        return stage.retry(job, user=user)
    errors = JobError.objects.filter(job=job, retried_in__isnull=True, artwork_id__isnull=False)
    ids = sorted(set(errors.values_list("artwork_id", flat=True)))
    if not ids:
        raise ValueError(f"job {job.pk} has no failed artworks left to retry")
    params = {k: v for k, v in job.params.items() if k != "mode"}
    params["retry_of"] = job.pk
    new = launch(job.kind, params, mode="all", user=user, ids=ids)
    errors.update(retried_in=new)
    return new


def progress_line(job: Job) -> str:
    """One line for logs and the CLI: state, counts, rate and ETA, and a warning when the job's
    model has random weights (its results are not meaningful)."""
    eta = job.eta_seconds
    eta_text = f", ETA {int(eta // 60)}m{int(eta % 60):02d}s" if eta is not None else ""
    untrained = " (untrained model)" if (job.params or {}).get("untrained") else ""
    return (
        f"job {job.pk} {job.kind}{untrained} {job.state}: {job.done}/{job.total} done, {job.failed} failed, "
        f"{job.rate:.1f} items/s{eta_text}"
    )
