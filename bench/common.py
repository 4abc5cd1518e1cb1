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
