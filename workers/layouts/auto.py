"""Keep the maps current: when an embed job finishes, its newly embedded artworks are placed on
every ready map made from that model (one layout job per map, on the "maps" queue).

Called from the embed stage's finish hook. Only maps of the job's model that is also the active
one are updated (a map of another model would be rebuilt, not placed on, and that is an
operator's decision: ``build_map --rebuild``); face maps follow face detection, not embedding.
A map that already has a placement job waiting is left to it.
"""
from __future__ import annotations

import logging

from django.db import transaction

from archive.models import EmbeddingModel, Job, Layout

from . import build

log = logging.getLogger(__name__)


def place_after_embed(embed_job: Job) -> list[Job]:
    """Queue a placement job for each ready map of ``embed_job``'s model; returns the jobs made."""
    model_id = (embed_job.params or {}).get("model_id")
    if not model_id or not embed_job.done:
        return []
    if not EmbeddingModel.objects.filter(pk=model_id, state=EmbeddingModel.State.ACTIVE).exists():
        return []
    waiting = set(
        Job.objects.filter(kind=Job.Kind.LAYOUT, state=Job.State.QUEUED).values_list("params__slug", flat=True)
    )
    made = []
    for layout in Layout.objects.filter(model_id=model_id, state=Layout.State.READY, export_version__gt=0).order_by("pk"):
        if layout.slug in waiting or layout.subset.get("faces"):
            continue
        job = build.request(layout.method, layout.subset)
        made.append(job)
        transaction.on_commit(lambda job=job: _enqueue(job))
    if made:
        log.info("embed job %s: placement queued on %d map(s): %s", embed_job.pk, len(made),
                 ", ".join(j.params["slug"] for j in made))
    return made


def _enqueue(job: Job) -> None:
    from workers.tasks_maps import enqueue

    try:
        enqueue(job)
    except Exception as exc:  # noqa: BLE001 - the job row stays queued; say how to run it
        from workers import jobs

        reason, detail = jobs.describe_exception(exc)
        jobs.record_error(job, item=f"layout {job.params.get('slug')}", reason=f"could not queue the placement: {reason}",
                          detail=detail, payload=job.params)
        jobs.finish_job(job, state=Job.State.FAILED,
                        message=f"could not queue the placement ({reason}); run `build_map --method {job.params['method']} --wait`")
