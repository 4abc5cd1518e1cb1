"""The one row-upsert path every importer uses.

An importer turns its source into a stream of :class:`Record` (one artwork: catalogue fields plus
where its image is) and :class:`RecordError` (an item that could not even be read). :func:`run`
consumes that stream in batches: the images of batch *N* are read, hashed, decoded and turned into
derivatives in a thread pool (Pillow and hashlib release the GIL) while the main thread writes batch
*N-1* to the database with one bulk upsert keyed on ``(source, source_id)``. At most two batches are
in flight, so memory stays flat however long the stream is.

Rules the write applies:
- a record whose image ingests is stored with status ``ok``, or ``duplicate`` (linked with
  ``duplicate_of`` to the earliest artwork with the same sha256) when the same bytes are already
  in the archive; near-duplicates (perceptual-hash Hamming distance <= NEAR_DUPLICATE_DISTANCE,
  found with the HNSW index on ``phash_bits``) become :class:`NearDuplicate` rows for review;
- a record without an image is stored as metadata only and never clears an existing image;
- a record whose image fails: an existing row is left exactly as it is; a new record with real
  metadata is stored with status ``image_failed``; a plain file without metadata is only an error;
- every failure is a JobError with a readable reason and a payload that re-runs that one item
  (see :mod:`archive.importers.retry`).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from django.conf import settings
from django.db import DatabaseError, connection, models
from django.utils import timezone

from archive import images
from archive.dates import parse_date
from archive.models import Artwork, Job, JobError, NearDuplicate
from archive.vectors import VectorSpace, copy_rows, nearest, to_literal
from workers import jobs

log = logging.getLogger(__name__)

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
PHASH_SPACE = VectorSpace(table="archive_artwork", model_column="status", vector_column="phash_bits")


@dataclass
class Record:
    """One artwork as read from a source."""

    source: str
    source_id: str
    fields: dict[str, Any] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)  # locations to try in order (path or URL)
    has_metadata: bool = True  # False for a plain file found in a folder
    item: str = ""  # how an operator finds it: 'metadata.csv row 12', a path, a URL

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


@dataclass
class ImportSettings:
    sizes: tuple[int, ...]
    media_root: Path
    limits: images.ImageLimits
    workers: int
    near_distance: int
    batch_size: int = 64
    metadata_batch_size: int = 1000  # records per batch when they carry no image

    @classmethod
    def from_settings(cls, **overrides) -> "ImportSettings":
        values = dict(
            sizes=tuple(settings.DERIVATIVE_SIZES),
            media_root=Path(settings.MEDIA_ROOT),
            limits=images.ImageLimits.from_settings(),
            workers=max(1, int(getattr(settings, "INGEST_WORKERS", os.cpu_count() or 1))),
            near_distance=int(settings.NEAR_DUPLICATE_DISTANCE),
        )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass
class ImageOutcome:
    ok: bool
    location: str = ""
    sha256: str = ""
    phash: int | None = None
    width: int | None = None
    height: int | None = None
    reused: bool = False  # unchanged image of an existing row: nothing decoded
    reason: str = ""
    detail: str = ""


@dataclass
class Stats:
    done: int = 0
    failed: int = 0
    created: int = 0
    updated: int = 0
    duplicates: int = 0
    near_duplicates: int = 0
    image_failed_rows: int = 0
    seconds: dict = field(default_factory=dict)  # where the main thread spent its time

    def timed(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - since
        return now


# --- image work (runs in the thread pool: no database access here) --------------------------------

def ingest_image(locations: list[str], known: tuple | None, cfg: ImportSettings) -> ImageOutcome:
    """Read the first location that exists, hash it and write its derivatives.

    ``known`` is ``(sha256, width, height, phash)`` of the existing row: when the bytes are
    unchanged and the derivatives are on disk, nothing is decoded (fast idempotent re-import).
    """
    reasons = []
    for location in locations:
        try:
            data = images.read_bytes(location, cfg.limits)
        except images.ImageRejected as exc:
            reasons.append(str(exc))
            continue
        try:
            sha = hashlib.sha256(data).hexdigest()
            if known and known[0] == sha and known[3] is not None and images.derivatives_exist(sha, cfg.sizes, cfg.media_root):
                return ImageOutcome(True, location, sha, known[3], known[1], known[2], reused=True)
            result = images.ingest_bytes(data, cfg.sizes, cfg.media_root, cfg.limits, sha256=sha)
            return ImageOutcome(True, location, result.sha256, result.phash, result.width, result.height)
        except images.ImageRejected as exc:
            return ImageOutcome(False, location, reason=str(exc))
        except MemoryError:
            return ImageOutcome(False, location, reason="not enough memory to decode this image")
        except OSError as exc:  # decoding errors are ImageRejected; this is the derivatives' disk
            return ImageOutcome(
                False, location, reason=f"cannot write the derivatives under {cfg.media_root}: {exc.strerror or exc}",
                detail=jobs.describe_exception(exc)[1],
            )
        except Exception as exc:  # a decoder bug must not abort the import
            reason, detail = jobs.describe_exception(exc)
            return ImageOutcome(False, location, reason=f"unexpected error while decoding: {reason}", detail=detail)
    if not locations:
        return ImageOutcome(False, reason="no image location")
    return ImageOutcome(False, locations[0], reason="; ".join(dict.fromkeys(reasons)))


# --- cleaning values for the database -------------------------------------------------------------

def _clean_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        value = "; ".join(_clean_text(v) for v in value if v not in (None, ""))
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


def _clean_year(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        year = int(float(value))
    except (TypeError, ValueError):
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
    start = _clean_year(fields["year_start"]) if fields.get("year_start") not in (None, "") else dates.start
    end = _clean_year(fields["year_end"]) if fields.get("year_end") not in (None, "") else dates.end
    if start is not None and end is not None and end < start:
        start, end = end, start
    values["year_start"], values["year_end"] = start, end
    values["metadata"] = metadata
    return values


# --- the batch loop -------------------------------------------------------------------------------

def _batches(stream: Iterable[Record | RecordError], cfg: ImportSettings) -> Iterator[list[Record | RecordError]]:
    batch: list[Record | RecordError] = []
    with_images = 0
    for item in stream:
        batch.append(item)
        if isinstance(item, Record) and item.images:
            with_images += 1
        if with_images >= cfg.batch_size or len(batch) >= cfg.metadata_batch_size:
            yield batch
            batch, with_images = [], 0
    if batch:
        yield batch


def _existing(batch: list[Record | RecordError]) -> dict[tuple[str, str], tuple]:
    keys: dict[str, list[str]] = {}
    for item in batch:
        if isinstance(item, Record):
            keys.setdefault(item.source, []).append(item.source_id)
    found = {}
    for source, ids in keys.items():
        for row in Artwork.objects.filter(source=source, source_id__in=ids).values_list(
            "source", "source_id", "id", "sha256", "status", "width", "height", "phash"
        ):
            found[(row[0], row[1])] = row[2:]
    return found


def _wait_if_paused(job: Job) -> None:
    while jobs.current_state(job) == Job.State.PAUSED:
        time.sleep(1.0)
    jobs.check_cancelled(job)


def run(
    job: Job,
    stream: Iterable[Record | RecordError],
    *,
    cfg: ImportSettings | None = None,
    total: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    finish: bool = True,
    tick: Callable[[], None] | None = None,
) -> Stats:
    """Import a stream of records into the archive, recording progress and errors on ``job``.

    ``progress(done, failed)`` is called after each batch is written; ``tick()`` (from a decoding
    thread) as each image is done, for a progress bar that moves between batches."""
    cfg = cfg or ImportSettings.from_settings()
    jobs.start_job(job, total=total)
    stats = Stats()
    pool = ThreadPoolExecutor(max_workers=cfg.workers, thread_name_prefix="ingest")
    pending = None
    try:
        for batch in _batches(stream, cfg):
            t = time.perf_counter()
            _wait_if_paused(job)
            existing = _existing(batch)
            t = stats.timed("lookup existing", t)
            futures: list[Future | None] = []
            for item in batch:
                if isinstance(item, Record) and item.images:
                    row = existing.get((item.source, item.source_id))
                    known = (row[1], row[3], row[4], row[5]) if row and row[2] in ("ok", "duplicate") else None
                    future = pool.submit(ingest_image, list(item.images), known, cfg)
                    if tick is not None:
                        future.add_done_callback(lambda _f: tick())
                    futures.append(future)
                else:
                    futures.append(None)
            if pending is not None:
                _write_batch(job, *pending, cfg, stats, progress)
            pending = (batch, futures, existing)
        if pending is not None:
            _write_batch(job, *pending, cfg, stats, progress)
            pending = None
    except jobs.JobCancelled:
        for future in pending[1] if pending else []:
            if future is not None:
                future.cancel()
        jobs.finish_job(job, state=Job.State.CANCELLED, message=_summary(stats) + " (cancelled)")
        raise
    except BaseException as exc:
        reason, _ = jobs.describe_exception(exc)
        jobs.finish_job(job, state=Job.State.FAILED, message=f"stopped: {reason}; {_summary(stats)}")
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if finish:
        jobs.finish_job(job, message=_summary(stats))
    return stats


def _summary(stats: Stats) -> str:
    parts = [f"{stats.done} imported", f"{stats.failed} failed"]
    if stats.duplicates:
        parts.append(f"{stats.duplicates} exact duplicates linked")
    if stats.near_duplicates:
        parts.append(f"{stats.near_duplicates} near-duplicates flagged")
    return ", ".join(parts)


def _error(item: str, reason: str, *, detail: str = "", payload: dict | None = None, artwork_id: int | None = None) -> JobError:
    return JobError(item=str(item)[:10_000], reason=reason, detail=detail, payload=payload or {}, artwork_id=artwork_id)


def _write_batch(job, batch, futures, existing, cfg: ImportSettings, stats: Stats, progress) -> None:
    errors: list[JobError] = []
    with_image: dict[tuple[str, str], tuple[Record, ImageOutcome]] = {}
    meta_only: dict[tuple[str, str], Record] = {}
    failed_new: dict[tuple[str, str], tuple[Record, ImageOutcome]] = {}
    failed_existing: list[tuple[Record, ImageOutcome, int]] = []

    t = time.perf_counter()
    for future in futures:
        if future is not None:
            future.result()
    t = stats.timed("waiting for images", t)
    for item, future in zip(batch, futures):
        if isinstance(item, RecordError):
            errors.append(_error(item.item, item.reason, detail=item.detail, payload=item.payload))
            continue
        key = (item.source, item.source_id)
        # The same id twice in one batch: the later record wins, as it would across batches.
        for group in (with_image, meta_only, failed_new):
            group.pop(key, None)
        if future is None:
            meta_only[key] = item
            continue
        outcome: ImageOutcome = future.result()
        if outcome.ok:
            with_image[key] = (item, outcome)
        elif key in existing:
            failed_existing.append((item, outcome, existing[key][0]))
        elif item.has_metadata:
            failed_new[key] = (item, outcome)
        else:
            errors.append(_error(outcome.location or item.label, outcome.reason, detail=outcome.detail, payload=item.payload()))

    now = timezone.now()
    written = _upsert(with_image, meta_only, failed_new, now, errors, stats)
    t = stats.timed("upsert", t)

    for item, outcome, artwork_id in failed_existing:
        errors.append(
            _error(outcome.location or item.label, outcome.reason, detail=outcome.detail, payload=item.payload(), artwork_id=artwork_id)
        )
    for key, (item, outcome) in failed_new.items():
        artwork_id = written.get(key)
        if artwork_id is not None:
            stats.image_failed_rows += 1
        errors.append(
            _error(outcome.location or item.label, outcome.reason, detail=outcome.detail, payload=item.payload(), artwork_id=artwork_id)
        )

    image_rows = {written[k]: (k, o) for k, (_, o) in with_image.items() if written.get(k) is not None}
    if image_rows:
        _link_exact_duplicates(image_rows, stats)
        changed = [
            aid for aid, (key, outcome) in image_rows.items()
            if key not in existing or existing[key][1] != outcome.sha256 or existing[key][2] not in ("ok", "duplicate")
        ]
        t = stats.timed("exact duplicates", t)
        _flag_near_duplicates(changed, cfg, stats)
        t = stats.timed("near duplicates", t)

    for key in written:
        if key in existing:
            stats.updated += 1
        else:
            stats.created += 1
    done = sum(1 for k in written if k not in failed_new)
    if errors:
        jobs.record_errors(job, errors)
    stats.done += done
    t = stats.timed("errors", t)
    stats.failed += len(errors)
    jobs.record_progress(job, done=done, failed=len(errors))
    if progress:
        progress(done, len(errors))
    stats.timed("progress", t)


_COLUMNS = [
    f for f in Artwork._meta.concrete_fields if not f.primary_key and not isinstance(f, models.GeneratedField)
]
_COLUMN_NAMES = [f.column for f in _COLUMNS]
_COLUMN_OF = {f.name: f.column for f in _COLUMNS}
_DEFAULTS = {f.name: f.get_default() for f in _COLUMNS}


def _row(record: Record, values: dict, now) -> tuple:
    """One COPY row for archive_artwork: every column, defaults where the record says nothing."""
    values = {**_DEFAULTS, **values, "source": record.source, "source_id": record.source_id, "created_at": now, "updated_at": now}
    out = []
    for f in _COLUMNS:
        value = values.get(f.name)
        if f.name == "duplicate_of":
            value = value.pk if isinstance(value, Artwork) else value
        elif f.name == "metadata":
            value = json.dumps(value, ensure_ascii=False)
        elif f.name == "phash_bits" and value is not None:
            value = to_literal(value)
        out.append(value)
    return tuple(out)


def _copy(rows: list[tuple], update_fields: list[str]) -> None:
    copy_rows(
        Artwork._meta.db_table, _COLUMN_NAMES, rows,
        conflict=["source", "source_id"], update=[_COLUMN_OF[name] for name in update_fields],
    )


def _upsert(with_image, meta_only, failed_new, now, errors: list[JobError], stats: Stats) -> dict[tuple[str, str], int | None]:
    """Upsert the three groups with COPY; returns {(source, source_id): id} of the rows written
    (ids only for rows that need them: those with an image and new image_failed rows)."""
    image_rows = []
    for key, (record, outcome) in with_image.items():
        values = artwork_values(record)
        values.update(
            original_location=outcome.location, sha256=outcome.sha256, phash=outcome.phash,
            phash_bits=images.phash_bits(outcome.phash), width=outcome.width, height=outcome.height,
            status=Artwork.Status.OK, image_error="", duplicate_of=None,
        )
        image_rows.append((record, _row(record, values, now)))
    meta_rows = [(record, _row(record, artwork_values(record), now)) for record in meta_only.values()]
    for key, (record, outcome) in failed_new.items():
        values = artwork_values(record)
        values.update(status=Artwork.Status.IMAGE_FAILED, image_error=outcome.reason[:2000], original_location=outcome.location)
        meta_rows.append((record, _row(record, values, now)))

    written: dict[tuple[str, str], int | None] = {}
    for group, update_fields in (
        (image_rows, META_FIELDS + IMAGE_FIELDS + ["updated_at"]),
        (meta_rows, META_FIELDS + ["updated_at"]),
    ):
        if not group:
            continue
        try:
            _copy([row for _, row in group], update_fields)
            ok = [record for record, _ in group]
        except DatabaseError:
            # One bad value must not lose the batch: write row by row and report the rows that fail.
            ok = []
            for record, row in group:
                try:
                    _copy([row], update_fields)
                    ok.append(record)
                except DatabaseError as exc:
                    reason, detail = jobs.describe_exception(exc)
                    errors.append(_error(record.label, f"the database refused this record: {reason}", detail=detail, payload=record.payload()))
                    failed_new.pop((record.source, record.source_id), None)
        for record in ok:
            written[(record.source, record.source_id)] = None
    need_ids = [k for k in written if k in with_image or k in failed_new]
    by_source: dict[str, list[str]] = {}
    for source, source_id in need_ids:
        by_source.setdefault(source, []).append(source_id)
    for source, ids in by_source.items():
        for pk, source_id in Artwork.objects.filter(source=source, source_id__in=ids).values_list("id", "source_id"):
            written[(source, source_id)] = pk
    return written


def _link_exact_duplicates(image_rows: dict[int, tuple], stats: Stats) -> None:
    """Rows whose sha256 is already in the archive point at the earliest such artwork."""
    shas = sorted({outcome.sha256 for _, outcome in image_rows.values()})
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH canon AS (
                SELECT sha256, min(id) AS cid FROM archive_artwork
                WHERE sha256 = ANY(%s) AND status IN ('ok', 'duplicate') GROUP BY sha256
            )
            UPDATE archive_artwork a
               SET status = CASE WHEN a.id = canon.cid THEN 'ok' ELSE 'duplicate' END,
                   duplicate_of_id = CASE WHEN a.id = canon.cid THEN NULL ELSE canon.cid END
              FROM canon
             WHERE a.sha256 = canon.sha256 AND a.id = ANY(%s) AND a.id <> canon.cid
            RETURNING a.id
            """,
            [shas, list(image_rows)],
        )
        duplicate_ids = {row[0] for row in cursor.fetchall()}
    stats.duplicates += len(duplicate_ids)
    for aid in duplicate_ids:
        image_rows.pop(aid, None)


def _flag_near_duplicates(artwork_ids: list[int], cfg: ImportSettings, stats: Stats) -> None:
    """Flag pairs within the Hamming-distance threshold, found with the HNSW index on phash_bits."""
    if not artwork_ids or cfg.near_distance < 0:
        return
    rows = Artwork.objects.filter(id__in=artwork_ids, status=Artwork.Status.OK).values_list("id", "phash", "sha256")
    pairs = []
    for aid, phash, sha in rows:
        if phash is None:
            continue
        neighbours = nearest(
            PHASH_SPACE, "ok", images.phash_bits(phash), dim=64, limit=10, metric="l2", ef_search=80,
            where="id <> %s AND sha256 <> %s", params=[aid, sha], columns=("phash",),
        )
        for other_id, _l2, other_phash in neighbours:
            if other_phash is None:
                continue
            distance = images.hamming(phash, other_phash)
            if distance <= cfg.near_distance:
                a, b = max(aid, other_id), min(aid, other_id)
                pairs.append(NearDuplicate(artwork_id=a, other_id=b, distance=distance))
    unique = {(p.artwork_id, p.other_id): p for p in pairs}
    if unique:
        known = set(
            NearDuplicate.objects.filter(artwork_id__in={a for a, _ in unique}).values_list("artwork_id", "other_id")
        )
        fresh = [p for key, p in unique.items() if key not in known]
        NearDuplicate.objects.bulk_create(fresh, ignore_conflicts=True)
        stats.near_duplicates += len(fresh)


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
