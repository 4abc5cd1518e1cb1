"""Sending batches to the broker: one task per batch, after the current transaction commits."""
from __future__ import annotations

import logging
from typing import Iterable

from django.db import transaction
from django.utils import timezone

from archive.models import Job, JobBatch

from . import registry

log = logging.getLogger(__name__)


def enqueue_batches(job: Job, batch_ids: Iterable[int]) -> int:
    """Send one task per batch to the stage's queue (after the current transaction commits).

    A broker that cannot be reached is not fatal: the batches stay pending and unsent, and the
    next recovery pass of any worker (or ``manage.py jobs resume``) sends them."""
    batch_ids = list(batch_ids)
    if not batch_ids:
        return 0
    queue = registry.queue_for(job.kind)

    def send():
        from .app import app
        from .tasks import process_batch

        if app.conf.task_always_eager:
            for batch_id in batch_ids:
                mark_sent([batch_id])
                process_batch.apply(args=(batch_id,))
            return
        try:
            with app.connection_for_write() as conn:
                with conn.Producer() as producer:
                    for batch_id in batch_ids:
                        process_batch.apply_async(args=(batch_id,), queue=queue, producer=producer)
            mark_sent(batch_ids)
        except Exception as exc:  # broker down: keep the batches pending, say how to re-send
            log.warning("job %s: could not send %d batches to %s: %s", job.pk, len(batch_ids), queue, exc)
            Job.objects.filter(pk=job.pk).update(
                message=f"Broker unavailable ({exc.__class__.__name__}: {exc}); the batches are kept and are sent "
                f"when a worker starts or with: manage.py jobs resume {job.pk}"
            )

    transaction.on_commit(send)
    return len(batch_ids)


def mark_sent(batch_ids) -> None:
    """Record that these batches' tasks reached the broker (a database that is away only means
    recovery sends them once more, which is harmless: a batch runs once)."""
    try:
        JobBatch.objects.filter(pk__in=list(batch_ids)).update(sent_at=timezone.now())
    except Exception:  # noqa: BLE001 - see above
        log.warning("could not record %d batches as sent", len(list(batch_ids)), exc_info=True)
