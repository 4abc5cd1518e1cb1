"""The contract between the job kernel and the work of each stage.

A stage module (``workers.embedding``, ``workers.labeling.stage``, ``workers.faces``,
``workers.ingest.stage``, ``workers.layouts.stage``, ...) defines a module-level
``STAGE = Stage(...)`` and is named once in :data:`workers.jobs.registry.STAGE_MODULES`. The
kernel selects the items, splits them into batches, leases batches to workers and records
progress; the stage's ``process`` function does the work for one batch and says which items
succeeded and which failed (with a readable reason). ``process`` must be idempotent on (artwork,
model): running it twice on the same ids never duplicates rows. One bad item is an
:class:`ItemError`, never an exception; an exception from ``process`` fails the whole batch
(database/broker connection errors are retried with back-off instead), and :class:`StopJob` fails
the whole job. ``process`` gets the job's params plus ``job_id``. It runs in a worker process:
load models lazily, once per process.

A stage whose items are not existing artworks (the import, whose items are records read from a
source; a layout, one batch that fits a map) sets ``run_batch`` instead of the artwork hooks: it
gets the Job and the leased JobBatch and returns the same :class:`BatchResult`. Its jobs are
created by its ``start`` function (which writes the job's first batch rows), and
:func:`workers.jobs.launch` hands requests for that kind to it.

What runs after a job (an index build, placing new works on the maps, switching the active model)
is not chained here: ``finish`` cleans up the stage's own output; the follow-ups between stages
are the table in :mod:`workers.pipeline`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import psycopg
from django.db import InterfaceError, OperationalError

from archive.storage import StoreUnavailable
from django.db.models import QuerySet


class JobCancelled(Exception):
    """Raised inside a running stage when an operator cancelled its job."""


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
    queue: str  # one of workers.jobs.registry.QUEUES
    # One line for operators: what a job of this kind does (the dashboard's launch form).
    description: str = ""
    # Whether operators start it from the dashboard/API (a curator's label scoring is started by
    # its own page, not from the launch form).
    launchable: bool = True
    batch_size: int = 0  # 0: JOB_BATCH_SIZE
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
    # For stages with ``run_batch``: create a job from a request's params (``launch(kind, params,
    # mode=..., user=...)`` calls it), write its first batch rows and send them. Returns the Job;
    # raises ValueError with a readable message for a request it refuses.
    start: Callable[..., Any] | None = None


# Django turns psycopg's errors into its own only where they pass through its cursor wrapper
# (execute, executemany, fetch*, connect, commit). COPY (``cursor.copy``) and the raw psycopg
# cursors of the vector readers raise psycopg's classes directly. OperationalError covers a lost
# connection, an admin shutdown, lock and statement timeouts, deadlocks and serialisation failures.
# A store that cannot be reached (archive.storage.StoreUnavailable) is transient too: the batch
# is given back and retried, its items are not failed.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError, StoreUnavailable,
)
