"""Abuse of the public upload endpoints, against a running explorer served the way ``./run demo``
serves it (``museum.serve``: Django's threaded development server, one process), on 127.0.0.1.

Upload half: the server process's RSS (sampled every 5 ms during each request) and the time of
each hostile upload, beside a normal small JPEG measured in the same run:

- ``pixel_bomb``: a complete, valid PNG (~420 KB) of 12000x12000 black pixels, sent to search by
  image (API and page) and to the doppelganger API;
- ``body_200mb``: a multipart body declaring 200 MB (1 MB of it actually sent), to search by image;
- ``stream_over``: a body declaring less than it sends is cut at the limit while streaming.

Concurrency half: 50 concurrent clients each send one real face photo to the doppelganger API
(``faces/photos-deepface``); p50/p95 and errors (5xx or failed connections) are printed. The
doppelganger's rate limit is raised for this run (one address sends all 50).

Usage: .venv/bin/python bench/abuse.py [--clients 50] [--skip-concurrency]
Prints BENCH abuse_concurrency errors=<n> target=0 PASS|FAIL (p95 beside it), and ends with:
BENCH abuse_upload worst_ms=<value> target=100 PASS|FAIL (PASS needs every hostile upload refused
in under 100 ms with under 20 MB RSS growth; the growth is printed beside it).
"""
from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MUSEUM_SHARED_DATA", ROOT.parent / "shared" / "data"))
TARGET_MS = 100
TARGET_GROWTH_MB = 20


def pixel_bomb(side: int = 12000) -> bytes:
    """A complete PNG of side x side black RGB pixels, compressed row by row (small on the wire)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    compressor = zlib.compressobj(9)
    row = b"\x00" * (side * 3 + 1)
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def small_jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (120, 80, 40)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


class Server:
    def __init__(self, port: int):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "museum.settings", "DEBUG": "false", "CLIP_MODEL": os.environ.get("CLIP_MODEL", "test-tiny"),
               "DOPPELGANGER_RATE": "100000/minute", "IMAGE_SEARCH_RATE": "100000/minute", "API_ANON_RATE": "100000/minute"}
        python = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
        subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        serve = f"import django; django.setup(); from museum.serve import serve; serve('127.0.0.1', {port})"
        self.proc = subprocess.Popen(
            [python, "-c", serve],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        self.process = psutil.Process(self.proc.pid)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                requests.get(self.base + "/search/image/", timeout=5)
                return
            except requests.RequestException:
                time.sleep(0.5)
        raise RuntimeError("the explorer did not start")

    def rss(self) -> int:
        return self.process.memory_info().rss

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def measured(server: Server, send) -> tuple[float, float, float, object]:
    """(wall ms, server CPU ms, peak RSS growth MB, result) of one request, RSS sampled every 5 ms."""
    before = server.rss()
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], server.rss())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu = server.process.cpu_times()
    started = time.perf_counter()
    result = send()
    wall = (time.perf_counter() - started) * 1000
    cpu_after = server.process.cpu_times()
    done.set()
    sampler.join()
    peak[0] = max(peak[0], server.rss())
    cpu_ms = ((cpu_after.user + cpu_after.system) - (cpu.user + cpu.system)) * 1000
    return wall, cpu_ms, (peak[0] - before) / 1e6, result


def post_file(server: Server, path: str, field: str, data: bytes, name: str = "upload.png"):
    return requests.post(server.base + path, files={field: (name, data)}, timeout=60).status_code


def declared_200mb(server: Server, path: str):
    """Headers declaring 200 MB, then 1 MB of body; the status line of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        boundary = "benchboundary"
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {200 * 1024 * 1024}\r\n\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"big.png\"\r\n"
                "Content-Type: image/png\r\n\r\n").encode()
        try:
            sock.sendall(head + b"\x00" * (1024 * 1024))
        except OSError:
            pass  # the server answered and closed before taking it all
        answer = sock.recv(256).split(b"\r\n", 1)[0].decode(errors="replace")
        return int(answer.split()[1]) if len(answer.split()) > 1 else 0


UNGUARDED = """
import io, os, sys, time, resource
sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "museum.settings")
import django; django.setup()
from archive.images import ImageLimits, open_image
data = sys.stdin.buffer.read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
try:
    open_image(data, ImageLimits.from_settings(), want=256)  # what search by image did before the guard
    outcome = "decoded"
except Exception as exc:
    outcome = type(exc).__name__
print(f"{(time.perf_counter() - started) * 1000:.0f} {(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024:.0f} {outcome}")
"""


def unguarded_baseline(bomb: bytes) -> str:
    """The same bomb through the pre-guard path (archive.images.open_image with the import limits),
    in a separate process: its decode time and peak RSS growth, for comparison."""
    python = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
    env = {**os.environ, "DATABASE_URL": os.environ.get("DATABASE_URL") or "postgresql://nobody@127.0.0.1:1/none"}
    out = subprocess.run([python, "-c", UNGUARDED], input=bomb, cwd=ROOT, env=env, capture_output=True, timeout=600)
    wall, growth, outcome = out.stdout.decode().split()
    return f"unguarded baseline (the pre-guard decode path, separate process): {wall} ms, peak RSS +{growth} MB, {outcome}"


def upload_half(server: Server) -> tuple[float, float, list[str]]:
    jpeg, bomb = small_jpeg(), pixel_bomb()
    print(f"pixel bomb: {len(bomb) / 1024:.0f} KB on the wire, 12000x12000 px declared ({12000 * 12000 * 3 / 1e6:.0f} MB to decode)")
    print(unguarded_baseline(bomb))
    for _ in range(3):  # warm the process (imports, the first request's set-up)
        post_file(server, "/api/v1/search/image/", "image", jpeg, "small.jpg")
        post_file(server, "/api/v1/search/image/", "image", bomb)
    lines, worst_ms, worst_growth = [], 0.0, 0.0
    baseline = measured(server, lambda: post_file(server, "/api/v1/search/image/", "image", jpeg, "small.jpg"))
    print(f"baseline small JPEG (search by image API): {baseline[0]:.1f} ms wall, {baseline[1]:.0f} ms CPU, "
          f"RSS +{baseline[2]:.1f} MB, HTTP {baseline[3]}")
    cases = [
        ("pixel_bomb search API", lambda: post_file(server, "/api/v1/search/image/", "image", bomb)),
        ("pixel_bomb search page", _page_post(server, bomb)),
        ("pixel_bomb doppelganger API", lambda: post_file(server, "/api/v1/doppelganger/", "image", bomb)),
        ("body_200mb search API", lambda: declared_200mb(server, "/api/v1/search/image/")),
        ("body_200mb doppelganger API", lambda: declared_200mb(server, "/api/v1/doppelganger/")),
    ]
    tmp_before = _tmp_files()
    for name, send in cases:
        runs = [measured(server, send) for _ in range(5)]
        wall = max(r[0] for r in runs)
        growth = max(r[2] for r in runs)
        statuses = sorted({r[3] for r in runs})
        worst_ms, worst_growth = max(worst_ms, wall), max(worst_growth, growth)
        lines.append(f"{name}: HTTP {statuses}, worst of 5 {wall:.1f} ms wall "
                     f"({statistics.median(r[1] for r in runs):.0f} ms CPU median), RSS growth <= {growth:.1f} MB")
        print(lines[-1])
    spooled = _tmp_files() - tmp_before
    print(f"files left in {Path(os.environ.get('TMPDIR', '/tmp'))} by the uploads: {len(spooled)}")
    print(f"server RSS after all: {server.rss() / 1e6:.0f} MB")
    return worst_ms, worst_growth, lines


def _page_post(server: Server, data: bytes):
    """A sender for the HTML form (a CSRF token fetched once, outside the measured request)."""
    session = requests.Session()
    session.get(server.base + "/search/image/", timeout=30)
    token = session.cookies.get("csrftoken", "")

    def send():  # a fresh connection, like the other cases (no keep-alive delayed-ACK wait in the figure)
        return requests.post(server.base + "/search/image/", files={"image": ("bomb.png", data)},
                             data={"csrfmiddlewaretoken": token}, cookies={"csrftoken": token},
                             headers={"Referer": server.base + "/search/image/"}, timeout=60).status_code

    return send


def _tmp_files() -> set[str]:
    folder = Path(os.environ.get("TMPDIR", "/tmp"))
    return {p.name for p in folder.glob("*.upload*")}


def concurrency_half(server: Server, clients: int) -> tuple[str, float, int]:
    photos = sorted((SHARED / "faces" / "photos-deepface").rglob("*.jpg"))
    if not photos:
        return f"concurrency: skipped (no photos under {SHARED / 'faces' / 'photos-deepface'})", 0.0, -1
    payloads = [photos[i % len(photos)].read_bytes() for i in range(clients)]
    requests.post(server.base + "/api/v1/doppelganger/", files={"image": ("warm.jpg", payloads[0])}, timeout=120)
    barrier = threading.Barrier(clients)

    def one(data: bytes):
        barrier.wait()
        started = time.perf_counter()
        try:
            status = requests.post(server.base + "/api/v1/doppelganger/", files={"image": ("me.jpg", data)}, timeout=300).status_code
        except requests.RequestException:
            status = 0
        return (time.perf_counter() - started) * 1000, status

    cpu = server.process.cpu_times()
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, payloads))
    wall = time.perf_counter() - started
    after = server.process.cpu_times()
    times = sorted(t for t, _ in results)
    statuses = [s for _, s in results]
    errors = sum(1 for s in statuses if s == 0 or s >= 500)
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return ((f"concurrency: {clients} clients at once, doppelganger API: p50 {statistics.median(times):.0f} ms, "
            f"p95 {p95:.0f} ms, max {times[-1]:.0f} ms, all done in {wall:.1f} s, server CPU "
            f"{(after.user + after.system) - (cpu.user + cpu.system):.1f} s; statuses "
            f"{ {s: statuses.count(s) for s in sorted(set(statuses))} } (0: connection refused or reset), errors {errors}"),
            p95, errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--skip-concurrency", action="store_true")
    args = parser.parse_args()
    server = Server(args.port)
    try:
        print(f"explorer: museum.serve (runserver, backlog 128) on {server.base}, pid {server.proc.pid}, RSS {server.rss() / 1e6:.0f} MB")
        worst_ms, worst_growth, _ = upload_half(server)
        concurrency = None
        if args.skip_concurrency:
            print("concurrency: skipped (--skip-concurrency)")
        else:
            line, p95, errors = concurrency_half(server, args.clients)
            print(line)
            concurrency = (p95, errors) if errors >= 0 else None
    finally:
        server.stop()
    ok = worst_ms < TARGET_MS and worst_growth < TARGET_GROWTH_MB
    print(f"worst hostile upload: {worst_ms:.1f} ms, RSS growth {worst_growth:.1f} MB (targets {TARGET_MS} ms, {TARGET_GROWTH_MB} MB)")
    if concurrency is not None:
        print(f"concurrency p95 {concurrency[0]:.0f} ms with {concurrency[1]} errors of {args.clients} clients")
        print(f"BENCH abuse_concurrency errors={concurrency[1]} target=0 {'PASS' if concurrency[1] == 0 else 'FAIL'}")
    print(f"BENCH abuse_upload worst_ms={worst_ms:.1f} target={TARGET_MS} {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
