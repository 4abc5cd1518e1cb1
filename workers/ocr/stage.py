"""The OCR stage: the text in each artwork's image (``Job.Kind.OCR``, queue "ocr").

For one batch of artwork ids, :func:`process` reads each artwork's 1024 px derivative through the
storage seam, runs Tesseract on it (:mod:`workers.ocr.engine`) in the job's languages, keeps the
legible words (confidence >= OCR_MIN_CONFIDENCE, no single characters or texture) and, where the
original is larger, also reads the original's small lettering (text regions lower than
OCR_SMALL_TEXT_PX in the derivative) at up to OCR_ORIGINAL_SIDE pixels. One
:class:`~archive.models.ArtworkText` row per artwork and engine is upserted in one COPY per batch
(an artwork without text gets an empty row, so it is not read again). Boxes are stored in the
full image's pixels. One unreadable image is an error on that artwork; the batch goes on.
"""
from __future__ import annotations

import json
import logging

from django.conf import settings
from django.utils import timezone
from PIL import Image

from archive import vectors
from archive.images import ImageLimits, ImageRejected, load_derivative, open_image, read_bytes
from archive.models import Artwork, ArtworkText
from workers.jobs import BatchResult, ItemError, Stage, StopJob

from . import engine

log = logging.getLogger(__name__)

DERIVATIVE_SIZE = 1024


def languages_of(params: dict) -> str:
    return params.get("languages") or settings.OCR_LANGUAGES


def prepare(params: dict) -> dict:
    """Refuse the job unless Tesseract and its languages are installed (the message says which
    packages to install)."""
    languages = engine.check_languages(languages_of(params))
    min_conf = float(params.get("min_confidence", settings.OCR_MIN_CONFIDENCE))
    if not 0 <= min_conf <= 100:
        raise ValueError(f"min_confidence must be between 0 and 100, not {min_conf}")
    return {**params, "languages": languages, "min_confidence": min_conf, "engine_version": engine.version()}


def candidates(params: dict):
    """Artworks with an ingested image (exact duplicates share their original's text)."""
    return Artwork.objects.filter(status=Artwork.Status.OK).exclude(sha256="").values_list("pk", flat=True)


def completed(params: dict):
    return ArtworkText.objects.filter(engine=engine.ENGINE, languages=languages_of(params)).values_list("artwork_id", flat=True)


def reset(params: dict) -> None:
    ArtworkText.objects.filter(engine=engine.ENGINE).delete()


class Reading:
    """The kept words of one image, in full-image pixels, and what was read."""

    def __init__(self, words: list[engine.Word], read_size: int, source: str):
        self.words, self.read_size, self.source = words, read_size, source


def read_artwork(artwork: Artwork, languages: str, min_conf: float) -> Reading:
    """OCR of one artwork: the 1024 px derivative; where the original is larger, also the
    original's small text (lettering too small to read in the derivative)."""
    image = load_derivative(artwork.sha256, DERIVATIVE_SIZE)
    full_width = artwork.width or image.width
    kept = engine.keep(engine.read_image(image, languages), min_conf)
    words = engine.to_full_image(kept, full_width / image.width)
    reading = Reading(words, max(image.size), "derivative")
    if full_width > image.width * 1.25 and artwork.original_location and settings.OCR_ORIGINAL_SIDE > max(image.size):
        small = _small_text_of_original(artwork, languages, min_conf, full_width, image.width)
        if small:
            merged = engine.merge(words, small)
            if len(merged) > len(words):
                reading = Reading(merged, settings.OCR_ORIGINAL_SIDE, "original")
    return reading


def _small_text_of_original(artwork: Artwork, languages: str, min_conf: float, full_width: int, derivative_width: int) -> list[engine.Word]:
    """The words in the original's text regions that are small in the derivative (lower than
    OCR_SMALL_TEXT_PX there), read at up to OCR_ORIGINAL_SIDE pixels, in full-image pixels.
    Regions only: the original at full size costs many times the derivative."""
    limits = ImageLimits.from_settings()
    side = settings.OCR_ORIGINAL_SIDE
    try:
        image, _size, _fmt, _frames, _mode = open_image(read_bytes(artwork.original_location, limits), limits, want=side)
    except (ImageRejected, OSError) as exc:
        log.info("artwork %s: original not read for OCR (%s); keeping the derivative's text", artwork.pk, exc)
        return []
    if max(image.size) > side:
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
    small_below = int(settings.OCR_SMALL_TEXT_PX * image.width / derivative_width)
    words = engine.read_regions(image.convert("L"), languages, max_height=small_below)
    return engine.to_full_image(engine.keep(words, min_conf), full_width / image.width)


def process(ids: list[int], params: dict) -> BatchResult:
    if "engine_version" not in params:
        params = prepare(params)
    languages, min_conf = params["languages"], params["min_confidence"]
    try:
        engine.check_languages(languages)
    except engine.EngineMissing as exc:  # installed at launch, missing on this worker
        raise StopJob(f"{exc} on this worker") from None
    result = BatchResult()
    rows = []
    now = timezone.now()
    words_total = 0
    artworks = Artwork.objects.in_bulk(ids)
    for artwork_id in ids:
        artwork = artworks.get(artwork_id)
        if artwork is None:
            result.errors.append(ItemError(artwork_id, "artwork no longer exists"))
            continue
        if not artwork.has_image:
            result.errors.append(ItemError(artwork_id, f"no image to read text in (status {artwork.status})"))
            continue
        try:
            reading = read_artwork(artwork, languages, min_conf)
        except FileNotFoundError as exc:
            result.errors.append(ItemError(artwork_id, "image derivative missing; re-import the artwork", str(exc)))
            continue
        except (OSError, ValueError, RuntimeError, engine.pytesseract.TesseractError) as exc:
            result.errors.append(ItemError(artwork_id, f"OCR failed: {exc.__class__.__name__}", str(exc)[:500]))
            continue
        words = reading.words
        words_total += len(words)
        rows.append((
            artwork_id, engine.ENGINE, params["engine_version"], languages, engine.as_text(words),
            json.dumps([w.as_dict() for w in words]), len(words), reading.read_size, reading.source, now,
        ))
        result.done.append(artwork_id)
    if rows:
        vectors.copy_rows(
            "archive_artworktext",
            ["artwork_id", "engine", "engine_version", "languages", "text", "words", "word_count", "read_size", "source", "computed_at"],
            rows, conflict=["artwork_id", "engine"],
            update=["engine_version", "languages", "text", "words", "word_count", "read_size", "source", "computed_at"],
        )
    result.summary = {"read": len(rows), "words": words_total, "with_text": sum(1 for r in rows if r[6])}
    return result


def after_import(job) -> str | None:
    """The pipeline's step after an import job, when OCR_AFTER_IMPORT is on: an OCR job over the
    artworks without text read (not when the import ingested nothing, Tesseract is missing, or
    one is already running)."""
    from archive.models import Job
    from workers.jobs import launch

    if not settings.OCR_AFTER_IMPORT or not job.done:
        return None
    running = Job.objects.filter(kind=Job.Kind.OCR).exclude(state__in=Job.FINAL_STATES).first()
    if running is not None:
        return f"text in images: job {running.pk} is already reading it"
    try:
        engine.check_languages(settings.OCR_LANGUAGES)
    except (engine.EngineMissing, ValueError) as exc:
        return f"text in images not read: {exc}"
    started = launch("ocr", {}, mode="missing")
    if not started.total:
        return None
    return f"text in images of {started.total} artworks: job {started.pk}"


STAGE = Stage(
    kind="ocr",
    queue="ocr",
    description="Text in images (OCR)",
    batch_size=64,
    candidates=candidates,
    completed=completed,
    reset=reset,
    process=process,
    prepare=prepare,
)
