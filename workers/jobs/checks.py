"""System check ``workers.E001``: every job kind has exactly one stage on a known queue.

Registered by :class:`workers.apps.WorkersConfig`, so ``manage.py check``, ``runserver``, the
workers and the test run all refuse to start on a broken registry.
"""
from __future__ import annotations

from django.core.checks import Error

from . import registry


def check_registry(app_configs=None, **kwargs) -> list[Error]:
    return [Error(problem, hint="See docs/architecture.md, 'Adding a stage'.", id="workers.E001") for problem in registry.problems()]
