"""Import one batch of records: images decoded in threads, rows written with bulk upserts.

:func:`ingest` takes a batch's items (records and the errors the source met while reading them).
The batch is written in chunks of ``write_size`` images: while the main thread writes chunk *N*
(one COPY upsert keyed on ``(source, source_id)``, :mod:`archive.importers.upsert`; duplicate checks), the images of chunk *N+1*
are read, hashed, decoded and turned into derivatives in a thread pool (Pillow and hashlib release
the GIL). It returns the ids of the artworks written and an :class:`~workers.jobs.ItemError`
per failed item; the job machinery records both with the batch (``workers.jobs.complete_batch``).

Rules the write applies:
- a record whose image ingests is stored with status ``ok``, or ``duplicate`` when the same bytes
  are already in the archive (see :mod:`archive.importers.duplicates`);
- a record without an image is stored as metadata only and never clears an existing image;
- a record whose image fails: an existing row is left exactly as it is; a new record with real
  metadata is stored with status ``image_failed``; a plain file without metadata is only an error;
- every failure carries a payload that re-runs that one item (see :mod:`workers.ingest.retry_source`).
"""
from __future__ import annotations

import hashlib
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterator

from django.utils import timezone

from archive import images
from archive.importers import duplicates, policy, upsert
from archive.importers.base import ImportSettings, Record, RecordError, Stats
from archive.models import Artwork
from archive.storage import StoreUnavailable
from workers.jobs import ItemError, describe_exception


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


# --- image work (runs in the thread pool: no database access here) --------------------------------

def ingest_image(locations: list[str], known: tuple | None, cfg: ImportSettings, roots: list[str] | None = None) -> ImageOutcome:
    """Read the first location that exists, hash it and write its derivatives.

    Each location passes the source policy of its record first (``roots``: local files only inside
    them, else only http(s) URLs; :mod:`archive.importers.policy`); a refused one is a recorded reason.

    ``known`` is ``(sha256, width, height, phash)`` of the existing row: when the bytes are
    unchanged and the derivatives are on disk, nothing is decoded (fast idempotent re-import).
    """
    reasons = []
    rule = policy.SourcePolicy(roots)
    for location in locations:
        try:
            location = rule.check(location)
            data = images.read_bytes(location, cfg.limits)
        except (images.ImageRejected, policy.Refused) as exc:
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
        except StoreUnavailable:
            raise  # the derivatives' store is away: the batch is retried, the record is not failed
        except OSError as exc:  # decoding errors are ImageRejected; this is the derivatives' disk
            return ImageOutcome(
                False, location, reason=f"cannot write the derivatives under {cfg.media_root}: {exc.strerror or exc}",
                detail=describe_exception(exc)[1],
            )
        except Exception as exc:  # a decoder bug must not abort the import
            reason, detail = describe_exception(exc)
            return ImageOutcome(False, location, reason=f"unexpected error while decoding: {reason}", detail=detail)
    if not locations:
        return ImageOutcome(False, reason="no image location")
    return ImageOutcome(False, locations[0], reason="; ".join(dict.fromkeys(reasons)))


# --- the batch ------------------------------------------------------------------------------------

@dataclass
class BatchOutcome:
    done: list[int]  # ids of the artworks written
    errors: list[ItemError]


def ingest(
    items: list[Record | RecordError], cfg: ImportSettings, stats: Stats, *, tick: Callable[[], None] | None = None
) -> BatchOutcome:
    """Import one batch's items. ``tick()`` is called (from a decoding thread) as each image is done."""
    outcome = BatchOutcome(done=[], errors=[])
    pool = ThreadPoolExecutor(max_workers=cfg.workers, thread_name_prefix="ingest")
    pending = None
    try:
        for chunk in _chunks(items, cfg.write_size):
            t = time.perf_counter()
            existing = _existing(chunk)
            stats.timed("lookup existing", t)
            futures: list[Future | None] = []
            for item in chunk:
                if isinstance(item, Record) and item.images:
                    row = existing.get((item.source, item.source_id))
                    known = (row[1], row[3], row[4], row[5]) if row and row[2] in ("ok", "duplicate") else None
                    future = pool.submit(ingest_image, list(item.images), known, cfg, item.roots)
                    if tick is not None:
                        future.add_done_callback(lambda _f: tick())
                    futures.append(future)
                else:
                    futures.append(None)
            if pending is not None:
                _write(*pending, cfg, stats, outcome)
            pending = (chunk, futures, existing)
        if pending is not None:
            _write(*pending, cfg, stats, outcome)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return outcome


def _chunks(items: list[Record | RecordError], write_size: int) -> Iterator[list[Record | RecordError]]:
    chunk: list[Record | RecordError] = []
    with_images = 0
    for item in items:
        chunk.append(item)
        if isinstance(item, Record) and item.images:
            with_images += 1
        if with_images >= write_size:
            yield chunk
            chunk, with_images = [], 0
    if chunk:
        yield chunk


def _existing(chunk: list[Record | RecordError]) -> dict[tuple[str, str], tuple]:
    keys: dict[str, list[str]] = {}
    for item in chunk:
        if isinstance(item, Record):
            keys.setdefault(item.source, []).append(item.source_id)
    found = {}
    for source, ids in keys.items():
        for row in Artwork.objects.filter(source=source, source_id__in=ids).values_list(
            "source", "source_id", "id", "sha256", "status", "width", "height", "phash"
        ):
            found[(row[0], row[1])] = row[2:]
    return found


def _where(record: Record, result: ImageOutcome) -> str:
    """The item of an image error: the file or URL, or the record when it had several to try."""
    if len(record.images) > 1 or not result.location:
        return record.label
    return result.location


def _error(item: str, reason: str, *, detail: str = "", payload: dict | None = None, artwork_id: int | None = None) -> ItemError:
    return ItemError(artwork_id, reason, detail, item=str(item)[:10_000], payload=payload or {})


def _write(chunk, futures, existing, cfg: ImportSettings, stats: Stats, outcome: BatchOutcome) -> None:
    errors = outcome.errors
    with_image: dict[tuple[str, str], tuple[Record, ImageOutcome]] = {}
    meta_only: dict[tuple[str, str], Record] = {}
    failed_new: dict[tuple[str, str], tuple[Record, ImageOutcome]] = {}
    failed_existing: list[tuple[Record, ImageOutcome, int]] = []

    t = time.perf_counter()
    for future in futures:
        if future is not None:
            future.result()
    t = stats.timed("waiting for images", t)
    before = len(errors)
    for item, future in zip(chunk, futures):
        if isinstance(item, RecordError):
            errors.append(_error(item.item, item.reason, detail=item.detail, payload=item.payload))
            continue
        key = (item.source, item.source_id)
        # The same id twice in one chunk: the later record wins, as it would across chunks.
        for group in (with_image, meta_only, failed_new):
            group.pop(key, None)
        if future is None:
            meta_only[key] = item
            continue
        result: ImageOutcome = future.result()
        if result.ok:
            with_image[key] = (item, result)
        elif key in existing:
            failed_existing.append((item, result, existing[key][0]))
        elif item.has_metadata:
            failed_new[key] = (item, result)
        else:
            errors.append(_error(_where(item, result), result.reason, detail=result.detail, payload=item.payload()))

    written, refused = upsert.upsert(with_image, meta_only, failed_new, timezone.now())
    for refusal in refused:
        errors.append(_error(refusal.record.label, f"the database refused this record: {refusal.reason}",
                             detail=refusal.detail, payload=refusal.record.payload()))
    t = stats.timed("upsert", t)

    for item, result, artwork_id in failed_existing:
        errors.append(_error(_where(item, result), result.reason, detail=result.detail, payload=item.payload(), artwork_id=artwork_id))
    for key, (item, result) in failed_new.items():
        artwork_id = written.get(key)
        if artwork_id is not None:
            stats.image_failed_rows += 1
        errors.append(_error(_where(item, result), result.reason, detail=result.detail, payload=item.payload(), artwork_id=artwork_id))

    image_rows = {written[k]: (k, o) for k, (_, o) in with_image.items() if written.get(k) is not None}
    if image_rows:
        linked = duplicates.link_exact_duplicates({aid: o.sha256 for aid, (_, o) in image_rows.items()})
        stats.duplicates += len(linked)
        changed = [
            aid for aid, (key, result) in image_rows.items()
            if aid not in linked
            and (key not in existing or existing[key][1] != result.sha256 or existing[key][2] not in ("ok", "duplicate"))
        ]
        t = stats.timed("exact duplicates", t)
        stats.near_duplicates += duplicates.flag_near_duplicates(changed, cfg.near_distance)
        t = stats.timed("near duplicates", t)

    for key in written:
        if key in existing:
            stats.updated += 1
        else:
            stats.created += 1
    done = [pk for key, pk in written.items() if key not in failed_new and pk is not None]
    outcome.done.extend(done)
    stats.done += len(done)
    stats.failed += len(errors) - before
    stats.timed("errors", t)
