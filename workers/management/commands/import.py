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
        parser.add_argument("--preview", nargs="?", type=int, const=5, metavar="N",
                            help="write nothing: show the first N records (default 5) as they would be stored, what would "
                                 "happen to each, and the share of records with each field filled")
        parser.add_argument("--draft-mapping", metavar="FILE.json",
                            help="write nothing: draft a mapping from the source's columns into FILE.json (edit it, then --mapping)")
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

        if options.get("preview") is not None:
            self._preview(source, options["preview"])
            return
        if options.get("draft_mapping"):
            self._draft(source, options["draft_mapping"])
            return

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

    def _preview(self, source, show: int) -> None:
        import json

        from archive.importers.preview import preview

        result = preview(source, show=show)
        out = self.stdout.write
        out(f"Preview of {result.describe} (nothing is written)")
        out(f"  source {result.source or '?'}" + (f", mapping {result.mapping!r}" if result.mapping else ""))
        for number, example in enumerate(result.examples, start=1):
            out(f"\n[{number}] {example['item']} -> {example['key']}: {example['action']}")
            for name, value in example["values"].items():
                out(f"    {name}: {str(value)[:200]}")
            if example["images"]:
                out(f"    image: {example['images'][0][:200]}" + (f" (+{len(example['images']) - 1} more)" if len(example["images"]) > 1 else ""))
            if example["metadata"]:
                out(f"    metadata: {json.dumps(example['metadata'], ensure_ascii=False, default=str)[:400]}")
        out(f"\nFields filled over the first {result.sampled} records:")
        for name, share in result.shares().items():
            if share or not name.startswith("metadata."):
                out(f"  {name:<24} {share:6.1%}")
        if result.actions:
            out("Would: " + ", ".join(f"{kind} {count}" for kind, count in sorted(result.actions.items())))
        for error in result.errors:
            self.stderr.write(f"  error: {error}")
        if not result.sampled:
            raise CommandError(f"found no records in {result.describe}" + (f" (first error: {result.errors[0]})" if result.errors else ""))

    def _draft(self, source, target: str) -> None:
        import json
        from pathlib import Path

        from archive.importers.preview import draft_mapping

        sample = source.sample() if hasattr(source, "sample") else None
        if not sample:
            raise CommandError(f"cannot draft a mapping: {source.describe()} has no readable record (drafting needs a metadata file or folder of records)")
        name = Path(target).stem
        draft = draft_mapping(sample, name=name, source=name)
        Path(target).write_text(json.dumps(draft, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        self.stdout.write(f"Wrote {target}: id {draft['id']!r}, {len(draft['fields'])} fields, {len(draft['metadata'])} metadata columns, "
                          f"image {draft['image'] or 'none found'}. Edit it, then import with --mapping {target}")

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
