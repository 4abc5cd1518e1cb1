"""Getting a model's label texts ready, inside the label job (on a worker of the label queue).

Launching a label job only resolves the model, so the dashboard, the API and the CLI return at
once. The heavy part, embedding the prompt ensembles of every published label (~41k sentences for
the full vocabulary: over an hour on a CPU), runs in the job: the first batch to start does it
while the others wait for it (one PostgreSQL advisory lock per model), and it reports its
progress in the job's message. The steps:

1. load the vocabulary when the Label table is empty;
2. embed the published labels that have no current text embedding for the model (cached per
   (label, model) and committed every few hundred sentences, so a re-run or a restarted worker
   reuses what is done);
3. refresh the per-label score statistics (calibration and derived thresholds).

Within a job this happens once (``Job.params["texts_ready"]``); direct calls without a job do it
every time (step 2 is then a cheap check).
"""
from __future__ import annotations

import time

from django.db import InterfaceError, OperationalError, connection

from archive.models import Job, Label
from workers.ml.clip import WeightsMissing
from workers.jobs import StopJob

from .stats import compute_label_stats
from .text import ensure_label_embeddings

TEXTS_LOCK = 0x4C42  # advisory lock class: (TEXTS_LOCK, model id)
POLL_SECONDS = 2.0


def _ready(job_id: int | None) -> bool:
    return job_id is not None and bool(Job.objects.filter(pk=job_id, params__texts_ready=True).exists())


def _lock(model_id: int) -> None:
    """Wait for the model's label-text lock (polling, so a waiting worker never holds a query open)."""
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [TEXTS_LOCK, model_id])
            if cursor.fetchone()[0]:
                return
        time.sleep(POLL_SECONDS)


def _unlock(model_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [TEXTS_LOCK, model_id])


def _note(job_id: int | None, text: str) -> None:
    if job_id is not None:
        Job.objects.filter(pk=job_id).update(message=text)


def ensure_texts(model, job_id: int | None = None) -> None:
    """Make the label texts of ``model`` ready (see the module docstring). Missing weights on this
    worker stop the job with the how-to."""
    if _ready(job_id):
        return
    _lock(model.pk)
    try:
        if _ready(job_id):
            return  # another batch of this job did it while we waited
        if not Label.objects.exists():
            from .vocabulary import load_iconclass, load_vocabulary

            _note(job_id, "loading the label vocabulary")
            load_vocabulary()
            load_iconclass()

        def progress(done: int, total: int) -> None:
            _note(job_id, f"embedding label prompts for model {model.key}: {done:,}/{total:,} labels")

        try:
            embedded = ensure_label_embeddings(model, on_progress=progress)
        except WeightsMissing as exc:
            raise StopJob(str(exc)) from exc
        _note(job_id, f"computing label score statistics for model {model.key}")
        compute_label_stats(model)
        if job_id is not None:
            job = Job.objects.get(pk=job_id)
            job.params["texts_ready"] = True
            Job.objects.filter(pk=job_id).update(
                params=job.params, message=f"label texts ready ({embedded:,} labels embedded for this job)"
            )
    finally:
        try:
            _unlock(model.pk)
        except (OperationalError, InterfaceError):
            pass  # the connection is gone, and the session's lock with it
