"""Benchmark: top-k zero-shot labels for 1M artworks, scored on CPU and written to PostgreSQL.

    .venv/bin/python bench/label.py                 # 1,000,000 embeddings (target: <= 5 min, RSS < 2 GB)
    .venv/bin/python bench/label.py --n 100000      # a smaller trial
    .venv/bin/python bench/label.py --keep-indexes  # load into the fully indexed table instead

What it does, end to end, with the production code (workers.labeling.scoring.LabelScorer and
archive.vectors.copy_arrays):
  * synthetic artwork embeddings: random normalised float32 512-d vectors, generated chunk by
    chunk (never all in memory, not stored as embedding rows);
  * the label matrix: one random normalised 512-d vector per vocabulary label (the real
    vocabulary's size when workers.vocabulary is installed, else 4,500; there are no real CLIP
    weights on this machine, so the vectors are random either way);
  * top-20 per artwork (matrix product + torch.topk, chunks of --max-rows rows), rows built with
    numpy and written with a binary COPY into archive_artworklabel.
The rows go into a dedicated database ``bench_label`` on the same PostgreSQL server, created from
the project's migrations (same columns and indexes as production). Its ArtworkLabel foreign keys
are DROPPED there (no 1M stub artworks / 4,500 labels needed); the unique constraint, the primary
key and the indexes are kept. By default they are dropped before the load and rebuilt after it
(both timed); --keep-indexes loads with them in place. The database is dropped at the end unless
--keep-db.
"""
from __future__ import annotations

import argparse
import os
import queue
import resource
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import admin_exec, fresh_database  # noqa: E402
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "museum.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import psutil  # noqa: E402
from django.db import connection  # noqa: E402

from archive.vectors import copy_arrays  # noqa: E402
from workers.labeling.scoring import LabelScorer, normalise_rows, rows_for  # noqa: E402
from workers.labeling.store import write_top_k  # noqa: E402

DB = "bench_label"
TABLE = "archive_artworklabel"
TARGET_S = 300.0
TARGET_RSS_MB = 2048.0


def vocabulary_size() -> tuple[int, str]:
    try:
        from workers.vocabulary import load_labels

        n = len(list(load_labels()))
        if n >= 4000:
            return n, f"the vocabulary's {n} labels (random vectors: no real CLIP weights here)"
        return 4500, f"4,500 random label vectors (the vocabulary has only {n} labels)"
    except ImportError:
        return 4500, "4,500 random label vectors (workers.vocabulary not installed yet)"




def create_bench_db() -> None:
    fresh_database(DB)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'", [TABLE]
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'ALTER TABLE {TABLE} DROP CONSTRAINT "{name}"')


def drop_indexes() -> list[str]:
    """Drop the table's constraints and indexes; return the statements that recreate them."""
    statements = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid), conindid FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('p', 'u')",
            [TABLE],
        )
        constraints = cursor.fetchall()
        backing = {row[2] for row in constraints}
        cursor.execute(
            "SELECT indexrelid, pg_get_indexdef(indexrelid), indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass",
            [TABLE],
        )
        indexes = [row for row in cursor.fetchall() if row[0] not in backing]
        for name, definition, _ in constraints:
            cursor.execute(f'ALTER TABLE {TABLE} DROP CONSTRAINT "{name}"')
            statements.append(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')
        for _, definition, name in indexes:
            cursor.execute(f"DROP INDEX {name}")
            statements.append(definition)
    return statements


def embedding_chunks(n: int, dim: int, chunk: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        yield np.arange(start + 1, start + m + 1, dtype=np.int64), normalise_rows(rng.standard_normal((m, dim), dtype=np.float32))


class Peak:
    """Peak resident memory of this process, sampled every 0.2 s (plus the kernel's high-water mark)."""

    def __init__(self):
        self.proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return max(self.peak, maxrss_kb * 1024) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="artwork embeddings (default 1,000,000)")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--labels", type=int, default=0, help="label count (default: the vocabulary's, else 4,500)")
    parser.add_argument("--chunk", type=int, default=16384, help="embeddings generated per chunk")
    parser.add_argument("--max-rows", type=int, default=4096, help="rows per matrix product / top-k")
    parser.add_argument("--method", choices=["torch", "numpy"], default="torch", help="top-k: torch.topk or numpy.argpartition")
    parser.add_argument("--keep-indexes", action="store_true", help="load with the indexes in place")
    parser.add_argument("--upsert", action="store_true", help="write like the label stage (delete + COPY into a temp table + "
                        "INSERT ... ON CONFLICT); implies --keep-indexes")
    parser.add_argument("--no-write", action="store_true", help="score only, write nothing")
    parser.add_argument("--keep-db", action="store_true", help=f"leave the {DB} database in place")
    args = parser.parse_args()
    args.keep_indexes = args.keep_indexes or args.upsert

    n_labels, label_note = (args.labels, f"{args.labels} random label vectors") if args.labels else vocabulary_size()
    rng = np.random.default_rng(42)
    labels = normalise_rows(rng.standard_normal((n_labels, args.dim), dtype=np.float32))
    label_ids = np.arange(1, n_labels + 1, dtype=np.int64)
    scorer = LabelScorer(labels, args.k, max_rows=args.max_rows, method=args.method)
    import torch

    print(f"labels: {label_note}; n={args.n:,} dim={args.dim} k={args.k} chunk={args.chunk} max_rows={args.max_rows} "
          f"method={args.method} torch threads={torch.get_num_threads()}", flush=True)

    recreate: list[str] = []
    if not args.no_write:
        t = time.perf_counter()
        create_bench_db()
        if not args.keep_indexes:
            recreate = drop_indexes()
        print(f"database {DB}: migrated, ArtworkLabel foreign keys dropped, "
              f"{'indexes kept' if args.keep_indexes else f'{len(recreate)} indexes/constraints dropped for the load'} "
              f"({time.perf_counter() - t:.1f}s, not timed)", flush=True)

    load_start = os.getloadavg()[0]
    cpu_start = resource.getrusage(resource.RUSAGE_SELF)
    peak = Peak()
    timings = {"generate": 0.0, "score": 0.0, "copy": 0.0}
    written = 0
    # The COPY of chunk i runs in a writer thread while chunk i+1 is scored (PostgreSQL parses the
    # COPY in its own process, so the two overlap on 2 cores).
    pending: queue.Queue = queue.Queue(maxsize=2)
    failure: list[BaseException] = []

    def writer():
        nonlocal written
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET synchronous_commit = off")
            while (item := pending.get()) is not None:
                t = time.perf_counter()
                if args.upsert:
                    written += write_top_k(1, *item)  # the label stage's path: delete + COPY upsert
                else:
                    ids, idx, vals = item[0], item[2], item[3]
                    columns = rows_for(ids, label_ids, idx, vals)
                    columns["model_id"] = np.ones(len(columns["rank"]), dtype=np.int64)
                    written += copy_arrays(TABLE, columns)
                timings["copy"] += time.perf_counter() - t
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failure.append(exc)
            while pending.get() is not None:
                pass
        finally:
            connection.close()

    if not args.no_write:
        # the writer thread gets its own connection (Django connections are per thread)
        thread_settings = connection.settings_dict
        writer_thread = threading.Thread(target=lambda: (connection.settings_dict.update(NAME=thread_settings["NAME"]), writer()))
        writer_thread.start()

    start = time.perf_counter()
    last_report = start
    chunks = embedding_chunks(args.n, args.dim, args.chunk)
    scored = 0
    while True:
        t = time.perf_counter()
        item = next(chunks, None)
        timings["generate"] += time.perf_counter() - t
        if item is None:
            break
        t = time.perf_counter()
        results = list(scorer.score_chunks([item]))
        timings["score"] += time.perf_counter() - t
        if not args.no_write:
            for ids, idx, vals in results:
                pending.put((ids, label_ids, idx, vals))
        scored += len(item[0])
        if failure:
            break
        if time.perf_counter() - last_report > 15:
            last_report = time.perf_counter()
            el = last_report - start
            print(f"  {scored:,}/{args.n:,} scored, {written:,} rows written, {el:.0f}s, rss {psutil.Process().memory_info().rss / 2**20:.0f} MB", flush=True)
    if not args.no_write:
        pending.put(None)
        writer_thread.join()
    if failure:
        raise failure[0]
    load_s = time.perf_counter() - start

    index_s = 0.0
    if recreate:
        t = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '512MB'")
            for statement in recreate:
                s = time.perf_counter()
                cursor.execute(statement)
                print(f"  {time.perf_counter() - s:6.1f}s  {statement[:110]}", flush=True)
        index_s = time.perf_counter() - t
    total_s = load_s + index_s
    rss_mb = peak.stop()

    rows = 0
    size = ""
    if not args.no_write:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*), pg_size_pretty(pg_total_relation_size('{TABLE}')) FROM {TABLE}")
            rows, size = cursor.fetchone()
        if rows != args.n * min(args.k, n_labels):
            raise SystemExit(f"expected {args.n * args.k} rows, found {rows}")

    scored_per_s = args.n / max(timings["score"], 1e-9)
    print(f"\nscored {args.n:,} artworks x {n_labels:,} labels: matmul+top-k {timings['score']:.1f}s "
          f"({scored_per_s:,.0f} artworks/s); generating the synthetic embeddings {timings['generate']:.1f}s")
    if not args.no_write:
        how = "delete + COPY upsert (stage path)" if args.upsert else "binary COPY"
        print(f"wrote {rows:,} rows ({size} with indexes): {how} {timings['copy']:.1f}s in the writer thread "
              f"({rows / max(timings['copy'], 1e-9):,.0f} rows/s), overlapped with scoring")
        print(f"load (score + COPY, overlapped) {load_s:.1f}s; index/constraint rebuild {index_s:.1f}s")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = usage.ru_utime + usage.ru_stime - cpu_start.ru_utime - cpu_start.ru_stime
    print(f"CPU time of this process while timed {cpu_s:.0f}s (2 cores: {total_s * 2:.0f} core-seconds of wall time); "
          f"load average at start {load_start:.1f}, at end {os.getloadavg()[0]:.1f} (machine shared with other work)")
    print(f"end to end {total_s:.1f}s; peak RSS of this process {rss_mb:.0f} MB (the PostgreSQL server's memory is not included)")

    if not args.no_write and not args.keep_db:
        connection.close()
        admin_exec(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")

    ok = total_s <= TARGET_S * args.n / 1_000_000 and rss_mb < TARGET_RSS_MB
    scale = "" if args.n == 1_000_000 else f"_n{args.n}"
    print(f"peak_rss_mb={rss_mb:.0f} target<{TARGET_RSS_MB:.0f}")
    print(f"BENCH label end_to_end_s{scale}={total_s:.1f} target={TARGET_S * args.n / 1_000_000:.0f} {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
