"""The one Celery app. One queue per stage so each can get its own workers and concurrency."""
from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "museum.settings")

QUEUES = ("ingest", "embed", "label", "faces", "maps")

app = Celery("museum")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in QUEUES]
app.conf.task_default_queue = "ingest"
app.conf.task_ignore_result = True
app.conf.broker_connection_retry_on_startup = True
app.autodiscover_tasks()
