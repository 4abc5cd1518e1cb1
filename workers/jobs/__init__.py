"""The job kernel: every stage's runs are :class:`archive.models.Job` rows driven from here.

Modules (each one concern; none imports a stage):

- :mod:`.contract` - what a stage provides (:class:`Stage`, :class:`BatchResult`, :class:`ItemError`,
  :class:`StopJob`) and the transient errors retried with back-off;
- :mod:`.registry` - the one list of stages (each job kind declared once), the queues, the pipeline;
- :mod:`.lifecycle` - create, count, record errors, pause, cancel, finish, describe a job;
- :mod:`.fanout` - :func:`launch`: select the items and write the batch rows;
- :mod:`.sending` - send batches to the broker after the transaction commits;
- :mod:`.batches` - lease, heartbeat, run and record one batch; finish the job and run its after-steps;
- :mod:`.recovery` - re-send lost batches from the batch rows alone; resume jobs;
- :mod:`.retry` - retry the failed items of a job as a new job;
- :mod:`.app`, :mod:`.tasks`, :mod:`.watchdog`, :mod:`.probe` - the Celery-facing part;
- :mod:`.checks` - the start-up check of the registry (``workers.E001``).

The names below are importable from ``workers.jobs`` directly; they load on first use, so that
importing the package (e.g. for :mod:`.contract`) does not import Django models early.
"""
from __future__ import annotations

import importlib

_WHERE = {
    "contract": (
        "Stage", "BatchResult", "ItemError", "StopJob", "JobCancelled", "TRANSIENT_ERRORS",
    ),
    "registry": ("QUEUES", "STAGE_MODULES", "get_stage", "stages", "kinds", "launchable", "queue_for"),
    "lifecycle": (
        "create_job", "start_job", "set_total", "record_progress", "record_error", "record_errors",
        "describe_exception", "current_state", "check_cancelled", "finish_job", "cancel_job", "pause_job",
        "append_message", "progress_line", "waiting", "eta_text",
    ),
    "fanout": ("MODES", "launch", "launch_missing_once", "select_ids", "write_batches", "_ids", "_difference", "_unique", "_chunks"),
    "sending": ("enqueue_batches",),
    "batches": (
        "worker_name", "lease_seconds", "lease_batch", "release_batch", "Heartbeat", "run_batch", "complete_batch",
        "maybe_finish", "run_finish_hook", "FINISH_LOCK",
    ),
    "recovery": ("recover", "resume_job"),
    "retry": ("retry_failed",),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}
__all__ = sorted(name for name in _MODULE_OF if not name.startswith("_"))


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'workers.jobs' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_MODULE_OF))
