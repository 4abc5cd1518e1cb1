"""Benchmark: the map (t-SNE/UMAP layouts, exported point data, manifest endpoint).

    .venv/bin/python bench/map.py                      # all parts at --n 100000 (export at 1M)
    .venv/bin/python bench/map.py --only umap --n 30000
    .venv/bin/python bench/map.py --only tsne --n 100000 --n2 300000   # two sizes -> fitted scaling
    .venv/bin/python bench/map.py --only umap --measure-1m  # also RUN the 1M-point layout (about an hour)
    .venv/bin/python bench/map.py --only export        # 1M points: bytes of point data, atlas rate
    .venv/bin/python bench/map.py --only manifest      # server time of /map/<slug>/manifest.json
    .venv/bin/python bench/map.py --only load --n 100000  # streaming embeddings out of PostgreSQL

Inputs are synthetic: a Gaussian mixture of 40 clusters in 512-d (what CLIP embeddings of a
collection look like to a layout: clumps of related works), normalised like CLIP vectors. The
layouts run through the production functions (workers.layouts.reduce/fit: PCA to 50-d, then
umap-learn or openTSNE with FFT gradients) with the job's default parameters and seed.
Layout targets are judged on the MEASURED wall time (run on a quiet machine); the CPU time per
thread the method uses is printed beside it as information. Without --measure-1m the 1M-point
time is only EXTRAPOLATED from the measured sizes (n log n, or the exponent fitted between --n and
--n2), printed as such and not judged; --measure-1m runs it, with progress, and judges that.
The database parts (load, manifest) run in a dedicated database ``bench_maps`` created from the
migrations and dropped at the end. The machine is shared: repeat runs vary by ~10-20%.
"""
from __future__ import annotations

import argparse
import gzip
import math
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "museum.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402

from workers.layouts import export, fit, reduce  # noqa: E402

TARGET_FIT_100K_S = 300.0
TARGET_FIT_1M_S = 3600.0
TARGET_EXPORT_1M_MB = 25.0
TARGET_MANIFEST_MS = 50.0
MILLION = 1_000_000

results: list[tuple[str, float, float, bool, str]] = []  # (metric, value, target, passed, unit)


def bench(metric: str, value: float, target: float, unit: str = "", lower_is_better: bool = True) -> None:
    passed = value <= target if lower_is_better else value >= target
    results.append((metric, value, target, passed, unit))
    print(f"BENCH map {metric}={value:.3f} target={target:g} {'PASS' if passed else 'FAIL'}", flush=True)


def mixture(n: int, d: int = 512, k: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)).astype(np.float32)
    X = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 50_000):
        m = min(50_000, n - start)
        X[start : start + m] = centres[rng.integers(0, k, m)] + rng.normal(scale=0.9, size=(m, d)).astype(np.float32)
    return X


def cpu_seconds() -> float:
    """CPU time of this process, all threads (user + system)."""
    t = os.times()
    return t.user + t.system


def rss_gb() -> float:
    """Peak resident memory of this process so far (GB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


class Heartbeat:
    """Prints elapsed time, CPU time and peak memory every ``every`` seconds while a long step runs."""

    def __init__(self, label: str, every: float = 60.0):
        import threading

        self.label, self.every = label, every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        t0, c0 = time.perf_counter(), cpu_seconds()
        while not self.stop.wait(self.every):
            print(f"    ... {self.label}: {time.perf_counter() - t0:.0f}s elapsed, {cpu_seconds() - c0:.0f}s CPU, "
                  f"peak memory {rss_gb():.1f} GB", flush=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def time_layout(method: str, n: int, *, progress: bool = False) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of PCA + fit. ``progress``: the libraries' own progress output
    plus a heartbeat line every minute (for the 1M run)."""
    if progress:
        print(f"  generating {n} x 512 vectors ...", flush=True)
    X = mixture(n)
    load0 = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), cpu_seconds()
    with Heartbeat(f"{method} n={n}", every=60.0 if progress else 1e9):
        reducer = reduce.fit_reducer(X, seed=0)
        Y = reduce.apply_reducer(reducer, X)
        t_pca = time.perf_counter() - t0
        del X
        if progress:
            print(f"  PCA to {Y.shape[1]} dimensions in {t_pca:.0f}s; fitting {method} ...", flush=True)
        t1 = time.perf_counter()
        _, coords, used = fit.fit(method, Y, seed=0, verbose=progress)
        t_fit = time.perf_counter() - t1
    total, cpu = t_pca + t_fit, cpu_seconds() - c0
    assert coords.shape == (n, 2) and np.isfinite(coords).all()
    print(f"  {method} n={n}: PCA {t_pca:.1f}s + fit {t_fit:.1f}s = {total:.1f}s wall, {cpu:.1f}s CPU "
          f"(load average {load0:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, peak memory {rss_gb():.1f} GB)  "
          f"params={used}", flush=True)
    return total, cpu


def extrapolate(n1: int, t1: float, n2: int | None, t2: float | None, target_n: int = MILLION) -> tuple[float, str]:
    if n2 and t2 and n2 != n1:
        k = math.log(t2 / t1) / math.log(n2 / n1)
        big, tb = (n2, t2) if n2 > n1 else (n1, t1)
        return tb * (target_n / big) ** k, f"power law fitted between {n1} and {n2} (exponent {k:.2f})"
    return t1 * (target_n / n1) * math.log(target_n) / math.log(n1), f"n log n from {n1}"


def part_layout(method: str, n: int, n2: int | None, measure_1m: bool = False) -> None:
    """Targets are judged on the measured wall time: what an operator waits for on this machine
    (run it when the machine is quiet). CPU time divided by the threads the method uses (UMAP
    seeded: 1; openTSNE: all cores) is printed beside it as information only: it estimates the
    wall time an idle machine would give when the measurement ran under other load."""
    threads = 1 if method == "umap" else (os.cpu_count() or 1)
    print(f"{method.upper()} layout (synthetic 512-d mixture, PCA 50, seed 0, {threads} thread(s))", flush=True)
    # Warm-up: numba (UMAP, pynndescent) compiles its kernels on first use (tens of seconds);
    # a long-running worker pays that once, so it is kept out of the timed runs.
    t0 = time.perf_counter()
    fit.fit(method, reduce.apply_reducer(None, mixture(3000, seed=1)[:, :50]), seed=0)
    print(f"  (warm-up fit on 3000 points: {time.perf_counter() - t0:.1f}s, includes JIT compilation)", flush=True)
    w1, c1 = time_layout(method, n)
    w2, c2 = time_layout(method, n2) if n2 else (None, None)
    for size, wall, cpu in ((n, w1, c1), (n2, w2, c2)):
        if size:
            print(f"  n={size}: {wall:.0f}s wall measured (judged); {cpu / threads:.0f}s CPU per thread "
                  f"(information: the idle-machine estimate)", flush=True)
    if 100_000 in (n, n2):
        bench(f"{method}_100k_s", w1 if n == 100_000 else w2, TARGET_FIT_100K_S, "s")
    else:
        print(f"  (--n {n}: the 100k target is judged at --n 100000)")
    estimate, how = extrapolate(n, w1, n2, w2)
    print(f"  1M points: EXTRAPOLATED {estimate / 60:.0f} min from measured wall times ({how}); not judged"
          + ("" if measure_1m else " (--measure-1m runs it)"), flush=True)
    if measure_1m:
        print(f"  measuring the 1M-point {method} layout (progress below; about an hour) ...", flush=True)
        wall, cpu = time_layout(method, MILLION, progress=True)
        print(f"  n=1000000: {wall / 60:.1f} min wall measured (judged); {cpu / threads / 60:.1f} min CPU per thread "
              "(information)", flush=True)
        bench(f"{method}_1M_s", wall, TARGET_FIT_1M_S, "s")


def zordered_ids(n: int, rng) -> np.ndarray:
    """Artwork ids in export (Z-) order: unrelated to id order, so effectively a random permutation
    of an id range with gaps (deleted artworks, faces, ...)."""
    ids = np.sort(rng.choice(int(n * 1.3) + 10, n, replace=False)) + 1
    return rng.permutation(ids).astype(np.int64)


def synthetic_table(n: int, with_thumbs: list[str] | None = None) -> export.PointTable:
    rng = np.random.default_rng(1)
    centres = rng.uniform(-50, 50, (60, 2))
    xy = (centres[rng.integers(0, 60, n)] + rng.normal(0, 3, (n, 2))).astype(np.float32)
    order = export.morton_order(xy[:, 0], xy[:, 1])
    xy = xy[order]
    from workers.layouts import regions

    c0 = regions.assign(xy, centres[:12].astype(np.float32))
    c1 = regions.assign(xy, centres.astype(np.float32))
    classes = ["painting", "print", "drawing", "photograph", "sculpture", "textile", "ceramic"]
    thumbs = [with_thumbs[i % len(with_thumbs)] for i in range(n)] if with_thumbs else [""] * n
    return export.PointTable(
        artwork_ids=zordered_ids(n, rng), x=xy[:, 0], y=xy[:, 1], c0=c0, c1=c1,
        year=np.where(rng.random(n) < 0.15, export.YEAR_NONE, rng.integers(1300, 2024, n)),
        classification=[classes[i] for i in rng.integers(0, len(classes), n)], thumbs=thumbs,
        colour=synthetic_colours(n, rng),
    )


def synthetic_colours(n: int, rng) -> np.ndarray:
    """Dominant colours like paintings' (CIELAB: mid lightness, mostly warm, low chroma), as the
    export's RGB565 column; 10% without a palette."""
    from archive.colour import lab_to_rgb

    lab = np.stack([np.clip(rng.normal(45, 18, n), 2, 98), rng.normal(6, 10, n), rng.normal(14, 16, n)], axis=1)
    out = export.rgb565(lab_to_rgb(lab))
    out[rng.random(n) < 0.1] = export.COLOUR_NONE
    return out


def thumbnail_paths(tmp: Path) -> list[str]:
    """128px derivatives of the real AIC paintings (written to a temporary media root; their names in it)."""
    from archive.images import ImageLimits, derivative_relpath, ingest_location

    src = Path(os.environ.get("MUSEUM_SHARED_DATA", ROOT.parent / "shared" / "data")) / "artworks" / "aic-artwall" / "images"
    paths = []
    for p in sorted(src.glob("*.jpg"))[:120]:
        img = ingest_location(str(p), (128,), tmp, ImageLimits())
        paths.append(derivative_relpath(img.sha256, 128))
    return paths


def part_export(n: int = MILLION) -> None:
    print(f"EXPORT of {n} points (binary point data, ids in Z-order, not sequential; atlas sheets sampled)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        table = synthetic_table(n)
        t0 = time.perf_counter()
        files = export.export_points(table, "bench", 1, media_root=tmp, atlases=False)
        t = time.perf_counter() - t0
        size = sum(c["bytes"] for c in files["chunks"])
        raw = n * sum(np.dtype(dt).itemsize for _, dt in export.COLUMNS)
        # Parse it back (what the browser does) to prove the files are complete.
        root = export.version_dir("bench", 1, tmp)
        ids = np.concatenate([export.decode_chunk(gzip.decompress((root / c["file"]).read_bytes()), c["count"])["id"] for c in files["chunks"]])
        assert np.array_equal(ids, table.artwork_ids.astype(np.uint32))
        print(f"  point data: {len(files['chunks'])} chunks, {raw / 1e6:.1f} MB raw -> {size / 1e6:.2f} MB gzipped "
              f"({size / n:.2f} bytes/point), written in {t:.1f}s", flush=True)
        # What the dominant-colour column costs: the same points without it (the column all zeros,
        # which gzip reduces to almost nothing, as the export was before the column).
        plain = export.export_points(replace(table, colour=None), "bench-plain", 1, media_root=tmp, atlases=False)
        plain_size = sum(c["bytes"] for c in plain["chunks"])
        print(f"  colour column: {size / n:.2f} bytes/point gzipped with it, {plain_size / n:.2f} without "
              f"(+{(size - plain_size) / n:.2f}; raw {raw / n:.0f} bytes/point, 2 of them the colour)", flush=True)
        # Atlas sheets: time a sample of sheets from real 128px derivatives, extrapolate to n.
        thumbs = thumbnail_paths(tmp / "media")
        sample = 4 * export.PER_SHEET
        atlas_table = synthetic_table(sample, thumbs)
        t0 = time.perf_counter()
        af = export.export_points(atlas_table, "atlas", 1, media_root=tmp, thumbs_store=tmp / "media", atlases=True)
        ta = time.perf_counter() - t0
        sheet_bytes = sum((export.version_dir("atlas", 1, tmp) / f"atlas-{s:04d}.jpg").stat().st_size for s in af["atlas"]["sheets"])
        sheets_1m = math.ceil(n / export.PER_SHEET)
        print(f"  atlases: {len(af['atlas']['sheets'])} sheets ({sample} thumbnails) in {ta:.1f}s, "
              f"{sheet_bytes / len(af['atlas']['sheets']) / 1e3:.0f} KB/sheet; for {n} points EXTRAPOLATED "
              f"{sheets_1m} sheets, {ta / sample * n / 60:.0f} min, {sheet_bytes / len(af['atlas']['sheets']) * sheets_1m / 1e9:.2f} GB", flush=True)
    if n == MILLION:
        bench("export_1M_MB", size / 1e6, TARGET_EXPORT_1M_MB, "MB")
    else:
        print(f"  (--export-n {n}: the 25 MB target is judged at 1M points; at this rate 1M would be "
              f"{size / n * MILLION / 1e6:.1f} MB)", flush=True)


class BenchDB:
    """A throwaway database built from the migrations (dropped on exit)."""

    def __enter__(self):
        from django.db import connection

        connection.settings_dict["TEST"]["NAME"] = "bench_maps"
        self.old = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        return self

    def __exit__(self, *exc):
        from django.db import connection

        connection.creation.destroy_test_db(self.old, verbosity=0)


def insert_artworks(n: int) -> np.ndarray:
    from django.utils import timezone

    from archive import vectors
    from archive.models import Artwork

    now = timezone.now()
    fields = [f for f in Artwork._meta.concrete_fields if not f.primary_key and not f.generated]
    fixed = {"source": "bench", "status": "ok", "created_at": now, "updated_at": now, "classification": "painting"}
    template = [fixed.get(f.attname, None if f.null else f.get_default()) for f in fields]
    template = ["{}" if isinstance(v, dict) else v for v in template]
    sid = [f.attname for f in fields].index("source_id")
    title = [f.attname for f in fields].index("title")

    def rows():
        for i in range(n):
            row = list(template)
            row[sid] = str(i)
            row[title] = f"Bench work {i}"
            yield row

    vectors.copy_rows("archive_artwork", [f.column for f in fields], rows())
    return np.asarray(Artwork.objects.filter(source="bench").order_by("id").values_list("id", flat=True), dtype=np.int64)


def part_load(n: int) -> None:
    from archive import vectors
    from archive.models import EmbeddingModel

    print(f"LOAD of {n} 512-d embeddings from PostgreSQL (server-side binary cursor, chunks of {reduce.CHUNK_ROWS})", flush=True)
    with BenchDB():
        ids = insert_artworks(n)
        model = EmbeddingModel.objects.create(key="bench/none", arch="bench", dim=512, state="active")
        X = reduce.normalise(mixture(n))
        t0 = time.perf_counter()
        vectors.copy_rows("archive_artworkembedding", ["artwork_id", "model_id", "vector", "created_at"],
                          ((int(a), model.pk, v, "now()") for a, v in zip(ids, X)))
        print(f"  (setup: wrote the embeddings in {time.perf_counter() - t0:.0f}s)", flush=True)
        t0 = time.perf_counter()
        vs = reduce.load_vectors({}, model.pk)
        t = time.perf_counter() - t0
        assert len(vs) == n and np.allclose(vs.X[0], X[0], atol=1e-6)
        print(f"  streamed {n} vectors in {t:.1f}s ({n / t:,.0f}/s); 1M EXTRAPOLATED {t * MILLION / n / 60:.1f} min "
              f"into a {MILLION * 512 * 4 / 1e9:.1f} GB float32 array", flush=True)
    bench("load_rate_per_s", n / t, 2000.0, "/s", lower_is_better=False)


def zipf_picks(n_rows: int, n_terms: int, k: int, rng) -> np.ndarray:
    """``k`` distinct term indices per row, drawn from a long-tailed (Zipf) distribution: a few
    labels on many artworks, most on few, as machine labels over a real vocabulary are."""
    p = 1.0 / np.arange(1, n_terms + 1)
    p /= p.sum()
    picks = rng.choice(n_terms, (n_rows, k), p=p)
    while True:
        s = np.sort(picks, axis=1)
        bad = np.nonzero((s[:, 1:] == s[:, :-1]).any(axis=1))[0]
        if not len(bad):
            return picks
        picks[bad] = rng.choice(n_terms, (len(bad), k), p=p)


def part_manifest(n_points: int = MILLION, n_labelled: int = 100_000) -> None:
    from django.core.cache import cache
    from django.test import Client

    from archive import vectors
    from archive.models import EmbeddingModel, Label, Layout, Region
    from workers.vocabulary import load_labels

    vocabulary = load_labels()
    print(f"MANIFEST of a {n_points}-point layout (72 regions; the shipped vocabulary of {len(vocabulary)} labels, "
          f"the top 3 of each of {n_labelled} labelled artworks on the map)", flush=True)
    with BenchDB(), tempfile.TemporaryDirectory() as tmp:
        settings.MEDIA_ROOT = Path(tmp)
        ids = insert_artworks(n_labelled)
        model = EmbeddingModel.objects.create(key="bench/none", arch="bench", dim=512, state="active")
        labels = Label.objects.bulk_create([Label(name=v.name, slug=v.slug, group=v.group, prompt=v.prompt, published=True)
                                            for v in vocabulary])
        rng = np.random.default_rng(0)
        picks = zipf_picks(len(ids), len(labels), 3, rng)
        vectors.copy_rows("archive_artworklabel", ["artwork_id", "label_id", "model_id", "score", "rank"],
                          ((int(a), labels[int(l)].pk, model.pk, 0.3, r + 1) for a, row in zip(ids, picks) for r, l in enumerate(row)))
        layout = Layout.objects.create(name="Bench", slug="bench", method="umap", model=model, state="ready", point_count=n_points, export_version=1,
                                       params={"region_names_from": "labels"})
        vectors.copy_rows("archive_layoutpoint", ["layout_id", "artwork_id", "x", "y", "cluster", "placed_incrementally"],
                          ((layout.pk, int(a), 0.0, 0.0, 0, False) for a in ids))
        table = synthetic_table(n_points)
        from workers.layouts.build import label_counts

        t0 = time.perf_counter()
        exported_labels = label_counts(layout)  # at export time, in the job
        t_count = time.perf_counter() - t0
        export.export_points(table, "bench", 1, atlases=False, extra={"labels": exported_labels})
        print(f"  (export-time label counting over the {n_labelled} labelled points: {t_count:.1f}s, "
              f"{len(exported_labels)} labels with a count; the endpoint adds the other published ones)", flush=True)
        Region.objects.bulk_create([Region(layout=layout, level=lv, cluster=c, name=f"region {lv}-{c}", x=0.0, y=0.0, size=1)
                                    for lv, k in ((0, 12), (1, 60)) for c in range(k)])
        client = Client()
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        cache.clear()
        with CaptureQueriesContext(connection) as queries:
            client.get("/map/bench/manifest.json")
        for q in sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:3]:
            print(f"    query {float(q['time']) * 1000:.1f} ms: {q['sql'][:100]}")
        cold, warm = [], []
        for _ in range(5):
            cache.clear()
            t0 = time.perf_counter()
            r = client.get("/map/bench/manifest.json")
            cold.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.status_code
            for _ in range(20):
                t0 = time.perf_counter()
                client.get("/map/bench/manifest.json")
                warm.append(time.perf_counter() - t0)
        size = len(r.content)
        cold_ms, warm_ms = 1000 * float(np.median(cold)), 1000 * float(np.median(warm))
        n_listed = len(r.json()["labels"])
        print(f"  manifest {size / 1e3:.1f} KB, {n_listed} labels listed: uncached median {cold_ms:.1f} ms, cached median {warm_ms:.2f} ms, p95 {1000 * float(np.percentile(warm, 95)):.2f} ms "
              "(Django test client, in-process)", flush=True)
    bench("manifest_cached_ms", warm_ms, TARGET_MANIFEST_MS, "ms")
    bench("manifest_uncached_ms", cold_ms, TARGET_MANIFEST_MS, "ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="points for the layout and load parts (default 100000)")
    parser.add_argument("--n2", type=int, help="a second size for the layout parts, to fit the scaling exponent")
    parser.add_argument("--export-n", type=int, default=MILLION, help="points for the export and manifest parts (default 1M)")
    parser.add_argument("--labelled", type=int, default=100_000, help="labelled artworks for the manifest part (default 100000)")
    parser.add_argument("--measure-1m", action="store_true", help="also run the 1M-point layouts (about an hour each) and judge them")
    parser.add_argument("--only", choices=["umap", "tsne", "export", "manifest", "load"], action="append")
    args = parser.parse_args()
    parts = args.only or ["export", "manifest", "umap", "tsne"]
    print(f"map benchmark, {os.cpu_count()} CPUs, parts: {', '.join(parts)}", flush=True)
    for part in parts:
        if part in ("umap", "tsne"):
            part_layout(part, args.n, args.n2, measure_1m=args.measure_1m)
        elif part == "export":
            part_export(args.export_n)
        elif part == "manifest":
            part_manifest(args.export_n, args.labelled)
        elif part == "load":
            part_load(args.n)
    passed = sum(1 for r in results if r[3])
    if len(results) > 1:
        print(f"BENCH map targets_met={passed}/{len(results)} target={len(results)}/{len(results)} "
              f"{'PASS' if passed == len(results) else 'FAIL'}")


if __name__ == "__main__":
    main()
