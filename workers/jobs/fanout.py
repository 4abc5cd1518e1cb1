"""Fan-out: select the artworks a job covers, write its batch rows and send them.

A batch stage is started with :func:`launch`: it selects the items (streamed, constant memory),
writes :class:`archive.models.JobBatch` rows (the job's own record of what is left) in one
transaction and sends one task per batch to the stage's queue when it commits. A stage whose
items are not existing artworks (the import, a layout) has its own ``start``; :func:`launch`
hands the request to it.
"""
from __future__ import annotations

import logging
from typing import Any, Iterable, Iterator

from django.conf import settings
from django.db import transaction
from django.db.models.query import FlatValuesListIterable
from django.utils import timezone

from archive.models import Job, JobBatch

from . import registry
from .batches import run_finish_hook
from .lifecycle import create_job, describe_exception, finish_job
from .sending import enqueue_batches

log = logging.getLogger(__name__)

MODES = ("missing", "all", "reset")


def _batch_size(stage) -> int:
    return int(stage.batch_size or getattr(settings, "JOB_BATCH_SIZE", 256))


def _ids(queryset) -> Iterator[int]:
    """Stream the ids of a queryset of artworks (or of an id values_list) in ascending order."""
    if getattr(queryset, "_iterable_class", None) is not FlatValuesListIterable:
        queryset = queryset.values_list("pk", flat=True)
    return queryset.order_by().order_by(*queryset.query.values_select[:1] or ["pk"]).iterator(chunk_size=20_000)


def _difference(left: Iterable[int], right: Iterable[int]) -> Iterator[int]:
    """Ids in ``left`` and not in ``right``; both ascending. Constant memory, one pass each."""
    right_iter = iter(right)
    current = next(right_iter, None)
    for value in left:
        while current is not None and current < value:
            current = next(right_iter, None)
        if current != value:
            yield value


def _unique(ids: Iterable[int]) -> Iterator[int]:
    previous = None
    for value in ids:
        if value != previous:
            yield value
            previous = value


def select_ids(stage, params: dict, mode: str) -> Iterator[int]:
    """The artwork ids a job over ``stage`` covers, ascending, each once."""
    candidates = _unique(_ids(stage.candidates(params)))
    if mode == "missing":
        return _difference(candidates, _ids(stage.completed(params)))
    return candidates


def write_batches(job: Job, ids: Iterable[int], batch_size: int) -> tuple[int, int]:
    """Write JobBatch rows for the ids (in bulk, a few thousand rows per INSERT). Returns (batches, items)."""
    pending: list[JobBatch] = []
    seq = items = 0
    for chunk in _chunks(ids, batch_size):
        pending.append(JobBatch(job=job, seq=seq, item_ids=chunk))
        seq += 1
        items += len(chunk)
        if len(pending) >= 500:
            JobBatch.objects.bulk_create(pending)
            pending = []
    if pending:
        JobBatch.objects.bulk_create(pending)
    return seq, items


def _chunks(ids: Iterable[int], size: int) -> Iterator[list[int]]:
    chunk: list[int] = []
    for value in ids:
        chunk.append(int(value))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def launch(
    kind: str,
    params: dict[str, Any] | None = None,
    mode: str = "missing",
    user=None,
    *,
    ids: Iterable[int] | None = None,
    batch_size: int | None = None,
    enqueue: bool = True,
) -> Job:
    """Start a batch stage over the artworks it applies to.

    ``mode``: ``missing`` (candidates without output for these params), ``all`` (every candidate,
    overwriting), ``reset`` (delete the stage's outputs for these params, then all). ``ids``
    restricts the job to those artworks (used by :func:`retry_failed`). ``enqueue=False`` writes the
    batches without sending tasks (run them with :func:`run_batch`, e.g. in tests). Returns the Job; when the
    stage cannot run (e.g. weights missing) the Job is FAILED with the stage's message.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    stage = registry.get_stage(kind)
    if stage.candidates is None:
        if stage.start is not None:
            return stage.start(dict(params or {}), mode=mode, user=user)
        raise ValueError(f"{kind} jobs do not run over existing artworks; start them with their own command ({kind})")
    params = dict(params or {})
    params["mode"] = mode
    job = create_job(kind, params, user=user)
    try:
        with transaction.atomic():
            params = dict(stage.prepare(dict(params)) or params)
    except Exception as exc:  # noqa: BLE001 - any refusal to start becomes the job's message
        message = str(exc) if not isinstance(exc, (KeyError, AttributeError, TypeError)) else describe_exception(exc)[0]
        log.warning("job %s (%s) cannot start: %s", job.pk, kind, message)
        return finish_job(job, state=Job.State.FAILED, message=message)
    params["mode"] = mode
    Job.objects.filter(pk=job.pk).update(params=params)
    job.params = params
    # One transaction: the batches appear all at once (or not at all), the id streams use plain
    # server-side cursors, and the tasks are sent when it commits.
    with transaction.atomic():
        if mode == "reset":
            stage.reset(params)
        if ids is not None:
            selected: Iterable[int] = sorted({int(i) for i in ids})
        else:
            selected = select_ids(stage, params, "all" if mode == "reset" else mode)
        batches, items = write_batches(job, selected, int(batch_size or _batch_size(stage)))
        Job.objects.filter(pk=job.pk).update(total=items, heartbeat_at=timezone.now())
        job.total = items
        if batches and enqueue:
            enqueue_batches(job, JobBatch.objects.filter(job=job).order_by("seq").values_list("pk", flat=True))
    if batches == 0:
        finish_job(job, message="Nothing to do: every item already has this stage's output.", hook=True)
        run_finish_hook(job)
        return job
    job.refresh_from_db()
    return job


def launch_missing_once(kind: str, what: str) -> str | None:
    """A follow-up step: launch ``kind`` over the items it has not done yet, unless a job of that
    kind is already running. Returns a line for the finished job's message, or None when there was
    nothing to do."""
    running = Job.objects.filter(kind=kind).exclude(state__in=Job.FINAL_STATES).first()
    if running is not None:
        return f"{what}: job {running.pk} is already running"
    started = launch(kind, {}, mode="missing")
    if not started.total:
        return None
    return f"{what} of {started.total} artworks: job {started.pk}"
