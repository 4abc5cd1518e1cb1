"""Carry an embedded data folder made by an older PostgreSQL major over to the bundled server.

PostgreSQL cannot open a data folder of another major version. When ``var/pgdata`` was made by an
older embedded server (``PG_VERSION`` says e.g. ``16`` while the bundled server is 18), it is
dumped and restored before the bundled server starts:

1. the old server's binaries are found: ``PGSERVER_UPGRADE_BIN`` (a ``bin`` folder of that
   major), else a cache under ``var/cache/postgresql-<major>`` unpacked from the wheel that
   bundled it (downloaded once with ``pip download``);
2. the old server is started on the old folder (a private socket, no TCP), each database is dumped
   with the bundled ``pg_dump`` (the newer client reads older servers; PostgreSQL's advice for
   major upgrades) and restored into a fresh folder ``<pgdata>.upgrading`` run by the bundled
   server; table row counts are compared database by database;
3. the old folder is renamed ``<pgdata>-<major>`` (kept until the operator removes it) and the new
   one takes its place. A marker file makes the swap resumable if the process dies half-way.

Django test databases (``test_*``) and bench databases (``bench_*``) are not carried over: the test
run and the benches recreate them. Everything is under a file lock, so processes that start
together upgrade once.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

# Old majors this project's embedded server used, and the wheel that bundled each.
OLD_SERVERS = {"16": "pgserver==0.1.4"}
SKIPPED_PREFIXES = ("test_", "bench_", "template")
COMPLETE_MARKER = "UPGRADE_COMPLETE"


class UpgradeError(RuntimeError):
    pass


def say(message: str) -> None:
    print(f"museum: {message}", file=sys.stderr, flush=True)


def data_major(pgdata: Path) -> str | None:
    """The major version that made ``pgdata`` (its ``PG_VERSION`` file), or None for no folder."""
    version = Path(pgdata) / "PG_VERSION"
    return version.read_text().strip() if version.exists() else None


def server_major(bin_dir: Path) -> str:
    out = subprocess.run([str(Path(bin_dir) / "postgres"), "-V"], check=True, capture_output=True, text=True).stdout
    # "postgres (PostgreSQL) 18.3" -> "18"
    return out.strip().split()[-1].split(".")[0]


def _system_user() -> str | None:
    """The user the server runs as: PostgreSQL refuses root, so pgserver uses a ``pgserver`` user."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    from pgserver.utils import ensure_user_exists

    ensure_user_exists("pgserver")
    return "pgserver"


def _readable_by(path: Path, user: str | None) -> None:
    if user is None:
        return
    import stat

    from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions

    ensure_prefix_permissions(path)
    ensure_folder_permissions(path, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)


def _own(path: Path, user: str | None) -> None:
    if user is not None:
        shutil.chown(path, user, user)


def old_binaries(major: str, cache_root: Path) -> Path:
    """A ``bin`` folder with the PostgreSQL ``major`` server and its pgvector, fetched once."""
    configured = os.environ.get("PGSERVER_UPGRADE_BIN")
    if configured:
        bin_dir = Path(configured)
        if not (bin_dir / "postgres").exists() or server_major(bin_dir) != major:
            raise UpgradeError(f"PGSERVER_UPGRADE_BIN={configured} is not a bin folder of PostgreSQL {major}")
        return bin_dir
    if major not in OLD_SERVERS:
        raise UpgradeError(
            f"no known wheel bundles PostgreSQL {major}; set PGSERVER_UPGRADE_BIN to the bin folder of a "
            f"PostgreSQL {major} server with pgvector"
        )
    cache = Path(cache_root) / f"postgresql-{major}"
    bin_dir = cache / "pgserver" / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        spec = OLD_SERVERS[major]
        say(f"fetching the PostgreSQL {major} server ({spec}) to read the old data folder")
        with tempfile.TemporaryDirectory() as tmp:
            result = subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:", spec, "-d", tmp],
                capture_output=True,
                text=True,
            )
            wheels = list(Path(tmp).glob("*.whl"))
            if result.returncode != 0 or not wheels:
                raise UpgradeError(
                    f"could not download {spec} (needed once to read the PostgreSQL {major} data folder): "
                    f"{result.stderr.strip()[-500:]}. Download its wheel elsewhere and unpack it into {cache}, "
                    f"or set PGSERVER_UPGRADE_BIN to a PostgreSQL {major} bin folder."
                )
            partial = cache.with_name(cache.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            with zipfile.ZipFile(wheels[0]) as wheel:
                wheel.extractall(partial)
            for exe in (partial / "pgserver" / "pginstall" / "bin").iterdir():
                exe.chmod(0o755)
            shutil.rmtree(cache, ignore_errors=True)
            partial.rename(cache)
    _readable_by(cache, _system_user())
    return bin_dir


@contextmanager
def running_server(bin_dir: Path, pgdata: Path):
    """Start the server in ``bin_dir`` on ``pgdata`` (a private socket, no TCP); yield its socket folder."""
    user = _system_user()
    socket_dir = Path(tempfile.mkdtemp(prefix="museum-pg-"))
    socket_dir.chmod(0o777)
    log = Path(tempfile.mkdtemp(prefix="museum-pglog-")) / "server.log"
    log.parent.chmod(0o777)
    ctl = [str(Path(bin_dir) / "pg_ctl"), "-D", str(pgdata)]
    try:
        subprocess.run(
            ctl + ["-w", "-t", "300", "-o", f"-h '' -k {socket_dir}", "-l", str(log), "start"],
            check=True, capture_output=True, text=True, user=user,
        )
    except subprocess.CalledProcessError as exc:
        text = log.read_text() if log.exists() else ""
        raise UpgradeError(f"could not start {bin_dir}/postgres on {pgdata}: {exc.stderr}\n{text[-2000:]}") from exc
    try:
        yield socket_dir
    finally:
        subprocess.run(ctl + ["-w", "-t", "300", "-m", "fast", "stop"], capture_output=True, text=True, user=user)
        shutil.rmtree(socket_dir, ignore_errors=True)
        shutil.rmtree(log.parent, ignore_errors=True)


def _client(bin_dir: Path, tool: str, socket_dir: Path, *args: str) -> str:
    cmd = [str(Path(bin_dir) / tool), "-h", str(socket_dir), "-U", "postgres", *args]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise UpgradeError(f"{tool} {' '.join(args)} failed: {result.stderr.strip()[-2000:]}")
    return result.stdout


def _sql(bin_dir: Path, socket_dir: Path, database: str, query: str) -> list[str]:
    out = _client(bin_dir, "psql", socket_dir, "-d", database, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", query)
    return [line for line in out.splitlines() if line]


# One query counting the rows of every table, written by the server itself (names quoted there).
_COUNT_TABLES = (
    "SELECT string_agg(format('SELECT %L, count(*) FROM %I.%I', table_schema || '.' || table_name, "
    "table_schema, table_name), ' UNION ALL ') FROM information_schema.tables "
    "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')"
)


def _row_counts(bin_dir: Path, socket_dir: Path, database: str) -> dict[str, int]:
    query = _sql(bin_dir, socket_dir, database, _COUNT_TABLES)
    if not query:
        return {}
    rows = _sql(bin_dir, socket_dir, database, query[0])
    return {name: int(n) for name, n in (line.rsplit("|", 1) for line in rows)}


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file() and not f.is_symlink())


def _kept_name(pgdata: Path, major: str) -> Path:
    candidate = pgdata.with_name(f"{pgdata.name}-{major}")
    n = 1
    while candidate.exists():
        candidate = pgdata.with_name(f"{pgdata.name}-{major}.{n}")
        n += 1
    return candidate


def _server_running(pgdata: Path) -> bool:
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (ValueError, IndexError):
        return False
    import psutil

    return psutil.pid_exists(pid)


def ensure_current(pgdata: Path, new_bin: Path, cache_root: Path) -> Path | None:
    """Upgrade ``pgdata`` to the server in ``new_bin`` if an older major made it.

    Returns the folder the old data was kept in, or None when nothing had to be done.
    """
    import fasteners

    pgdata = Path(pgdata)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with fasteners.InterProcessLock(str(pgdata.parent / f".{pgdata.name}.upgrade.lock")):
        staging = pgdata.with_name(pgdata.name + ".upgrading")
        if not pgdata.exists() and (staging / COMPLETE_MARKER).exists():
            staging.rename(pgdata)  # the last run died between its two renames
            (pgdata / COMPLETE_MARKER).unlink()
            say(f"finished the interrupted upgrade of {pgdata}")
        old_major = data_major(pgdata)
        new_major = server_major(new_bin)
        if old_major is None or old_major == new_major:
            return None
        if int(old_major) > int(new_major):
            raise UpgradeError(
                f"{pgdata} was made by PostgreSQL {old_major}, newer than the bundled {new_major}; "
                "install the requirements.txt of the version that made it"
            )
        return _upgrade(pgdata, staging, old_major, new_bin, cache_root)


def _upgrade(pgdata: Path, staging: Path, old_major: str, new_bin: Path, cache_root: Path) -> Path:
    new_major = server_major(new_bin)
    if _server_running(pgdata):
        raise UpgradeError(
            f"{pgdata} (PostgreSQL {old_major}) is still served by a running server; stop every process "
            f"using it (web server, workers) and start again to upgrade it to PostgreSQL {new_major}"
        )
    size = _folder_bytes(pgdata)
    free = shutil.disk_usage(pgdata.parent).free
    if free < 2 * size:
        raise UpgradeError(
            f"upgrading {pgdata} to PostgreSQL {new_major} needs about {2 * size / 1e9:.1f} GB free "
            f"(the old folder is kept); {free / 1e9:.1f} GB are free"
        )
    say(
        f"{pgdata} was made by PostgreSQL {old_major}; upgrading it to the bundled PostgreSQL {new_major} "
        f"by dump and restore ({size / 1e6:,.0f} MB; the old folder is kept)"
    )
    old_bin = old_binaries(old_major, cache_root)
    user = _system_user()
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    _own(staging, user)
    if user is not None:
        from pgserver.utils import ensure_prefix_permissions

        ensure_prefix_permissions(staging)
    subprocess.run(
        [str(new_bin / "initdb"), "-D", str(staging), "--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", "postgres"],
        check=True, capture_output=True, text=True, user=user,
    )
    dump_root = Path(tempfile.mkdtemp(prefix=".upgrade-dump-", dir=pgdata.parent))
    carried: list[str] = []
    try:
        with running_server(old_bin, pgdata) as old_socket:
            databases = _sql(new_bin, old_socket, "postgres", "SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1")
            skipped = [d for d in databases if d.startswith(SKIPPED_PREFIXES)]
            carried = [d for d in databases if d not in skipped]
            globals_sql = _client(new_bin, "pg_dumpall", old_socket, "--globals-only")
            counts = {}
            for db in carried:
                _client(new_bin, "pg_dump", old_socket, "-d", db, "-F", "d", "-j", "2", "-f", str(dump_root / db))
                counts[db] = _row_counts(new_bin, old_socket, db)
        with running_server(new_bin, staging) as new_socket:
            _restore_globals(new_bin, new_socket, globals_sql)
            for db in carried:
                if db != "postgres":
                    _sql(new_bin, new_socket, "postgres", f'CREATE DATABASE "{db}"')
                _client(new_bin, "pg_restore", new_socket, "-d", db, "--exit-on-error", "-j", "2", str(dump_root / db))
                restored = _row_counts(new_bin, new_socket, db)
                if restored != counts[db]:
                    lost = {t: (n, restored.get(t)) for t, n in counts[db].items() if restored.get(t) != n}
                    raise UpgradeError(f"database {db}: row counts differ after the restore (old, new): {lost}")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(dump_root, ignore_errors=True)
    (staging / COMPLETE_MARKER).write_text(f"{old_major} -> {new_major}\n")
    kept = _kept_name(pgdata, old_major)
    pgdata.rename(kept)
    staging.rename(pgdata)
    (pgdata / COMPLETE_MARKER).unlink()
    say(
        f"upgraded {pgdata} to PostgreSQL {new_major} (databases: {', '.join(carried)}; "
        + (f"not carried over, recreated on use: {', '.join(skipped)}; " if skipped else "")
        + f"row counts checked). The PostgreSQL {old_major} folder is kept as {kept}: remove it once "
        "you are satisfied."
    )
    return kept


def _restore_globals(bin_dir: Path, socket_dir: Path, globals_sql: str) -> None:
    """Roles and tablespaces of the old server; the ``postgres`` role exists already."""
    result = subprocess.run(
        [str(bin_dir / "psql"), "-h", str(socket_dir), "-U", "postgres", "-d", "postgres", "-X", "-q"],
        input=globals_sql, capture_output=True, text=True,
    )
    errors = [
        line for line in result.stderr.splitlines()
        if "ERROR" in line and 'role "postgres" already exists' not in line
    ]
    if result.returncode != 0 or errors:
        raise UpgradeError("restoring roles failed: " + "\n".join(errors or [result.stderr[-2000:]]))
