"""``manage.py harvest STREAM``: import what changed in a IIIF Change Discovery 1.0 stream since
its last harvest (see :mod:`workers.ingest.harvest` and docs/iiif.md)."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from archive.importers.changes import StreamProblem
from archive.models import HarvestState
from workers.ingest.harvest import harvest


class Command(BaseCommand):
    help = "Harvest a IIIF Change Discovery stream (its OrderedCollection, URL or path): fetch only the manifests changed since the last harvest."

    def add_arguments(self, parser):
        parser.add_argument("stream", nargs="?", help="URL (or path) of the stream's OrderedCollection")
        parser.add_argument("--full", action="store_true", help="read the whole stream again, not only what changed since the last harvest")
        parser.add_argument("--source-name", help="Artwork.source of the harvested works (default iiif, or the stream's earlier one)")
        parser.add_argument("--async", dest="run_async", action="store_true", help="send the import to the ingest workers and return")
        parser.add_argument("--list", action="store_true", help="list the streams harvested so far and where each stands")

    def handle(self, *args, **options):
        if options["list"]:
            for state in HarvestState.objects.order_by("stream_url"):
                self.stdout.write(f"{state.stream_url}  up to {state.last_end_time or '-'}  last run {state.harvested_at or '-'}  "
                                  f"job {state.last_job_id or '-'}  {state.last_counts}")
            return
        if not options["stream"]:
            raise CommandError("give the stream's URL (or --list)")
        try:
            result = harvest(options["stream"], full=options["full"], source_name=options["source_name"],
                             run_here=not options["run_async"])
        except StreamProblem as exc:
            raise CommandError(str(exc)) from None
        for line in result.read.skipped[:20]:
            self.stderr.write(f"skipped: {line}")
        self.stdout.write(result.summary())
        if result.job is not None:
            result.job.refresh_from_db()
            self.stdout.write(f"job {result.job.pk}: {result.job.state}, {result.job.done} imported, {result.job.failed} failed")
