"""The pipeline: what a finished job starts next. One table, read top to bottom.

    embed  ->  place the newly embedded works on the ready maps of that model
           ->  write the neighbour lists (stored kNN graph) of the works without one
               (NEIGHBOURS_AFTER_EMBED)
           ->  activate the model when asked (``--activate-when-complete``); when another model
               is active, first start a label job for it (its end activates it)
    label  ->  retrain the applied curator classifiers on its model (and start their apply jobs)
           ->  activate the model if an embed job asked for it and it is now complete
    faces  ->  place the new faces on the ready face maps of that face model
    import ->  compute the colour palettes of the new works (PALETTES_AFTER_IMPORT)
           ->  read the text in the new works' images (OCR_AFTER_IMPORT, off by default)

Each stage's own ``finish`` hook only completes its own output (e.g. the embed stage builds the
HNSW index its bulk load deferred); the kernel runs it first, then :func:`follow_up`, each step
in its own transaction. A step returns a line for the job's message, or None.
"""
from __future__ import annotations

import logging
from typing import Callable

from django.db import transaction

from archive.models import Job
from workers import neighbours, palettes, switch
from workers.classifiers import model_switch as classifier_switch
from workers.jobs import TRANSIENT_ERRORS, describe_exception
from workers.layouts import auto
from workers.ocr import stage as ocr

log = logging.getLogger(__name__)

Step = Callable[[Job], "str | None"]

FOLLOW_UPS: dict[str, tuple[Step, ...]] = {
    Job.Kind.EMBED: (auto.place_after_embed, neighbours.after_embed, switch.after_embed),
    Job.Kind.LABEL: (classifier_switch.retrain_after_label, switch.after_label),
    Job.Kind.FACES: (auto.place_after_faces,),
    Job.Kind.IMPORT: (palettes.after_import, ocr.after_import),
}


def follow_up(job: Job) -> list[str]:
    """Run the steps that follow a finished ``job``; returns the lines they add to its message.
    A step that fails is reported on the job (the others still run); a lost database connection
    propagates, so recovery runs the after-steps again."""
    lines = []
    for step in FOLLOW_UPS.get(job.kind, ()):
        try:
            with transaction.atomic():
                said = step(job)
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - the job's own work is done; say what did not follow
            log.exception("follow-up %s of job %s failed", step.__name__, job.pk)
            said = f"follow-up {step.__name__} failed: {describe_exception(exc)[0]}"
        if isinstance(said, str) and said:
            lines.append(said)
    return lines
