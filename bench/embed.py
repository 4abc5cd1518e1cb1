"""Embedding benchmark: the full job pipeline against the bare model, and worker memory vs job size.

    .venv/bin/python bench/embed.py [--models test-tiny,ViT-B-32] [--pretrained random]
                                    [--device auto|cpu|cuda] [--images 512] [--batch-size 256]
                                    [--micro-batch 0] [--rss-sizes 2000,20000] [--broker URL] [--keep]
                                    [--store local|s3] [--latency-ms 20]

Setup: a dedicated database ``bench_embed`` (created and dropped on the same PostgreSQL server)
and a temporary MEDIA_ROOT; the real aic-artwall images (../shared/data) are ingested once and
synthetic artworks re-use their derivatives (rows sharing their sha256), so any job size is
possible with real decode work.

For each model (random weights are fine for speed; ``test-tiny`` is the tiny test model):
- bare images/s: tensors already decoded and preprocessed, fed straight into the model in
  micro-batches of the same size the pipeline uses (``embed_batch``), nothing written; measured
  before and after the pipeline run (half the images each) and averaged, as the machine is shared;
- pipeline images/s: ``workers.jobs.launch("embed", ...)`` over the same number of artworks on a
  real Celery worker process (one solo worker, all cores): selection, batch rows, Celery messages,
  leases, decode + preprocess in threads pipelined with the model, COPY upsert into pgvector,
  progress rows; timed from launch to the job's DONE, after a warm-up job loaded the model.
With ``--store s3`` the pipeline runs twice per model, on the local folder and then with every
derivative in an S3 bucket (moto's S3 server on 127.0.0.1, ``STORAGE_URL`` for the bench and the
worker) behind a proxy that holds each request ``--latency-ms`` (a remote bucket's round trip):
both ratios are printed and the BENCH line is the S3 one.
Memory: a worker's peak RSS (VmHWM) over a job of each size in ``--rss-sizes`` (fresh worker each,
test-tiny so the big job stays short); target: the larger job's peak within 10% (+32 MB) of the
smaller's.
Ends with ``BENCH embed pipeline_over_bare=<ratio of the last model> target=0.9 PASS|FAIL``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Same OpenMP setting as the workers (workers/celery.py), so bare and pipeline run the same model.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
SHARED = Path(os.environ.get("MUSEUM_SHARED_DATA", ROOT.parent / "shared" / "data"))
DB_NAME = "bench_embed"
RATIO_TARGET = 0.9
GPU_TARGET = 5000  # images/s end to end, ViT-B-32 on one H100/H200
REDIS_URL = "redis://127.0.0.1:6379/8"


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


def redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="test-tiny,ViT-B-32", help="comma-separated open_clip names (or test-tiny)")
    p.add_argument("--model", help="a single model (same as --models NAME)")
    p.add_argument("--pretrained", default="random", help="pretrained tag or weights path for the non-test models")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--images", type=int, default=0, help="artworks per throughput run (default 512 on CPU, 8192 on CUDA)")
    p.add_argument("--batch-size", type=int, default=256, help="artworks per job batch (Celery task)")
    p.add_argument("--micro-batch", type=int, default=0, help="images per forward pass (default 64 CPU / 256 CUDA)")
    p.add_argument("--rss-sizes", default="2000,20000", help="job sizes for the worker memory check ('' to skip)")
    p.add_argument("--broker", help="Celery broker (default: Redis db 8 if running, else the server-less default)")
    p.add_argument("--keep", action="store_true", help="keep the bench database and media")
    p.add_argument("--store", choices=["local", "s3"], default="local",
                   help="s3: also run the pipeline with the derivatives in an S3 bucket behind --latency-ms")
    p.add_argument("--latency-ms", type=float, default=20.0, help="wait added to every S3 request (--store s3)")
    args = p.parse_args()
    if args.model:
        args.models = args.model
    return args


def model_key(name: str, pretrained: str) -> str:
    return "test-tiny" if name == "test-tiny" else f"{name}/{pretrained}"


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


S3_BUCKET = "bench-embed"


def s3_store(files, media: Path, latency_ms: float) -> dict:
    """Start moto's S3 server behind a latency proxy, put every derivative of ``files`` there, and
    return the environment that points a worker at it (the bench process keeps the local store)."""
    import atexit

    import boto3

    from bench.common import LatencyProxy, start_moto
    from museum import object_storage

    credentials = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    os.environ.update(credentials)
    proc, endpoint = start_moto()
    atexit.register(proc.terminate)
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=S3_BUCKET)
    client.create_bucket(Bucket=S3_BUCKET + "-private")
    proxy = LatencyProxy(endpoint, latency_ms)
    env = {"STORAGE_URL": f"s3://{S3_BUCKET}/media?endpoint={proxy.endpoint}",
           "PRIVATE_STORAGE_URL": f"s3://{S3_BUCKET}-private/private", **credentials}
    # The derivatives into the bucket (directly, not through the proxy), under the keys the S3
    # store gives them: what an ingest host writing to the bucket leaves there.
    from archive.storage_s3 import PublicS3Storage

    prefix = PublicS3Storage(**object_storage.stores(env)["default"]["OPTIONS"]).location.strip("/")
    t0 = time.perf_counter()
    paths = [path for path in media.rglob("*") if path.is_file()]
    for path in paths:
        client.upload_file(str(path), S3_BUCKET, f"{prefix}/{path.relative_to(media).as_posix()}".lstrip("/"))
    print(f"copied {len(paths)} derivative files of {len(files)} images into S3 in {time.perf_counter() - t0:.1f}s "
          f"(the worker reads them through a proxy adding {latency_ms:g} ms per request)", flush=True)
    return env


def main() -> int:
    args = parse_args()
    url = server_url()
    db_url = with_db(url, DB_NAME)
    media = Path(tempfile.mkdtemp(prefix="bench-embed-media-"))
    admin_execute(url, f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    admin_execute(url, f"CREATE DATABASE {DB_NAME}")
    broker = args.broker or (REDIS_URL if redis_up() else "sqla+" + db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    os.environ.update(DATABASE_URL=db_url, MEDIA_ROOT=str(media), CELERY_BROKER_URL=broker, DJANGO_SETTINGS_MODULE="museum.settings")
    if args.device != "auto":
        os.environ["ML_DEVICE"] = args.device
    if args.micro_batch:
        os.environ["EMBED_MICRO_BATCH"] = str(args.micro_batch)
    try:
        return run(args, db_url, media, broker)
    finally:
        from django.db import connections

        connections.close_all()
        try:
            from kombu.transport.sqlalchemy import Channel

            for engine, _ in list(Channel._engines.values()):
                engine.dispose()
        except ImportError:
            pass
        if not args.keep:
            admin_execute(url, f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
            shutil.rmtree(media, ignore_errors=True)


def run(args, db_url: str, media: Path, broker: str) -> int:
    import django

    django.setup()
    import torch
    from django.conf import settings
    from django.core.management import call_command

    from archive.images import ImageLimits, ingest_location, load_derivative
    from archive.models import Artwork, ArtworkEmbedding, Job
    from workers import embedding, jobs
    from workers.ml.clip import pick_device
    from workers.ml.registry import get_embedder
    from workers.process import start_workers, stop_workers

    if broker.startswith("redis://"):
        import redis

        redis.Redis.from_url(broker).flushdb()
    call_command("migrate", interactive=False, verbosity=0)
    device = pick_device(None if args.device == "auto" else args.device)
    images = args.images or (8192 if device.startswith("cuda") else 512)
    sizes = [int(s) for s in args.rss_sizes.split(",") if s.strip()]
    print(f"device={device} torch_threads={torch.get_num_threads()} cpus={os.cpu_count()} broker={broker.split('://')[0]} "
          f"batch={args.batch_size} images={images}", flush=True)

    # Real images, ingested once; synthetic artworks share their derivatives.
    files = sorted((SHARED / "artworks" / "aic-artwall" / "images").glob("*.jpg"))
    if not files:
        print(f"no images under {SHARED}; cannot run", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    limits = ImageLimits.from_settings()
    shas = [ingest_location(str(f), settings.DERIVATIVE_SIZES, media, limits).sha256 for f in files]
    print(f"ingested {len(shas)} real images in {time.perf_counter() - t0:.1f}s", flush=True)
    needed = max([images] + sizes)
    rows = (Artwork(source="bench", source_id=str(i), title=f"synthetic {i}", sha256=shas[i % len(shas)],
                    status=Artwork.Status.OK) for i in range(needed))
    from itertools import islice

    while True:
        chunk = list(islice(rows, 5000))
        if not chunk:
            break
        Artwork.objects.bulk_create(chunk)
    all_ids = list(Artwork.objects.order_by("pk").values_list("pk", flat=True))

    worker_env = {"DATABASE_URL": db_url, "MEDIA_ROOT": str(media), "CELERY_BROKER_URL": broker, "JOB_BATCH_SIZE": str(args.batch_size)}
    stores = {"local": {}}
    if args.store == "s3":
        stores["s3"] = s3_store(files, media, args.latency_ms)

    def run_job(key: str, ids: list[int]) -> tuple[float, Job]:
        start = time.perf_counter()
        job = jobs.launch("embed", {"model": key, "activate_when_complete": False}, mode="all", ids=ids,
                          batch_size=args.batch_size)
        if job.state == Job.State.FAILED:
            raise SystemExit(f"job failed to start: {job.message}")
        while not job.is_final:
            time.sleep(0.05)
            job.refresh_from_db()
        elapsed = time.perf_counter() - start
        if job.state != Job.State.DONE or job.failed:
            raise SystemExit(f"job ended {job.state} with {job.failed} failures: {job.message}")
        return elapsed, job

    ratio = pipeline_rate = None
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        key = model_key(name, args.pretrained)
        embedder = get_embedder(key, device=device)
        micro = embedding.micro_batch_size(embedder)
        # Bare: preprocessed tensors straight into the model, same micro-batch size. Measured
        # before and after the pipeline (half the images each) and averaged: the machine is shared.
        tensors = [embedder.preprocess(load_derivative(shas[i % len(shas)], 256)) for i in range(min(images, 1024))]
        batches = [torch.stack(tensors[i : i + micro]) for i in range(0, len(tensors), micro)]
        del tensors
        embedder.embed_batch(batches[0])  # warm-up
        if getattr(embedder, "gpu_decode", False):
            # The pipeline decodes and preprocesses on the GPU here: compare with the CPU path.
            from archive.images import derivative_path

            datas = [derivative_path(sha, 256).read_bytes() for sha in shas]
            gpu_batch, kept, failed = embedder.batch_from_jpegs(datas)
            cpu_batch = embedder.batch_from_prepared([embedder.prepare_image(load_derivative(sha, 256)) for sha in shas])
            diff = (gpu_batch.float().cpu() - cpu_batch).abs()
            std = torch.tensor(embedder.preprocess_description["std"]).view(1, 3, 1, 1)
            grey = (diff * std * 255).amax().item()  # in 8-bit grey levels
            cos = (embedder.embed_batch(gpu_batch) * embedder.embed_batch(cpu_batch)).sum(axis=1)
            print(f"GPU preprocessing vs CPU over {len(kept)} real images ({len(failed)} failed): max difference "
                  f"{grey:.2f} grey levels, mean {(diff * std * 255).mean().item():.3f}; embedding cosine min "
                  f"{cos.min():.5f}, mean {cos.mean():.5f}", flush=True)

        def bare_rate(count: int) -> float:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            done, start, cpu = 0, time.perf_counter(), time.process_time()
            while done < count:
                for batch in batches:
                    embedder.embed_batch(batch)
                    done += len(batch)
                    if done >= count:
                        break
            bare_cpu_ms.append((time.process_time() - cpu) / done * 1000)
            return done / (time.perf_counter() - start)

        bare_cpu_ms: list[float] = []
        bare_before = bare_rate(max(images // 2, micro))
        runs = {}
        for store_name, store_env in stores.items():
            # Pipeline: a real worker process, warmed up by a one-batch job; each store in turn.
            ArtworkEmbedding.objects.filter(model__key=key).delete()
            procs = start_workers(["embed"], 1, env={**worker_env, **store_env, "ML_DEVICE": device},
                                  logfile=media / f"worker-{name}-{store_name}.log")
            try:
                cpu0 = worker_cpu(procs[0].pid)
                run_job(key, all_ids[: min(args.batch_size, images)])
                cpu1 = worker_cpu(procs[0].pid)
                elapsed, job = run_job(key, all_ids[:images])
                cpu = worker_cpu(procs[0].pid) - cpu1
                rss = peak_rss_mb(procs[0].pid)
            finally:
                stop_workers(procs)
            runs[store_name] = (images / elapsed, elapsed, job.batches.count(), rss, cpu / images * 1000, cpu1 - cpu0)
        bare_after = bare_rate(max(images // 2, micro))
        bare = (bare_before + bare_after) / 2
        del batches
        bare_cpu = sum(bare_cpu_ms) / len(bare_cpu_ms)
        print(f"model {key} (dim {embedder.dim}, micro-batch {micro}): bare {bare:.1f} img/s "
              f"(before {bare_before:.1f}, after {bare_after:.1f}), CPU {bare_cpu:.0f} ms per image", flush=True)
        for store_name, (pipeline, elapsed, tasks, rss, cpu_ms, _) in runs.items():
            where = "local folder" if store_name == "local" else f"S3 + {args.latency_ms:g} ms per request"
            print(f"  pipeline, {where}: {pipeline:.1f} img/s ({images} artworks, {tasks} tasks, {elapsed:.1f}s), "
                  f"pipeline/bare {pipeline / bare:.2f}, worker CPU {cpu_ms:.0f} ms per image "
                  f"(bare/pipeline CPU {bare_cpu / cpu_ms:.2f}), peak RSS {rss:.0f} MB", flush=True)
        pipeline = pipeline_rate = runs[list(runs)[-1]][0]
        ratio = pipeline / bare

    # Worker memory vs job size (test-tiny: the big job stays short).
    rss_ok = True
    if sizes:
        peaks = []
        for size in sizes:
            procs = start_workers(["embed"], 1, env={**worker_env, "ML_DEVICE": device}, logfile=media / f"worker-rss-{size}.log")
            try:
                elapsed, job = run_job("test-tiny", all_ids[:size])
                peaks.append(peak_rss_mb(procs[0].pid))
            finally:
                stop_workers(procs)
            print(f"rss: test-tiny job of {size} artworks: {elapsed:.1f}s ({size / elapsed:.0f} img/s), "
                  f"worker peak RSS {peaks[-1]:.0f} MB", flush=True)
        rss_ok = peaks[-1] <= peaks[0] * 1.10 + 32
        print(f"RSS peak {'/'.join(f'{p:.0f}' for p in peaks)} MB for {'/'.join(map(str, sizes))} artworks: "
              f"{'flat' if rss_ok else 'GROWS'} (limit: +10% +32 MB)", flush=True)
    if device.startswith("cuda") and pipeline_rate is not None:
        # The GPU target: end-to-end images/s of the last model (ViT-B-32) on one H100/H200.
        ok = pipeline_rate >= GPU_TARGET
        print(f"BENCH embed_gpu pipeline_img_s={pipeline_rate:.0f} target={GPU_TARGET} {'PASS' if ok else 'FAIL'}", flush=True)
    passed = ratio is not None and ratio >= RATIO_TARGET and rss_ok
    metric = "s3_pipeline_over_bare" if "s3" in stores else "pipeline_over_bare"
    print(f"BENCH embed {metric}={ratio:.2f} target={RATIO_TARGET} {'PASS' if passed else 'FAIL'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
