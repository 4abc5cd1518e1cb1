"""The palette stage: each artwork's dominant colours (``Job.Kind.PALETTE``).

For one batch of artwork ids, :func:`process` reads each artwork's small derivative through the
storage seam (:func:`archive.images.load_derivative`), finds its PALETTE_SIZE dominant colours
in CIELAB (:func:`archive.colour.palette`, k-means over at most SAMPLE_PIXELS pixels) and
upserts one :class:`~archive.models.ArtworkPalette` row per artwork and method with the
palette's search signature, in one COPY per batch. Re-running replaces rows, never duplicates
them. About 30 ms per artwork on one core (bench/discovery.py): a million works in ~8 core-hours.
"""
from __future__ import annotations

import json
import logging

import numpy as np
from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from archive import colour, palette_indexes, vectors
from archive.images import load_derivative
from archive.models import Artwork, ArtworkPalette
from workers.batch_items import with_images
from workers.jobs import BatchResult, ItemError, Stage, append_message, describe_exception

log = logging.getLogger(__name__)

PALETTES = colour.PALETTES
DERIVATIVE_SIZE = 256
SAMPLE_SIDE = 80  # the derivative is reduced to at most this many pixels a side for k-means
SAMPLE_PIXELS = SAMPLE_SIDE * SAMPLE_SIDE


def ensure_index(method: str = colour.METHOD) -> None:
    """The method's partial HNSW index (cosine), unless the catalogue has it already."""
    if vectors.index_exists(PALETTES, method):
        return
    try:
        with transaction.atomic():
            vectors.ensure_hnsw_index(PALETTES, method, colour.SIGNATURE_DIM, metric="cosine")
    except DatabaseError as exc:  # two workers creating it at once: the other one won
        log.info("palette index for %s is being created by another worker (%s)", method, exc)


def prepare(params: dict) -> dict:
    method = params.get("method") or colour.METHOD
    if method != colour.METHOD:
        raise ValueError(f"unknown palette method {method!r}; this version computes {colour.METHOD!r}")
    ensure_index(method)
    return {**params, "method": method}


def candidates(params: dict):
    """Artworks with an ingested image (exact duplicates share their original's image)."""
    return Artwork.objects.filter(status=Artwork.Status.OK).exclude(sha256="").values_list("pk", flat=True)


def completed(params: dict):
    return ArtworkPalette.objects.filter(method=params.get("method") or colour.METHOD).values_list("artwork_id", flat=True)


def reset(params: dict) -> None:
    ArtworkPalette.objects.filter(method=params.get("method") or colour.METHOD).delete()


def image_palette(sha256: str, *, size: int = DERIVATIVE_SIZE) -> list[dict]:
    """The palette of one derivative (FileNotFoundError when it is missing)."""
    image = load_derivative(sha256, size)
    if image.width * image.height > SAMPLE_PIXELS:
        image.thumbnail((SAMPLE_SIDE, SAMPLE_SIDE))
    return colour.palette(np.asarray(image).reshape(-1, 3))


def process(ids: list[int], params: dict) -> BatchResult:
    params = prepare(params) if "method" not in params else params
    result = BatchResult()
    rows = []
    now = timezone.now()
    for artwork in with_images(ids, result, "take colours from"):
        artwork_id = artwork.pk
        try:
            colours = image_palette(artwork.sha256)
        except FileNotFoundError as exc:
            result.errors.append(ItemError(artwork_id, "image derivative missing; re-import the artwork", str(exc)))
            continue
        except (OSError, ValueError) as exc:
            result.errors.append(ItemError(artwork_id, f"palette failed: {exc.__class__.__name__}", str(exc)))
            continue
        rows.append((artwork_id, params["method"], json.dumps(colours), colour.palette_signature(colours), DERIVATIVE_SIZE, now))
        result.done.append(artwork_id)
    if rows:
        vectors.copy_rows(
            "archive_artworkpalette", ["artwork_id", "method", "colours", "vector", "derivative_size", "computed_at"], rows,
            conflict=["artwork_id", "method"], update=["colours", "vector", "derivative_size", "computed_at"],
        )
    result.summary = {"palettes": len(rows)}
    return result


def finish(job) -> None:
    """After the job, once its transaction has committed: the partial indexes of the buckets of
    palettes that grew into range (per period and classification, :mod:`archive.palette_indexes`)
    built CONCURRENTLY, those that left it dropped."""
    method = job.params.get("method") or colour.METHOD
    transaction.on_commit(lambda: filter_indexes(job, method))


def filter_indexes(job, method: str) -> None:
    """The method's filter indexes brought up to date; a failure is logged and noted on the job
    (search works without them, more slowly; ``manage.py vector_filter_indexes`` runs it again)."""
    try:
        palette_indexes.ensure(method, progress=log.info)
    except Exception as exc:  # noqa: BLE001 - an optional speed-up: reported, never fatal
        log.exception("palette filter indexes of %s", method)
        append_message(job, f"palette filter indexes not built ({describe_exception(exc)[0]}); "
                            "run: manage.py vector_filter_indexes")


def after_import(job) -> str | None:
    """The pipeline's step after an import job: a palette job over the artworks without a palette
    (unless PALETTES_AFTER_IMPORT is off, the import ingested nothing, or one is already running)."""
    from workers.jobs import launch_missing_once

    if not getattr(settings, "PALETTES_AFTER_IMPORT", True) or not job.done:
        return None
    return launch_missing_once("palette", "colour palettes")


STAGE = Stage(
    kind="palette",
    queue="embed",
    description="Colour palettes",
    batch_size=256,
    candidates=candidates,
    completed=completed,
    reset=reset,
    process=process,
    prepare=prepare,
    finish=finish,
)
