"""Job control for the dashboard and the API: describe, launch, pause/resume/cancel, retry failed.

Thin calls into the engines: an import is opened and launched by ``archive.importers`` (planned
and imported in batches on the ingest queue), a layout is requested from ``workers.layouts.build``
and sent to the maps queue, the other stages go through ``workers.jobs.launch``."""
from __future__ import annotations

from django.db import transaction

from archive.models import Job

LAUNCHABLE = {
    "import": "Import a source (folder, metadata file or IIIF manifest)",
    "embed": "Compute image embeddings",
    "label": "Label artworks from the vocabulary",
    "faces": "Find faces",
    "layout": "Build the map (UMAP/t-SNE)",
}
MODES = ("missing", "all", "reset")
# What an import job may be given besides its source (see archive.importers.open_source).
IMPORT_OPTIONS = {"mapping", "kind", "with_images", "canvases", "sidecar", "source_name", "encoding", "limit"}
LAYOUT_OPTIONS = {"method", "subset", "seed", "params", "rebuild"}


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
    params = dict(params or {})
    if kind == "import":
        return _launch_import(params, user)
    if kind == "layout":
        return _launch_layout(params, mode, user)
    from workers.jobs import launch as engine_launch

    try:
        return engine_launch(kind, params, mode=mode, user=user)
    except (ValueError, LookupError, FileNotFoundError) as exc:
        raise JobControlError(str(exc)) from exc


def _launch_import(params: dict, user) -> Job:
    from archive.importers import SourceError, launch as import_launch, open_source

    location = str(params.pop("source", "") or "").strip()
    if not location:
        raise JobControlError("an import needs a source: a folder, metadata file or IIIF manifest URL")
    unknown = set(params) - IMPORT_OPTIONS
    if unknown:
        raise JobControlError(f"unknown import option(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(IMPORT_OPTIONS))}")
    limit = params.pop("limit", None)
    try:
        limit = int(limit) if limit not in (None, "") else None
        source = open_source(location, operator=False, **{k: v for k, v in params.items() if v not in (None, "")})
    except (SourceError, ValueError, TypeError) as exc:
        raise JobControlError(str(exc)) from exc
    return import_launch(source, limit=limit, user=user)


def _launch_layout(params: dict, mode: str, user) -> Job:
    from workers.layouts import build

    unknown = set(params) - LAYOUT_OPTIONS
    if unknown:
        raise JobControlError(f"unknown layout option(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(LAYOUT_OPTIONS))}")
    try:
        subset = params.get("subset")
        subset = subset if isinstance(subset, dict) else build.parse_subset(subset)
        job = build.request(
            params.get("method") or "umap", subset, seed=int(params.get("seed") or 0), params=params.get("params") or {},
            rebuild=bool(params.get("rebuild")) or mode in ("all", "reset"), user=user,
        )
    except (ValueError, TypeError) as exc:
        raise JobControlError(str(exc)) from exc
    _send_layout(job)
    return job


def _send_layout(job: Job) -> None:
    from workers.tasks_maps import enqueue

    transaction.on_commit(lambda: enqueue(job))


def _retry_layout(job: Job, user) -> Job:
    """A failed layout job is retried by requesting the same layout again."""
    from workers.layouts import build

    errors = job.errors.filter(retried_in__isnull=True)
    if job.state != Job.State.FAILED or not errors.exists():
        raise JobControlError(f"job #{job.pk} has no failure left to retry")
    p = job.params
    new = build.request(p["method"], p.get("subset") or {}, seed=p.get("seed", 0), params=p.get("params") or {},
                        rebuild=bool(p.get("rebuild")), user=user)
    errors.update(retried_in=new)
    _send_layout(new)
    return new


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
        if job.kind == Job.Kind.LAYOUT:
            return _retry_layout(job, user)
        try:
            return engine.retry_failed(job, user=user)
        except ValueError as exc:  # e.g. only errors without an artwork to redo
            raise JobControlError(str(exc)) from exc
    else:
        raise JobControlError(f"unknown action {action!r}: pause, resume, cancel or retry")
    job.refresh_from_db()
    return job
