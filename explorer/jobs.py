"""Job control for the dashboard and the API: describe, launch, pause/resume/cancel, retry failed.
Thin calls into workers.jobs (the job engineer's launch/retry_failed when installed)."""
from __future__ import annotations

from archive.models import Job

LAUNCHABLE = {
    "import": "Import a source (folder, metadata file or IIIF manifest)",
    "embed": "Compute image embeddings",
    "label": "Label artworks from the vocabulary",
    "faces": "Find faces",
    "layout": "Build the map (UMAP/t-SNE)",
}
MODES = ("missing", "all", "reset")


class JobControlError(ValueError):
    """A job action that cannot be done (the message says why)."""


def describe(job: Job) -> dict:
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
        "eta_seconds": round(job.eta_seconds) if job.eta_seconds is not None else None,
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


def launch(kind: str, params: dict | None, mode: str, user) -> Job:
    if kind not in LAUNCHABLE:
        raise JobControlError(f"unknown job kind {kind!r}; one of: {', '.join(LAUNCHABLE)}")
    if mode not in MODES:
        raise JobControlError(f"mode must be one of {', '.join(MODES)}")
    if kind == "import" and not (params or {}).get("source"):
        raise JobControlError("an import needs a source: a folder, metadata file or IIIF manifest URL")
    try:
        from workers.jobs import launch as engine_launch
    except ImportError:
        raise JobControlError("starting jobs from the web is not available in this installation yet (workers.jobs.launch is missing); use ./run manage") from None
    try:
        return engine_launch(kind, params or {}, mode=mode, user=user)
    except (ValueError, LookupError, FileNotFoundError) as exc:
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
        retry = getattr(engine, "retry_failed", None)
        if retry is None:
            raise JobControlError("retrying from the web is not available yet (workers.jobs.retry_failed is missing)")
        return retry(job, user=user)
    else:
        raise JobControlError(f"unknown action {action!r}: pause, resume, cancel or retry")
    job.refresh_from_db()
    return job
