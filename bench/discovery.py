#!/usr/bin/env python
"""Discovery benchmark: search by colour and the path between two artworks on a synthetic archive.

Builds (once; reused while --n/--seed match) a dedicated database ``bench_discovery`` on the same
PostgreSQL server with ``--n`` artworks (years 1400-2019, five classifications, six
institutions), each with

* a synthetic palette: 5 colours drawn as a mixture around 40 "collection" hues plus noise, with
  Dirichlet shares, its signature computed by :func:`archive.colour.signature` (the stage's own
  function), stored in ``archive_artworkpalette`` and indexed by the palette stage's
  ``ensure_index`` (HNSW, cosine, 216-d);
* a 512-d unit embedding on a smooth 8-d manifold (random Fourier features of an 8-d latent,
  plus a little noise) so that the nearest-neighbour graph is connected like a real archive's,
  with its model's HNSW index (:func:`archive.vectors.ensure_hnsw_index`).

Then times, through the explorer's own code (:mod:`explorer.colours`, :mod:`explorer.path`):

* colour search without filters (1-3 colours with amounts) and within filters (classification,
  a year range, institution + years, a narrow year range that is ranked exactly);
* the path between random pairs of artworks on the stored kNN graph, built for the synthetic set
  by the neighbours stage's own ``process`` (resumable, kept while --n/--seed match), or with
  ``--graph exact`` by the bench's shortcut for large sets: the exact K nearest of the stored
  vectors by brute force, in the stage's row format, checked against pgvector's exact ranking on
  a sample (a path-only exact build skips the palettes and the embedding HNSW index), or with
  ``--graph descent`` by nearest-neighbour descent (approximate, for a million works); then the
  graph's landmark distances (``workers.landmarks``, as the stage's finish computes them): p50/p95
  wall and CPU per path (client + PostgreSQL backend), works expanded, works per path, share
  found; the same without the landmarks (straight-line estimate) on the first --straight-samples
  pairs; then the online search (every look-up an HNSW scan) on the first --baseline-samples pairs;
* the palette stage's own cost per image on real paintings (``../shared/data``), if present.

* the zoomable timeline's points payload (bytes per point, build time) and its viewport look-up.

Colour and timeline figures print the PostgreSQL backend's CPU time beside wall time (the machine
is shared). ``--parts colour,timeline`` builds no embeddings (faster); ``--db`` names the bench
database so that two runs of different parts do not rebuild each other's.

Usage: nice -n 10 .venv/bin/python bench/discovery.py [--n 100000] [--samples 100] [--rebuild]
       [--parts colour,timeline,path,stage] [--path-only] [--baseline-samples 30] [--straight-samples 30]
       [--graph stage|exact|descent] [--db bench_discovery]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import ServerClock, bench_url, current_meta, log, pct, warm_caches  # noqa: E402
DB_NAME = "bench_discovery"
DIM = 512
LATENT = 8
SHARED = Path(os.environ.get("MUSEUM_SHARED_DATA", ROOT.parent / "shared" / "data"))








def synthetic_palettes(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(n, 5, 3) CIELAB colours and (n, 5) shares, largest share first."""
    from archive import colour

    hues = rng.integers(0, 256, (40, 3)).astype(np.float64)
    theme = rng.integers(0, len(hues), (n, 5))
    rgb = np.clip(hues[theme] + rng.normal(0, 28, (n, 5, 3)), 0, 255).astype(np.uint8)
    labs = colour.rgb_to_lab(rgb)
    shares = -np.sort(-rng.dirichlet(np.full(5, 0.7), n), axis=1)
    return labs, shares


def signatures(labs: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """archive.colour.signature for many palettes at once (same arithmetic, vectorised)."""
    from archive import colour

    d2 = ((labs[:, :, None, :] - colour.CODEBOOK[None, None]) ** 2).sum(-1)
    spread = np.exp(-d2 / (2 * colour.SIGMA**2))
    spread /= spread.sum(axis=2, keepdims=True) + 1e-12
    vec = (shares[:, :, None] * spread).sum(1)
    return (vec / np.linalg.norm(vec, axis=1, keepdims=True)).astype(np.float32)


def manifold_vectors(n: int, rng) -> np.ndarray:
    w = rng.normal(0, 0.9, (LATENT, DIM))
    b = rng.uniform(0, 2 * np.pi, DIM)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 50_000):
        stop = min(n, start + 50_000)
        z = rng.normal(0, 1, (stop - start, LATENT))
        block = np.sin(z @ w + b) + 0.05 * rng.normal(0, 1, (stop - start, DIM))
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def build(n: int, seed: int, embeddings: bool = True, palettes: bool = True, embed_index: bool = True) -> dict:
    from django.db import connection
    from django.utils import timezone
    from pgvector.psycopg import register_vector

    from archive import colour
    from workers import palettes as stage

    rng = np.random.default_rng(seed)
    cur = connection.cursor()
    t0 = time.time()
    cur.execute("SET maintenance_work_mem = '2GB'")
    cur.execute("SET max_parallel_maintenance_workers = 2")
    cur.execute("TRUNCATE archive_artwork, archive_embeddingmodel, archive_artworkembedding, archive_artworkpalette CASCADE")
    # Bulk loads go in without the HNSW indexes (built after the load, as the stages do at scale).
    cur.execute("SELECT indexname FROM pg_indexes WHERE tablename IN ('archive_artworkpalette', 'archive_artworkembedding')"
                " AND indexdef LIKE '%%USING hnsw%%'")
    for (name,) in cur.fetchall():
        cur.execute(f"DROP INDEX {name}")
    cur.execute(f"""
        INSERT INTO archive_artwork (id, source, source_id, title, creator, display_date, year_start, year_end, medium,
            classification, institution, rights, rights_url, credit_line, source_url, iiif_manifest_url,
            iiif_image_service, metadata, original_location, sha256, status, image_error, created_at, updated_at)
        SELECT g, 'bench', g::text, 'Work ' || g, 'Artist ' || (g % 5000), y::text, y, y, '',
            (ARRAY['painting','drawing','print','photograph','sculpture'])[1 + g % 5],
            (ARRAY['Tate','Art Institute of Chicago','Met','NYPL','Smithsonian','Rijksmuseum'])[1 + g % 6],
            'CC0', '', '', '', '', '', '{{}}', '', md5(g::text) || md5((g + 1)::text), 'ok', '', now(), now()
        FROM generate_series(1, {n}) g CROSS JOIN LATERAL (SELECT (1400 + (g::bigint * 7919) % 620)::int AS y) yr""")
    cur.execute("SELECT setval(pg_get_serial_sequence('archive_artwork', 'id'), %s)", [n])
    log(f"artworks: {n:,} rows in {time.time() - t0:.0f}s")

    t1 = time.time()
    raw = connection.connection
    register_vector(raw)
    now = timezone.now()
    for start in range(0, n if palettes else 0, 50_000):
        stop = min(n, start + 50_000)
        labs, shares = synthetic_palettes(stop - start, rng)
        sigs = signatures(labs, shares)
        hexes = [colour.to_hex(rgb) for rgb in colour.lab_to_rgb(labs.reshape(-1, 3))]
        with raw.cursor() as rc, rc.copy(
            "COPY archive_artworkpalette (artwork_id, method, colours, vector, derivative_size, computed_at) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "text", "jsonb", "vector", "int4", "timestamptz"])
            for i in range(stop - start):
                cols = [{"lab": [round(float(v), 2) for v in labs[i, j]], "hex": hexes[5 * i + j],
                         "share": round(float(shares[i, j]), 4)} for j in range(5)]
                copy.write_row((start + i + 1, colour.METHOD, cols, sigs[i], 256, now))  # a list: jsonb dumps it (a str would be a JSON string)
    palettes_s = time.time() - t1
    palette_index_s = 0.0
    if palettes:
        log(f"palettes: {n:,} rows in {palettes_s:.0f}s")
        t2 = time.time()
        stage.ensure_index()
        palette_index_s = time.time() - t2
        log(f"palette HNSW index in {palette_index_s:.0f}s")

    embed_index_s = None
    if embeddings:
        embed_index_s = build_embeddings(n, rng, now, index=embed_index)
    for table in ("archive_artwork", "archive_artworkpalette", "archive_artworkembedding"):
        cur.execute(f"VACUUM ANALYZE {table}")
    meta = {"n": n, "seed": seed, "build_s": round(time.time() - t0), "palette_index_s": round(palette_index_s),
            "embed_index_s": embed_index_s and round(embed_index_s), "embeddings": embeddings, "palettes": palettes}
    cur.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text)")
    cur.execute("DELETE FROM bench_meta")
    cur.execute("INSERT INTO bench_meta VALUES ('meta', %s)", [json.dumps(meta)])
    return meta


def build_embeddings(n: int, rng, now, index: bool = True) -> float | None:
    """512-d embeddings on a smooth manifold for every artwork, with the model's HNSW index
    (``index=False``: without it; the online baseline builds it when it runs)."""
    from archive import vectors
    from archive.models import EmbeddingModel
    from workers.ml.registry import activate

    model = EmbeddingModel.objects.create(key="bench-512", arch="synthetic", dim=DIM, untrained=True)
    activate(model)
    t3 = time.time()
    for start in range(0, n, 50_000):
        stop = min(n, start + 50_000)
        block = manifold_vectors(stop - start, rng)
        vectors.copy_arrays("archive_artworkembedding", {
            "artwork_id": np.arange(start + 1, stop + 1, dtype=np.int64),
            "model_id": np.full(stop - start, model.pk, dtype=np.int64),
            "vector": block,
            "created_at": np.full(stop - start, np.datetime64(now.replace(tzinfo=None), "us")),
        })
    log(f"embeddings: {n:,} x {DIM} in {time.time() - t3:.0f}s")
    if not index:
        return None
    t4 = time.time()
    vectors.ensure_hnsw_index(vectors.ARTWORK_EMBEDDINGS, model.pk, DIM)
    embed_index_s = time.time() - t4
    log(f"embedding HNSW index in {embed_index_s:.0f}s")
    return embed_index_s




def timed(fn, items, warmup=5) -> list[float]:
    for item in items[:warmup]:
        fn(item)
    out = []
    for item in items:
        t = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t) * 1000)
    return out


def random_query(rng: random.Random):
    from explorer import colours as colour_search

    k = rng.choice([1, 2, 3])
    hexes = ",".join(f"{rng.randrange(256):02x}{rng.randrange(256):02x}{rng.randrange(256):02x}" for _ in range(k))
    amounts = ",".join(str(rng.randint(10, 90)) for _ in range(k))
    return colour_search.parse(hexes, amounts)


COLOUR_CASES = {  # name: (filters, share of the synthetic archive)
    "none": ({}, 1.0),
    "classification": ({"classification": "print"}, 0.2),
    "years_1800_1850": ({"year_from": 1800, "year_to": 1850}, 51 / 620),
    "years_1600_1620": ({"year_from": 1600, "year_to": 1620}, 21 / 620),
    "years_1690_1710": ({"year_from": 1690, "year_to": 1710}, 21 / 620),
    "tate_1900_1950": ({"institution": "Tate", "year_from": 1900, "year_to": 1950}, 51 / 620 / 6),
    "drawing_met": ({"classification": "drawing", "institution": "Met"}, 1 / 30),
    "print_1700_1710": ({"classification": "print", "year_from": 1700, "year_to": 1710}, 11 / 620 / 5),
    "years_1500_1501": ({"year_from": 1500, "year_to": 1501}, 2 / 620),
}


def ensure_palette_filter_indexes() -> dict:
    """The palette signatures' partial indexes per period and classification, by the palette job's
    own step (archive.palette_indexes.ensure): built when missing, with their time and size."""
    from django.db import connection

    from archive import palette_indexes

    t0 = time.time()
    outcome = palette_indexes.ensure(progress=log)
    wall = time.time() - t0
    with connection.cursor() as cur:
        cur.execute("SELECT count(*), coalesce(sum(pg_relation_size(c.oid)), 0) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                    " WHERE i.indrelid = 'archive_artworkpalette'::regclass AND c.relname LIKE %s",
                    [palette_indexes._prefix(palette_indexes.colour.METHOD).replace("_", "\\_") + "%"])
        count, size = cur.fetchone()
        cur.execute("SELECT pg_relation_size(%s::regclass)", [palette_indexes.vectors.index_name(palette_indexes.SPACE, palette_indexes.colour.METHOD)])
        main = cur.fetchone()[0]
    log(f"palette filter indexes: {len(outcome.built)} built ({wall:.0f} s), {len(outcome.kept)} kept, {len(outcome.dropped)} dropped; "
        f"{count} indexes, {size / 2**20:.0f} MB (the method's own index: {main / 2**20:.0f} MB)")
    return {"built": len(outcome.built), "s": wall, "indexes": count, "mb": size / 2**20, "main_mb": main / 2**20}


def ranking_before(query, where: str, params: list, limit: int = 48):
    """The colour ranking within a row filter as it was before the filter indexes (the baseline):
    the planner's estimate of the whole condition, at most 4,000 rows ranked exactly, a larger set
    by the iterative scan of the method's index (exactly, should it stop short)."""
    from explorer import colours as colour_search

    if colour_search.estimated_rows(where, params) > 4_000:
        hits = colour_search._index_hits(query, limit, where, params, max_scan_tuples=colour_search.INLINE_MAX_SCAN_TUPLES)
        if len(hits) >= limit:
            return hits
    return colour_search._exact_where(query, where, params, limit)


def measure_colour(samples: int, seed: int, only: set[str] | None = None) -> dict:
    """Per filter: p50/p95 wall and backend CPU per query of the search (explorer.colours.search)
    and of its ranking alone, beside the ranking without the filter indexes (before them), the
    previous way (filters checked by a look-up per candidate, ranking_by_lookup) and the two ways
    of the row filter alone (exact ranking, iterative scan of the method's index); how the
    searches were answered (explorer.colours.PATHS) and the recall of the top 48 against the exact
    ranking of the set."""
    from django.db import connection

    from explorer import colours as colour_search
    from explorer.search import Filters

    from explorer.models_state import display_artworks

    rng = random.Random(seed)
    queries = [random_query(rng) for _ in range(samples)]
    backend = ServerClock()
    results = {}
    warm_caches(["archive_artworkpalette", "archive_artwork"])
    # Untimed first: 10 searches of every case, so that the first case timed does not pay alone for
    # reading the indexes into the caches after the build (a serving server has them there).
    for given, _ in COLOUR_CASES.values():
        for _ in range(10):
            colour_search.search(random_query(rng), Filters(**given) if given else None, limit=48)
    for name, (given, share) in COLOUR_CASES.items():
        filters = Filters(**given) if given else None
        counts = []
        ways = {"search": lambda q: counts.append(len(colour_search.search(q, filters, limit=48))),
                "ranking": lambda q: colour_search.ranking(q.vector, filters, limit=48),
                # the page's artworks alone, for a ranking computed before the clock starts
                "display": lambda ids: display_artworks(ids)}
        if filters:
            where, params = colour_search.row_condition(filters)
            ways["ranking before"] = lambda q: ranking_before(q.vector, where, params)
            ways["lookup"] = lambda q: colour_search.ranking_by_lookup(q.vector, filters, limit=48)
            ways["rows exact"] = lambda q: colour_search._exact_where(q.vector, where, params, 48)
            ways["rows method index"] = lambda q: colour_search.row_index_hits(q.vector, 48, where, params)
        row = {"share": share}
        ways = {way: fn for way, fn in ways.items() if only is None or way in only}
        for way, fn in ways.items():
            # Each way its own queries, never timed before in the run: else a way timed after
            # another on the same queries finds the index pages those read in the buffer cache
            # (the unfiltered search timed first at 1M: p95 234 ms, its ranking timed next 22 ms).
            fresh = [random_query(rng) for _ in range(samples if way in ("search", "ranking", "ranking before", "display")
                                                      else max(10, samples // 3))]
            if way == "display":
                fresh = [[a for a, _ in colour_search.ranking(q.vector, filters, limit=48)] for q in fresh]
            paths = colour_search.PATHS.copy()
            cpu0 = backend.seconds()
            times = timed(fn, fresh)
            cpu_ms = (backend.seconds() - cpu0) * 1000 / (len(times) + 5)
            row[way] = (pct(times, 50), pct(times, 95), cpu_ms)
            answered = dict(colour_search.PATHS - paths)
            log(f"colour [{name}, {100 * share:.2f}%] {way}: p50 {pct(times, 50):.1f} ms, p95 {pct(times, 95):.1f} ms, "
                f"backend CPU {cpu_ms:.1f} ms/query" + (f"; answered by {answered}" if answered else ""))
        if filters:
            row["estimate before"] = colour_search.estimated_rows(where, params)
            row["estimate"] = colour_search.estimated_rows(*colour_search.estimate_condition(filters))
            with connection.cursor() as cur:
                cur.execute(f"SELECT count(*) {colour_search._rows_sql(where)}", [colour_search.colour.METHOD, *params])
                row["rows"] = cur.fetchone()[0]
            log(f"colour [{name}]: {row['rows']:,} palettes; planner's estimate {row['estimate']:,.0f} "
                f"(before: {row['estimate before']:,.0f})")
            for way, fn in (("ranking", lambda v: colour_search.ranking(v, filters, limit=48)),
                            ("ranking before", lambda v: ranking_before(v, where, params))):
                found = [len({a for a, _ in fn(q.vector)}
                             & {a for a, _ in colour_search._exact_where(q.vector, where, params, 48)}) for q in queries[:10]]
                row[f"recall {way}"] = sum(found) / (48 * len(found))
                log(f"colour [{name}] {way}: recall@48 against the exact ranking {row[f'recall {way}']:.3f} (10 queries)")
        row["fewest"] = min(counts)
        log(f"colour [{name}]: fewest results {min(counts)}")
        results[name] = row
    return results


def backend_cpu_s() -> float:
    """CPU seconds (user + system) used so far by this connection's PostgreSQL backend."""
    return ServerClock().seconds()


def _analyse_and_record(key: str, out: dict) -> None:
    """Fresh planner statistics for the neighbour rows, and ``out`` kept in bench_meta under ``key``."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE archive_artworkneighbours")
        cur.execute("INSERT INTO bench_meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    [key, json.dumps(out)])


def build_graph(n: int) -> dict:
    """The stored kNN graph of the synthetic set, by the neighbours stage's own code: its
    ``process`` over the artworks without a row, one job batch (256 ids) at a time, as the
    backfill job's batches run (resumable: an interrupted build goes on where it stopped)."""
    from django.db import connection

    from archive.models import ArtworkNeighbours
    from workers import neighbours as stage

    params = stage.prepare({"model": "bench-512"})
    have = ArtworkNeighbours.objects.filter(model_id=params["model_id"]).count()
    if have >= n:
        return {}
    done = set(ArtworkNeighbours.objects.filter(model_id=params["model_id"]).values_list("artwork_id", flat=True))
    todo = [i for i in range(1, n + 1) if i not in done]
    size = stage.STAGE.batch_size
    t0, cpu0, pg0 = time.time(), time.process_time(), backend_cpu_s()
    for start in range(0, len(todo), size):
        result = stage.process(todo[start:start + size], params)
        assert not result.errors, result.errors[:3]
        if (start // size) % 40 == 0:
            log(f"graph: {start + size:,}/{len(todo):,} works, {time.time() - t0:.0f}s")
    wall, cpu, pg = time.time() - t0, time.process_time() - cpu0, backend_cpu_s() - pg0
    with connection.cursor() as cur:
        cur.execute("SELECT pg_total_relation_size('archive_artworkneighbours')")
        size_bytes = cur.fetchone()[0]
    out = {"graph_n": len(todo), "graph_s": round(wall), "graph_ms_per_work": round(1000 * wall / len(todo), 2),
           "graph_pg_cpu_ms_per_work": round(1000 * pg / len(todo), 2), "graph_client_cpu_ms_per_work": round(1000 * cpu / len(todo), 2),
           "graph_mb": round(size_bytes / 2**20)}
    log(f"graph: {len(todo):,} works in {wall:.0f}s ({out['graph_ms_per_work']} ms a work; PostgreSQL CPU "
        f"{out['graph_pg_cpu_ms_per_work']} ms, client CPU {out['graph_client_cpu_ms_per_work']} ms); table + indexes {out['graph_mb']} MB")
    _analyse_and_record("graph", out)
    return out


def stored_vectors(model_id: int, n: int) -> np.ndarray:
    """The synthetic set's embeddings as stored (halfvec), as float32, row i = artwork i + 1: one
    binary COPY, parsed with numpy (each tuple: field count, the bigint id, the halfvec's dim,
    unused and float16 values, big-endian)."""
    from django.db import connection

    buf = bytearray()
    with connection.cursor() as cur, cur.copy(
        f"COPY (SELECT artwork_id, vector::halfvec({DIM}) FROM archive_artworkembedding WHERE model_id = {int(model_id)})"
        " TO STDOUT WITH (FORMAT BINARY)"
    ) as copy:
        for chunk in copy:
            buf += chunk
    row = np.dtype([("fields", ">i2"), ("id_len", ">i4"), ("id", ">i8"), ("vec_len", ">i4"), ("dim", ">i2"),
                    ("unused", ">i2"), ("vec", ">f2", (DIM,))])
    header = 19
    rows = np.frombuffer(bytes(buf[header:header + row.itemsize * ((len(buf) - header - 2) // row.itemsize)]), dtype=row)
    assert (rows["fields"] == 2).all() and (rows["dim"] == DIM).all(), "unexpected COPY layout"
    out = np.zeros((n, DIM), dtype=np.float32)
    out[rows["id"] - 1] = rows["vec"].astype(np.float32)
    return out


def exact_lists(unit: np.ndarray, k: int):
    """For each row of ``unit`` (unit vectors): its ``k`` nearest other rows by cosine distance,
    by brute force (every pair's dot product, torch on the CPU), nearest first: (ids, distances)."""
    import torch

    data = torch.from_numpy(unit)
    block = max(64, 100_000_000 // len(unit))  # rows per product: a block of similarities ~400 MB
    ids = np.empty((len(unit), k), dtype=np.int64)
    dists = np.empty((len(unit), k), dtype=np.float32)
    for start in range(0, len(unit), block):
        sims = data[start:start + block] @ data.T
        sims[torch.arange(sims.shape[0]), torch.arange(start, start + sims.shape[0])] = -2.0  # not itself
        top, where = torch.topk(sims, k, dim=1)
        ids[start:start + block] = where.numpy()
        dists[start:start + block] = np.maximum(0.0, 1.0 - top.numpy())
    return ids, dists


def build_graph_exact(n: int, method: str = "exact") -> dict:
    """The bench's shortcut for large synthetic sets: the stored kNN graph written from the exact
    nearest neighbours of the stored vectors (brute force over every pair, ~10x faster here than
    the stage's HNSW look-ups at 100k), in the stage's row format. The lists are the true K nearest
    (the stage's HNSW look-ups find nearly the same, ef_search 64); checked against pgvector's own
    exact ranking (a sequential scan, no index) on a sample of works. ``method="descent"``: the
    lists by nearest-neighbour descent instead (:mod:`bench.knn_graph`; brute force is O(n^2), hours
    at a million), approximate as the stage's are, its recall against brute force printed."""
    from django.db import connection
    from django.utils import timezone

    from archive import vectors
    from archive.models import ArtworkNeighbours, EmbeddingModel
    from workers import neighbours as stage

    model = EmbeddingModel.objects.get(key="bench-512")
    if ArtworkNeighbours.objects.filter(model_id=model.pk).count() >= n:
        return {}
    t0 = time.time()
    stored = stored_vectors(model.pk, n)
    unit = stored / np.linalg.norm(stored, axis=1, keepdims=True)
    log(f"graph ({method}): {n:,} vectors read in {time.time() - t0:.0f}s")
    t1, c1 = time.time(), time.process_time()
    if method == "descent":
        from bench import knn_graph

        ids, dists = knn_graph.descent_lists(unit, stage.K)
        knn_s = time.time() - t1
        graph_recall = knn_graph.recall(unit, ids)
        log(f"graph (descent): {stage.K} nearest of {n:,} works in {knn_s:.0f}s wall, {time.process_time() - c1:.0f}s CPU "
            f"(this process); recall@{stage.K} against brute force on 200 works {graph_recall:.3f}")
    else:
        ids, dists = exact_lists(unit, stage.K)
        knn_s = time.time() - t1
        graph_recall = 1.0
        log(f"graph (exact): brute-force {stage.K} nearest of {n:,} works in {knn_s:.0f}s")
    ArtworkNeighbours.objects.filter(model_id=model.pk).delete()
    now = timezone.now()
    for start in range(0, n, 50_000):
        stop = min(n, start + 50_000)
        vectors.copy_rows("archive_artworkneighbours", ["artwork_id", "model_id", "neighbours", "distances", "computed_at"],
                          ((i + 1, model.pk, [int(a) + 1 for a in ids[i]], [round(float(d), 6) for d in dists[i]], now)
                           for i in range(start, stop)))
    rng = random.Random(3)
    agree = total = 0
    with connection.cursor() as cur:
        cur.execute("SET enable_indexscan = off")  # pgvector's exact ranking: no HNSW index
        for work in rng.sample(range(1, n + 1), 5):
            cur.execute("SELECT b.artwork_id FROM archive_artworkembedding a, archive_artworkembedding b"
                        " WHERE a.model_id = %s AND b.model_id = a.model_id AND a.artwork_id = %s AND b.artwork_id <> a.artwork_id"
                        " ORDER BY a.vector::halfvec(512) <=> b.vector::halfvec(512) LIMIT %s", [model.pk, work, stage.K])
            truth = {r[0] for r in cur.fetchall()}
            agree += len(truth & {int(a) + 1 for a in ids[work - 1]})
            total += stage.K
        cur.execute("RESET enable_indexscan")
    wall = time.time() - t0
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE archive_artworkneighbours")
        cur.execute("SELECT pg_total_relation_size('archive_artworkneighbours')")
        size_bytes = cur.fetchone()[0]
    out = {"graph_n": n, "graph_s": round(wall), "graph_method": method, "knn_s": round(knn_s),
           "graph_mb": round(size_bytes / 2**20), "exact_check": f"{agree}/{total}", "graph_recall": round(graph_recall, 4)}
    log(f"graph ({method}): {n:,} works in {wall:.0f}s; table + indexes {out['graph_mb']} MB; the lists of 5 sampled works agree with "
        f"pgvector's exact ranking on {agree}/{total} neighbours")
    with connection.cursor() as cur:
        cur.execute("INSERT INTO bench_meta VALUES ('graph', %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    [json.dumps(out)])
    return out


def measure_timeline(n: int) -> dict:
    """The zoomable timeline's points payload (bytes, build time) for the whole archive and within
    a filter, and the viewport look-up of a window a few years wide."""
    from explorer import timeline_points
    from explorer.search import Filters

    backend = ServerClock()
    out = {}
    for name, filters in (("all", Filters()), ("classification", Filters(classification="print"))):
        cpu0, t0, p0 = backend.seconds(), time.perf_counter(), time.process_time()
        found = timeline_points.points(filters)
        payload = found.payload()
        wall = time.perf_counter() - t0
        out[name] = {"bytes": len(payload), "points": len(found), "s": wall}
        log(f"timeline points [{name}]: {len(found):,} points, {len(payload) / 1e6:.1f} MB, {wall:.1f} s wall "
            f"(backend CPU {backend.seconds() - cpu0:.1f} s, this process {time.process_time() - p0:.1f} s)")
    rng = random.Random(5)
    windows = [(y, y + 1, b, b + 8192) for y, b in ((rng.randint(1400, 2017), rng.randint(0, 57000)) for _ in range(20))]
    cpu0 = backend.seconds()
    times = timed(lambda w: timeline_points.viewport(Filters(), w[0], w[1], w[2], w[3], limit=150), windows, warmup=2)
    log(f"timeline viewport (2 years x 1/8 of the bands, limit 150): p50 {pct(times, 50):.0f} ms, p95 {pct(times, 95):.0f} ms "
        f"(backend CPU {(backend.seconds() - cpu0) * 1000 / 22:.0f} ms per look-up)")
    out["viewport_p95"] = pct(times, 95)
    return out


def build_landmarks() -> dict:
    """The graph's landmark distances (workers.landmarks, as the neighbours stage's finish runs it),
    when the rows have none."""
    from archive.models import EmbeddingModel
    from workers import landmarks

    model = EmbeddingModel.objects.get(key="bench-512")
    if not landmarks.stale(model.pk):
        return {}
    t0, cpu0, pg0 = time.time(), time.process_time(), backend_cpu_s()
    found = landmarks.compute(model.pk)
    out = {"landmarks_s": round(time.time() - t0, 1), "landmarks_cpu_s": round(time.process_time() - cpu0, 1),
           "landmarks_pg_cpu_s": round(backend_cpu_s() - pg0, 1), **found}
    log(f"landmarks: {found['landmarks']} landmarks for {found['rows']:,} rows in {out['landmarks_s']} s (this process "
        f"{out['landmarks_cpu_s']} s CPU, PostgreSQL {out['landmarks_pg_cpu_s']} s)")
    _analyse_and_record("landmarks", out)
    return out


def measure_path(samples: int, seed: int, n: int, *, stored: bool = True, landmarks: bool = True) -> dict:
    """Paths between random pairs on the stored graph (``stored=False``: the online search, every
    look-up an HNSW scan, the baseline; ``landmarks=False``: the straight-line estimate)."""
    from archive.models import EmbeddingModel
    from explorer import path as path_mod

    model = EmbeddingModel.objects.get(key="bench-512")
    rng = random.Random(seed + 1)
    pairs = [(rng.randint(1, n), rng.randint(1, n)) for _ in range(samples)]
    lengths, expansions, queries, online, failed, cpu_each, guided, chords = [], [], [], [], [], [], [], []

    def run(pair):
        cpu, pg = time.process_time(), backend_cpu_s()
        try:
            found = path_mod.find_path(pair[0], pair[1], model, stored=stored, landmarks=landmarks)
        except path_mod.NoPath as exc:
            failed.append(str(exc))
            return
        finally:
            cpu_each.append(1000 * (time.process_time() - cpu + backend_cpu_s() - pg))
        lengths.append(len(found.ids))
        guided.append(found.guided)
        chords.append(sum(math.sqrt(2 * max(0.0, 1 - s)) for s in found.similarities))
        expansions.append(found.expansions)
        queries.append(found.queries)
        online.append(found.online)

    cpu0, pg0 = time.process_time(), backend_cpu_s()
    times = timed(run, pairs, warmup=3)
    cpu_ms = (time.process_time() - cpu0) * 1000 / (len(pairs) + 3)
    pg_ms = (backend_cpu_s() - pg0) * 1000 / (len(pairs) + 3)
    found_share = len(lengths) / (len(lengths) + len(failed))
    name = ("path (stored graph, landmarks)" if landmarks else "path (stored graph, straight-line estimate)") if stored else "path (online, baseline)"
    cpu_each = cpu_each[3:]  # after the warm-up
    log(f"{name}: p50 {pct(times, 50):.0f} ms, p95 {pct(times, 95):.0f} ms (CPU per path: client {cpu_ms:.0f} ms, "
        f"PostgreSQL {pg_ms:.0f} ms on average; client + PostgreSQL CPU per path p50 {pct(cpu_each, 50):.0f} ms, "
        f"p95 {pct(cpu_each, 95):.0f} ms); works per path median {statistics.median(lengths) if lengths else 0}, "
        f"min {min(lengths, default=0)}, max {max(lengths, default=0)}; works expanded median "
        f"{statistics.median(expansions) if expansions else 0}, max {max(expansions, default=0)}; queries median "
        f"{statistics.median(queries) if queries else 0}; online look-ups {sum(online)}; guided by landmarks {sum(guided)}; "
        f"path length (sum of step chords) median {statistics.median(chords) if chords else 0:.3f}; "
        f"found {100 * found_share:.0f}%" + (f" (first refusal: {failed[0]})" if failed else ""))
    return {"p50": pct(times, 50), "p95": pct(times, 95), "found": found_share, "cpu_ms": cpu_ms, "pg_cpu_ms": pg_ms,
            "cpu_p95": pct(cpu_each, 95), "cpu_p50": pct(cpu_each, 50), "chords": chords,
            "median_works": statistics.median(lengths) if lengths else 0}


def measure_stage(limit: int = 40) -> float | None:
    """Milliseconds per real painting for the palette of its 256 px derivative (decode, reduce,
    k-means, signature), like the stage does."""
    from PIL import Image

    from archive import colour
    from workers.palettes import SAMPLE_PIXELS, SAMPLE_SIDE

    folder = SHARED / "artworks" / "aic-artwall" / "images"
    if not folder.exists():
        log(f"palette stage cost: skipped ({folder} missing)")
        return None
    files = sorted(folder.glob("*.jpg"))[:limit]
    derivatives = []
    for path in files:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((256, 256))
            derivatives.append(im.copy())
    times = []
    for im in derivatives:
        t = time.perf_counter()
        small = im.copy()
        if small.width * small.height > SAMPLE_PIXELS:
            small.thumbnail((SAMPLE_SIDE, SAMPLE_SIDE))
        colour.palette_signature(colour.palette(np.asarray(small).reshape(-1, 3)))
        times.append((time.perf_counter() - t) * 1000)
    log(f"palette stage cost on {len(times)} real paintings: median {statistics.median(times):.0f} ms, p95 {pct(times, 95):.0f} ms per image")
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="artworks (default 100,000)")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--baseline-samples", type=int, default=30, help="pairs for the online path baseline (0: skip)")
    parser.add_argument("--straight-samples", type=int, default=30,
                        help="pairs for the stored-graph path without the landmark distances (straight-line estimate; 0: skip)")
    parser.add_argument("--path-only", action="store_true", help="measure only the path (skip colour and the palette stage)")
    parser.add_argument("--db", default=DB_NAME, help=f"bench database (default {DB_NAME})")
    parser.add_argument("--graph", choices=["stage", "exact", "descent"], default="stage",
                        help="how the bench writes the stored kNN graph: the neighbours stage's HNSW look-ups (default), the "
                             "exact lists by brute force (faster for large sets; a path-only build then skips the palettes), "
                             "or nearest-neighbour descent (approximate, for a million works)")
    parser.add_argument("--parts", default="colour,timeline,path,stage",
                        help="what to measure, comma-separated (default all); without path no embeddings are built")
    parser.add_argument("--colour-ways", default="",
                        help="colour: the ways to time besides search, comma-separated (ranking, display, ranking before, lookup, "
                             "rows exact, rows method index; default all)")
    parser.add_argument("--keep-filter-indexes", action="store_true",
                        help="measure colour search with the palette filter indexes there are (build none)")
    args = parser.parse_args()
    parts = {"path"} if args.path_only else set(args.parts.split(","))

    os.environ["DATABASE_URL"] = bench_url(args.db)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "museum.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    meta = current_meta()
    embeddings = "path" in parts
    palettes = not (parts == {"path"} and args.graph != "stage")
    if (args.rebuild or meta is None or meta.get("n") != args.n or meta.get("seed") != args.seed
            or (embeddings and not meta.get("embeddings", True)) or (palettes and not meta.get("palettes", True))):
        meta = build(args.n, args.seed, embeddings=embeddings, palettes=palettes, embed_index=palettes)
    log(f"archive: {json.dumps(meta)}; load average {open('/proc/loadavg').read().split()[:3]}")
    lines = []
    if "colour" in parts:
        if not args.keep_filter_indexes:
            ensure_palette_filter_indexes()
        colour_results = measure_colour(args.samples, args.seed,
                                        set(args.colour_ways.split(",")) | {"search"} if args.colour_ways else None)
        worst = max(colour_results, key=lambda k: colour_results[k]["search"][1])
        colour_p95 = colour_results[worst]["search"][1]
        lines.append(("colour_search_p95_ms", colour_p95, 50, colour_p95 <= 50))
    if "timeline" in parts:
        timeline = measure_timeline(args.n)
        megabytes = timeline["all"]["bytes"] / 1e6 * 1_000_000 / max(1, timeline["all"]["points"])
        lines.append(("timeline_payload_mb_per_1m", megabytes, 25, megabytes <= 25))
    if "path" in parts:
        build_graph(args.n) if args.graph == "stage" else build_graph_exact(args.n, args.graph)
        build_landmarks()
        path_results = measure_path(args.samples, args.seed, args.n)
        if args.straight_samples:
            straight = measure_path(args.straight_samples, args.seed, args.n, landmarks=False)
            log(f"path CPU p95 straight-line / landmark estimate: {straight['cpu_p95'] / path_results['cpu_p95']:.1f}x "
                f"(same run; the first {args.straight_samples} pairs)")
            if straight["found"] == path_results["found"] == 1.0:
                ratios = [a / b for a, b in zip(path_results["chords"], straight["chords"]) if b]
                log(f"path length (sum of step chords) landmark / straight-line estimate, same pairs: median "
                    f"{statistics.median(ratios):.3f}, max {max(ratios):.3f}")
        if args.baseline_samples:
            from archive import vectors
            from archive.models import EmbeddingModel

            vectors.ensure_hnsw_index(vectors.ARTWORK_EMBEDDINGS, EmbeddingModel.objects.get(key="bench-512").pk, DIM)
            baseline = measure_path(args.baseline_samples, args.seed, args.n, stored=False)
            log(f"path p50 online / stored graph: {baseline['p50'] / path_results['p50']:.1f}x (same run, same pairs first)")
        lines += [
            ("path_p95_ms", path_results["p95"], 300, path_results["p95"] <= 300),
            ("path_found", path_results["found"], 0.95, path_results["found"] >= 0.95),
        ]
    if "stage" in parts:
        measure_stage()
    log(f"load average at the end {open('/proc/loadavg').read().split()[:3]}")
    for metric, value, target, ok in lines:
        print(f"BENCH discovery {metric}={value:.3f} target={target:g} {'PASS' if ok else 'FAIL'} (n={args.n:,})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
