"""Retry the failed items of a finished job as a new job."""
from __future__ import annotations

from archive.models import Job, JobError

from . import registry
from .fanout import launch


def retry_failed(job: Job, user=None) -> Job:
    """A new job of the same kind and params over the failed items of ``job`` that have not been
    retried yet; their JobError rows point at it (``retried_in``). A stage with its own ``retry``
    (the import: failed records are read again from their error payloads) decides how. Raises
    ValueError when there is nothing to retry."""
    stage = registry.get_stage(job.kind)
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
