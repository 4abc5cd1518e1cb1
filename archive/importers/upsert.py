"""Write import records into ``archive_artwork`` with COPY upserts keyed on ``(source, source_id)``.

One bad value never loses a group: when a COPY is refused, the group is written row by row and
the rows the database refuses are returned as :class:`Refusal` (with the reason), for the caller
to record as the import's errors.
"""
from __future__ import annotations

import json
import traceback
from dataclasses import dataclass

import psycopg
from django.db import DatabaseError, models

from archive import images
from archive.models import Artwork
from archive.vectors import copy_rows, to_literal

from .base import IMAGE_FIELDS, META_FIELDS, Record, artwork_values

# What a refused row raises: Django's wrapped errors, psycopg's own (COPY is not wrapped), bad text.
WRITE_ERRORS = (DatabaseError, psycopg.Error, UnicodeEncodeError, ValueError)


@dataclass(frozen=True)
class Refusal:
    record: Record
    reason: str
    detail: str


_COLUMNS = [
    f for f in Artwork._meta.concrete_fields if not f.primary_key and not isinstance(f, models.GeneratedField)
]
_COLUMN_NAMES = [f.column for f in _COLUMNS]
_COLUMN_OF = {f.name: f.column for f in _COLUMNS}
_DEFAULTS = {f.name: f.get_default() for f in _COLUMNS}


def as_row(record: Record, values: dict, now) -> tuple:
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


def copy(rows: list[tuple], update_fields: list[str]) -> None:
    copy_rows(
        Artwork._meta.db_table, _COLUMN_NAMES, rows,
        conflict=["source", "source_id"], update=[_COLUMN_OF[name] for name in update_fields],
    )


def upsert(with_image: dict, meta_only: dict, failed_new: dict, now) -> tuple[dict[tuple[str, str], int | None], list[Refusal]]:
    """Upsert the three groups with COPY: records whose image ingested (``with_image``: key ->
    (record, image outcome)), records without an image (``meta_only``) and new records whose image
    failed (``failed_new``, dropped from it when refused). Returns ({(source, source_id): id} of the
    rows written, the rows refused)."""
    refused: list[Refusal] = []
    image_rows = []
    for key, (record, result) in with_image.items():
        values = artwork_values(record)
        values.update(
            original_location=result.location, sha256=result.sha256, phash=result.phash,
            phash_bits=images.phash_bits(result.phash), width=result.width, height=result.height,
            status=Artwork.Status.OK, image_error="", duplicate_of=None,
        )
        image_rows.append((record, as_row(record, values, now)))
    meta_rows = [(record, as_row(record, artwork_values(record), now)) for record in meta_only.values()]
    for key, (record, result) in failed_new.items():
        values = artwork_values(record)
        values.update(status=Artwork.Status.IMAGE_FAILED, image_error=result.reason[:2000], original_location=result.location)
        meta_rows.append((record, as_row(record, values, now)))

    written: dict[tuple[str, str], int | None] = {}
    for group, update_fields in (
        (image_rows, META_FIELDS + IMAGE_FIELDS + ["updated_at"]),
        (meta_rows, META_FIELDS + ["updated_at"]),
    ):
        if not group:
            continue
        try:
            copy([row for _, row in group], update_fields)
            ok = [record for record, _ in group]
        except WRITE_ERRORS:
            # One bad value must not lose the batch: write row by row and report the rows that fail.
            ok = []
            for record, row in group:
                try:
                    copy([row], update_fields)
                    ok.append(record)
                except WRITE_ERRORS as exc:
                    refused.append(Refusal(record, f"{exc.__class__.__name__}: {exc}"[:500], "".join(traceback.format_exception(exc))))
                    failed_new.pop((record.source, record.source_id), None)
        for record in ok:
            written[(record.source, record.source_id)] = None
    by_source: dict[str, list[str]] = {}
    for source, source_id in written:
        by_source.setdefault(source, []).append(source_id)
    for source, ids in by_source.items():
        for pk, source_id in Artwork.objects.filter(source=source, source_id__in=ids).values_list("id", "source_id"):
            written[(source, source_id)] = pk
    return written, refused
