#!/usr/bin/env python
"""Face vectors as float32 ``vector`` or as ``halfvec``: what 16-bit floats cost and save for faces.

Two parts:

* **real faces**: every face the dlib backend finds in the shared face photos (``faces/photos-deepface``,
  13 people, and ``faces/photos-faceapi``, 8 people) is embedded (128-d float32) and also rounded to
  float16; printed: the largest change of a Euclidean distance between two real faces, whether
  each face's nearest 10 (exact) stay the same, and the same-person accuracy of the nearest other
  face (deepface photos) under both.
* **synthetic faces at scale** (``--sizes``, default 100,000 and 300,000): 128-d vectors drawn
  like dlib descriptors (identities from a Gaussian fitted to the real descriptors, a few faces each
  with the within-person spread of the real ones), written into ``archive_face`` of a dedicated
  database ``bench_face_vectors`` with realistic other columns (5 landmarks, a crop name), the
  face model's HNSW index (the stage's: l2, m 16, ef_construction ``workers.faces.EF_CONSTRUCTION``).
  Measured for ``vector`` and then for the same rows as ``halfvec`` (``ALTER COLUMN ... TYPE``,
  HNSW on ``halfvec_l2_ops``): bytes per face (table, HNSW index), index build seconds, recall@10
  of the doppelganger's kNN (``ef_search`` as ``explorer.doppelganger.service``) against an exact
  float32 ranking (numpy), and look-up latency: wall p50/p95 and the PostgreSQL backend's CPU
  time per query (psutil), since the machine is shared.

Usage: nice -n 10 .venv/bin/python bench/face_vectors.py [--sizes 100000,300000] [--queries 200]
Ends with BENCH lines: the bytes ratio halfvec / vector (target <= 0.8: worth a migration) and
halfvec's recall@10 (target >= 0.97 and within 0.01 of float32's).
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import ServerClock, bench_url, log, pct  # noqa: E402

SHARED = Path(os.environ.get("MUSEUM_SHARED_DATA", ROOT.parent / "shared" / "data"))
DB_NAME = "bench_face_vectors"
DIM = 128
FACES_PER_PERSON = 4


def real_descriptors() -> tuple[np.ndarray, list[str]]:
    """(descriptors, person or '' per face) of every face found in the shared photos."""
    from PIL import Image, ImageOps

    from explorer.doppelganger import service
    from workers.ml.faces import analyse

    backend = service.query_backend()
    people = {}
    with open(SHARED / "faces" / "photos-deepface" / "identities.csv") as fh:
        people = {row["file"]: row["person"] for row in csv.DictReader(fh)}
    paths = sorted((SHARED / "faces" / "photos-deepface").glob("*.jpg")) + sorted((SHARED / "faces" / "photos-faceapi").rglob("*.*"))
    vecs, who = [], []
    for path in paths:
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        with Image.open(path) as im:
            found = analyse(backend, ImageOps.exif_transpose(im).convert("RGB"), max_side=service.QUERY_MAX_SIDE,
                            upsample=service.QUERY_UPSAMPLE, retry_upsample=service.QUERY_RETRY_UPSAMPLE)
        person = people.get(path.name, "") if "deepface" in str(path) else (path.parent.name if path.parent.name != "photos-faceapi" else "")
        if "faceapi" in str(path) and person:
            person = "faceapi-" + person
        for v in found.vectors:
            vecs.append(v)
            # One label only for a photo of one face (group shots: unknown who is who).
            who.append(person if len(found.vectors) == 1 else "")
    return np.asarray(vecs, dtype=np.float32), who


def real_part(X: np.ndarray, who: list[str]) -> dict:
    H = X.astype(np.float16).astype(np.float32)
    D = np.linalg.norm(X[:, None] - X[None], axis=2)
    Dh = np.linalg.norm(H[:, None] - H[None], axis=2)
    change = float(np.max(np.abs(D - Dh)))
    np.fill_diagonal(D, np.inf)
    np.fill_diagonal(Dh, np.inf)
    finite = np.isfinite(D)
    same10 = np.mean([set(np.argsort(D[i])[:10]) == set(np.argsort(Dh[i])[:10]) for i in range(len(X))])
    labelled = [i for i, p in enumerate(who) if p and sum(q == p for q in who) > 1]

    def accuracy(M):
        return float(np.mean([who[int(np.argmin(M[i]))] == who[i] for i in labelled])) if labelled else float("nan")

    return {"faces": len(X), "max_dist_change": change,
            "mean_dist": float(np.mean(D[finite])), "same_top10": float(same10), "labelled": len(labelled),
            "acc_f32": accuracy(D), "acc_f16": accuracy(Dh)}


def synthetic(n: int, X: np.ndarray, who: list[str], seed: int) -> np.ndarray:
    """``n`` 128-d descriptors: identities from a Gaussian fitted to the real faces, each with
    FACES_PER_PERSON faces spread like the real faces of one person around their mean."""
    rng = np.random.default_rng(seed)
    mean, std = X.mean(axis=0), X.std(axis=0)
    spread = []
    for p in set(w for w in who if w):
        members = X[[i for i, w in enumerate(who) if w == p]]
        if len(members) > 1:
            spread.append(members - members.mean(axis=0))
    within = float(np.sqrt(np.mean(np.concatenate(spread) ** 2))) if spread else 0.03
    persons = (n + FACES_PER_PERSON - 1) // FACES_PER_PERSON
    centres = (mean + std * rng.standard_normal((persons, DIM))).astype(np.float32)
    out = np.repeat(centres, FACES_PER_PERSON, axis=0)[:n]
    out += (within * rng.standard_normal((n, DIM))).astype(np.float32)
    return out.astype(np.float32)


def load(matrix: np.ndarray, model: str) -> None:
    from django.db import connection

    from archive import vectors

    n = len(matrix)
    cur = connection.cursor()
    cur.execute("TRUNCATE archive_artwork CASCADE")
    arts = (n + 1) // 2
    cur.execute(
        """INSERT INTO archive_artwork (id, source, source_id, title, creator, display_date, medium, classification,
            institution, rights, rights_url, credit_line, source_url, iiif_manifest_url, iiif_image_service, metadata,
            original_location, sha256, status, image_error, created_at, updated_at)
        SELECT g, 'bench', g::text, 'portrait ' || g, '', '', '', 'painting', 'bench', '', '', '', '', '', '', '{}',
            '', '', 'ok', '', now(), now() FROM generate_series(1, %s) g""", [arts])
    rng = np.random.default_rng(3)
    landmarks = "[[412.3, 288.1], [398.7, 290.4], [341.2, 291.0], [355.9, 292.2], [377.5, 334.8]]"
    for start in range(0, n, 20_000):
        stop = min(n, start + 20_000)
        rows = ([1 + i // 2, model, int(rng.integers(0, 800)), int(rng.integers(0, 800)), 120, 120, landmarks, 0.9,
                 f"faces/{1 + i // 2:07d}/{i:08d}_{model}.jpg", matrix[i], False, "2026-12-01T00:00:00Z"]
                for i in range(start, stop))
        vectors.copy_rows("archive_face", ["artwork_id", "model", "x", "y", "w", "h", "landmarks", "score", "crop", "vector",
                                           "not_a_face", "created_at"], rows)
    cur.execute("VACUUM ANALYZE archive_face")


def build_index(space, model: str) -> tuple[str, float]:
    from django.db import connection

    from archive import vectors
    from workers.faces import EF_CONSTRUCTION

    with connection.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '1GB'")
        cur.execute("SET max_parallel_maintenance_workers = 2")
        t = time.time()
        name = vectors.ensure_hnsw_index(space, model, DIM, metric="l2", ef_construction=EF_CONSTRUCTION)
        return name, time.time() - t


def sizes(index: str, n: int) -> dict:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_table_size('archive_face'), pg_relation_size(%s)", [index])
        table, hnsw = cur.fetchone()
    return {"table": table / n, "hnsw": hnsw / n, "total": (table + hnsw) / n}


def queries(space, model: str, matrix: np.ndarray, count: int, seed: int) -> dict:
    from archive import vectors
    from explorer.doppelganger import service

    rng = np.random.default_rng(seed)
    picks = rng.choice(len(matrix), count, replace=False)
    Q = matrix[picks] + 0.02 * rng.standard_normal((count, DIM)).astype(np.float32)
    k = service.MATCHES * service.OVERFETCH
    clock = ServerClock()

    def ask(q):
        return vectors.nearest(space, model, q, dim=DIM, metric="l2", limit=k, where="not_a_face = false",
                               ef_search=max(service.EF_SEARCH, k), columns=("artwork_id", "crop", "x", "y", "w", "h"))

    ask(Q[0])
    wall, cpu, recall = [], [], []
    for q in Q:
        truth = set((np.argsort(np.linalg.norm(matrix - q, axis=1))[:10] + 1).tolist())
        s0, t0 = clock(), time.perf_counter()
        rows = ask(q)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((clock() - s0) * 1000)
        recall.append(len(truth & {int(r[0]) - first_id for r in rows[:10]}) / 10)
    return {"p50": pct(wall, 50), "p95": pct(wall, 95), "cpu": float(np.mean(cpu)), "recall": float(np.mean(recall))}


first_id = 0


def main() -> int:
    global first_id
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,300000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = bench_url(DB_NAME)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "museum.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from archive import vectors
    from workers.ml.faces import face_model

    call_command("migrate", verbosity=0)
    log(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    X, who = real_descriptors()
    r = real_part(X, who)
    print(f"real faces: {r['faces']} found in the shared photos; mean distance {r['mean_dist']:.3f}, largest change of a "
          f"distance by float16 {r['max_dist_change']:.5f}; same exact top-10 for {100 * r['same_top10']:.1f} % of faces; "
          f"nearest other face is the same person ({r['labelled']} labelled faces): float32 {r['acc_f32']:.3f}, "
          f"float16 {r['acc_f16']:.3f}", flush=True)
    model = face_model()
    half = vectors.VectorSpace(table="archive_face", model_column="model", kind="halfvec")
    results = []
    for n in [int(s) for s in args.sizes.split(",")]:
        log(f"size {n:,}")
        with connection.cursor() as cur:
            cur.execute(f"DROP INDEX IF EXISTS {vectors.index_name(vectors.FACES, model)}")
            cur.execute("ALTER TABLE archive_face ALTER COLUMN vector TYPE vector USING vector::vector")
        matrix = synthetic(n, X, who, args.seed)
        load(matrix, model)
        with connection.cursor() as cur:
            cur.execute("SELECT min(id) FROM archive_face")
            first_id = int(cur.fetchone()[0]) - 1
        out = {}
        for kind, space in (("vector", vectors.FACES), ("halfvec", half)):
            if kind == "halfvec":
                with connection.cursor() as cur:
                    cur.execute(f"DROP INDEX IF EXISTS {vectors.index_name(vectors.FACES, model)}")
                    cur.execute("ALTER TABLE archive_face ALTER COLUMN vector TYPE halfvec USING vector::halfvec")
                    cur.execute("VACUUM ANALYZE archive_face")
            index, build_s = build_index(space, model)
            st = sizes(index, n)
            m = queries(space, model, matrix, args.queries, args.seed)
            out[kind] = (st, m)
            print(f"n={n:,} {kind}: bytes/face table {st['table']:.0f} + HNSW {st['hnsw']:.0f} = {st['total']:.0f}; "
                  f"HNSW build {build_s:.0f}s; look-up p50 {m['p50']:.1f} ms p95 {m['p95']:.1f} ms (server CPU mean "
                  f"{m['cpu']:.2f} ms); recall@10 {m['recall']:.3f}; load {os.getloadavg()[0]:.1f}", flush=True)
        results.append((n, out))
    n, out = results[-1]
    ratio = out["halfvec"][0]["total"] / out["vector"][0]["total"]
    rec_h, rec_f = out["halfvec"][1]["recall"], out["vector"][1]["recall"]
    print(f"BENCH face_vectors halfvec_bytes_ratio_at_{n}={ratio:.3f} target=0.8 {'PASS' if ratio <= 0.8 else 'FAIL'}")
    ok = rec_h >= 0.97 and rec_h >= rec_f - 0.01
    print(f"BENCH face_vectors halfvec_recall10_at_{n}={rec_h:.3f} target=0.97 {'PASS' if ok else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
