"""``manage.py import SOURCE``: import a folder of images, a metadata file or a IIIF manifest.

SOURCE is auto-detected (see :func:`archive.importers.open_source`); ``--aic-api N`` fetches N
public-domain works from the Art Institute of Chicago's open API instead (needs internet access).

By default the job runs in this process with a progress bar (no worker needed). ``--wait`` sends
it to the ingest workers and follows it with a progress bar, ``--async`` sends it and returns,
like ``embed``/``label`` with and without ``--wait``. Either way the job is planned into batches
of records and each batch is imported through the same job machinery.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from archive.importers import SourceError, open_source
from archive.importers import mapping as mappings
from archive.importers.base import ImportSettings
from archive.models import Job, JobError
from workers.ingest.launch import launch, run_job, start
from workers.ingest.stage import totals


class Command(BaseCommand):
    help = "Import artworks from a folder of images, a metadata CSV/JSON/JSONL(.gz) file or a IIIF manifest (path or URL)."
    kind: str | None = None  # subclasses force one importer

    def add_arguments(self, parser):
        parser.add_argument("source", nargs="?", help="folder, metadata file, IIIF manifest/collection (path or URL)")
        parser.add_argument("--mapping", help=f"metadata column mapping: {', '.join(mappings.available())}, or a path to a mapping .json")
        parser.add_argument("--limit", type=int, help="import at most this many records")
        parser.add_argument("--with-images", action="store_true", help="also fetch images the mapping marks as optional (e.g. Tate thumbnails)")
        parser.add_argument("--canvases", choices=["first", "all"], default="first", help="IIIF: one artwork per manifest (first canvas) or per canvas")
        parser.add_argument("--sidecar", help="folder: a CSV/JSON file of metadata keyed by file name")
        parser.add_argument("--source-name", help="Artwork.source to record (default: from the mapping, 'folder' or 'iiif')")
        parser.add_argument("--overwrite-other-files", dest="overwrite_other", action="store_true",
                            help="let records update rows that another metadata file imported (refused by default)")
        parser.add_argument("--on-match", choices=["enrich", "separate", "skip"], default="enrich",
                            help="metadata records that describe an artwork already imported (same image bytes, or file name): "
                                 "write their catalogue onto it (enrich, default), import them as separate artworks, or skip them")
        parser.add_argument("--include", action="append", metavar="PATTERN",
                            help="folder: import only files matching this glob (on the file name, or with a '/' on the path "
                                 "inside the folder); repeatable")
        parser.add_argument("--exclude", action="append", metavar="PATTERN",
                            help="folder: skip files matching this glob (e.g. 'crops/*' or '*_detail.jpg'); repeatable")
        parser.add_argument("--encoding", default="utf-8", help="CSV text encoding (default utf-8)")
        if self.kind is None:
            parser.add_argument("--kind", choices=["folder", "metadata", "iiif", "records"], help="skip auto-detection")
            parser.add_argument("--aic-api", type=int, metavar="N", help="fetch N public-domain works from api.artic.edu (needs internet)")
        parser.add_argument("--async", dest="run_async", action="store_true",
                            help="send the job to the ingest workers and return (follow it with `jobs show ID`)")
        parser.add_argument("--wait", action="store_true",
                            help="send the job to the ingest workers and follow it with a progress bar until it ends")
        parser.add_argument("--workers", type=int, help="image decoding threads in this process (default INGEST_WORKERS)")
        parser.add_argument("--batch-size", type=int, help="records with an image per batch, one task each (default INGEST_BATCH_SIZE)")

    def handle(self, *args, **options):
        kind = self.kind or options.get("kind")
        location = options.get("source")
        if options.get("aic_api"):
            if location:
                raise CommandError("give either SOURCE or --aic-api, not both")
            from archive.importers import aic_api

            try:
                source = aic_api.source(options["aic_api"])
            except aic_api.ApiUnavailable as exc:
                raise CommandError(str(exc)) from None
            options["limit"] = options["limit"] or options["aic_api"]
        elif not location:
            raise CommandError(
                "give a SOURCE to import: a folder of images, a metadata CSV/JSON/JSONL(.gz) file or a IIIF manifest "
                "(path or URL), or --aic-api N to fetch works from the Art Institute of Chicago's open API"
            )
        else:
            try:
                source = open_source(
                    location, mapping=options.get("mapping"), with_images=options["with_images"], canvases=options["canvases"],
                    sidecar=options.get("sidecar"), source_name=options.get("source_name"), encoding=options["encoding"], kind=kind,
                    overwrite_other=options.get("overwrite_other", False), on_match=options.get("on_match") or "enrich",
                    include=options.get("include"), exclude=options.get("exclude"),
                )
            except SourceError as exc:
                raise CommandError(str(exc)) from None

        if options["run_async"] or options["wait"]:
            job = launch(source, limit=options.get("limit"), extra=self._sizes(options))
            if not options["wait"]:
                self.stdout.write(f"Queued import job #{job.pk} ({source.describe()}) on the ingest queue. "
                                  f"Follow it with: manage.py jobs show {job.pk}")
                return
            from workers.management.commands._stage import follow

            self.stdout.write(f"Import job #{job.pk}: {source.describe()}")
            job = follow(job, self.stdout) if options.get("verbosity", 1) else self._wait_quietly(job)
            self._report(job)
            return

        cfg = ImportSettings.from_settings(workers=options.get("workers"), batch_size=options.get("batch_size"))
        job = start(source, limit=options.get("limit"), cfg=cfg)
        self.stdout.write(f"Import job #{job.pk}: {source.describe()}")
        bar = tqdm(unit="item", desc="import", dynamic_ncols=True, disable=options.get("verbosity", 1) == 0)
        failed = 0
        counted = 0  # images already shown by tick() and not yet by a batch

        def on_total(total):
            bar.total = total or None
            bar.refresh()

        def tick():  # an image is done (called from a decoding thread)
            nonlocal counted
            counted += 1
            bar.update(1)

        def progress(done, fail):  # a batch is written: show its records that tick() did not
            nonlocal failed, counted
            failed += fail
            shown = min(counted, done + fail)
            counted -= shown
            bar.update(done + fail - shown)
            if failed:
                bar.set_postfix(failed=failed)

        try:
            run_job(job, source=source, progress=progress, on_total=on_total, cfg=cfg, tick=tick)
        finally:
            bar.close()
        job.refresh_from_db()
        self._report(job)

    @staticmethod
    def _sizes(options) -> dict:
        return {"batch_size": options["batch_size"]} if options.get("batch_size") else {}

    @staticmethod
    def _wait_quietly(job: Job) -> Job:
        import time

        while not job.is_final:
            time.sleep(0.5)
            job.refresh_from_db()
        return job

    def _report(self, job: Job) -> None:
        counts = totals(job)
        self.stdout.write(
            f"Job #{job.pk} {job.state}: {job.message} ({counts['created']} new, {counts['updated']} updated; {job.rate:.1f} items/s)"
        )
        if job.failed:
            for error in JobError.objects.filter(job=job).order_by("id")[:10]:
                self.stderr.write(f"  {error.item}: {error.reason}")
            if job.failed > 10:
                self.stderr.write(f"  ... and {job.failed - 10} more (see the job's errors in the admin or `jobs show {job.pk}`)")
        if job.state == Job.State.FAILED:
            raise CommandError(f"import job #{job.pk} failed: {job.message}")
        if job.done == 0 and job.failed:
            raise CommandError(f"nothing was imported: all {job.failed} items failed (job #{job.pk})")
