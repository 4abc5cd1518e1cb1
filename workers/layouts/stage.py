"""The layout job as a stage (queue "maps"): one batch that builds or updates one map.

Like every other kind it is leased, kept alive by a heartbeat and recovered from its batch row
when its worker dies (the map is then built again from the start: a build or placement run is
idempotent, and the previous export keeps being served until the new one is complete). What is
done is in :mod:`workers.layouts.build`.
"""
from __future__ import annotations

from archive.models import Job, JobBatch, Layout
from workers import jobs
from workers.jobs import BatchResult, ItemError

from . import build

OPTIONS = {"method", "subset", "seed", "params", "rebuild"}


def start(params: dict, *, mode: str = "missing", user=None) -> Job:
    """A layout job from a request (dashboard, API): ``method``, ``subset`` (dict or text),
    ``seed``, ``params``, ``rebuild`` (also implied by mode "all"/"reset"). Raises ValueError."""
    unknown = set(params) - OPTIONS - {"mode"}
    if unknown:
        raise ValueError(f"unknown layout option(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(OPTIONS))}")
    subset = params.get("subset")
    subset = subset if isinstance(subset, dict) else build.parse_subset(subset)
    try:
        seed = int(params.get("seed") or 0)
    except (TypeError, ValueError):
        raise ValueError(f"seed must be a whole number, got {params.get('seed')!r}") from None
    job = build.request(
        params.get("method") or "umap", subset, seed=seed, params=params.get("params") or {},
        rebuild=bool(params.get("rebuild")) or mode in ("all", "reset"), user=user,
    )
    build.send(job)
    return job


def run_batch(job: Job, batch: JobBatch, options: dict) -> BatchResult:
    try:
        layout, message = build.run(job, on_step=options.get("on_step"))
    except jobs.TRANSIENT_ERRORS:
        raise
    except jobs.JobCancelled:
        jobs.finish_job(job, state=Job.State.CANCELLED, message="cancelled")
        return BatchResult(summary=_summary(job))
    except Exception as exc:  # noqa: BLE001 - the job records why; the previous export (if any) stays served
        reason, detail = jobs.describe_exception(exc)
        return BatchResult(
            errors=[ItemError(None, reason, detail, item=f"layout {job.params.get('slug')}", payload=job.params)],
            summary={**_summary(job), "failed": reason},
        )
    return BatchResult(summary={"layout_id": layout.pk if layout else None, "message": message})


def _summary(job: Job) -> dict:
    layout_id = Layout.objects.filter(slug=job.params.get("slug")).values_list("pk", flat=True).first()
    return {"layout_id": layout_id}


def finish(job: Job) -> None:
    """The job's message is what its batch did; a map that could not be made fails the job."""
    summary = JobBatch.objects.filter(job=job, seq=0).values_list("summary", flat=True).first() or {}
    if summary.get("failed"):
        Job.objects.filter(pk=job.pk).update(state=Job.State.FAILED, message=summary["failed"])
    elif summary.get("message"):
        Job.objects.filter(pk=job.pk).update(message=summary["message"])


def retry(job: Job, user=None) -> Job:
    """A failed layout job is retried by requesting the same layout again."""
    errors = job.errors.filter(retried_in__isnull=True)
    if job.state != Job.State.FAILED or not errors.exists():
        raise ValueError(f"job #{job.pk} has no failure left to retry")
    p = job.params
    new = build.request(p["method"], p.get("subset") or {}, seed=p.get("seed", 0), params=p.get("params") or {},
                        rebuild=bool(p.get("rebuild")), user=user)
    errors.update(retried_in=new)
    build.send(new)
    return new


STAGE = jobs.Stage(
    kind="layout",
    queue="maps",
    description="Build the map (UMAP/t-SNE)",
    batch_size=1,
    run_batch=run_batch,
    start=start,
    finish=finish,
    retry=retry,
)
