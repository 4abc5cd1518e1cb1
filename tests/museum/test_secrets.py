"""Secrets are created readable by their owner only (0600), and an older world-readable file is
tightened when it is read: the generated SECRET_KEY file and the demo curator's password."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from museum import secret_files

ROOT = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_secret_is_0600_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        secret_files.write_secret(tmp_path / "var" / "s", "hush")
    finally:
        os.umask(old)
    assert mode(tmp_path / "var" / "s") == 0o600 and (tmp_path / "var" / "s").read_text() == "hush"


def test_read_secret_tightens_a_world_readable_file(tmp_path):
    path = tmp_path / "old"
    path.write_text("key\n")
    path.chmod(0o644)
    assert secret_files.read_secret(path) == "key" and mode(path) == 0o600
    assert secret_files.read_secret(tmp_path / "missing") is None


def test_settings_keep_the_generated_secret_key_private():
    key_file = ROOT / "var" / "secret_key"
    if key_file.exists():
        key_file.chmod(0o644)  # as an older version left it
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "MUSEUM_REQUIRE_SECRET_KEY")}
    env["DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"  # parsed only, never connected to
    subprocess.run([sys.executable, "-c", "import museum.settings"], cwd=ROOT, env=env, check=True)
    assert mode(key_file) == 0o600


@pytest.mark.django_db
def test_demo_curator_password_file_is_private(tmp_path, monkeypatch, capsys):
    from museum import demo

    monkeypatch.setattr(demo, "BASE_DIR", tmp_path)
    demo.ensure_demo_curator("http://127.0.0.1:8000/accounts/login/")
    path = demo.demo_password_path()
    assert path.parent == tmp_path / "var"
    assert mode(path) == 0o600
    assert path.read_text() in capsys.readouterr().out


@pytest.mark.django_db
def test_demo_curator_password_is_per_database(tmp_path, monkeypatch, capsys, settings):
    """Another database's password file is never printed: the file is keyed by the database, and
    a file whose password does not open this database's curator is not shown as if it did."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from museum import demo

    monkeypatch.setattr(demo, "BASE_DIR", tmp_path)
    demo.ensure_demo_curator("http://x/login/")
    first = demo.demo_password_path()
    password = first.read_text()
    capsys.readouterr()

    monkeypatch.setitem(connection.settings_dict, "NAME", "another_database")
    assert demo.demo_password_path() != first
    demo.ensure_demo_curator("http://x/login/")  # the curator exists, this database has no file
    out = capsys.readouterr().out
    assert password not in out and "changepassword curator" in out

    monkeypatch.undo()  # back to this database
    monkeypatch.setattr(demo, "BASE_DIR", tmp_path)
    assert demo.demo_password_path() == first
    user = get_user_model().objects.get(username="curator")
    user.set_password("changed-by-the-operator")
    user.save()
    demo.ensure_demo_curator("http://x/login/")  # the file no longer opens the account
    out = capsys.readouterr().out
    assert password not in out and "changepassword curator" in out
