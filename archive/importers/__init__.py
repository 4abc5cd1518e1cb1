"""Importers: folders of images, museum metadata files, IIIF manifests, the AIC open API.

Every importer is a :class:`~archive.importers.base.Source` that yields records; they all share
one row-upsert path (:func:`archive.importers.base.run`). Entry points:

- :func:`open_source` — auto-detect what a location is and open the right source;
- :func:`start` / :func:`run_job` — record a Job for a source and run it (inline or in Celery);
- :func:`archive.importers.retry.retry_errors` — re-run the failed items of a job.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Callable

from archive.models import Job

from . import base, readers
from . import mapping as mappings
from .base import ImportSettings, Record, RecordError, Source, Stats

__all__ = ["open_source", "source_from_params", "start", "run_job", "import_location", "SourceError", "Record", "RecordError"]


class SourceError(Exception):
    """The source cannot be opened at all (missing path, unknown kind, wrong mapping): a clear message."""


def source_from_params(importer: str, params: dict) -> Source:
    from .folder import FolderSource
    from .iiif import IIIFSource
    from .metadata import MetadataSource, MultiSource

    classes = {"folder": FolderSource, "metadata": MetadataSource, "iiif": IIIFSource, "multi": MultiSource}
    if importer not in classes:
        raise SourceError(f"unknown importer {importer!r}")
    params = dict(params)
    if importer == "multi":
        return MultiSource(params.get("parts") or [])
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
) -> Source:
    """What ``import SOURCE`` imports: a folder, a metadata file or a IIIF manifest/collection.

    ``kind`` forces one of "folder", "metadata", "iiif"; otherwise: a folder holding metadata files
    that a mapping claims (e.g. aic-artwall's collections/*/collection.json, culturecraft's
    metadata.csv) imports those files; any other folder is imported as image files (with a
    sidecar if present); a .csv/.tsv/.jsonl(.gz) file is metadata; a .json file or URL is a IIIF
    manifest when its @context says so, else metadata.
    """
    from .folder import FolderSource
    from .iiif import IIIFSource, is_iiif, load
    from .metadata import MetadataSource, MultiSource

    is_url = location.startswith(("http://", "https://"))
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
                    parts = [MetadataSource(str(p), mapping=m.name, with_images=with_images, encoding=encoding, source=source_name) for p, m in claimed]
                    return parts[0] if len(parts) == 1 else MultiSource(sources=parts)
            return FolderSource(str(path), sidecar=sidecar, source=source_name, mapping=mapping)
        if kind == "iiif":
            return IIIFSource(location, canvases=canvases, source=source_name)
        if kind is None:
            name = location.split("?")[0].lower()
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


def start(source: Source, *, limit: int | None = None, user=None, extra: dict | None = None) -> Job:
    """Record a queued import Job for a source (run it with :func:`run_job`, inline or in Celery)."""
    from workers import jobs

    params = {"importer": source.kind, "params": source.params(), "limit": limit, "describe": source.describe()}
    params.update(extra or {})
    return jobs.create_job(Job.Kind.IMPORT, params, user=user)


def run_job(
    job: Job,
    *,
    source: Source | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_total: Callable[[int | None], None] | None = None,
    cfg: ImportSettings | None = None,
    tick: Callable[[], None] | None = None,
) -> Stats:
    """Run an import Job: open its source (unless given), count, stream, upsert."""
    from workers import jobs

    params = job.params
    if source is None:
        try:
            source = source_from_params(params["importer"], params["params"])
        except (SourceError, mappings.MappingError, ValueError, KeyError) as exc:
            jobs.start_job(job)
            jobs.record_error(job, params.get("params", {}).get("location", "?"), f"cannot open the source: {exc}", payload={"kind": "job", "params": params})
            jobs.record_progress(job, failed=1)
            jobs.finish_job(job, state=Job.State.FAILED, message=f"cannot open the source: {exc}")
            return Stats(failed=1)
    limit = params.get("limit")
    total = source.count()
    if limit:
        total = min(total, limit) if total is not None else limit
    if on_total:
        on_total(total)
    stream = source.records()
    if limit:
        stream = itertools.islice(stream, limit)
    return base.run(job, stream, cfg=cfg, total=total or 0, progress=progress, tick=tick)


def import_location(location: str, *, limit: int | None = None, cfg: ImportSettings | None = None, **options) -> tuple[Job, Stats]:
    """Open, record and run an import in this process (tests, benchmarks, scripts)."""
    source = open_source(location, **options)
    job = start(source, limit=limit)
    stats = run_job(job, source=source, cfg=cfg)
    job.refresh_from_db()
    return job, stats
