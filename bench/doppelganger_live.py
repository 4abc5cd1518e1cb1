"""The live mirror's figures for ``bench/doppelganger.py --live`` (run through that script, which
builds the database of --faces indexed faces first). No BENCH line here: the caller prints it.

1. In process (Django's test client, no network): every real face photo of
   ``faces/photos-deepface`` as the two kinds of frame the page's script sends, a whole camera
   picture downscaled to 320 px and the region around the face (the face at about 110 px, cut from
   the full photo where the 320 px frame found it), posted to ``POST /doppelganger/frame/``; wall
   and CPU time per frame, and the parts (decode, detect, embed, kNN). Baseline measured in the
   same run: the snapshot look-up (``POST /api/v1/doppelganger/`` with the photo itself).
2. Under ``./run serve`` (gunicorn, ``--workers`` processes x 4 threads, on this machine): one
   visitor for --seconds, then --visitors visitors at once, each as the page's script behaves (one
   request in flight, at most 7 frames a second; one whole frame then the face region, per photo
   in turn). Match updates per second per visitor (answers with a face and matches), the server's
   time per frame (its ``Server-Timing`` header), errors, and the server processes' CPU time per
   frame (psutil: all gunicorn processes, plus the PostgreSQL backends serving the bench database,
   which run the kNN).
"""
from __future__ import annotations

import io
import os
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

from bench.common import pct

ROOT = Path(__file__).resolve().parent.parent
FRAME_URL = "/doppelganger/frame/"
MAX_FPS = 7  # the page's script (explorer/doppelganger/views.py LIVE_FPS)
REGION_FRAMES = 9  # region frames sent after each whole frame, as while a visitor stays in view


def make_frames(photos: list[Path]) -> list[tuple[bytes, bytes | None]]:
    """(whole 320 px frame, face-region frame or None when the whole frame shows no face) per photo."""
    from PIL import Image, ImageOps

    from explorer.doppelganger import service

    backend = service.query_backend()
    out = []
    for path in photos:
        with Image.open(path) as im:
            photo = ImageOps.exif_transpose(im).convert("RGB")
        small = photo.copy()
        small.thumbnail((320, 320))
        whole = jpeg(small)
        found = backend.detect(small, upsample=0)
        region = None
        if found:
            k = photo.width / small.width
            x, y, w, h = (v * k for v in found[0].box)
            pad = 0.7 * w
            crop = photo.crop((int(max(0, x - pad)), int(max(0, y - pad * 1.1)), int(min(photo.width, x + w + pad)),
                               int(min(photo.height, y + h + pad * 1.1))))
            s = min(110 / w, 260 / max(crop.size))
            region = jpeg(crop.resize((max(1, round(crop.width * s)), max(1, round(crop.height * s)))))
        out.append((whole, region))
    return out


def jpeg(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def in_process(frames, photos) -> dict:
    from django.test import Client

    from explorer.doppelganger import live

    client = Client()
    for whole, _ in frames[:3]:  # warm-up: model load, first queries
        client.post(FRAME_URL, data=whole, content_type="image/jpeg")
    figures = {}
    for kind, index in (("whole 320 px frame", 0), ("face region", 1)):
        wall, cpu, faces = [], [], 0
        for pair in frames:
            data = pair[index]
            if data is None:
                continue
            a, c = time.perf_counter(), time.process_time()
            response = client.post(FRAME_URL, data=data, content_type="image/jpeg")
            wall.append(time.perf_counter() - a)
            cpu.append(time.process_time() - c)
            if response.status_code != 200:
                raise SystemExit(f"frame answered {response.status_code}: {response.content[:200]!r}")
            faces += response.json()["face"] is not None
        parts = {"decode": [], "detect": [], "embed": [], "knn": []}
        for pair in frames:
            if pair[index] is None:
                continue
            times = live.FrameTimes()
            live.frame_lookup(pair[index], times=times)
            if times.embed_ms:
                for name in parts:
                    parts[name].append(getattr(times, f"{name}_ms"))
        figures[kind] = {"n": len(wall), "faces": faces, "wall": wall, "cpu": cpu, "parts": parts,
                         "bytes": np.mean([len(p[index]) for p in frames if p[index] is not None])}
    snap_wall, snap_cpu = [], []
    for path in photos:
        upload = io.BytesIO(path.read_bytes())
        upload.name = path.name
        a, c = time.perf_counter(), time.process_time()
        client.post("/api/v1/doppelganger/", {"image": upload})
        snap_wall.append(time.perf_counter() - a)
        snap_cpu.append(time.process_time() - c)
    figures["snapshot"] = {"wall": snap_wall, "cpu": snap_cpu}
    return figures


def visitor_sequence(frames) -> list[bytes]:
    seq = []
    for whole, region in frames:
        seq.append(whole)
        if region is not None:
            seq.extend([region] * REGION_FRAMES)
    return seq


def visit(base: str, sequence: list[bytes], seconds: float, offset: int, out: dict, lock) -> None:
    import requests

    session = requests.Session()
    token = session.get(base + "/doppelganger/kiosk/", timeout=30).cookies["csrftoken"]
    headers = {"Content-Type": "image/jpeg", "X-CSRFToken": token, "Referer": base + "/doppelganger/kiosk/"}
    updates = sent = 0
    server_ms, errors = [], []
    end = time.monotonic() + seconds
    i = offset
    started = time.monotonic()
    while time.monotonic() < end:
        began = time.monotonic()
        try:
            response = session.post(base + FRAME_URL, data=sequence[i % len(sequence)], headers=headers, timeout=30)
            sent += 1
            if response.status_code != 200:
                errors.append(f"HTTP {response.status_code}")
            else:
                body = response.json()
                updates += bool(body["face"] and body["matches"])
                timing = response.headers.get("Server-Timing", "")
                if "dur=" in timing:
                    server_ms.append(float(timing.split("dur=")[1]))
        except requests.RequestException as exc:
            errors.append(exc.__class__.__name__)
        i += 1
        rest = 1 / MAX_FPS - (time.monotonic() - began)
        if rest > 0:
            time.sleep(rest)
    elapsed = time.monotonic() - started
    with lock:
        out.setdefault("visitors", []).append({"updates_s": updates / elapsed, "sent": sent})
        out.setdefault("server_ms", []).extend(server_ms)
        out.setdefault("errors", []).extend(errors)


def server_cpu(proc) -> float:
    """CPU seconds of the gunicorn processes so far."""
    import psutil

    total = 0.0
    try:
        parent = psutil.Process(proc.pid)
        for p in [parent] + parent.children(recursive=True):
            t = p.cpu_times()
            total += t.user + t.system
    except psutil.NoSuchProcess:
        pass
    return total


def database_cpu(db_name: str = "bench_doppelganger") -> float:
    """CPU seconds of the PostgreSQL backends serving the bench database (their process titles
    name it): the kNN's share of a frame, which the web processes' CPU does not include."""
    import psutil

    total = 0.0
    for p in psutil.process_iter(["cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            if cmd.startswith("postgres:") and f" {db_name} " in cmd:
                t = p.cpu_times()
                total += t.user + t.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def load(base: str, proc, sequence, visitors: int, seconds: float) -> dict:
    out: dict = {}
    lock = threading.Lock()
    threads = [threading.Thread(target=visit, args=(base, sequence, seconds, k * 37, out, lock)) for k in range(visitors)]
    cpu0, db0, wall0 = server_cpu(proc), database_cpu(), time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out["cpu_s"] = server_cpu(proc) - cpu0
    out["db_cpu_s"] = database_cpu() - db0  # backends that stay connected (CONN_MAX_AGE) are counted
    out["wall_s"] = time.monotonic() - wall0
    out["frames"] = sum(v["sent"] for v in out.get("visitors", []))
    return out


def under_serve(frames, work: Path, workers: int, seconds: float, visitors: int) -> dict:
    from bench.serve import free_port, stop, wait_up

    port = free_port()
    env = {**os.environ, "SERVE_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(workers), "SERVE_MIGRATE": "false",
           "STATIC_ROOT": str(work / "static"), "DOPPELGANGER_LIVE_RATE": "100000/second", "DEBUG": "false"}
    log = open(work / "serve.log", "wb")
    proc = subprocess.Popen([str(ROOT / "run"), "serve"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    sequence = visitor_sequence(frames)
    try:
        wait_up(base, proc)
        load(base, proc, sequence, workers * 2, 4)  # warm-up: every worker loads the model
        one = load(base, proc, sequence, 1, seconds)
        many = load(base, proc, sequence, visitors, seconds)
    finally:
        stop(proc)
    return {"one": one, "many": many}


def ms(values, q) -> float:
    return pct([v * 1000 for v in values], q) if values else float("nan")


def report(inproc: dict, served: dict, visitors: int, workers: int) -> dict:
    snap_cpu = float(np.median(inproc["snapshot"]["cpu"])) * 1000
    print(f"\nlive frames in process (POST {FRAME_URL}, Django test client):")
    for kind in ("whole 320 px frame", "face region"):
        f = inproc[kind]
        print(f"  {kind:20s} {f['n']} frames ({f['faces']} with a face, {f['bytes'] / 1024:.1f} KB on average): "
              f"wall p50 {ms(f['wall'], 50):.1f} ms p95 {ms(f['wall'], 95):.1f} ms; CPU p50 {ms(f['cpu'], 50):.1f} ms "
              f"p95 {ms(f['cpu'], 95):.1f} ms ({ms(f['cpu'], 50) / snap_cpu:.2f}x the snapshot's CPU)")
        parts = f["parts"]
        print("    parts (wall p50): " + ", ".join(f"{name} {np.median(v):.1f} ms" for name, v in parts.items() if v))
    print(f"  baseline: snapshot look-up of the same photos (POST /api/v1/doppelganger/, full photo) CPU p50 {snap_cpu:.1f} ms, "
          f"wall p95 {ms(inproc['snapshot']['wall'], 95):.1f} ms")
    one, many = served["one"], served["many"]
    one_web = one["cpu_s"] / max(1, one["frames"]) * 1000
    many_web = many["cpu_s"] / max(1, many["frames"]) * 1000
    one_db = one["db_cpu_s"] / max(1, one["frames"]) * 1000
    many_db = many["db_cpu_s"] / max(1, many["frames"]) * 1000
    one_cpu, many_cpu = one_web + one_db, many_web + many_db  # web processes + PostgreSQL backends
    one_rate = one["visitors"][0]["updates_s"]
    one_p95 = pct(one["server_ms"], 95)
    rates = sorted(v["updates_s"] for v in many["visitors"])
    print(f"\nunder ./run serve (gunicorn, {workers} workers x 4 threads, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}):")
    print(f"  1 visitor: {one['frames']} frames in {one['wall_s']:.1f} s, {one_rate:.2f} match updates/s, server p50 "
          f"{pct(one['server_ms'], 50):.1f} ms p95 {one_p95:.1f} ms per frame, server CPU {one_cpu:.1f} ms per frame "
          f"(web {one_web:.1f} + database {one_db:.1f}), "
          f"errors {len(one['errors'])}")
    print(f"  {visitors} visitors: {many['frames']} frames in {many['wall_s']:.1f} s, updates/s per visitor min {rates[0]:.2f} "
          f"median {rates[len(rates) // 2]:.2f}, server p95 {pct(many['server_ms'], 95):.1f} ms, server CPU {many_cpu:.1f} ms "
          f"per frame (web {many_web:.1f} + database {many_db:.1f}), errors {len(many['errors'])} {sorted(set(many['errors']))}")
    print(f"  extra: at {one_cpu:.0f} ms of server CPU per frame, {os.cpu_count()} idle cores serve about "
          f"{os.cpu_count() * 1000 / one_cpu:.0f} frames/s ({os.cpu_count() * 1000 / one_cpu / MAX_FPS:.0f} visitors at the "
          f"script's {MAX_FPS}/s); this run's server got {many['cpu_s'] / many['wall_s']:.2f} cores of CPU under load")
    checks = [
        ("one visitor >= 5 match updates/s", one_rate >= 5),
        ("one visitor server p95 <= 120 ms", one_p95 <= 120),
        ("server CPU per frame <= 60 ms", one_cpu <= 60),
        (f"{visitors} visitors each >= 2 updates/s, no errors", rates[0] >= 2 and not many["errors"]),
    ]
    for name, ok in checks:
        print(f"  target: {name}: {'PASS' if ok else 'FAIL'}")
    return {"cpu_ms": one_cpu, "all_pass": all(ok for _, ok in checks)}
