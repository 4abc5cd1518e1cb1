"""Benchmark: the Iconclass rows derived from mapped labels (archive.iconclass_rows), per label batch
and for a whole model.

    .venv/bin/python bench/iconclass.py               # 100,000 artworks x top-20 (2M rows)
    .venv/bin/python bench/iconclass.py --n 20000     # a smaller trial

Setup (not timed): a dedicated database ``bench_iconclass`` from the project's migrations, the
real vocabulary (5,743 labels, 1,332 with a notation) and the real Iconclass subjects (2,264, with
parents) loaded by the production loaders; ``--n`` artworks with 20 label rows each (labels drawn
at random, scores uniform in [0, 1)), written with a binary COPY. Every label gets threshold
``--threshold`` (default 0.75: a quarter of the top-k rows shown, about one mapped label per
artwork, more than the derived 95th-percentile thresholds show). The ArtworkLabel and LabelCount
foreign keys to artworks and models are dropped there (no stub artworks needed).

Timed:
  * ``derive(model)`` over the whole model (what ``refresh_label_counts`` and ``load_vocabulary``
    run), with its count refresh;
  * the label stage's batch write (``write_top_k``: delete + COPY upsert + counts) of --batches
    batches of 2,000 artworks, each written twice in alternation: as shipped (deriving the batch's
    Iconclass rows in the same transaction) and with the derivation switched off (the baseline,
    the write as it was before). Metric: median batch time with / without.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import admin_exec, log  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "museum.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

DB = "bench_iconclass"
TARGET_RATIO = 1.5
BATCH = 2000
K = 20


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def create_db() -> None:
    connection.close()
    admin_exec(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    admin_exec(f"CREATE DATABASE {DB}")
    connection.settings_dict["NAME"] = DB
    connection.close()
    call_command("migrate", verbosity=0, skip_checks=True)
    with connection.cursor() as cursor:
        for table, columns in (("archive_artworklabel", ("artwork_id", "model_id")), ("archive_labelcount", ("model_id",))):
            cursor.execute(
                "SELECT c.conname FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)"
                " WHERE c.conrelid = %s::regclass AND c.contype = 'f' AND a.attname = ANY(%s)", [table, list(columns)])
            for (name,) in cursor.fetchall():
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')


def batch_arrays(rng, ids: np.ndarray, n_labels: int):
    idx = np.stack([rng.choice(n_labels, K, replace=False) for _ in ids])
    vals = -np.sort(-rng.random((len(ids), K), dtype=np.float32), axis=1)
    return idx.astype(np.int64), vals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--threshold", type=float, default=0.75)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    from archive import iconclass_rows, label_counts
    from archive.models import Label
    from archive.models.labels import ICONCLASS_GROUP
    from archive.vectors import copy_arrays
    from workers.labeling import store
    from workers.labeling.scoring import rows_for
    from workers.labeling.vocabulary import load_iconclass, load_vocabulary

    t = time.perf_counter()
    create_db()
    load_vocabulary()
    load_iconclass()
    Label.objects.update(threshold=args.threshold)
    vocab = np.array(sorted(Label.objects.exclude(group=ICONCLASS_GROUP).values_list("id", flat=True)), dtype=np.int64)
    mapped = Label.objects.exclude(group=ICONCLASS_GROUP).exclude(notation="").count()
    subjects = Label.objects.filter(group=ICONCLASS_GROUP).count()
    rng = np.random.default_rng(19)
    for start in range(0, args.n, 20_000):
        ids = np.arange(start + 1, min(args.n, start + 20_000) + 1, dtype=np.int64)
        idx, vals = batch_arrays(rng, ids, len(vocab))
        columns = rows_for(ids, vocab, idx, vals)
        columns["model_id"] = np.ones(len(columns["rank"]), dtype=np.int64)
        copy_arrays("archive_artworklabel", columns)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE archive_artworklabel")
        cursor.execute("ANALYZE archive_label")
    label_counts.refresh(1)
    log(f"setup: {args.n:,} artworks x {K} rows, {len(vocab):,} vocabulary labels ({mapped:,} mapped), "
        f"{subjects:,} Iconclass subjects, threshold {args.threshold} ({time.perf_counter() - t:.0f}s, not timed)")

    t, c = time.perf_counter(), cpu()
    rows = iconclass_rows.derive(1)
    full_s, full_cpu = time.perf_counter() - t, cpu() - c
    per_artwork = rows / args.n
    log(f"derive(model): {rows:,} Iconclass rows ({per_artwork:.2f} per artwork) in {full_s:.1f}s wall, "
        f"{full_cpu:.1f}s CPU in this process (the rest is PostgreSQL's)")

    shipped = iconclass_rows.derive
    with_times, without_times = [], []
    for b in range(args.batches):
        ids = np.arange(b * BATCH + 1, (b + 1) * BATCH + 1, dtype=np.int64) % args.n + 1
        for variant in ((True, False) if b % 2 == 0 else (False, True)):
            idx, vals = batch_arrays(rng, ids, len(vocab))
            store.iconclass_rows.derive = shipped if variant else (lambda *a, **k: 0)
            t = time.perf_counter()
            store.write_top_k(1, ids, vocab, idx, vals)
            (with_times if variant else without_times).append(time.perf_counter() - t)
    store.iconclass_rows.derive = shipped
    with_s, without_s = statistics.median(with_times), statistics.median(without_times)
    ratio = with_s / without_s
    log(f"batch of {BATCH:,} artworks: {with_s * 1000:.0f} ms with the Iconclass rows, {without_s * 1000:.0f} ms without "
        f"(medians of {args.batches}); ratio {ratio:.2f}")
    log(f"projection to 1M artworks: derive(model) ~{full_s * 1_000_000 / args.n / 60:.1f} min, "
        f"~{per_artwork * 1_000_000 / 1e6:.1f}M derived rows")

    connection.close()
    if not args.keep_db:
        admin_exec(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    print(f"BENCH iconclass batch_ratio={ratio:.2f} target={TARGET_RATIO} {'PASS' if ratio <= TARGET_RATIO else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
