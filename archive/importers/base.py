"""What every importer shares: the records it yields, the settings of a run, the counts it keeps,
the cleaning of catalogue values, and the :class:`Source` contract.

An importer turns its source into a stream of :class:`Record` (one artwork: catalogue fields plus
where its image is) and :class:`RecordError` (an item that could not even be read). An import job
plans that stream into batches (:mod:`workers.ingest.plan`) and imports each batch
(:mod:`workers.ingest.batch`) on the ingest workers or in this process.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

from django.conf import settings

from archive import images, storage
from archive.dates import parse_date
from archive.models import Artwork

from .mapping import as_text

# Catalogue fields an importer may set (everything on Artwork that is not about the image).
META_FIELDS = [
    "title", "creator", "display_date", "year_start", "year_end", "medium", "classification", "institution",
    "rights", "rights_url", "credit_line", "source_url", "iiif_manifest_url", "iiif_image_service", "metadata",
]
IMAGE_FIELDS = [
    "original_location", "sha256", "phash", "phash_bits", "width", "height", "status", "image_error", "duplicate_of",
]
_URL_FIELDS = {"rights_url", "source_url", "iiif_manifest_url", "iiif_image_service"}
_TEXT_LIMITS = {
    f.name: f.max_length for f in Artwork._meta.get_fields() if getattr(f, "max_length", None) and f.name in META_FIELDS
}


@dataclass
class Record:
    """One artwork as read from a source."""

    source: str
    source_id: str
    fields: dict[str, Any] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)  # locations to try in order (path or URL)
    has_metadata: bool = True  # False for a plain file found in a folder
    item: str = ""  # how an operator finds it: 'metadata.csv row 12', a path, a URL
    position: int | None = None  # row/line ordinal in its file, when the source has one
    origin: str = ""  # the file (path or URL) a metadata record was read from; kept in metadata.import_origin
    on_match: str = ""  # a new record describing an existing artwork: "enrich", "separate" or "skip" (archive.importers.enrich)
    overwrite_other: bool = False  # may update a row that another file imported (--overwrite-other-files)
    # Folders the record's local image paths may lie in (its source's policy, archive.importers.policy);
    # empty: a remote source, only http(s) images.
    roots: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.item or (self.images[0] if self.images else f"{self.source}:{self.source_id}")

    def payload(self) -> dict:
        return {"kind": "record", "record": asdict(self)}

    @classmethod
    def from_payload(cls, payload: dict) -> "Record":
        return cls(**payload["record"])


@dataclass
class RecordError:
    """An item that could not be turned into a record (bad row, bad manifest, unreadable folder)."""

    item: str
    reason: str
    detail: str = ""
    payload: dict = field(default_factory=dict)


def item_to_json(item: Record | RecordError) -> dict:
    """How a batch stores one item of the stream (JobBatch.records)."""
    if isinstance(item, Record):
        return {"record": asdict(item)}
    return {"error": asdict(item)}


def item_from_json(data: dict) -> Record | RecordError:
    if "record" in data:
        return Record(**data["record"])
    return RecordError(**data["error"])


@dataclass
class ImportSettings:
    sizes: tuple[int, ...]
    media_root: object  # where derivatives go: a store of archive.storage (the public one) or a local folder
    limits: images.ImageLimits
    workers: int  # image decoding threads
    near_distance: int
    batch_size: int = 256  # records with an image per batch (one task each)
    metadata_batch_size: int = 1000  # records per batch when they carry no image
    write_size: int = 64  # images per database write inside a batch (decoding overlaps writing)

    @classmethod
    def from_settings(cls, **overrides) -> "ImportSettings":
        values = dict(
            sizes=tuple(settings.DERIVATIVE_SIZES),
            media_root=storage.public(),
            limits=images.ImageLimits.from_settings(),
            workers=max(1, int(getattr(settings, "INGEST_WORKERS", os.cpu_count() or 1))),
            near_distance=int(settings.NEAR_DUPLICATE_DISTANCE),
            batch_size=int(getattr(settings, "INGEST_BATCH_SIZE", 256)),
        )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass
class Stats:
    done: int = 0
    failed: int = 0
    created: int = 0
    updated: int = 0
    duplicates: int = 0
    near_duplicates: int = 0
    image_failed_rows: int = 0
    enriched: int = 0  # records written onto an existing artwork they describe
    skipped: int = 0  # records that describe an existing artwork, not written (on_match "skip")
    records: int = 0  # records read (not the source's read errors)
    no_image: int = 0  # records that name no image at all
    untitled: int = 0  # records without a title
    seconds: dict = field(default_factory=dict)  # where the batch's main thread spent its time

    COUNTS = ("done", "failed", "created", "updated", "duplicates", "near_duplicates", "image_failed_rows", "enriched", "skipped",
              "records", "no_image", "untitled")

    def timed(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - since
        return now

    def add(self, other: "Stats") -> None:
        for name in self.COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for key, value in other.seconds.items():
            self.seconds[key] = self.seconds.get(key, 0.0) + value

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.COUNTS}


def summary_text(counts: dict) -> str:
    """'12 imported, 1 failed, 2 exact duplicates linked, 1 near-duplicates flagged'."""
    parts = [f"{counts.get('done', 0)} imported", f"{counts.get('failed', 0)} failed"]
    if counts.get("enriched"):
        parts.append(f"{counts['enriched']} enriched existing artworks")
    if counts.get("skipped"):
        parts.append(f"{counts['skipped']} skipped (already in the archive)")
    if counts.get("duplicates"):
        parts.append(f"{counts['duplicates']} exact duplicates linked")
    if counts.get("near_duplicates"):
        parts.append(f"{counts['near_duplicates']} near-duplicates flagged")
    return ", ".join(parts)


# --- cleaning values for the database -------------------------------------------------------------

def _clean_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        value = as_text(value)
    return str(value).replace("\x00", "").strip()


def _clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {str(k).replace("\x00", ""): _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    return value


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _clean_year(value: Any, end: bool = False) -> int | None:
    """A year from a number, a numeric text, an ISO date ("1883-01-01") or any date text
    (its range's start, or its end with ``end``)."""
    if value in (None, "") or isinstance(value, (bool, dict, list)):
        return None
    try:
        year = int(float(value))
    except (TypeError, ValueError, OverflowError):
        dates = parse_date(str(value))
        year = dates.end if end else dates.start
        if year is None:
            return None
    return year if -100_000 < year < 100_000 else None


def artwork_values(record: Record) -> dict[str, Any]:
    """The record's catalogue fields, cleaned to fit the columns (over-long URLs go to metadata)."""
    fields = record.fields
    metadata = _clean_json(dict(fields.get("metadata") or {}))
    values: dict[str, Any] = {}
    for name in META_FIELDS:
        if name in ("metadata", "year_start", "year_end"):
            continue
        text = _clean_text(fields.get(name))
        limit = _TEXT_LIMITS.get(name)
        if limit and len(text) > limit:
            if name in _URL_FIELDS:
                metadata[name] = text
                text = ""
            else:
                metadata.setdefault(f"{name}_full", text)
                text = text[: limit - 1] + "…"
        values[name] = text
    dates = parse_date(values["display_date"])
    # A year field that gives no year falls back to the display date's range.
    start = _clean_year(fields.get("year_start"))
    end = _clean_year(fields.get("year_end"), end=True)
    start = dates.start if start is None else start
    end = dates.end if end is None else end
    if end is None and isinstance(fields.get("year_start"), str) and not _numeric(fields["year_start"]):
        end = _clean_year(fields["year_start"], end=True)  # a range given as the start ("1650-01-01/1655-12-31")
    if start is not None and end is not None and end < start:
        start, end = end, start
    values["year_start"], values["year_end"] = start, end
    if record.origin:
        metadata["import_origin"] = record.origin
    values["metadata"] = metadata
    return values


# --- sources ----------------------------------------------------------------------------------------

class Source:
    """A place records come from. Subclasses set ``kind`` and implement ``params``, ``records``
    and (when cheap) ``count``. ``params()`` must be JSON and enough to open the source again:
    Celery tasks and retries rebuild the source with :func:`archive.importers.source_from_params`."""

    kind = ""

    def params(self) -> dict:
        raise NotImplementedError

    def count(self) -> int | None:
        return None

    def records(self, positions: set[int] | None = None) -> Iterator[Record | RecordError]:
        """All records, or only those at ``positions`` (row/line ordinals) when given."""
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.kind} {self.params()}"

    def reread_payload(self, position: int | None) -> dict:
        """A JobError payload that reads this one item (or, with None, the whole source) again."""
        return {"kind": "reread", "importer": self.kind, "params": self.params(), "position": position}
