"""The one registry of job kinds: each kind is declared once, here, by naming its stage module.

A stage module defines ``STAGE = Stage(...)`` (see :mod:`workers.jobs.contract`). Adding a stage
is that module plus one line in :data:`STAGE_MODULES` (and its ``Job.Kind`` value). The kernel
finds stages only through this list (modules named as strings, imported when first asked for), so
it never imports a stage itself. :func:`problems` is what the system check (``workers.E001``)
reports at start-up.
"""
from __future__ import annotations

import importlib
from functools import lru_cache

from .contract import Stage

# One Celery queue per kind of work, so each can get its own workers and concurrency.
QUEUES = ("ingest", "embed", "label", "faces", "maps", "ocr")

# Every stage, once. Order is the order the dashboard lists them in.
STAGE_MODULES = [
    "workers.ingest.stage",
    "workers.embedding",
    "workers.labeling.stage",
    "workers.labeling.curator_job",
    "workers.faces",
    "workers.layouts.stage",
    "workers.classifiers.train_stage",
    "workers.classifiers.apply_stage",
    "workers.palettes",
    "workers.ocr.stage",
    "workers.neighbours",
]

# The follow-up rules between stages (what a finished job triggers): one table, see that module.
PIPELINE = "workers.pipeline"


@lru_cache(maxsize=None)
def _load(module: str) -> Stage:
    stage = getattr(importlib.import_module(module), "STAGE", None)
    if not isinstance(stage, Stage):
        raise ImportError(f"{module} does not define STAGE = Stage(...)")
    return stage


def stages() -> dict[str, Stage]:
    """Every registered stage by kind (the first module that claims a kind wins; see problems())."""
    found: dict[str, Stage] = {}
    for module in STAGE_MODULES:
        stage = _load(module)
        found.setdefault(stage.kind, stage)
    return found


def kinds() -> list[str]:
    return list(stages())


def get_stage(kind: str) -> Stage:
    known = stages()
    try:
        return known[kind]
    except KeyError:
        raise ValueError(f"unknown stage {kind!r}; known: {', '.join(sorted(known))}") from None


def launchable() -> dict[str, str]:
    """{kind: description} of the stages an operator starts from the dashboard or the API."""
    return {kind: stage.description or kind for kind, stage in stages().items() if stage.launchable}


def queue_for(kind: str) -> str:
    return get_stage(kind).queue


def follow_up(job) -> list[str]:
    """Run the pipeline's follow-ups of a finished job (see :data:`PIPELINE`); returns what they said."""
    return importlib.import_module(PIPELINE).follow_up(job)


def problems(modules: list[str] | None = None, kinds_declared: list[str] | None = None) -> list[str]:
    """What is wrong with the registry: a Job.Kind without a stage, a stage naming an unknown
    queue, two stages claiming one kind, a module that does not load. Empty when all is well."""
    from archive.models import Job

    modules = STAGE_MODULES if modules is None else modules
    declared = [value for value, _ in Job.Kind.choices] if kinds_declared is None else kinds_declared
    found: dict[str, str] = {}
    out: list[str] = []
    for module in modules:
        try:
            stage = _load(module)
        except Exception as exc:  # noqa: BLE001 - reported, not raised: the check says what is wrong
            out.append(f"stage module {module} cannot be loaded: {exc.__class__.__name__}: {exc}")
            continue
        if stage.kind in found:
            out.append(f"job kind {stage.kind!r} is claimed by two stages: {found[stage.kind]} and {module}")
            continue
        found[stage.kind] = module
        if stage.queue not in QUEUES:
            out.append(f"stage {module} names unknown queue {stage.queue!r}; queues: {', '.join(QUEUES)}")
        if stage.kind not in declared:
            out.append(f"stage {module} claims job kind {stage.kind!r}, which Job.Kind does not declare")
        if stage.process is None and stage.run_batch is None:
            out.append(f"stage {module} has neither process nor run_batch")
    for kind in declared:
        if kind not in found:
            out.append(f"job kind {kind!r} has no stage: add its module to workers.jobs.registry.STAGE_MODULES")
    return out
