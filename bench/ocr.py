#!/usr/bin/env python
"""OCR benchmark: an OCR job over real images against Tesseract called directly on them.

Ingests (once) ``--n`` real images from ../shared/data (the 320 culturecraft 1024 px crops, then
aic-artwall paintings) into a dedicated database ``bench_ocr`` with its own media folder, then:

* pipeline: one OCR job (``workers.jobs.launch("ocr")``, mode reset, its batches run in this
  process as eager tasks): each derivative read through the store, both Tesseract passes
  (:func:`workers.ocr.engine.read_image`), the filters, the COPY upsert, the job's bookkeeping;
* bare: the same Tesseract work with nothing around it: the ``tesseract`` command called in one
  loop on the same images, prepared beforehand outside the timing (the greyscale derivative, and
  for images with text regions the same region image the stage reads in its second pass).

One core: OMP_THREAD_LIMIT=1 for every Tesseract process. Seconds per image are wall time; CPU
time (this process and its Tesseract children) is printed beside it. The ratio is
pipeline throughput / bare throughput (target >= 0.9).

Usage: nice -n 10 .venv/bin/python bench/ocr.py [--n 500] [--reference]
  --reference also times plain ``tesseract`` on the derivative JPEGs as they are (one pass, colour).
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["OMP_THREAD_LIMIT"] = "1"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import bench_url, log  # noqa: E402

DB_NAME = "bench_ocr"
SHARED = Path(os.environ.get("MUSEUM_SHARED_DATA", ROOT.parent / "shared" / "data"))
TARGET = 0.9


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def image_files(n: int) -> list[Path]:
    culturecraft = sorted((SHARED / "artworks" / "culturecraft" / "images").glob("*.jpg"), key=lambda p: int(p.stem))
    aic = sorted((SHARED / "artworks" / "aic-artwall" / "images").glob("*.jpg"))
    return (culturecraft + aic)[:n]


def ingest(files: list[Path]) -> list[int]:
    from django.conf import settings

    from archive.images import ImageLimits, ingest_location
    from archive.models import Artwork

    ids = []
    for path in files:
        source_id = f"{path.parent.parent.name}/{path.stem}"
        art = Artwork.objects.filter(source="bench-ocr", source_id=source_id).first()
        if art is None:
            image = ingest_location(str(path), settings.DERIVATIVE_SIZES, None, ImageLimits.from_settings())
            art = Artwork.objects.create(
                source="bench-ocr", source_id=source_id, title=path.stem, sha256=image.sha256, phash=image.phash,
                width=image.width, height=image.height, status=Artwork.Status.OK, original_location=str(path),
            )
        ids.append(art.pk)
    return ids


def run_pipeline() -> tuple[float, float, object]:
    import workers.jobs.tasks  # noqa: F401 - loaded when a worker starts, not per job: not timed
    import workers.pipeline  # noqa: F401
    from workers import jobs
    from workers.celery import app

    app.conf.task_always_eager = True  # the batches run here, one after another, as their tasks
    wall, cpu = time.perf_counter(), cpu_seconds()
    job = jobs.launch("ocr", {}, mode="reset")
    job.refresh_from_db()
    return time.perf_counter() - wall, cpu_seconds() - cpu, job


def prepare_bare(ids: list[int], folder: Path) -> list[tuple[Path, Path | None]]:
    """The greyscale derivative and, where the stage's second pass runs, its region image."""
    from archive.images import load_derivative
    from archive.models import Artwork
    from workers.ocr import engine, stage

    out = []
    for art in Artwork.objects.filter(pk__in=ids).order_by("pk"):
        grey = load_derivative(art.sha256, stage.DERIVATIVE_SIZE).convert("L")
        grey_path = folder / f"{art.pk}.png"
        grey.save(grey_path)
        masked, regions = engine.text_regions(grey)
        masked_path = None
        if regions:
            masked_path = folder / f"{art.pk}_regions.png"
            masked.save(masked_path)
        out.append((grey_path, masked_path))
    return out


def tesseract(path: Path, psm: int, lang: str) -> None:
    subprocess.run(["tesseract", str(path), "stdout", "-l", lang, "--psm", str(psm), "tsv"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_bare(prepared, lang: str) -> tuple[float, float]:
    from workers.ocr import engine

    wall, cpu = time.perf_counter(), cpu_seconds()
    for grey_path, masked_path in prepared:
        tesseract(grey_path, engine.PSM, lang)
        if masked_path is not None:
            tesseract(masked_path, engine.REGION_PSM, lang)
    return time.perf_counter() - wall, cpu_seconds() - cpu


def run_reference(ids: list[int], lang: str) -> tuple[float, float]:
    from archive.images import derivative_path
    from archive.models import Artwork

    paths = [derivative_path(a.sha256, 1024) for a in Artwork.objects.filter(pk__in=ids).order_by("pk")]
    wall, cpu = time.perf_counter(), cpu_seconds()
    for path in paths:
        tesseract(path, 3, lang)
    return time.perf_counter() - wall, cpu_seconds() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500, help="images (default 500)")
    parser.add_argument("--reference", action="store_true", help="also time plain tesseract on the derivative JPEGs")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = bench_url(DB_NAME)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "museum.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["MEDIA_ROOT"] = str(ROOT / "var" / "bench_ocr_media")
    os.environ["OCR_AFTER_IMPORT"] = "false"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from archive.models import ArtworkText
    from workers.ocr import engine

    call_command("migrate", verbosity=0)
    engine.check_languages(settings.OCR_LANGUAGES)
    files = image_files(args.n)
    if len(files) < args.n:
        log(f"only {len(files)} images under {SHARED}")
    t = time.perf_counter()
    ids = ingest(files)
    log(f"{len(ids)} artworks ready ({time.perf_counter() - t:.1f} s to ingest the missing ones); tesseract {engine.version()}, "
        f"languages {settings.OCR_LANGUAGES}, OMP_THREAD_LIMIT=1")

    wall_p, cpu_p, job = run_pipeline()
    rows = ArtworkText.objects.filter(artwork_id__in=ids)
    with_text = rows.filter(word_count__gt=0).count()
    words = sum(rows.values_list("word_count", flat=True))
    log(f"pipeline: job {job.pk} {job.state}, {job.done} done, {job.failed} failed, {wall_p:.1f} s wall "
        f"({wall_p / len(ids):.3f} s/image), {cpu_p:.1f} s CPU ({cpu_p / len(ids):.3f} s/image); "
        f"{with_text} images with text, {words} words kept")
    with tempfile.TemporaryDirectory() as folder:
        prepared = prepare_bare(ids, Path(folder))
        second = sum(1 for _, masked in prepared if masked is not None)
        wall_b, cpu_b = run_bare(prepared, settings.OCR_LANGUAGES)
    log(f"bare: tesseract on the same {len(prepared)} images ({second} with a second, region pass): {wall_b:.1f} s wall "
        f"({wall_b / len(prepared):.3f} s/image), {cpu_b:.1f} s CPU ({cpu_b / len(prepared):.3f} s/image)")
    if args.reference:
        wall_r, cpu_r = run_reference(ids, settings.OCR_LANGUAGES)
        log(f"reference: one plain tesseract pass on each colour derivative JPEG: {wall_r / len(ids):.3f} s/image wall, "
            f"{cpu_r / len(ids):.3f} s/image CPU")
    ratio = wall_b / wall_p
    log(f"pipeline/bare throughput: {ratio:.3f} wall, {cpu_b / cpu_p:.3f} CPU")
    print(f"BENCH ocr pipeline_over_bare={ratio:.3f} target={TARGET} {'PASS' if ratio >= TARGET else 'FAIL'} "
          f"(n={len(ids)}, {wall_p / len(ids):.2f} s/image on one core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
