"""Entry point for ``celery -A workers.celery``: the environment a worker needs, Django set up,
then the kernel's Celery app (:mod:`workers.jobs.app`)."""
from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "museum.settings")
# Before torch loads: idle OpenMP threads must not spin on the cores the decode threads use.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import django  # noqa: E402

django.setup()

from workers.jobs.app import app  # noqa: E402

__all__ = ["app"]
