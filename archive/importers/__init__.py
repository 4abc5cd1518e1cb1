"""Importers: folders of images, museum metadata files, IIIF manifests, the AIC open API.

Every importer is a :class:`~archive.importers.base.Source` that yields records. An import is a
Job: its plan (:mod:`~archive.importers.plan`) cuts the source's stream into batches of records,
and each batch is imported (:mod:`~archive.importers.ingest`) on the ingest workers or in this
process, through the same job machinery as every stage (:mod:`~archive.importers.stage`).
Entry points:

- :func:`open_source` — auto-detect what a location is and open the right source;
- :func:`launch` — start an import on the ingest workers (dashboard, API, ``import --wait``);
- :func:`start` + :func:`run_job` — record an import Job and run it in this process
  (``import`` without ``--wait``, tests, benchmarks); :func:`import_location` does both;
- :func:`archive.importers.retry.launch_retry` / ``retry_errors`` — re-run the failed items of a job.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from archive.models import Job, JobBatch

from . import readers
from . import mapping as mappings
from .base import ImportSettings, Record, RecordError, Source, Stats
from .plan import PLAN_SEQ

__all__ = [
    "open_source", "source_from_params", "start", "submit", "launch", "run_job", "import_location", "SourceError",
    "Record", "RecordError",
]


class SourceError(Exception):
    """The source cannot be opened at all (missing path, unknown kind, wrong mapping): a clear message."""


def source_from_params(importer: str, params: dict) -> Source:
    from .folder import FolderSource
    from .iiif import IIIFSource
    from .metadata import MetadataSource, MultiSource
    from .retry import RetrySource

    classes = {"folder": FolderSource, "metadata": MetadataSource, "iiif": IIIFSource, "multi": MultiSource, "retry": RetrySource}
    if importer not in classes:
        raise SourceError(f"unknown importer {importer!r}")
    params = dict(params)
    if importer == "multi":
        return MultiSource(params.get("parts") or [])
    if importer == "retry":
        return RetrySource(**params)
    location = params.pop("location")
    return classes[importer](location, **{k: v for k, v in params.items() if v is not None})


def _mapping_files(folder: Path) -> list[tuple[Path, mappings.Mapping]]:
    """Metadata files inside a folder that a mapping claims (``detect.files``) and whose records fit it."""
    found = []
    for mapping in mappings.all_mappings():
        for pattern in mapping.detect.get("files", []):
            for path in sorted(folder.glob(pattern)):
                if path.is_file() and _fits(path, mapping):
                    found.append((path, mapping))
        if found:
            return found
    return found


def _fits(path: Path, mapping: mappings.Mapping) -> bool:
    try:
        fmt = readers.format_of(path)
    except ValueError:
        return False
    if fmt == "json":
        try:
            return mappings.detect_for_document(readers.load_json(path)) is not None
        except ValueError:
            return False
    iterator = readers.iter_csv(path) if fmt in ("csv", "tsv") else readers.iter_jsonl(path)
    for item in iterator:
        if isinstance(item, readers.Problem):
            if item.position is None:
                return False
            continue
        detected = mappings.detect_for_record(item[1], exclude_generic=True)
        return detected is not None and detected.name == mapping.name
    return False


def open_source(
    location: str,
    *,
    mapping: str | None = None,
    with_images: bool = False,
    canvases: str = "first",
    sidecar: str | None = None,
    source_name: str | None = None,
    encoding: str = "utf-8",
    kind: str | None = None,
    operator: bool = True,
) -> Source:
    """What ``import SOURCE`` imports: a folder, a metadata file or a IIIF manifest/collection.

    ``kind`` forces one of "folder", "metadata", "iiif"; otherwise: a folder holding metadata files
    that a mapping claims (e.g. aic-artwall's collections/*/collection.json, culturecraft's
    metadata.csv) imports those files; any other folder is imported as image files (with a
    sidecar if present); a .csv/.tsv/.jsonl(.gz) file is metadata; a .json file or URL is a IIIF
    manifest when its @context says so, else metadata.

    ``operator``: the location comes from the command line (or code). From the dashboard or the
    API (False), a local location or sidecar must lie inside ``IMPORT_ALLOWED_ROOTS`` and a mapping
    must be one of the named mappings (see :mod:`archive.importers.policy`).
    """
    from .folder import FolderSource
    from .iiif import IIIFSource, is_iiif, load
    from .metadata import MetadataSource, MultiSource

    from .policy import Refused, check_operator_location

    is_url = location.startswith(("http://", "https://"))
    try:
        check_operator_location(location, operator)
        if sidecar:
            check_operator_location(sidecar, operator)
    except Refused as exc:
        raise SourceError(str(exc)) from None
    if mapping and not operator and mapping not in mappings.available():
        raise SourceError(f"unknown mapping {mapping!r}; one of: {', '.join(mappings.available())}")
    path = Path(location)
    if not is_url and not path.exists():
        raise SourceError(f"{location} does not exist (expected a folder, a metadata file, a IIIF manifest or a URL)")
    try:
        if kind == "folder" or (kind is None and not is_url and path.is_dir()):
            if not path.is_dir():
                raise SourceError(f"{location} is not a folder")
            if kind is None and not sidecar and not mapping:
                claimed = _mapping_files(path)
                if claimed:
                    parts = [
                        MetadataSource(str(p), mapping=m.name, with_images=with_images, encoding=encoding, source=source_name,
                                       root=str(path.resolve()))
                        for p, m in claimed
                    ]
                    return parts[0] if len(parts) == 1 else MultiSource(sources=parts)
            return FolderSource(str(path), sidecar=sidecar, source=source_name, mapping=mapping)
        if kind == "iiif":
            return IIIFSource(location, canvases=canvases, source=source_name)
        if kind is None:
            name = location.split("?")[0].lower()
            if is_url and not name.endswith((".json", ".csv", ".tsv", ".jsonl", ".ndjson", ".gz")):
                # A URL whose name says nothing: a CSV/TSV/JSON Lines Content-Type is a metadata file.
                from .metadata import CONTENT_TYPES

                if CONTENT_TYPES.get(_content_type(location), ".json") != ".json":
                    return MetadataSource(location, mapping=mapping, with_images=with_images, encoding=encoding, source=source_name)
            if name.endswith(".json") or (is_url and not name.endswith((".csv", ".tsv", ".jsonl", ".ndjson", ".gz"))):
                load_error = ""
                try:
                    document = load(location)
                except ValueError as exc:
                    document, load_error = None, str(exc)
                if document is None and is_url:
                    raise SourceError(f"cannot read {location}: {load_error}")
                if document is None:
                    # Unreadable JSON (manifest or metadata, no telling): the import reports why as its error.
                    return MetadataSource(location, mapping=mapping or "generic", with_images=with_images, encoding=encoding, source=source_name)
                if is_iiif(document) and not mapping:
                    source = IIIFSource(location, canvases=canvases, source=source_name)
                    source._document = document
                    return source
        return MetadataSource(location, mapping=mapping, with_images=with_images, encoding=encoding, source=source_name)
    except mappings.MappingError as exc:
        raise SourceError(str(exc)) from None
    except ValueError as exc:
        raise SourceError(str(exc)) from None


def _content_type(url: str) -> str:
    """The Content-Type a URL answers with (headers only; "" when it cannot be reached)."""
    from archive import fetch

    try:
        with fetch.open_url(url) as response:
            if response.status_code != 200:
                return ""
            return response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    except fetch.FetchRefused:
        raise
    except fetch.FetchError:
        return ""


def start(
    source: Source, *, limit: int | None = None, user=None, extra: dict | None = None, cfg: ImportSettings | None = None,
    job: Job | None = None,
) -> Job:
    """Record a queued import Job for a source, with its plan batch (batch 0). Run it with
    :func:`run_job` in this process or send it to the ingest workers with :func:`submit`.
    ``job``: an existing, empty import Job to use (a retry creates its job first)."""
    from django.db import transaction

    from workers import jobs

    sizes = cfg or ImportSettings.from_settings()
    params = {
        "importer": source.kind, "params": source.params(), "limit": limit, "describe": source.describe(),
        # Recorded so that a resumed plan cuts the stream into the same batches on any machine.
        "batch_size": sizes.batch_size, "metadata_batch_size": sizes.metadata_batch_size,
    }
    params.update(extra or {})
    with transaction.atomic():
        if job is None:
            job = jobs.create_job(Job.Kind.IMPORT, params, user=user)
        else:
            Job.objects.filter(pk=job.pk).update(params=params)
            job.params = params
        JobBatch.objects.create(job=job, seq=PLAN_SEQ)
    return job


def submit(job: Job) -> int:
    """Send an import job's plan to the ingest queue (after the current transaction commits); the
    plan then sends each batch of records as it writes it. Returns the number of tasks sent."""
    from workers import jobs

    return jobs.enqueue_batches(job, JobBatch.objects.filter(job=job, seq=PLAN_SEQ).values_list("pk", flat=True))


def launch(source: Source, *, limit: int | None = None, user=None, extra: dict | None = None) -> Job:
    """Start an import on the ingest workers (the dashboard, the API, ``import --async/--wait``)."""
    job = start(source, limit=limit, user=user, extra=extra)
    submit(job)
    return job


def run_job(
    job: Job,
    *,
    source: Source | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_total: Callable[[int | None], None] | None = None,
    cfg: ImportSettings | None = None,
    tick: Callable[[], None] | None = None,
) -> Stats:
    """Run an import Job in this process: its plan, and each batch right after the plan writes it,
    all through ``workers.jobs.run_batch`` (the same leases, counts and errors as on workers).

    ``progress(done, failed)`` is called after each batch, ``tick()`` (from a decoding thread) as
    each image is done, ``on_total(n)`` once the source is counted. A paused job waits here until
    it is resumed; a cancelled one stops. Returns the counts of the batches run here (``done`` and
    ``failed`` are the job's)."""
    from workers import jobs

    stats = Stats()
    worker = jobs.worker_name()
    options: dict = {"source": source, "cfg": cfg, "tick": tick, "stats": stats, "on_total": on_total}

    def run_here(batch_id: int) -> None:
        while True:
            outcome = jobs.run_batch(batch_id, worker, options=options)
            if outcome != "skipped (paused)":
                break
            while jobs.current_state(job) == Job.State.PAUSED:
                time.sleep(0.5)
        if progress and outcome.startswith("processed"):
            progress(*JobBatch.objects.values_list("done", "failed").get(pk=batch_id))

    options["send"] = lambda batch_ids: [run_here(batch_id) for batch_id in batch_ids]
    for batch_id in JobBatch.objects.filter(job=job, seq=PLAN_SEQ).values_list("pk", flat=True):
        run_here(batch_id)
    # Batches of an earlier run of this job (a resumed plan re-sends them too; this catches the rest).
    for batch_id in JobBatch.objects.filter(job=job).exclude(state=JobBatch.State.DONE).order_by("seq").values_list("pk", flat=True):
        run_here(batch_id)
    job.refresh_from_db()
    stats.done, stats.failed = job.done, job.failed
    return stats


def import_location(location: str, *, limit: int | None = None, cfg: ImportSettings | None = None, **options) -> tuple[Job, Stats]:
    """Open, record and run an import in this process (tests, benchmarks, scripts)."""
    source = open_source(location, **options)
    job = start(source, limit=limit, cfg=cfg)
    stats = run_job(job, source=source, cfg=cfg)
    job.refresh_from_db()
    return job, stats
