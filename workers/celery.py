"""The one Celery app. One queue per stage so each can get its own workers and concurrency.

Tasks are thin (see :mod:`workers.tasks`): they lease a :class:`archive.models.JobBatch`, call the
stage's plain ``process`` function and record the result. The job's own record of what is done
(batch rows with leases and a heartbeat) is what recovery relies on, never the broker
redelivering a lost message: every worker re-sends lost batches when it starts (``worker_ready``)
and every ``JOB_RECOVER_SECONDS`` while it runs.
"""
from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_ready, worker_shutdown
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "museum.settings")
# Before torch loads: idle OpenMP threads must not spin on the cores the decode threads use.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

QUEUES = ("ingest", "embed", "label", "faces", "maps")

app = Celery("museum")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each queue gets its own direct exchange and routing key: a Queue without them would inherit the
# default exchange and routing key, and a message for one stage would be copied to every queue.
app.conf.task_queues = [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES]
app.conf.task_default_queue = "ingest"
app.conf.task_default_exchange = "ingest"
app.conf.task_default_routing_key = "ingest"
app.conf.task_ignore_result = True
app.conf.broker_connection_retry_on_startup = True
app.autodiscover_tasks()
app.autodiscover_tasks(["workers"], related_name="tasks_maps")


@worker_ready.connect
def _recover_on_start(sender=None, **kwargs):
    """Re-send the batches that a dead worker held or a lost message left behind, then keep watching."""
    from workers.process import start_watchdog

    start_watchdog()
    ready_file = os.environ.get("MUSEUM_WORKER_READY_FILE")
    if ready_file:
        with open(ready_file, "w") as handle:
            handle.write(str(os.getpid()))


@worker_shutdown.connect
def _stop_watchdog(sender=None, **kwargs):
    from workers.process import stop_watchdog

    stop_watchdog()
