"""Serving under load: ``./run serve`` (gunicorn + WhiteNoise) against the development server.

    .venv/bin/python bench/serve.py [--clients 50] [--requests 10] [--workers 2] [--keep]

Setup: a dedicated database ``bench_serve`` on the embedded PostgreSQL (created, migrated, dropped
afterwards unless ``--keep``) holding the explorer tests' small real archive (60 real images, the
untrained test-tiny model, labels). Both servers run as their own processes on 127.0.0.1 against
it, one after the other: ``./run serve`` (``WEB_CONCURRENCY=--workers``) and ``museum.serve`` (the
demo's threaded development server). ``--clients`` threads each send ``--requests`` requests,
alternating a label page and a search by meaning (rate limits raised for the run), all at once.
Reported per server: requests, errors (anything but 200, or no answer), p50/p95/max latency.
Ends with ``BENCH serve errors=<./run serve's error count> target=0 PASS|FAIL``.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("MUSEUM_SHARED_DATA", ROOT.parent / "shared" / "data"))
DB_NAME = "bench_serve"


def with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_up(base: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if requests.get(base + "/healthz", timeout=10).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{base} not up after {timeout:.0f} s")


def load(base: str, paths: list[str], clients: int, per_client: int) -> dict:
    import requests

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client(index: int) -> None:
        session = requests.Session()
        start.wait()
        for i in range(per_client):
            path = paths[(index + i) % len(paths)]
            began = time.perf_counter()
            try:
                status = session.get(base + path, timeout=60).status_code
                problem = None if status == 200 else f"HTTP {status}"
            except requests.RequestException as exc:
                problem = exc.__class__.__name__
            with lock:
                latencies.append(time.perf_counter() - began)
                if problem:
                    errors.append(problem)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {"requests": len(latencies), "errors": len(errors), "kinds": sorted(set(errors)), "wall_s": wall,
            "p50": pick(0.5), "p95": pick(0.95), "max": latencies[-1] * 1000}


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    import psycopg

    from museum.embedded_pg import database_url

    server = os.environ.get("DATABASE_URL") or database_url(ROOT)
    with psycopg.connect(with_db(server, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    db_url = with_db(server, DB_NAME)
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    env = {**os.environ, "DATABASE_URL": db_url, "MEDIA_ROOT": str(work / "media"), "STATIC_ROOT": str(work / "static"),
           "CLIP_MODEL": "test-tiny", "SEARCH_RATE": "1000000/minute", "API_ANON_RATE": "1000000/minute",
           "DJANGO_SETTINGS_MODULE": "museum.settings", "SERVE_MIGRATE": "false", "HF_HUB_OFFLINE": "1"}
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "MEDIA_ROOT", "CLIP_MODEL", "DJANGO_SETTINGS_MODULE", "HF_HUB_OFFLINE")})
    procs = []
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from tests.explorer.archive_data import build_archive

        data = build_archive(SHARED / "artworks" / "aic-artwall", SHARED / "artworks" / "culturecraft")
        from django.db import connections

        connections.close_all()
        slugs = [label.slug for label in data["labels"]][:5]
        paths = [p for slug in slugs for p in (f"/labels/{slug}/", f"/search/?q={slug.replace('-', '+')}")]

        results = {}
        for name, command in (
            ("./run serve (gunicorn)", [str(ROOT / "run"), "serve"]),
            ("development server", [sys.executable, "-c", "import django; django.setup(); from museum.serve import serve; "
                                                          "import sys; serve('127.0.0.1', int(sys.argv[1]))", "PORT"]),
        ):
            port = free_port()
            command = [c if c != "PORT" else str(port) for c in command]
            log = open(work / f"{len(results)}.log", "wb")
            proc = subprocess.Popen(command, cwd=ROOT, env={**env, "SERVE_BIND": f"127.0.0.1:{port}",
                                                            "WEB_CONCURRENCY": str(args.workers)},
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            procs.append(proc)
            base = f"http://127.0.0.1:{port}"
            wait_up(base, proc)
            load(base, paths, min(args.clients, 4), 2)  # warm-up: every worker loads the model and templates
            results[name] = load(base, paths, args.clients, args.requests)
            stop(proc)
            procs.remove(proc)
        print(f"{args.clients} clients x {args.requests} requests (label pages and searches), {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f}; gunicorn: {args.workers} workers x 4 threads")
        for name, r in results.items():
            print(f"  {name:24s} {r['requests']} requests  errors {r['errors']} {r['kinds'] or ''}  p50 {r['p50']:.0f} ms  "
                  f"p95 {r['p95']:.0f} ms  max {r['max']:.0f} ms  wall {r['wall_s']:.1f} s")
        errors = results["./run serve (gunicorn)"]["errors"]
        print(f"BENCH serve errors={errors} target=0 {'PASS' if errors == 0 else 'FAIL'}")
        return 0
    finally:
        for proc in procs:
            stop(proc)
        if not args.keep:
            from django.db import connections

            connections.close_all()
            with psycopg.connect(with_db(server, "postgres"), autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


if __name__ == "__main__":
    sys.exit(main())
