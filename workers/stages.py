"""The contract between the job machinery and the work of each stage.

A stage module (``workers.embedding``, ``workers.labeling``, ``workers.faces``, ...) defines a
module-level ``STAGE = Stage(...)``. The job machinery (``workers.jobs`` / ``workers.tasks``)
selects the items, splits them into batches, leases batches to workers and records progress; the
stage's ``process`` function does the work for one batch and says which items succeeded and
which failed (with a readable reason). ``process`` must be idempotent on (artwork, model):
running it twice on the same ids never duplicates rows. One bad item is an :class:`ItemError`,
never an exception; an exception from ``process`` fails the whole batch (database/broker
connection errors are retried with back-off instead), and :class:`StopJob` fails the whole job.
``process`` gets the job's params plus ``job_id``. It runs in a worker process: load models
lazily, once per process.

A stage whose items are not existing artworks (the import, whose items are records read from a
source) sets ``run_batch`` instead of the artwork hooks: it gets the Job and the leased JobBatch
and returns the same :class:`BatchResult`; its jobs are started by its own launch function
(``archive.importers.launch``), not by :func:`workers.jobs.launch`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from django.db.models import QuerySet


class StopJob(Exception):
    """Raised by ``process`` when no batch of the job can succeed, whatever its items (e.g. the
    model's weights are not on this worker): the job ends FAILED with this message, and its other
    batches are not attempted. Say what to do in the message."""


@dataclass(frozen=True)
class ItemError:
    artwork_id: int | None
    reason: str
    detail: str = ""
    # For items that are not (yet) artworks: how an operator finds the item (a path, 'works.csv
    # row 12') and what a retry needs (default: {"artwork_id": ...}).
    item: str = ""
    payload: dict | None = None


@dataclass
class BatchResult:
    done: list[int] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)
    summary: dict = field(default_factory=dict)  # stage-specific counts, kept on the done JobBatch


@dataclass(frozen=True)
class Stage:
    kind: str  # a Job.Kind value
    queue: str  # one of workers.celery.QUEUES
    batch_size: int
    # Artwork ids this stage applies to, for the job's params (e.g. images ingested, not duplicates).
    candidates: Callable[[dict], QuerySet] | None = None
    # Of those, the ids whose output already exists for these params (mode "missing" skips them).
    completed: Callable[[dict], QuerySet] | None = None
    # Delete this stage's outputs for these params (mode "reset").
    reset: Callable[[dict], None] | None = None
    # Do the work for one batch of artwork ids.
    process: Callable[[list[int], dict], BatchResult] | None = None
    # Instead of ``process``: do the work for one leased batch whose items are not artwork ids.
    # ``options`` come from the caller of workers.jobs.run_batch (e.g. an in-process run's
    # progress callbacks); a Celery task passes none.
    run_batch: Callable[[Any, Any, dict], BatchResult] | None = None
    # Resolve/validate params before fan-out (e.g. register the model, fail fast on missing weights).
    # Raise with an actionable message to refuse the job (it is marked FAILED with that message).
    prepare: Callable[[dict], dict] = lambda params: params
    # Called once after the job's last batch is recorded (the Job is passed, state DONE), e.g. to
    # build an index after a bulk load or activate a model. Optional.
    finish: Callable[["Job"], None] | None = None  # noqa: F821
    # Retry the failed items of a finished job as a new job (default: a job of the same kind over
    # the failed artworks). Raises ValueError when there is nothing to retry.
    retry: Callable[..., Any] | None = None


STAGE_MODULES = {
    "import": "archive.importers.stage",
    "embed": "workers.embedding",
    "label": "workers.labeling",
    "score_label": "workers.labeling.curator_job",
    "faces": "workers.faces",
}


def get_stage(kind: str) -> Stage:
    try:
        module = STAGE_MODULES[kind]
    except KeyError:
        raise ValueError(f"unknown stage {kind!r}; known: {', '.join(sorted(STAGE_MODULES))}") from None
    return importlib.import_module(module).STAGE
