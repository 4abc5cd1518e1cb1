"""The embedded server's memory settings (museum/pg_tuning.py): sized to the machine, written to
a file the server includes, overridable, and really read by the running server."""
import os

import pytest

from museum import pg_tuning

GB = 1024 ** 3


def test_settings_scale_with_memory_within_bounds():
    small, big, huge = (pg_tuning.memory_settings(t) for t in (1 * GB, 24 * GB, 512 * GB))
    assert small["shared_buffers"] == "256MB" and small["maintenance_work_mem"] == "64MB"
    assert big["shared_buffers"] == "6144MB" and big["maintenance_work_mem"] == "1536MB"
    assert huge["shared_buffers"] == "16384MB" and huge["maintenance_work_mem"] == "2048MB"
    assert pg_tuning.memory_settings(256 * 1024 * 1024)["shared_buffers"] == "128MB"  # never below the default
    assert pg_tuning.memory_settings(24 * GB, share=0) == {}


def test_share_from_the_environment_is_checked(monkeypatch):
    monkeypatch.setenv("EMBEDDED_PG_MEMORY", "0.4")
    assert pg_tuning.share_from_env() == 0.4
    for bad in ("lots", "0.9", "-1"):
        monkeypatch.setenv("EMBEDDED_PG_MEMORY", bad)
        with pytest.raises(RuntimeError, match="EMBEDDED_PG_MEMORY"):
            pg_tuning.share_from_env()


def test_write_includes_the_file_once_and_reports_changes(tmp_path):
    assert pg_tuning.write(tmp_path, {"shared_buffers": "1GB"}) is False  # not a data folder yet
    conf = tmp_path / "postgresql.conf"
    conf.write_text("max_connections = 100\n")
    assert pg_tuning.write(tmp_path, {"shared_buffers": "1GB"}) is True
    assert pg_tuning.write(tmp_path, {"shared_buffers": "1GB"}) is False
    assert conf.read_text().count(pg_tuning.INCLUDE) == 1 and conf.read_text().startswith("max_connections = 100")
    assert "shared_buffers = '1GB'" in (tmp_path / pg_tuning.FILE).read_text()
    assert pg_tuning.write(tmp_path, {"shared_buffers": "2GB"}) is True


@pytest.mark.django_db
def test_the_embedded_server_reads_the_settings():
    if os.environ.get("DATABASE_URL"):
        pytest.skip("an external server: its operator tunes it")
    from django.db import connection

    wanted = pg_tuning.memory_settings(pg_tuning.total_memory(), pg_tuning.share_from_env())
    with connection.cursor() as cursor:
        # Every setting of the file is read; shared_buffers of a server started before the file was
        # written waits for the next start (its row says so in `error`), the others apply at once.
        cursor.execute("SELECT name, setting FROM pg_file_settings WHERE sourcefile LIKE %s", [f"%{pg_tuning.FILE}"])
        rows = dict(cursor.fetchall())
        cursor.execute("SELECT setting::bigint FROM pg_settings WHERE name = 'maintenance_work_mem'")  # in kB
        maintenance_kb = cursor.fetchone()[0]
    assert rows == wanted
    assert maintenance_kb == int(wanted["maintenance_work_mem"].removesuffix("MB")) * 1024  # reloadable: in force now
