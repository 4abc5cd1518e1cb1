"""A data folder made by the previous embedded server (pgserver 0.1.4: PostgreSQL 16, pgvector 0.6.2)
is upgraded to the bundled server by dump and restore, nothing lost, the old folder kept."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from pgserver._commands import POSTGRES_BIN_PATH

from museum import pg_upgrade

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "var" / "cache"

# Made with the old wheel's own Python package and binaries, exactly as main's museum/embedded_pg.py
# made var/pgdata: pgserver.get_server(path), then the project's schema as main left it (up to the
# migration before this change's) with artwork embeddings as float32 vectors and their HNSW index
# named as the old code named it, and some other rows.
_MAKE_OLD_FOLDER = textwrap.dedent(
    """
    import os, sys, subprocess
    import pgserver, psycopg
    server = pgserver.get_server(sys.argv[1], cleanup_mode="stop")
    url = server.get_uri()
    env = dict(os.environ, DATABASE_URL=url)
    subprocess.run([sys.executable, "manage.py", "migrate", "archive", "0014_face_crop_help_text", "--skip-checks", "-v", "0"],
                   check=True, env=env, cwd=sys.argv[2])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute('''INSERT INTO archive_artwork (id, source, source_id, title, creator, display_date, medium,
            classification, institution, rights, rights_url, credit_line, source_url, iiif_manifest_url,
            iiif_image_service, metadata, original_location, sha256, status, image_error, created_at, updated_at)
            SELECT g, 'old', g::text, 'work ' || g, '', '', '', '', '', '', '', '', '', '', '', '{}', '', '', 'ok', '',
            now(), now() FROM generate_series(1, 300) g''')
        conn.execute('''INSERT INTO archive_embeddingmodel (id, key, arch, pretrained, dim, preprocess_fingerprint,
            preprocess, untrained, state, created_at) VALUES (1, 'old-8', 'test', '', 8, '', '{}', true, 'active', now())''')
        conn.execute('''INSERT INTO archive_artworkembedding (artwork_id, model_id, vector, created_at)
            SELECT g, 1, ('[' || (g % 7) * 0.25 || ',1,' || g % 5 || ',-0.5,0,0,0.125,' || g * 0.5 || ']')::vector, now()
            FROM generate_series(1, 300) g''')
        conn.execute("CREATE INDEX archive_artworkembed_hnsw_1 ON archive_artworkembedding USING hnsw "
                     "((vector::vector(8)) vector_cosine_ops) WHERE model_id = 1")
        conn.execute("CREATE TABLE probe (id int PRIMARY KEY, title text, v vector(3))")
        conn.execute("INSERT INTO probe SELECT i, 'work ' || i || ' café', "
                     "('[' || i || ',' || (i * 0.5) || ',-1.25]')::vector FROM generate_series(1, 2000) i")
        conn.execute("CREATE ROLE curator LOGIN")
        conn.execute("CREATE DATABASE second")
        conn.execute("CREATE DATABASE test_museum")
        print(conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0])
    with psycopg.connect(server.get_uri("second"), autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text)")
        conn.execute("INSERT INTO notes (body) SELECT md5(i::text) FROM generate_series(1, 300) i")
    """
)

_CHECKSUM = "SELECT md5(string_agg(id || title || v::text, ',' ORDER BY id)) FROM probe"
_EMBEDDINGS = ("SELECT count(*) || ' ' || md5(string_agg(artwork_id || vector::text, ',' ORDER BY artwork_id)) "
               "FROM archive_artworkembedding")


def _psql(socket_dir: Path, db: str, sql: str) -> str:
    return subprocess.run(
        [str(POSTGRES_BIN_PATH / "psql"), "-h", str(socket_dir), "-U", "postgres", "-d", db, "-X", "-A", "-t", "-c", sql],
        check=True, capture_output=True, text=True,
    ).stdout.strip()


@pytest.fixture
def old_server_package():
    try:
        bin_dir = pg_upgrade.old_binaries("16", CACHE)
    except pg_upgrade.UpgradeError as exc:
        pytest.skip(f"the PostgreSQL 16 wheel (pgserver==0.1.4) cannot be fetched here: {exc}")
    return bin_dir.parents[2]  # the unpacked wheel: its pgserver package and pgserver.libs


@pytest.mark.slow
def test_pg16_folder_is_upgraded_without_loss(old_server_package, capfd):
    (ROOT / "var").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="test-upgrade-", dir=ROOT / "var"))
    try:
        pgdata = work / "pgdata"
        env = dict(os.environ, PYTHONPATH=str(old_server_package), XDG_RUNTIME_DIR=str(work))
        os.chmod(work, 0o700)
        made = subprocess.run([sys.executable, "-c", _MAKE_OLD_FOLDER, str(pgdata), str(ROOT)],
                              env=env, capture_output=True, text=True)
        assert made.returncode == 0, made.stderr
        assert made.stdout.strip().splitlines()[-1] == "0.6.2"
        assert pg_upgrade.data_major(pgdata) == "16"
        old_bin = old_server_package / "pgserver" / "pginstall" / "bin"
        with pg_upgrade.running_server(old_bin, pgdata) as sock:
            before = _psql(sock, "postgres", _CHECKSUM)
            migrations_before = _psql(sock, "postgres", "SELECT count(*) FROM django_migrations")
            embeddings_before = _psql(sock, "postgres", _EMBEDDINGS)
        assert embeddings_before.startswith("300 ")

        kept = pg_upgrade.ensure_current(pgdata, POSTGRES_BIN_PATH, CACHE)

        assert kept == work / "pgdata-16"
        assert pg_upgrade.data_major(kept) == "16"
        assert pg_upgrade.data_major(pgdata) == pg_upgrade.server_major(POSTGRES_BIN_PATH) == "18"
        message = capfd.readouterr().err
        assert "upgraded" in message and str(kept) in message and "test_museum" in message
        with pg_upgrade.running_server(POSTGRES_BIN_PATH, pgdata) as sock:
            assert _psql(sock, "postgres", _CHECKSUM) == before
            assert _psql(sock, "postgres", "SELECT count(*) FROM django_migrations") == migrations_before
            # Restored as the server's pgvector (0.8.5: museum/pgvector_build.py), from 0.6.2 before.
            assert _psql(sock, "postgres", "SELECT extversion FROM pg_extension WHERE extname = 'vector'") == _psql(
                sock, "postgres", "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'") == "0.8.5"
            assert _psql(sock, "second", "SELECT count(*), max(body) FROM notes") == "300|" + _psql(
                sock, "second", "SELECT max(md5(i::text)) FROM generate_series(1, 300) i"
            )
            assert _psql(sock, "postgres", "SELECT count(*) FROM pg_roles WHERE rolname = 'curator'") == "1"
            assert _psql(sock, "postgres", "SELECT count(*) FROM pg_database WHERE datname = 'test_museum'") == "0"
            assert _psql(sock, "postgres", _EMBEDDINGS) == embeddings_before
            # The project's migrations on the upgraded database: pgvector checked, embeddings to halfvec.
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            env["DATABASE_URL"] = f"postgresql://postgres@/postgres?host={sock}"
            migrated = subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env,
                                      capture_output=True, text=True)
            assert migrated.returncode == 0, migrated.stderr[-3000:]
            assert _psql(sock, "postgres", "SELECT udt_name FROM information_schema.columns WHERE "
                         "table_name = 'archive_artworkembedding' AND column_name = 'vector'") == "halfvec"
            assert _psql(sock, "postgres", _EMBEDDINGS) == embeddings_before  # values exact in float16
            indexdef = _psql(sock, "postgres", "SELECT indexdef FROM pg_indexes WHERE indexname = 'archive_artworkembed_hnsw_1'")
            assert "halfvec_cosine_ops" in indexdef and "halfvec(8)" in indexdef
        # The kept folder still opens with the old server, and a second start changes nothing.
        with pg_upgrade.running_server(old_bin, kept) as sock:
            assert _psql(sock, "postgres", _CHECKSUM) == before
        assert pg_upgrade.ensure_current(pgdata, POSTGRES_BIN_PATH, CACHE) is None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_interrupted_swap_is_finished(tmp_path):
    pgdata, staging = tmp_path / "pgdata", tmp_path / "pgdata.upgrading"
    staging.mkdir()
    (staging / "PG_VERSION").write_text(pg_upgrade.server_major(POSTGRES_BIN_PATH) + "\n")
    (staging / pg_upgrade.COMPLETE_MARKER).write_text("16 -> 18\n")

    assert pg_upgrade.ensure_current(pgdata, POSTGRES_BIN_PATH, tmp_path / "cache") is None
    assert (pgdata / "PG_VERSION").exists() and not staging.exists()
    assert not (pgdata / pg_upgrade.COMPLETE_MARKER).exists()


def test_newer_folder_is_refused(tmp_path):
    (tmp_path / "pgdata").mkdir()
    (tmp_path / "pgdata" / "PG_VERSION").write_text("99\n")
    with pytest.raises(pg_upgrade.UpgradeError, match="PostgreSQL 99"):
        pg_upgrade.ensure_current(tmp_path / "pgdata", POSTGRES_BIN_PATH, tmp_path / "cache")


@pytest.mark.slow
def test_external_server_with_old_pgvector_fails_the_system_check(old_server_package):
    """DATABASE_URL pointing at a PostgreSQL 16 server with pgvector 0.6.2: a clear check error."""
    old_bin = old_server_package / "pgserver" / "pginstall" / "bin"
    (ROOT / "var").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="test-oldpgvector-", dir=ROOT / "var"))
    try:
        os.chmod(work, 0o711)  # the server's own user (pgserver, when run as root) reaches its folder
        pgdata = work / "pgdata"
        pgdata.mkdir(mode=0o700)
        user = pg_upgrade._system_user()
        pg_upgrade._own(pgdata, user)
        subprocess.run([str(old_bin / "initdb"), "-D", str(pgdata), "--auth=trust", "-U", "postgres"],
                       check=True, capture_output=True, user=user)
        with pg_upgrade.running_server(old_bin, pgdata) as sock:
            _psql(sock, "postgres", "CREATE EXTENSION vector")
            env = dict(os.environ, DATABASE_URL=f"postgresql://postgres@/postgres?host={sock}")
            result = subprocess.run([sys.executable, "manage.py", "check", "--database", "default"],
                                    cwd=ROOT, env=env, capture_output=True, text=True)
        assert result.returncode != 0
        assert "archive.E001" in result.stderr and "pgvector 0.6.2" in result.stderr
        assert "pgvector >= 0.8.0" in result.stderr
    finally:
        shutil.rmtree(work, ignore_errors=True)
