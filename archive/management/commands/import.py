"""``manage.py import SOURCE``: import a folder of images, a metadata file or a IIIF manifest.

SOURCE is auto-detected (see :func:`archive.importers.open_source`); ``--aic-api N`` fetches N
public-domain works from the Art Institute of Chicago's open API instead (needs internet access).
Runs in this process with a progress bar, or with ``--async`` as a Celery task on the ingest queue.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from archive.importers import SourceError, open_source, run_job, start
from archive.importers import mapping as mappings
from archive.importers.base import ImportSettings
from archive.models import JobError


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
        parser.add_argument("--encoding", default="utf-8", help="CSV text encoding (default utf-8)")
        if self.kind is None:
            parser.add_argument("--kind", choices=["folder", "metadata", "iiif"], help="skip auto-detection")
            parser.add_argument("--aic-api", type=int, metavar="N", help="fetch N public-domain works from api.artic.edu (needs internet)")
        parser.add_argument("--async", dest="run_async", action="store_true", help="queue a Celery task on the ingest queue and return")
        parser.add_argument("--workers", type=int, help="image decoding threads (default INGEST_WORKERS)")
        parser.add_argument("--batch-size", type=int, help="images per database batch (default 64)")

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
                )
            except SourceError as exc:
                raise CommandError(str(exc)) from None

        job = start(source, limit=options.get("limit"))
        if options["run_async"]:
            from archive.tasks import import_job

            import_job.delay(job.pk)
            self.stdout.write(f"Queued import job #{job.pk} ({source.describe()}) on the ingest queue.")
            return

        self.stdout.write(f"Import job #{job.pk}: {source.describe()}")
        cfg = ImportSettings.from_settings(workers=options.get("workers"), batch_size=options.get("batch_size"))
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
            stats = run_job(job, source=source, progress=progress, on_total=on_total, cfg=cfg, tick=tick)
        finally:
            bar.close()
        job.refresh_from_db()
        self.stdout.write(
            f"Job #{job.pk} {job.state}: {job.message} ({stats.created} new, {stats.updated} updated; {job.rate:.1f} items/s)"
        )
        if stats.failed:
            errors = JobError.objects.filter(job=job).order_by("id")[:10]
            for error in errors:
                self.stderr.write(f"  {error.item}: {error.reason}")
            if stats.failed > 10:
                self.stderr.write(f"  ... and {stats.failed - 10} more (see the job's errors in the admin or `jobs show {job.pk}`)")
        if stats.done == 0 and stats.failed:
            raise CommandError(f"nothing was imported: all {stats.failed} items failed (job #{job.pk})")
