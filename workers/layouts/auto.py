"""Keep the maps current: when an embed job finishes, its newly embedded artworks are placed on
every ready map made from that model; when a face scan finishes, its new faces are placed on the
ready face maps of that face model (one layout job per map, on the "maps" queue).

Steps of the pipeline (:mod:`workers.pipeline`) after embed and face jobs. Only maps whose placement would not turn
into a rebuild are updated: artwork maps of the job's model when it is the active one, face maps
whose region names come from the active model (a map that would be rebuilt is an operator's
decision: ``build_map --rebuild``). A map that already has a placement job waiting is left to it.
"""
from __future__ import annotations

import logging

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
    maps = [m for m in _ready_maps().filter(model_id=model_id) if not m.subset.get("faces")]
    return _queue(maps, embed_job)


def place_after_faces(face_job: Job) -> list[Job]:
    """Queue a placement job for each ready face map of ``face_job``'s face model (and whose
    region names come from the active embedding model); returns the jobs made."""
    face_model = (face_job.params or {}).get("model")
    if not face_model or not face_job.done:
        return []
    active = EmbeddingModel.objects.filter(state=EmbeddingModel.State.ACTIVE).values_list("pk", flat=True).first()
    maps = [
        m for m in _ready_maps().filter(subset__faces=True)
        if (m.params or {}).get("face_model", face_model) == face_model and build.labels_model_id(m) == active
    ]
    return _queue(maps, face_job)


def _ready_maps():
    return Layout.objects.filter(state=Layout.State.READY, export_version__gt=0).order_by("pk")


def _queue(maps: list[Layout], after: Job) -> list[Job]:
    waiting = set(
        Job.objects.filter(kind=Job.Kind.LAYOUT, state=Job.State.QUEUED).values_list("params__slug", flat=True)
    )
    made = []
    for layout in maps:
        if layout.slug in waiting:
            continue
        job = build.request(layout.method, layout.subset)
        build.send(job)  # a broker that is down leaves the batch pending: recovery sends it
        made.append(job)
    if made:
        log.info("%s job %s: placement queued on %d map(s): %s", after.kind, after.pk, len(made),
                 ", ".join(j.params["slug"] for j in made))
    return made
