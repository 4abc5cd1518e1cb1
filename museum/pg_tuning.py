"""Memory settings for the embedded PostgreSQL, sized to the machine.

PostgreSQL's defaults (128 MB of shared buffers, 64 MB for index builds) are made for a small
shared host. The archive's vector indexes are large (an HNSW index over 1M halfvec embeddings is
about 2 GB) and a search touches thousands of index pages: when they do not fit the buffers, every
search copies pages in from the OS cache and similar-artwork look-ups slow several times. The
settings are written to ``museum_tuning.conf`` in the data folder, included from
``postgresql.conf``; ``shared_buffers`` takes effect at the server's next start (the others at
once), and anything an operator sets with ``ALTER SYSTEM`` still wins (``postgresql.auto.conf``
is read last). ``EMBEDDED_PG_MEMORY`` sets the share of memory for shared buffers (default 0.25;
``0`` leaves PostgreSQL's defaults). An external server (``DATABASE_URL``) is its operator's to
tune: docs/database.md gives the same figures.
"""
from __future__ import annotations

import os
from pathlib import Path

FILE = "museum_tuning.conf"
INCLUDE = f"include_if_exists = '{FILE}'"
MB = 1024 * 1024


def total_memory() -> int:
    """Bytes of memory this machine (or its cgroup's limit, where lower) gives the server."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return total


def memory_settings(total: int, share: float = 0.25) -> dict[str, str]:
    """The settings for ``total`` bytes of memory: shared buffers ``share`` of it (128 MB to 16 GB),
    the planner's cache estimate 60 %, and index builds (HNSW) 1/16 of it (64 MB to 2 GB)."""
    if share <= 0:
        return {}
    shared = min(max(int(total * share), 128 * MB), 16 * 1024 * MB)
    maintenance = min(max(total // 16, 64 * MB), 2048 * MB)
    return {
        "shared_buffers": f"{shared // MB}MB",
        "effective_cache_size": f"{int(total * 0.6) // MB}MB",
        "maintenance_work_mem": f"{maintenance // MB}MB",
    }


def share_from_env() -> float:
    value = os.environ.get("EMBEDDED_PG_MEMORY", "0.25").strip()
    try:
        share = float(value)
    except ValueError:
        raise RuntimeError(f"EMBEDDED_PG_MEMORY must be a share of memory between 0 and 0.8, not {value!r}") from None
    if not 0 <= share <= 0.8:
        raise RuntimeError(f"EMBEDDED_PG_MEMORY must be between 0 and 0.8 (a share of memory), not {share}")
    return share


def write(pgdata: Path, settings: dict[str, str]) -> bool:
    """Write the settings file and include it from postgresql.conf; True when anything changed.
    Does nothing to a folder that is not (yet) a data folder."""
    conf = pgdata / "postgresql.conf"
    if not conf.exists():
        return False
    text = "".join(f"{name} = '{value}'\n" for name, value in settings.items())
    text = "# Written by museum/pg_tuning.py at each start (EMBEDDED_PG_MEMORY); ALTER SYSTEM overrides it.\n" + text
    target = pgdata / FILE
    changed = not target.exists() or target.read_text() != text
    if changed:
        target.write_text(text)
    main = conf.read_text()
    if INCLUDE not in main:
        conf.write_text(main.rstrip("\n") + f"\n\n# Memory sized to the machine (museum/pg_tuning.py)\n{INCLUDE}\n")
        changed = True
    return changed
