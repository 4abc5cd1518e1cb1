"""Recovery: re-send what a dead worker held or a lost message left behind, from the batch rows
alone (never relying on the broker redelivering), and resume paused or stuck jobs."""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from archive.models import Job, JobBatch

from .batches import lease_seconds, maybe_finish, run_finish_hook
from .sending import enqueue_batches

log = logging.getLogger(__name__)


def resume_job(job: Job) -> int:
    """Un-pause the job (if paused) and re-send every batch that is not done and not held by a live
    worker. Also the way to restart a job whose worker died or whose messages were lost. Returns
    the number of batches sent. The pause is left out of the job's running time (its rate)."""
    now = timezone.now()
    with transaction.atomic():
        paused = Job.objects.select_for_update().filter(pk=job.pk, state=Job.State.PAUSED).first()
        if paused is not None:
            away = (now - paused.paused_at).total_seconds() if paused.paused_at and paused.started_at else 0.0
            Job.objects.filter(pk=job.pk).update(
                state=Job.State.RUNNING, heartbeat_at=now, paused_at=None, paused_seconds=F("paused_seconds") + away
            )
    job.refresh_from_db()
    if job.is_final:
        return 0
    now = timezone.now()
    ids = list(
        JobBatch.objects.filter(job=job)
        .exclude(state=JobBatch.State.DONE)
        .exclude(state=JobBatch.State.RUNNING, lease_expires_at__gt=now)
        .order_by("seq")
        .values_list("pk", flat=True)
    )
    JobBatch.objects.filter(pk__in=ids, state=JobBatch.State.RUNNING, lease_expires_at__lte=now).update(
        state=JobBatch.State.PENDING, lease_expires_at=None, worker=""
    )
    sent = enqueue_batches(job, ids)
    maybe_finish(job)
    return sent


def recover(*, stale_seconds: int | None = None) -> int:
    """Re-send lost batches of unfinished jobs; safe to run from every worker at any time.

    * a RUNNING batch whose lease expired (its worker died) is claimed back to PENDING and re-sent;
    * PENDING batches that never reached the broker (it was down, or the sending connection broke)
      are sent once their job made no progress for a lease (``JOB_LEASE_SECONDS``);
    * PENDING batches of a job that made no progress for ``JOB_STALE_SECONDS`` (lost messages)
      are re-sent;
    * a DONE job whose finish hook is still pending (its worker died after marking it done) gets
      the hook run here (:func:`run_finish_hook`), e.g. the deferred HNSW index is built.
    Claims are single UPDATEs, so two workers recovering at once do not both re-send a batch.
    Returns the number of batches sent."""
    now = timezone.now()
    stale = stale_seconds if stale_seconds is not None else int(getattr(settings, "JOB_STALE_SECONDS", 900))
    live = [Job.State.QUEUED, Job.State.RUNNING]
    sent = 0
    expired = (
        JobBatch.objects.filter(job__state__in=live, state=JobBatch.State.RUNNING, lease_expires_at__lt=now)
        .values_list("pk", "job_id")
    )
    by_job: dict[int, list[int]] = {}
    for batch_id, job_id in expired:
        claimed = JobBatch.objects.filter(pk=batch_id, state=JobBatch.State.RUNNING, lease_expires_at__lt=now).update(
            state=JobBatch.State.PENDING, lease_expires_at=None, worker=""
        )
        if claimed:
            by_job.setdefault(job_id, []).append(batch_id)
    quiet = now - timedelta(seconds=lease_seconds())
    unsent = JobBatch.objects.filter(state=JobBatch.State.PENDING, sent_at__isnull=True)
    for job_id in (Job.objects.filter(state__in=live, heartbeat_at__lt=quiet, batches__state=JobBatch.State.PENDING,
                                      batches__sent_at__isnull=True)
                   .values_list("pk", flat=True).distinct()):
        if Job.objects.filter(pk=job_id, heartbeat_at__lt=quiet).update(heartbeat_at=now):
            by_job.setdefault(job_id, []).extend(unsent.filter(job_id=job_id).values_list("pk", flat=True))
    cutoff = now - timedelta(seconds=stale)
    for job_id in Job.objects.filter(state__in=live, heartbeat_at__lt=cutoff).values_list("pk", flat=True):
        if Job.objects.filter(pk=job_id, heartbeat_at__lt=cutoff).update(heartbeat_at=now):
            pending = JobBatch.objects.filter(job_id=job_id, state=JobBatch.State.PENDING).values_list("pk", flat=True)
            by_job.setdefault(job_id, []).extend(pending)
    for job_id, batch_ids in by_job.items():
        job = Job.objects.get(pk=job_id)
        sent += enqueue_batches(job, sorted(set(batch_ids)))
        log.info("job %s: re-sent %d lost batches", job_id, len(set(batch_ids)))
    for job in Job.objects.filter(state__in=live).exclude(batches__state__in=[JobBatch.State.PENDING, JobBatch.State.RUNNING]):
        if job.batches.exists():
            maybe_finish(job)
    # Jobs marked DONE whose finish hook never ran (the worker died in between): run it now.
    for job in Job.objects.filter(state=Job.State.DONE, finish_pending=True).order_by("pk"):
        if run_finish_hook(job):
            log.info("job %s: ran its pending finish step", job.pk)
    return sent
