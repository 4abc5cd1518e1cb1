"""A job's life: create, start, count progress, record errors, pause, cancel, finish, describe.

Counters are updated with single atomic UPDATEs so concurrent workers never lose increments.
Nothing here knows any stage.
"""
from __future__ import annotations

import traceback
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from archive import storable
from archive.models import Job, JobError

from .contract import JobCancelled


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


def append_message(job: Job, text: str) -> None:
    """Add a line to the job's message (what an operator reads in ``jobs show`` and the dashboard)."""
    from django.db.models import Value
    from django.db.models.functions import Concat

    Job.objects.filter(pk=job.pk, message="").update(message=text)
    Job.objects.filter(pk=job.pk).exclude(message="").exclude(message__endswith=text).update(
        message=Concat(F("message"), Value("\n" + text))
    )
    job.refresh_from_db(fields=["message"])


def waiting(job: Job) -> bool:
    """Whether the job has work left that no worker is doing: no batch is leased and nothing has
    moved for ``JOB_WAITING_SECONDS`` (no worker consumes its queue, or none can reach the broker
    or the database). The job then shows "waiting for a worker" rather than an ETA."""
    from datetime import timedelta

    from django.conf import settings

    from archive.models import JobBatch

    moved = job.heartbeat_at or job.created_at
    if job.pk is None or moved is None or job.is_final or job.state == Job.State.PAUSED:
        return False
    if moved > timezone.now() - timedelta(seconds=int(getattr(settings, "JOB_WAITING_SECONDS", 30))):
        return False
    batches = JobBatch.objects.filter(job_id=job.pk)
    if batches.filter(state=JobBatch.State.RUNNING, lease_expires_at__gt=timezone.now()).exists():
        return False
    return batches.exclude(state=JobBatch.State.DONE).exists()


def eta_text(job: Job) -> str:
    """", ETA 3m05s", ", waiting for a worker" or "" (for the CLI and logs)."""
    if waiting(job):
        return ", waiting for a worker"
    eta = job.eta_seconds
    return f", ETA {int(eta // 60)}m{int(eta % 60):02d}s" if eta is not None else ""


def progress_line(job: Job) -> str:
    """One line for logs and the CLI: state, counts, rate and ETA, and a warning when the job's
    model has random weights (its results are not meaningful)."""
    untrained = " (untrained model)" if (job.params or {}).get("untrained") else ""
    return (
        f"job {job.pk} {job.kind}{untrained} {job.state}: {job.done}/{job.total} done, {job.failed} failed, "
        f"{job.rate:.1f} items/s{eta_text(job)}"
    )
