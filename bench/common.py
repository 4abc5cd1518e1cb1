"""Helpers the benchmarks share: a timestamped log line, a dedicated database on the project's
PostgreSQL server (created if missing), and percentiles."""
from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def bench_url(db_name: str) -> str:
    """A libpq URL for database ``db_name`` on the server DATABASE_URL (or the embedded one) names."""
    base = os.environ.get("DATABASE_URL")
    if not base:
        from museum.embedded_pg import database_url

        base = database_url(ROOT)
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone():
            conn.execute(f"CREATE DATABASE {db_name}")
            log(f"created database {db_name}")
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, "/" + db_name, parts.query, parts.fragment))


def warm_caches(tables) -> int:
    """Read the files of ``tables`` and all their indexes once into the operating system's cache,
    as a server that has been answering for a while has them (a bench run may find the embedded
    server just started, and a build of other data may have pushed them out). Returns the bytes read;
    0 when the data folder is not readable from here (another host: nothing warmed). Logs what it read."""
    from django.db import connection

    started = time.time()

    with connection.cursor() as cur:
        cur.execute("SELECT current_setting('data_directory')")
        folder = Path(cur.fetchone()[0])
        cur.execute("SELECT pg_relation_filepath(c.oid) FROM pg_class c WHERE c.oid = ANY(%s::regclass[]) "
                    "UNION SELECT pg_relation_filepath(i.indexrelid) FROM pg_index i WHERE i.indrelid = ANY(%s::regclass[])",
                    [list(tables), list(tables)])
        paths = [folder / row[0] for row in cur.fetchall() if row[0]]
    total = 0
    try:
        for path in paths:
            for part in [path, *sorted(path.parent.glob(path.name + ".*"))]:  # 1 GB segments: name, name.1, ...
                with open(part, "rb") as f:
                    while chunk := f.read(1 << 24):
                        total += len(chunk)
    except OSError as exc:
        log(f"caches: not warmed further ({exc})")
    log(f"caches: {total / 2**30:.1f} GiB of {', '.join(tables)} and their indexes read in {time.time() - started:.0f} s")
    return total


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def admin_exec(sql: str) -> None:
    """Run ``sql`` (CREATE/DROP DATABASE) on the ``postgres`` database of Django's server."""
    import psycopg
    from django.db import connection

    params = connection.get_connection_params()
    params["dbname"] = "postgres"
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute(sql)


def current_meta() -> dict | None:
    """What the bench database was built with (its ``bench_meta`` row), or None when not built."""
    import json

    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass('bench_meta')")
        if cur.fetchone()[0] is None:
            return None
        cur.execute("SELECT value FROM bench_meta WHERE key = 'meta'")
        row = cur.fetchone()
    return json.loads(row[0]) if row else None



def fresh_database(name: str) -> None:
    """Drop and create database ``name`` on Django's server, point Django's connection at it and
    migrate it (the benches that build their own archive from nothing)."""
    from django.core.management import call_command
    from django.db import connection

    connection.close()
    admin_exec(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin_exec(f"CREATE DATABASE {name}")
    connection.settings_dict["NAME"] = name
    connection.close()
    call_command("migrate", verbosity=0, skip_checks=True)

# --- an S3-compatible server for the benchmarks, and a slow network in front of it -----------------

def start_moto():
    """moto's S3 server on a free local port: (process, endpoint URL). Stop with ``.terminate()``."""
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    import requests

    for _ in range(300):
        try:
            requests.get(endpoint, timeout=5)
            return proc, endpoint
        except requests.RequestException:  # not listening yet, or slow to answer on a busy machine
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("moto's S3 server did not start")


class ServerClock:
    """CPU seconds (user + system) used so far by this connection's PostgreSQL backend (psutil on
    ``pg_backend_pid()``): printed beside wall time, which on a shared machine includes waiting
    for a core. ``clock()`` and ``clock.seconds()`` read it."""

    def __init__(self):
        import psutil
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            self.process = psutil.Process(cur.fetchone()[0])

    def seconds(self) -> float:
        t = self.process.cpu_times()
        return t.user + t.system

    __call__ = seconds


class LatencyProxy:
    """A TCP proxy on a local port that holds every request ``latency_ms`` before passing it on:
    the round trip to a remote bucket, for any process (a worker too) that talks to its address.
    Runs in a daemon thread; responses pass at once."""

    def __init__(self, target: str, latency_ms: float):
        import asyncio
        import threading

        parts = urlsplit(target)
        self.target = (parts.hostname, parts.port)
        self.delay = latency_ms / 1000
        self.requests = 0
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def _run(self, ready) -> None:
        import asyncio

        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self._loop.run_forever()

    async def _client(self, reader, writer) -> None:
        import asyncio

        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return

        async def upstream():
            # The first bytes of each request wait; the rest of it follows at once.
            while data := await reader.read(65536):
                if data[:4] in (b"GET ", b"PUT ", b"HEAD", b"POST", b"DELE"):
                    self.requests += 1
                    await asyncio.sleep(self.delay)
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def downstream():
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.close()

        await asyncio.gather(upstream(), downstream(), return_exceptions=True)
