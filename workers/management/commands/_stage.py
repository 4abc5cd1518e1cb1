"""Shared body of the stage commands (embed, label, faces): launch a job, then either print its
id or follow it with a progress bar that polls the Job row."""
from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from archive.models import Job


def follow(job: Job, stdout, *, poll: float = 0.5, stall_hint_after: float = 30.0) -> Job:
    """Show a tqdm bar for ``job`` until it is final. Returns the final Job."""
    from tqdm import tqdm

    from workers.jobs import progress_line

    job.refresh_from_db()
    bar = tqdm(total=job.total or None, unit="item", desc=f"{job.kind} #{job.pk}", dynamic_ncols=True)
    last_change, last_seen, hinted = time.monotonic(), -1, False
    try:
        while True:
            job.refresh_from_db()
            bar.total = job.total or None
            bar.n = job.processed
            postfix = {"failed": job.failed, "state": job.state}
            if job.eta_seconds is not None:
                postfix["eta"] = f"{job.eta_seconds:.0f}s"
            if job.message and not job.is_final:  # e.g. a label job's "embedding label prompts: 1,200/4,500"
                postfix["note"] = job.message.splitlines()[0][:70]
            bar.set_postfix(postfix, refresh=False)
            bar.refresh()
            if job.is_final:
                break
            if job.processed != last_seen:
                last_seen, last_change = job.processed, time.monotonic()
            elif not hinted and job.state == Job.State.QUEUED and time.monotonic() - last_change > stall_hint_after:
                from workers.jobs import get_stage

                queue = get_stage(job.kind).queue
                bar.write(f"No progress yet: is a worker consuming queue {queue!r}? Start one with: ./run worker -Q {queue}")
                hinted = True
            time.sleep(poll)
    finally:
        bar.close()
    stdout.write(progress_line(job))
    if job.message:
        stdout.write(job.message)
    return job


class StageCommand(BaseCommand):
    kind = ""

    def add_arguments(self, parser):
        parser.add_argument("--mode", choices=["missing", "all", "reset"], default="missing",
                            help="missing: only artworks without output (default); all: redo every artwork; reset: delete outputs first")
        parser.add_argument("--wait", action="store_true", help="follow the job with a progress bar until it ends")
        parser.add_argument("--batch-size", type=int, help="artworks per task (default JOB_BATCH_SIZE)")

    def params(self, options) -> dict:
        return {}

    def handle(self, *args, **options):
        from workers.jobs import launch

        job = launch(self.kind, self.params(options), mode=options["mode"], batch_size=options.get("batch_size"))
        if job.state == Job.State.FAILED:
            raise CommandError(f"{self.kind} job {job.pk} could not start:\n{job.message}")
        if not options["wait"]:
            self.stdout.write(f"{self.kind} job {job.pk}: {job.total} items in {job.batches.count()} batches "
                              f"({job.state}). Follow it with: manage.py jobs show {job.pk}")
            return
        job = follow(job, self.stdout)
        if job.state == Job.State.FAILED:
            raise CommandError(f"{self.kind} job {job.pk} failed: {job.message}")
        self.after(job, options)

    def after(self, job: Job, options) -> None:
        pass
