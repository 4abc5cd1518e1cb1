"""Is a worker consuming a queue? A round trip through the broker (used by ``manage.py worker_check``
and the broker tests)."""
from __future__ import annotations

import time
import uuid


def round_trip(queue: str = "embed", timeout: float = 30.0, broker_url: str | None = None) -> float:
    """Send a ping task to ``queue`` and wait for the worker's reply. Returns seconds taken;
    raises TimeoutError when no worker answers."""
    from .app import app
    from .tasks import ping

    token = uuid.uuid4().hex
    reply_queue = f"museum.reply.{token[:12]}"
    start = time.monotonic()
    with app.connection_for_write(broker_url) as conn:
        replies = conn.SimpleQueue(reply_queue)
        try:
            with conn.Producer() as producer:
                ping.apply_async(args=(reply_queue, token), queue=queue, producer=producer)
            deadline = start + timeout
            while True:
                try:
                    message = replies.get(timeout=max(min(deadline - time.monotonic(), 2.0), 0.1))
                except replies.Empty:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"no worker answered on queue {queue!r} within {timeout:.0f}s") from None
                    continue
                message.ack()
                if message.payload.get("token") == token:
                    return time.monotonic() - start
        finally:
            replies.close()  # cancel the consumer before the queue goes (AMQP cancels it otherwise)
            try:
                replies.queue(conn.channel()).delete()
            except Exception:  # noqa: BLE001 - transports without queue deletion
                pass
