"""The recovery watchdog that runs inside every worker: recover lost batches when the worker is
ready and every ``JOB_RECOVER_SECONDS`` after (see :func:`workers.jobs.recovery.recover`)."""
from __future__ import annotations

import logging
import os
import threading

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import connections

from .recovery import recover

log = logging.getLogger(__name__)
_watchdog: threading.Thread | None = None
_stop = threading.Event()


def _watch() -> None:
    interval = max(int(getattr(settings, "JOB_RECOVER_SECONDS", 60)), 1)
    while True:
        try:
            recover()
        except Exception:  # noqa: BLE001 - the next pass tries again
            log.exception("job recovery pass failed")
        finally:
            connections.close_all()
        if _stop.wait(interval):
            return


def start_watchdog() -> None:
    """Recover lost batches now and every JOB_RECOVER_SECONDS (called on worker_ready)."""
    global _watchdog
    if _watchdog is None or not _watchdog.is_alive():
        _stop.clear()
        _watchdog = threading.Thread(target=_watch, name="job-recovery", daemon=True)
        _watchdog.start()


def stop_watchdog() -> None:
    _stop.set()


@worker_ready.connect
def _recover_on_start(sender=None, **kwargs):
    """Re-send the batches that a dead worker held or a lost message left behind, then keep watching."""
    start_watchdog()
    ready_file = os.environ.get("MUSEUM_WORKER_READY_FILE")
    if ready_file:
        with open(ready_file, "w") as handle:
            handle.write(str(os.getpid()))


@worker_shutdown.connect
def _stop_watchdog(sender=None, **kwargs):
    stop_watchdog()
