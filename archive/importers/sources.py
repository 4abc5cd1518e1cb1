"""Open an import source: auto-detect what a location is (a folder, a metadata file, a IIIF
manifest or collection, a URL) and return the right :class:`~archive.importers.base.Source`, or
rebuild one from the params a Job recorded (:func:`source_from_params`)."""
from __future__ import annotations

from pathlib import Path

from . import mapping as mappings
from . import readers
from .base import Source


class SourceError(ValueError):
    """The source cannot be opened at all (missing path, unknown kind, wrong mapping): a clear message."""


def source_from_params(importer: str, params: dict) -> Source:
    from .folder import FolderSource
    from .iiif import IIIFSource
    from .metadata import MetadataSource, MultiSource
    from .records_folder import RecordsFolderSource

    classes = {
        "folder": FolderSource, "metadata": MetadataSource, "iiif": IIIFSource, "multi": MultiSource, "records": RecordsFolderSource,
    }
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
    overwrite_other: bool = False,
    on_match: str = "enrich",
    include: list[str] | None = None,
    exclude: list[str] | None = None,
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
    from .folder import IMAGE_EXTENSIONS, FolderSource
    from .iiif import IIIFSource, is_iiif, load
    from .metadata import MetadataSource, MultiSource
    from .records_folder import RecordsFolderSource, holds_only_records

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
        if kind == "records" or (kind is None and not is_url and path.is_dir() and not sidecar and not include
                                  and holds_only_records(path, IMAGE_EXTENSIONS)
                                  and not _mapping_files(path)):
            # A museum dump of one JSON/XML file per object: metadata, not an empty folder of images.
            if not path.is_dir():
                raise SourceError(f"{location} is not a folder")
            return RecordsFolderSource(str(path), mapping=mapping, source=source_name, with_images=with_images,
                                       overwrite_other=overwrite_other, on_match=on_match)
        if kind == "folder" or (kind is None and not is_url and path.is_dir()):
            if not path.is_dir():
                raise SourceError(f"{location} is not a folder")
            if kind is None and not sidecar and not mapping:
                claimed = _mapping_files(path)
                if claimed:
                    parts = [
                        MetadataSource(str(p), mapping=m.name, with_images=with_images, encoding=encoding, source=source_name,
                                       root=str(path.resolve()), overwrite_other=overwrite_other, origin=str(path.resolve()),
                                       on_match=on_match)
                        for p, m in claimed
                    ]
                    return parts[0] if len(parts) == 1 else MultiSource(sources=parts)
            return FolderSource(str(path), sidecar=sidecar, source=source_name, mapping=mapping, include=include, exclude=exclude)
        if kind == "iiif":
            return IIIFSource(location, canvases=canvases, source=source_name)
        if kind is None:
            name = location.split("?")[0].lower()
            if is_url and not name.endswith((".json", ".csv", ".tsv", ".jsonl", ".ndjson", ".gz")):
                # A URL whose name says nothing: a CSV/TSV/JSON Lines Content-Type is a metadata file.
                from .metadata import CONTENT_TYPES

                if CONTENT_TYPES.get(_content_type(location), ".json") != ".json":
                    return MetadataSource(location, mapping=mapping, with_images=with_images, encoding=encoding, source=source_name, overwrite_other=overwrite_other, on_match=on_match)
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
                    return MetadataSource(location, mapping=mapping or "generic", with_images=with_images, encoding=encoding, source=source_name, overwrite_other=overwrite_other, on_match=on_match)
                if is_iiif(document) and not mapping:
                    source = IIIFSource(location, canvases=canvases, source=source_name)
                    source._document = document
                    return source
        return MetadataSource(location, mapping=mapping, with_images=with_images, encoding=encoding, source=source_name, overwrite_other=overwrite_other, on_match=on_match)
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