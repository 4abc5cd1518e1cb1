from django.core.management.base import BaseCommand, CommandError

from archive.models import Job


class Command(BaseCommand):
    help = "List and control jobs: list | show ID [--wait] | pause ID | resume ID | cancel ID | retry ID | recover"

    def add_arguments(self, parser):
        parser.add_argument("action", nargs="?", default="list",
                            choices=["list", "show", "pause", "resume", "cancel", "retry", "recover"])
        parser.add_argument("id", nargs="?", type=int)
        parser.add_argument("--limit", type=int, default=20)
        parser.add_argument("--wait", action="store_true", help="show/resume/retry: follow the job with a progress bar")

    def handle(self, *args, action, id=None, limit=20, wait=False, **options):
        from workers import jobs
        from workers.jobs import progress_line
        from workers.management.commands._stage import follow

        if action == "list":
            for job in Job.objects.all()[:limit]:
                self.stdout.write(progress_line(job) + (f"  -- {job.message.splitlines()[0]}" if job.message else ""))
            return
        if action == "recover":
            self.stdout.write(f"re-sent {jobs.recover(stale_seconds=0)} batches")
            return
        if id is None:
            raise CommandError(f"jobs {action} needs a job id (see: manage.py jobs list)")
        try:
            job = Job.objects.get(pk=id)
        except Job.DoesNotExist:
            raise CommandError(f"no job {id}") from None
        if action == "show":
            self._show(job)
        elif action == "pause":
            jobs.pause_job(job)
        elif action == "resume":
            self.stdout.write(f"re-sent {jobs.resume_job(job)} batches")
        elif action == "cancel":
            jobs.cancel_job(job)
        elif action == "retry":
            try:
                job = jobs.retry_failed(job)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"retry job {job.pk} over {job.total} failed items")
        job.refresh_from_db()
        if wait and not job.is_final:
            follow(job, self.stdout)
        elif action != "show":
            self.stdout.write(progress_line(job))

    def _show(self, job: Job) -> None:
        from django.db.models import Count

        from workers.jobs import progress_line

        self.stdout.write(progress_line(job))
        self.stdout.write(f"params: {job.params}")
        if job.message:
            self.stdout.write(f"message: {job.message}")
        states = dict(job.batches.values_list("state").annotate(n=Count("id")))
        self.stdout.write(f"batches: {states or 'none'}")
        errors = job.errors.all()
        count = errors.count()
        if count:
            self.stdout.write(f"{count} errors (first 20):")
            for error in errors[:20]:
                retried = f" [retried in job {error.retried_in_id}]" if error.retried_in_id else ""
                self.stdout.write(f"  artwork {error.artwork_id or error.item}: {error.reason}{retried}")
