"""Job control for the dashboard and the API: describe, launch, pause/resume/cancel, retry failed.

Thin calls into the job kernel: every kind is launched, controlled and retried through
``workers.jobs`` (the kinds an operator may start are the registry's, see :func:`kinds`)."""
from __future__ import annotations

from archive.models import Job

MODES = ("missing", "all", "reset")


class JobControlError(ValueError):
    """A job action that cannot be done (the message says why)."""


def describe(job: Job) -> dict:
    from workers.jobs import waiting

    idle = waiting(job)
    return {
        "id": job.pk,
        "kind": job.kind,
        "kind_display": job.get_kind_display(),
        "state": job.state,
        "params": job.params,
        "total": job.total,
        "done": job.done,
        "failed": job.failed,
        "percent": round(job.percent, 2),
        "rate": round(job.rate or 0.0, 3),
        "eta_seconds": round(job.eta_seconds) if job.eta_seconds is not None and not idle else None,
        "waiting": idle,  # work left and no worker doing it: shown instead of an ETA
        "elapsed_seconds": round(job.elapsed_seconds, 1),
        "message": job.message,
        "created_by": job.created_by.get_username() if job.created_by_id else None,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "heartbeat_at": job.heartbeat_at.isoformat() if job.heartbeat_at else None,
        "is_final": job.is_final,
        "error_count": job.errors.count(),
    }


def kinds() -> dict[str, str]:
    """{kind: description} of the job kinds the dashboard and the API may start."""
    from workers.jobs import launchable

    return launchable()


def launch(kind: str, params: dict | None, mode: str, user) -> Job:
    known = kinds()
    if kind not in known:
        raise JobControlError(f"unknown job kind {kind!r}; one of: {', '.join(known)}")
    if mode not in MODES:
        raise JobControlError(f"mode must be one of {', '.join(MODES)}")
    from workers.jobs import launch as engine_launch

    try:
        return engine_launch(kind, dict(params or {}), mode=mode, user=user)
    except (ValueError, LookupError, FileNotFoundError, TypeError) as exc:
        raise JobControlError(str(exc)) from exc


def control(job: Job, action: str, user=None) -> Job:
    from workers import jobs as engine

    if action == "pause":
        if job.is_final:
            raise JobControlError(f"job #{job.pk} is {job.state}; only a queued or running job can be paused")
        engine.pause_job(job)
    elif action == "resume":
        if job.state != Job.State.PAUSED:
            raise JobControlError(f"job #{job.pk} is {job.state}; only a paused job can be resumed")
        engine.resume_job(job)
    elif action == "cancel":
        if job.is_final:
            raise JobControlError(f"job #{job.pk} is already {job.state}")
        engine.cancel_job(job)
    elif action == "retry":
        if not job.errors.filter(retried_in__isnull=True).exists():
            raise JobControlError(f"job #{job.pk} has no failed items left to retry")
        try:
            return engine.retry_failed(job, user=user)
        except ValueError as exc:  # e.g. only errors without an artwork to redo
            raise JobControlError(str(exc)) from exc
    else:
        raise JobControlError(f"unknown action {action!r}: pause, resume, cancel or retry")
    job.refresh_from_db()
    return job
