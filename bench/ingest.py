"""Ingest benchmark: images/s of the importer against a bare Pillow loop, and peak memory of a
100k-row metadata import.

    .venv/bin/python bench/ingest.py [--rows 100000] [--keep]

- Imports the real artwork folders (../shared/data/artworks/aic-artwall and culturecraft: their
  metadata plus 587 images) into a fresh temporary MEDIA_ROOT and a dedicated database
  ``bench_ingest`` (created and dropped on the same PostgreSQL server), and prints images/s.
- "Bare" = a single process, single thread loop over the same files: ``Image.open(path)``,
  ``im.load()``, ``im.thumbnail((512, 512))``, nothing written. It runs before and after the import
  and the mean is used, so the ratio compares like with like on a shared, noisy machine.
  ratio = importer images/s / bare images/s; target >= 0.75.
- Generates a 100k-row metadata CSV (no images) and imports it with ``manage.py import`` in a
  subprocess; prints that process's peak RSS (ru_maxrss); target < 300 MB.
Ends with ``BENCH ingest ratio=<r> target=0.75 PASS|FAIL``.
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("MUSEUM_SHARED_DATA", ROOT.parent / "shared" / "data"))
DB_NAME = "bench_ingest"
RATIO_TARGET = 0.75
RSS_TARGET_MB = 300


def server_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from museum.embedded_pg import database_url

    return database_url(ROOT)


def with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def admin_execute(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(with_db(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql)


def image_files() -> list[Path]:
    files = []
    for folder in (SHARED / "artworks" / "aic-artwall" / "images", SHARED / "artworks" / "culturecraft" / "images"):
        files.extend(sorted(folder.glob("*.jpg")))
    return files


def _decode_thumbnail(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        im.thumbnail((512, 512))


def bare_loop(files: list[Path], threads: int = 1) -> float:
    """images/s of open + load + thumbnail(512), in one thread or a pool of ``threads``."""
    from concurrent.futures import ThreadPoolExecutor

    start = time.perf_counter()
    if threads == 1:
        for path in files:
            _decode_thumbnail(path)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(_decode_thumbnail, files))
    return len(files) / (time.perf_counter() - start)


# Runs a command and prints its own peak RSS (kB): one measurement per import, not the maximum
# over every child this benchmark ever started.
_RSS_WRAPPER = (
    "import resource, subprocess, sys; "
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)"
)


def import_peak_rss(csv_path: Path) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit code) of ``manage.py import CSV`` in a fresh process."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _RSS_WRAPPER, sys.executable, str(ROOT / "manage.py"), "import", str(csv_path),
         "--mapping", "generic", "--verbosity", "0"],
        env=env, cwd=ROOT, capture_output=True, text=True,
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-2000:])
    lines = proc.stdout.strip().splitlines()
    peak_mb = int(lines[-1]) / 1024 if lines and lines[-1].isdigit() else float("nan")
    return elapsed, peak_mb, proc.returncode


def write_csv(path: Path, rows: int) -> None:
    rng = random.Random(1)
    words = "portrait landscape river harbour saint madonna still life flowers horse battle study sketch night".split()
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "title", "creator", "date", "medium", "classification", "description"])
        for i in range(rows):
            year = rng.randint(1300, 1990)
            writer.writerow([
                f"obj-{i:07d}", " ".join(rng.choices(words, k=4)).title(), f"Artist {rng.randint(1, 5000)}",
                rng.choice([str(year), f"c. {year}", f"{year}-{(year + 5) % 100:02d}", f"{year // 100 + 1}th century"]),
                rng.choice(["Oil on canvas", "Watercolour on paper", "Etching", "Bronze"]),
                rng.choice(["Painting", "Print", "Drawing", "Sculpture"]),
                " ".join(rng.choices(words, k=20)),
            ])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the bench database and media afterwards")
    args = parser.parse_args()

    files = image_files()
    if not files:
        print(f"no images under {SHARED}/artworks: the real data is missing")
        print("BENCH ingest ratio=0 target=0.75 FAIL")
        return 1

    base_url = server_url()
    admin_execute(base_url, f"DROP DATABASE IF EXISTS {DB_NAME}")
    admin_execute(base_url, f"CREATE DATABASE {DB_NAME}")
    work = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    media = work / "media"
    media.mkdir()
    os.environ["DATABASE_URL"] = with_db(base_url, DB_NAME)
    os.environ["MEDIA_ROOT"] = str(media)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "museum.settings")
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", verbosity=0, interactive=False)
        from workers.ingest.launch import import_location
        from archive.models import Artwork

        print(f"machine: {os.cpu_count()} CPU cores; INGEST_WORKERS={settings.INGEST_WORKERS}; images: {len(files)} JPEGs")
        for path in files:  # warm the page cache so both loops read from memory
            path.read_bytes()

        bare_before = bare_loop(files)
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        imported = 0
        seconds: dict[str, float] = {}
        for folder in (SHARED / "artworks" / "aic-artwall", SHARED / "artworks" / "culturecraft"):
            job, stats = import_location(str(folder))
            imported += stats.done
            for key, value in stats.seconds.items():
                seconds[key] = seconds.get(key, 0.0) + value
            if stats.failed:
                print(f"  {folder.name}: {stats.failed} failures: {job.message}")
        elapsed = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu_import = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        bare_cpu0 = time.process_time()
        bare_after = bare_loop(files)
        bare_cpu = time.process_time() - bare_cpu0
        bare_threads = bare_loop(files, threads=settings.INGEST_WORKERS)
        with_images = Artwork.objects.exclude(sha256="").count()
        rate = with_images / elapsed
        bare = (bare_before + bare_after) / 2
        ratio = rate / bare
        print(f"bare Pillow loop (1 process, 1 thread: open, load, thumbnail to 512): "
              f"{bare_before:.1f} / {bare_after:.1f} images/s (before / after), mean {bare:.1f}")
        print(f"importer: {with_images} images + metadata in {elapsed:.2f}s = {rate:.1f} images/s "
              f"(derivatives {settings.DERIVATIVE_SIZES}, sha256, phash, duplicate checks, DB upserts)")
        print(f"ratio importer/bare = {ratio:.2f}")
        print(f"(for comparison: the bare loop in {settings.INGEST_WORKERS} threads, as many as the importer decodes with: "
              f"{bare_threads:.1f} images/s, importer/that = {rate / bare_threads:.2f})")
        print("importer main thread: " + ", ".join(f"{k} {v:.1f}s" for k, v in sorted(seconds.items(), key=lambda kv: -kv[1]))
              + f", other (reading records) {elapsed - sum(seconds.values()):.1f}s")
        print(f"CPU time (this process; the server's is not counted): importer {1000 * cpu_import / with_images:.1f} ms/image "
              f"over {elapsed:.1f}s wall = {cpu_import / elapsed:.2f} cores busy; bare {1000 * bare_cpu / len(files):.1f} ms/image; "
              f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

        # Re-import: nothing changed, so nothing is decoded.
        t0 = time.perf_counter()
        for folder in (SHARED / "artworks" / "aic-artwall", SHARED / "artworks" / "culturecraft"):
            import_location(str(folder))
        print(f"idempotent re-import of the same {with_images} records: {with_images / (time.perf_counter() - t0):.1f} records/s")

        # Peak memory of a metadata import must not grow with its size (streamed, batched): a small
        # and a large CSV, each imported alone in a fresh process.
        small_rows = max(1, args.rows // 10)
        peaks = {}
        for n in (small_rows, args.rows):
            csv_path = work / f"metadata_{n}.csv"
            write_csv(csv_path, n)
            connections.close_all()
            before = Artwork.objects.filter(source__startswith="metadata:").count()
            csv_elapsed, peaks[n], code = import_peak_rss(csv_path)
            rows = Artwork.objects.filter(source__startswith="metadata:").count() - before
            print(f"metadata CSV: {rows} of {n} new rows in {csv_elapsed:.1f}s = {rows / csv_elapsed:.0f} rows/s "
                  f"(subprocess incl. startup; file {csv_path.stat().st_size / 1e6:.1f} MB), peak RSS {peaks[n]:.0f} MB")
            Artwork.objects.filter(source__startswith="metadata:").delete()
        peak_mb = peaks[args.rows]
        flat = peak_mb <= peaks[small_rows] * 1.1 + 32
        print(f"peak RSS {peaks[small_rows]:.0f} MB at {small_rows} rows, {peak_mb:.0f} MB at {args.rows} rows: "
              f"{'flat' if flat else 'GROWS with the import'} (limit: +10% +32 MB)")
        rss_ok = peak_mb < RSS_TARGET_MB and flat and code == 0
        print(f"BENCH ingest_rss peak_mb={peak_mb:.0f} target={RSS_TARGET_MB} {'PASS' if rss_ok else 'FAIL'}")
        print(f"BENCH ingest ratio={ratio:.2f} target={RATIO_TARGET} {'PASS' if ratio >= RATIO_TARGET else 'FAIL'}")
        return 0
    except Exception:
        import traceback

        traceback.print_exc()
        print(f"BENCH ingest ratio=0 target={RATIO_TARGET} FAIL")
        return 1
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:
            pass
        if not args.keep:
            admin_execute(base_url, f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
