"""The one Celery app. One queue per kind of work (:data:`workers.jobs.registry.QUEUES`).

Tasks are thin (see :mod:`workers.jobs.tasks`): they lease a :class:`archive.models.JobBatch`,
call the stage's plain function and record the result. The job's own record of what is done
(batch rows with leases and a heartbeat) is what recovery relies on, never the broker
redelivering a lost message: every worker re-sends lost batches when it starts and every
``JOB_RECOVER_SECONDS`` while it runs (:mod:`workers.jobs.watchdog`).
"""
from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from . import broker
from .registry import QUEUES

broker.install()  # the default server-less broker survives a database restart
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
# The kernel's own tasks and the recovery watchdog; stage packages may add tasks modules of their own.
app.conf.include = ["workers.jobs.tasks", "workers.jobs.watchdog"]
app.autodiscover_tasks(["workers.ingest"])
