"""Doppelganger look-up time at 100k stored faces, on CPU.

Builds a dedicated database ``bench_doppelganger`` on the same PostgreSQL server (dropped at the
end unless --keep) holding real faces (the stage run on real AIC portraits) plus synthetic faces
up to --faces (128-d vectors drawn from a Gaussian fitted to real dlib descriptors, written with
``archive.vectors.copy_rows``), with the model's HNSW index. Then every real face photo of
``faces/photos-deepface`` is sent to POST /api/v1/doppelganger/ through Django's test client (in
process: multipart parsing, decode, detect, embed, kNN, JSON; no network), and the parts are timed
separately as well. Also reports the HNSW recall of the over-fetched neighbours against an exact
scan.

Usage: .venv/bin/python bench/doppelganger.py [--faces 100000] [--keep] [--live [--seconds 20] [--visitors 10]]
With --live it measures the live mirror on the same database instead (bench/doppelganger_live.py:
frames per second per visitor, server time and CPU per frame, in process and under ./run serve)
and ends with: BENCH doppelganger_live cpu_ms_per_frame=<value> target=60 PASS|FAIL (PASS only
when every live target is met; each is printed above it).
The BENCH figure is the p95 over photos of the server time of the first request per photo (wall
clock); the server process's CPU time and the best of 3 requests per photo are printed beside it
(they tell a loaded machine from a slow look-up, but are not the figure).
Ends with: BENCH doppelganger p95_ms=<value> target=300 PASS|FAIL
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("MUSEUM_SHARED_DATA", ROOT.parent / "shared" / "data"))
DB_NAME = "bench_doppelganger"
TARGET_P95_MS = 300
REPEATS = 3
PORTRAITS = ["88372", "88374", "80463", "14594", "42949", "81576", "80450", "16151", "59960", "79789", "86441",
             "59874", "75974", "80540", "59907", "36678", "20556", "16622", "80535", "15698"]


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


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def real_faces() -> list[int]:
    """Ingest the portraits and run the real faces stage on them; returns the artwork ids."""
    from django.conf import settings

    from archive.images import ImageLimits, ingest_location
    from archive.models import Artwork
    from workers.faces import process

    folder = SHARED / "artworks" / "aic-artwall"
    meta = {}
    for coll in (folder / "collections").glob("*/collection.json"):
        for art in json.loads(coll.read_text())["artworks"]:
            meta[str(art["id"])] = art
    ids = []
    for aic_id in PORTRAITS:
        img = ingest_location(str(folder / "images" / f"{aic_id}.jpg"), settings.DERIVATIVE_SIZES, Path(settings.MEDIA_ROOT),
                              ImageLimits.from_settings())
        art = Artwork.objects.create(source="aic", source_id=aic_id, title=meta[aic_id]["title"], creator=meta[aic_id]["artist"],
                                     display_date=meta[aic_id]["date"], sha256=img.sha256, width=img.width, height=img.height,
                                     status=Artwork.Status.OK)
        ids.append(art.pk)
    result = process(ids, {})
    if result.errors:
        print(f"  stage errors: {result.errors}")
    return ids


def photo_descriptors(paths) -> np.ndarray:
    from PIL import Image, ImageOps

    from explorer.doppelganger import service
    from workers.ml.faces import analyse

    backend = service.query_backend()
    out = []
    for path in paths:
        with Image.open(path) as im:
            found = analyse(backend, ImageOps.exif_transpose(im).convert("RGB"), max_side=service.QUERY_MAX_SIDE,
                            upsample=service.QUERY_UPSAMPLE, retry_upsample=service.QUERY_RETRY_UPSAMPLE)
        out.extend(found.vectors)
    return np.asarray(out, dtype=np.float32)


def plant(photos, photo_vecs) -> list[int]:
    """Store each identity photo's descriptor as a face of its own catalogue-only artwork; returns face ids in order."""
    from archive.models import Artwork, Face
    from workers.ml.faces import MODEL_ID

    ids = []
    for path, vec in zip(photos, photo_vecs):
        art = Artwork.objects.create(source="planted", source_id=path.name, title=f"Planted {path.name}")
        ids.append(Face.objects.create(artwork=art, model=MODEL_ID, x=0, y=0, w=1, h=1, vector=vec.tolist()).pk)
    return ids


def synthetic_faces(count: int, mean: np.ndarray, std: np.ndarray, per_artwork: int = 2) -> None:
    """``count`` Face rows on ``count / per_artwork`` catalogue-only artworks, written with COPY."""
    from django.utils import timezone

    from archive import vectors
    from archive.models import Artwork
    from workers.ml.faces import MODEL_ID

    now = timezone.now()
    n_art = (count + per_artwork - 1) // per_artwork
    fields = [f for f in Artwork._meta.concrete_fields if not f.primary_key and not f.generated]

    def art_row(i):
        values = {"source": "synthetic", "source_id": str(i), "title": f"Synthetic portrait {i}", "status": "no_image",
                  "created_at": now, "updated_at": now}
        row = []
        for f in fields:
            v = values.get(f.attname, None if f.null else f.get_default())
            row.append(json.dumps(v) if isinstance(v, (dict, list)) else v)
        return row

    vectors.copy_rows("archive_artwork", [f.column for f in fields], (art_row(i) for i in range(n_art)))
    art_ids = np.asarray(Artwork.objects.filter(source="synthetic").order_by("id").values_list("id", flat=True))
    rng = np.random.default_rng(42)

    def face_rows():
        for i in range(count):
            vec = (mean + std * rng.standard_normal(mean.shape[0])).astype(np.float32)
            yield [int(art_ids[i // per_artwork]), MODEL_ID, 10, 10, 50, 50, "[]", 1.0, "", vec, False, now]

    vectors.copy_rows("archive_face", ["artwork_id", "model", "x", "y", "w", "h", "landmarks", "score", "crop", "vector",
                                       "not_a_face", "created_at"], face_rows())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=100_000, help="faces stored in all (real + synthetic)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database and media afterwards")
    parser.add_argument("--live", action="store_true", help="measure the live mirror instead (bench/doppelganger_live.py)")
    parser.add_argument("--seconds", type=float, default=20, help="--live: seconds each load under ./run serve lasts")
    parser.add_argument("--visitors", type=int, default=10, help="--live: concurrent live visitors")
    parser.add_argument("--workers", type=int, default=2, help="--live: gunicorn worker processes")
    args = parser.parse_args()
    live_figures = None

    p95 = float("inf")  # reported as FAIL if the run breaks before measuring
    base_url = server_url()
    admin_execute(base_url, f"DROP DATABASE IF EXISTS {DB_NAME}")
    admin_execute(base_url, f"CREATE DATABASE {DB_NAME}")
    work = Path(tempfile.mkdtemp(prefix="bench_doppelganger_"))
    os.environ["DATABASE_URL"] = with_db(base_url, DB_NAME)
    os.environ["MEDIA_ROOT"] = str(work / "media")
    os.environ["DOPPELGANGER_RATE"] = "100000/minute"
    os.environ["DOPPELGANGER_LIVE_RATE"] = "100000/second"  # one address sends every frame of the run
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "museum.settings")
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection, connections, transaction
        from django.test import Client

        from archive import vectors
        from archive.models import Face
        from explorer.doppelganger import service
        from workers.faces import ensure_index
        from workers.ml.faces import DIM, MODEL_ID, analyse

        call_command("migrate", verbosity=0, interactive=False)
        print(f"machine: {os.cpu_count()} CPU cores; database {DB_NAME}; query path {service.QUERY_MAX_SIDE}px, "
              f"upsample {service.QUERY_UPSAMPLE} (retry {service.QUERY_RETRY_UPSAMPLE})")

        with open(SHARED / "faces" / "photos-deepface" / "identities.csv", newline="") as handle:
            idrows = list(csv.DictReader(handle))
        photos = [SHARED / "faces" / "photos-deepface" / r["file"] for r in idrows]
        people = [r["person"] for r in idrows]

        t0 = time.perf_counter()
        real_faces()
        n_real = Face.objects.count()
        print(f"real faces from {len(PORTRAITS)} AIC portraits: {n_real} ({time.perf_counter() - t0:.1f}s)")
        photo_vecs = photo_descriptors(photos)
        assert len(photo_vecs) == len(photos), "every identity photo should have exactly one face"
        fit = np.concatenate([photo_vecs, np.stack([vectors.from_value(v) for v in Face.objects.values_list("vector", flat=True)])])
        mean, std = fit.mean(axis=0), fit.std(axis=0)
        planted = plant(photos, photo_vecs)
        # Bulk load without the index (inserting row by row into HNSW is far slower), then build it.
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX IF EXISTS {vectors.index_name(vectors.FACES, MODEL_ID)}")
        t0 = time.perf_counter()
        synthetic_faces(max(0, args.faces - n_real), mean, std)
        print(f"synthetic faces: {args.faces - n_real} written with COPY in {time.perf_counter() - t0:.1f}s")
        t0 = time.perf_counter()
        with connection.cursor() as cursor:  # HNSW builds far faster when the graph fits in memory
            cursor.execute("SET maintenance_work_mem = '1GB'")
        ensure_index(MODEL_ID)
        with connection.cursor() as cursor:
            cursor.execute("RESET maintenance_work_mem")
            cursor.execute("ANALYZE archive_face")
        total = Face.objects.filter(model=MODEL_ID).count()
        print(f"HNSW index on {total} faces built in {time.perf_counter() - t0:.1f}s")
        if args.live:
            from bench import doppelganger_live

            connections.close_all()
            frames = doppelganger_live.make_frames(photos)
            inproc = doppelganger_live.in_process(frames, photos)
            connections.close_all()
            served = doppelganger_live.under_serve(frames, work, args.workers, args.seconds, args.visitors)
            live_figures = doppelganger_live.report(inproc, served, args.visitors, args.workers)
            return 0

        # The request as a whole: multipart upload to the JSON API, in process.
        client = Client()
        blobs = [(p.name, p.read_bytes()) for p in photos]
        for name, data in blobs[:3]:  # warm-up: model load, first queries
            upload = io.BytesIO(data)
            upload.name = name
            client.post("/api/v1/doppelganger/", {"image": upload})
        # Each photo is sent REPEATS times: the first pass is the figure; the best of the passes
        # per photo and the CPU time estimate the time on an unloaded machine (printed beside it).
        request_s, best_s, cpu_s, statuses = [], [], [], {}
        load_before = os.getloadavg()[0]
        for name, data in blobs:
            times = []
            for rep in range(REPEATS):
                upload = io.BytesIO(data)
                upload.name = name
                start, cpu = time.perf_counter(), time.process_time()
                response = client.post("/api/v1/doppelganger/", {"image": upload})
                times.append(time.perf_counter() - start)
                if rep == 0:
                    cpu_s.append(time.process_time() - cpu)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            request_s.append(times[0])
            best_s.append(min(times))
        load_after = os.getloadavg()[0]
        # The parts, on the same photos.
        backend = service.query_backend()
        decode_s, face_s, knn_s, queries = [], [], [], []
        for name, data in blobs:
            a = time.perf_counter()
            photo, _ = service.decode_photo(data)
            b = time.perf_counter()
            found = analyse(backend, photo, max_side=service.QUERY_MAX_SIDE, upsample=service.QUERY_UPSAMPLE,
                            retry_upsample=service.QUERY_RETRY_UPSAMPLE)
            c = time.perf_counter()
            if not found.detections:
                continue
            service.nearest_artwork_faces(found.vectors[0])
            d = time.perf_counter()
            decode_s.append(b - a)
            face_s.append(c - b)
            knn_s.append(d - c)
            queries.append(found.vectors[0])

        # HNSW against an exact scan, for several ef_search values: recall of the 48 over-fetched
        # neighbours, of the 6 artworks shown, and how often the first match is the same.
        rows = list(Face.objects.filter(model=MODEL_ID, not_a_face=False).values_list("id", "artwork_id", "vector"))
        ids_all = np.asarray([r[0] for r in rows])
        arts_all = np.asarray([r[1] for r in rows])
        all_vecs = np.stack([vectors.from_value(r[2]) for r in rows])
        k, shown = service.MATCHES * service.OVERFETCH, service.MATCHES
        exact = []
        for q in queries:
            order = np.argsort(np.linalg.norm(all_vecs - q, axis=1))
            firsts = list(dict.fromkeys(arts_all[order[:k * 4]].tolist()))[:shown]
            exact.append((set(ids_all[order[:k]].tolist()), firsts))
        sweep = []
        for ef in (40, 100, 200, 400):
            r48, r6, top1, spent = [], [], [], []
            for q, (ex_ids, ex_arts) in zip(queries, exact):
                a = time.perf_counter()
                got = vectors.nearest(vectors.FACES, MODEL_ID, q, dim=DIM, metric="l2", limit=k, where="not_a_face = false",
                                      ef_search=max(ef, k), columns=("artwork_id",))
                spent.append(time.perf_counter() - a)
                arts = list(dict.fromkeys(r[2] for r in got))[:shown]
                r48.append(len({r[0] for r in got} & ex_ids) / k)
                r6.append(len(set(arts) & set(ex_arts)) / shown)
                top1.append(bool(arts) and arts[0] == ex_arts[0])
            sweep.append((ef, np.mean(r48), np.mean(r6), np.mean(top1), pct(spent, 50), pct(spent, 95)))
        exact_s = []  # the same query without the index (sequential scan), for comparison
        for q in queries[:20]:
            a = time.perf_counter()
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_indexscan = off")
                cursor.execute(f"SELECT id FROM archive_face WHERE model = %s AND not_a_face = false "
                               f"ORDER BY vector::vector({DIM}) <-> %s::vector LIMIT %s", [MODEL_ID, vectors.to_literal(q), k])
                cursor.fetchall()
            exact_s.append(time.perf_counter() - a)

        print(f"\nrequests: {len(request_s)} photos ({statuses}), {total} faces stored")
        print(f"  load average (1 min) {load_before:.1f} before, {load_after:.1f} after, on {os.cpu_count()} cores")
        print(f"  POST /api/v1/doppelganger/  p50 {pct(request_s, 50):7.1f} ms   p95 {pct(request_s, 95):7.1f} ms   max {pct(request_s, 100):7.1f} ms  (first pass, wall: the BENCH figure)")
        print(f"  extra: CPU time of the server process, first pass  p50 {pct(cpu_s, 50):7.1f} ms   p95 {pct(cpu_s, 95):7.1f} ms")
        print(f"  extra: best of {REPEATS} per photo (wall)  p50 {pct(best_s, 50):7.1f} ms   p95 {pct(best_s, 95):7.1f} ms")
        print(f"  decode (in memory)           p50 {pct(decode_s, 50):7.1f} ms   p95 {pct(decode_s, 95):7.1f} ms")
        print(f"  detect + embed (HOG, dlib)   p50 {pct(face_s, 50):7.1f} ms   p95 {pct(face_s, 95):7.1f} ms")
        print(f"  kNN + one per artwork        p50 {pct(knn_s, 50):7.1f} ms   p95 {pct(knn_s, 95):7.1f} ms")
        # Identification among 100k distractors: every identity photo is also stored as a painted
        # face; each photo's nearest *other* stored face should be the same person.
        face_person = {fid: people[i] for i, fid in enumerate(planted)}
        hnsw_ok = exact_ok = 0
        for i, fid in enumerate(planted):
            got = vectors.nearest(vectors.FACES, MODEL_ID, photo_vecs[i], dim=DIM, metric="l2", limit=1,
                                  where="not_a_face = false AND id <> %s", params=[fid], ef_search=service.EF_SEARCH)
            hnsw_ok += bool(got) and face_person.get(got[0][0]) == people[i]
            dist = np.linalg.norm(all_vecs - photo_vecs[i], axis=1)
            dist[ids_all == fid] = np.inf
            exact_ok += face_person.get(int(ids_all[int(np.argmin(dist))])) == people[i]
        print(f"\nidentification with {total - len(planted)} distractors: top-1 same person {hnsw_ok}/{len(planted)} with HNSW "
              f"(ef_search={service.EF_SEARCH}), {exact_ok}/{len(planted)} with an exact scan")
        print(f"\nHNSW vs exact scan over {len(rows)} faces ({len(queries)} queries; the page uses ef_search={service.EF_SEARCH}):")
        print(f"  {'ef_search':>9} {'recall@48':>9} {'artworks@6':>10} {'same top-1':>10} {'p50 ms':>7} {'p95 ms':>7}")
        for ef, r48, r6, t1, p50, p95_ in sweep:
            print(f"  {ef:>9} {r48:>9.3f} {r6:>10.3f} {t1:>10.3f} {p50:>7.1f} {p95_:>7.1f}")
        print(f"  {'exact':>9} {1:>9.3f} {1:>10.3f} {1:>10.3f} {pct(exact_s, 50):>7.1f} {pct(exact_s, 95):>7.1f}  (sequential scan, no index)")
        p95 = pct(request_s, 95)
        connections.close_all()
    finally:
        if not args.keep:
            try:
                from django.db import connections

                connections.close_all()
            except Exception:  # noqa: BLE001 - Django may not be set up
                pass
            admin_execute(base_url, f"DROP DATABASE IF EXISTS {DB_NAME}")
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        if args.live:
            cpu = live_figures["cpu_ms"] if live_figures else float("inf")
            print(f"BENCH doppelganger_live cpu_ms_per_frame={cpu:.0f} target=60 "
                  f"{'PASS' if live_figures and live_figures['all_pass'] else 'FAIL'}")
    if not args.live:
        print(f"BENCH doppelganger p95_ms={p95:.0f} target={TARGET_P95_MS} {'PASS' if p95 <= TARGET_P95_MS else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
