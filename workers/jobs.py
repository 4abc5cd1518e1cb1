"""Job lifecycle: create, progress, per-item errors, pause/resume/cancel, finish.

Every stage (import, embed, label, faces, layout) records its run as a :class:`archive.models.Job`
through these functions, whether it runs inside a Celery worker, a management command or a test.
Counters are updated with single atomic UPDATEs so concurrent workers never lose increments.
"""
from __future__ import annotations

import traceback
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from archive.models import Job, JobError


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
    job.refresh_from_db(fields=["done", "failed", "state", "started_at", "total", "message", "heartbeat_at"])
    if job.started_at:
        elapsed = max((now - job.started_at).total_seconds(), 1e-6)
        job.rate = (job.done + job.failed) / elapsed
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
        item=str(item)[:10_000],
        reason=str(reason)[:500],
        detail=detail,
        payload=payload or {},
        artwork_id=artwork_id,
    )


def record_errors(job: Job, errors: list[JobError]) -> None:
    """Bulk-insert unsaved JobError instances (their ``job`` is set here)."""
    for error in errors:
        error.job = job
        error.reason = str(error.reason)[:500]
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


def finish_job(job: Job, *, state: str = Job.State.DONE, message: str | None = None) -> Job:
    """Mark the job finished unless an operator already cancelled it."""
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        if locked.state != Job.State.CANCELLED:
            locked.state = state
        locked.finished_at = timezone.now()
        if message is not None:
            locked.message = message
        if locked.started_at:
            elapsed = max((locked.finished_at - locked.started_at).total_seconds(), 1e-6)
            locked.rate = (locked.done + locked.failed) / elapsed
        locked.save(update_fields=["state", "finished_at", "message", "rate"])
    job.refresh_from_db()
    return job


def cancel_job(job: Job) -> None:
    Job.objects.filter(pk=job.pk).exclude(state__in=Job.FINAL_STATES).update(
        state=Job.State.CANCELLED, finished_at=timezone.now()
    )


def pause_job(job: Job) -> None:
    Job.objects.filter(pk=job.pk, state__in=[Job.State.RUNNING, Job.State.QUEUED]).update(state=Job.State.PAUSED)


def resume_job(job: Job) -> None:
    Job.objects.filter(pk=job.pk, state=Job.State.PAUSED).update(state=Job.State.RUNNING)
