"""Embedding from object storage: does a store with tens of milliseconds per GET starve the model?

    .venv/bin/python bench/store_read.py [--model ViT-B-32] [--images 64] [--latency-ms 20]
                                         [--device cpu] [--micro-batch 0] [--rounds 3]

Setup: the real aic-artwall images (../shared/data) ingested once into a local folder and into a
real S3 server (moto's server mode, started here on 127.0.0.1); no database is used. The public
store for the S3 runs is :class:`SlowS3`, the project's S3 store with ``--latency-ms`` added before
every GET (a remote bucket's round trip), so reads are really concurrent or not.

Measured, images/s (wall), with the process's CPU seconds beside each:
- bare: preprocessed tensors fed straight into ``embed_batch`` (the model alone);
- local: the embed stage's loop (``workers.embedding.embed_artworks``: read, decode and
  preprocess in threads, read-ahead of the next micro-batch, the model) on the local folder;
- s3 one thread per core: the same on the slow S3 store with as many threads as cores
  (``EMBED_READ_THREADS=0``: how it was before reads were given their own threads);
- s3: the same with the default ``EMBED_READ_THREADS``.
Each configuration runs once per round, in turn, and the medians are compared (a shared machine's
load changes over minutes). Random weights: speed only (nothing here is a quality figure).
Ends with ``BENCH store_read s3_over_bare=<ratio> target=0.9 PASS|FAIL``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from bench.common import start_moto  # noqa: E402
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "museum.settings")
os.environ.setdefault("DATABASE_URL", "postgresql://bench:none@127.0.0.1:1/none")  # no database is used
os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
SHARED = Path(os.environ.get("MUSEUM_SHARED_DATA", ROOT.parent / "shared" / "data"))
TARGET = 0.9
BUCKET = "bench-public"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--micro-batch", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings

    from archive import storage
    from archive.images import ImageLimits, derivative_relpath, ingest_location, load_derivative
    from archive.storage_s3 import PublicS3Storage
    from museum import object_storage
    from workers import embedding
    from workers.ml.clip import ClipEmbedder, ModelSpec

    class SlowS3(PublicS3Storage):
        """The S3 store with a fixed wait before every GET (the round trip to a remote bucket)."""

        def read_bytes(self, name):
            time.sleep(args.latency_ms / 1000)
            return super().read_bytes(name)

    images = sorted((SHARED / "artworks" / "aic-artwall" / "images").glob("*.jpg"))[: args.images]
    if not images:
        raise SystemExit(f"no images under {SHARED}/artworks/aic-artwall/images")
    work = Path(tempfile.mkdtemp(prefix="bench-store-"))
    moto, endpoint = start_moto()
    try:
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        local_store = {"BACKEND": "archive.storage.MediaFolder", "OPTIONS": {"location": str(work / "media")}}
        s3_options = object_storage.stores({"STORAGE_URL": f"s3://{BUCKET}/media?endpoint={endpoint}",
                                            "PRIVATE_STORAGE_URL": f"s3://{BUCKET}-private"})["default"]["OPTIONS"]
        slow_store = {"BACKEND": f"{__name__}.SlowS3", "OPTIONS": s3_options}
        globals()["SlowS3"] = SlowS3

        def use(store: dict) -> None:
            settings.STORAGES = {**settings.STORAGES, "default": store}
            from django.core.files.storage import storages

            storages._storages.clear()
            storages._backends = None
            storages.__dict__.pop("backends", None)  # a cached property
            assert (storage.local_path(storage.public()) is None) == (store is not local_store)

        shas = []
        for store in (local_store, {"BACKEND": "archive.storage_s3.PublicS3Storage", "OPTIONS": s3_options}):
            use(store)
            shas = [ingest_location(str(p), settings.DERIVATIVE_SIZES, None, ImageLimits.from_settings()).sha256 for p in images]
        items = list(enumerate(shas, start=1))
        if args.micro_batch:
            settings.EMBED_MICRO_BATCH = args.micro_batch

        embedder = ClipEmbedder(ModelSpec(args.model, "random"), device=args.device)
        use(local_store)
        size = embedding.micro_batch_size(embedder)
        tensors = embedder.preprocess_images([load_derivative(s, embedding.DERIVATIVE_SIZE) for s in shas])
        embedder.embed_batch(tensors[: min(8, len(tensors))])  # warm-up

        def bare() -> tuple[float, float]:
            start, cpu = time.perf_counter(), cpu_seconds()
            for i in range(0, len(tensors), size):
                embedder.embed_batch(tensors[i : i + size])
            return len(tensors) / (time.perf_counter() - start), cpu_seconds() - cpu

        warmed: set = set()

        def pipeline(store: dict, read_threads: int) -> tuple[float, float, int]:
            use(store)
            settings.EMBED_READ_THREADS = read_threads
            if (id(store), read_threads) not in warmed:  # warm-up: threads, connections
                embedding.embed_artworks(embedder, items[: min(len(items), 2 * size)])
                warmed.add((id(store), read_threads))
            start, cpu = time.perf_counter(), cpu_seconds()
            ok, _, errors = embedding.embed_artworks(embedder, items)
            assert not errors, errors[:3]
            return len(ok) / (time.perf_counter() - start), cpu_seconds() - cpu, embedding.pool_threads()

        # Rounds of every configuration in turn, so a shared machine's changing load falls on all of
        # them alike; each figure is the median over the rounds.
        runs: dict[str, list] = {"bare": [], "local": [], "s3 one thread per core": [], "s3": []}
        for _ in range(args.rounds):
            runs["bare"].append((*bare(), 0))
            runs["local"].append(pipeline(local_store, 32))
            runs["s3 one thread per core"].append(pipeline(slow_store, 0))
            runs["s3"].append(pipeline(slow_store, 32))
        median = {name: sorted(r[0] for r in rs)[len(rs) // 2] for name, rs in runs.items()}
        bare_rate = median["bare"]
        print(f"model {args.model} (random weights) on {args.device}, {len(items)} images, micro-batch {size}, "
              f"{args.latency_ms:g} ms added per GET, {os.cpu_count()} cores, {args.rounds} rounds (medians), "
              f"load average {os.getloadavg()[0]:.1f}")
        for name, rs in runs.items():
            cpu = sum(r[1] for r in rs) / sum(len(items) for _ in rs)
            print(f"  {name:24s} {median[name]:8.1f} images/s  ratio {median[name] / bare_rate:.2f}  "
                  f"CPU {cpu * 1000:.0f} ms/image  threads {rs[-1][2] or '-'}  (rounds: {', '.join(f'{r[0]:.1f}' for r in rs)})")
        ratio = median["s3"] / bare_rate
        print(json.dumps({k: round(v, 1) for k, v in median.items()}))
        print(f"BENCH store_read s3_over_bare={ratio:.2f} target={TARGET} {'PASS' if ratio >= TARGET else 'FAIL'}")
        return 0
    finally:
        moto.terminate()
        moto.wait(timeout=20)


if __name__ == "__main__":
    sys.exit(main())
