"""Celery tasks: thin wrappers that call :mod:`workers.jobs`. One task = one batch of artworks."""
from __future__ import annotations

from celery import shared_task
from kombu.exceptions import OperationalError as BrokerError

from workers.jobs import TRANSIENT_ERRORS, run_batch

# Retried with exponential back-off: only failures of the database or broker connection. Bad
# input never reaches here (stages turn it into per-item errors; other exceptions fail the batch).
RETRY_ON = (*TRANSIENT_ERRORS, BrokerError, ConnectionError)


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
    return run_batch(int(batch_id), worker=worker)


@shared_task(name="workers.ping", acks_late=False)
def ping(reply_queue: str, token: str) -> None:
    """Answer through the broker itself (works on every transport, no result backend needed)."""
    import socket

    from workers.celery import app

    with app.connection_for_write() as conn:
        queue = conn.SimpleQueue(reply_queue)
        queue.put({"token": token, "host": socket.gethostname()})
        queue.close()
