"""The kernel's Celery tasks, the only Celery-facing code of the job machinery: one task = one
batch of any stage (``workers.process_batch``), and the broker round trip (``workers.ping``)."""
from __future__ import annotations

import logging

from celery import shared_task
from kombu.exceptions import OperationalError as BrokerError

from .batches import run_batch
from .contract import TRANSIENT_ERRORS

# Retried with exponential back-off: only failures of the database or broker connection. Bad
# input never reaches here (stages turn it into per-item errors; other exceptions fail the batch).
RETRY_ON = (*TRANSIENT_ERRORS, BrokerError, ConnectionError)
log = logging.getLogger(__name__)


@shared_task(
    name="workers.process_batch",
    bind=True,
    acks_late=True,
    autoretry_for=RETRY_ON,
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=8,
)
def process_batch(self, batch_id: int) -> str:
    """Lease JobBatch ``batch_id``, run its stage, record progress and errors."""
    worker = f"{self.request.hostname or 'local'}:{self.request.id or '-'}"
    try:
        return run_batch(int(batch_id), worker=worker)
    except RETRY_ON as exc:
        if self.request.retries >= self.max_retries:
            note_given_up(int(batch_id), exc, self.max_retries)
        raise


def note_given_up(batch_id: int, exc: BaseException, retries: int) -> None:
    """Say on the job that a batch stopped retrying (it stays pending: recovery or ``jobs resume`` re-sends it)."""
    from archive.models import Job, JobBatch

    try:
        batch = JobBatch.objects.only("job_id", "seq").get(pk=batch_id)
        Job.objects.filter(pk=batch.job_id).update(
            message=f"batch {batch.seq}: gave up after {retries} retries ({exc.__class__.__name__}: {exc}); "
            f"it is pending and is re-sent after JOB_STALE_SECONDS or with: manage.py jobs resume {batch.job_id}"
        )
    except Exception:  # noqa: BLE001 - the database is still away: the worker log has the error
        log.warning("batch %s gave up after %d retries: %s", batch_id, retries, exc)


@shared_task(name="workers.ping", acks_late=False)
def ping(reply_queue: str, token: str) -> None:
    """Answer through the broker itself (works on every transport, no result backend needed)."""
    import socket

    from .app import app

    with app.connection_for_write() as conn:
        queue = conn.SimpleQueue(reply_queue)
        queue.put({"token": token, "host": socket.gethostname()})
        queue.close()
