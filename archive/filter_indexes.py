"""Partial HNSW indexes per common institution: a search within one institution walks a graph of
that institution's works alone.

Searching within a filter through the model's own HNSW index visits about ``200 / selectivity``
candidates before 100 pass (docs/perf/vectors.md: 54 ms of server CPU for a tenth of 1M works), and
ranking the set exactly costs ~7 µs a work (70 ms for 10,000). An index restricted to
``model_id = M AND institution = 'V' AND NOT duplicate`` holds just the works such a search may
return, so it costs what similar artworks cost. The institution and duplicate flag are copied onto
the embedding rows by triggers (migration 0028): an index predicate can only name its own table's
columns.

An institution gets an index when it holds at least VECTOR_FILTER_INDEX_MIN of the model's works
(below, ranking the set exactly is about as cheap and needs no index) and at most
VECTOR_FILTER_INDEX_MAX_SHARE of them (above, the model's index finds 100 of its works within a
few hundred candidates; an index there would mostly duplicate the model's). Each index costs its
works' share of the model index's bytes (~1.4 kB a work on halfvec). The indexes are of the same
kind as the model's own: halfvec HNSW, or binary-quantized for a model searched in two phases.

:func:`ensure` builds the missing ones CONCURRENTLY (the table stays writable), drops those of
institutions that left the range and any left invalid by an interrupted build; it runs after each
embed job and as ``manage.py vector_filter_indexes``. The keeping of a set of partial HNSW indexes
(:func:`ensure_partial`, :func:`indexed_rows`) is shared with the palette signatures' indexes per
period and classification (:mod:`archive.palette_indexes`).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Callable

from django.conf import settings
from django.db import connection

from . import vectors

SPACE = vectors.ARTWORK_EMBEDDINGS
LOCK_CLASS = 0x4649  # "FI": session advisory lock (LOCK_CLASS, model id) held while ensure() runs


def min_works() -> int:
    return int(getattr(settings, "VECTOR_FILTER_INDEX_MIN", 1_000))


def max_share() -> float:
    return float(getattr(settings, "VECTOR_FILTER_INDEX_MAX_SHARE", 0.25))


def _prefix(model_id: int, binary: bool) -> str:
    return vectors.index_name(SPACE, model_id) + ("_ib_" if binary else "_in_")


def index_name(model_id: int, institution: str, *, binary: bool = False) -> str:
    """The partial index of one institution's works under one model (a digest of the value: names
    are at most 63 bytes and the value may be any text)."""
    digest = hashlib.sha1(institution.encode()).hexdigest()[:12]
    return _prefix(model_id, binary) + digest


def institution_predicate(institution: str) -> str:
    """The index's WHERE clause past its model: what a query within the institution states literally
    beside its own ``model_id = ...`` for the planner to pick the index."""
    return f"institution = {vectors._quote(institution)} AND NOT duplicate"


def predicate(model_id: int, institution: str) -> str:
    """The index's WHERE clause."""
    return f"model_id = {int(model_id)} AND {institution_predicate(institution)}"


_seen: dict[str, tuple[float, int]] = {}


def indexed_rows(name: str, *, max_age: float = 0) -> int:
    """How many rows the partial index ``name`` holds (its ``reltuples`` as of the last build,
    VACUUM or ANALYZE), 0 when there is no valid index of that name (a CONCURRENTLY build in
    progress or interrupted is not); ``max_age`` > 0 accepts an answer this process got that many
    seconds ago."""
    now = time.monotonic()
    seen = _seen.get(name)
    if max_age > 0 and seen is not None and now - seen[0] < max_age:
        return seen[1]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce((SELECT CASE WHEN i.indisvalid THEN greatest(c.reltuples, 1)::bigint ELSE 0 END "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indexrelid = to_regclass(%s)), 0)",
            [name],
        )
        rows = int(cursor.fetchone()[0])
    _seen[name] = (now, rows)
    return rows


def indexed_works(model_id: int, institution: str, *, binary: bool = False, max_age: float = 0) -> int:
    """How many works the institution's index holds (:func:`indexed_rows`), 0 without one."""
    return indexed_rows(index_name(model_id, institution, binary=binary), max_age=max_age)


def wanted(model_id: int) -> dict[str, int]:
    """``{institution: works}`` of the institutions that call for an index under this model (the
    share is of all its works shown in search, with or without an institution)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT institution, count(*) FROM archive_artworkembedding WHERE model_id = %s AND NOT duplicate "
            "GROUP BY institution",
            [int(model_id)],
        )
        counts = dict(cursor.fetchall())
    return in_range(counts, min_works(), max_share())


def in_range(counts: dict, low: int, share: float) -> dict:
    """The values of ``counts`` (``{value: rows}``) holding at least ``low`` rows and at most
    ``share`` of all of them (an empty value never)."""
    total = sum(counts.values())
    return {value: n for value, n in counts.items() if value not in ("", None) and low <= n <= share * total}


@dataclass
class Outcome:
    built: list[str]
    kept: list[str]
    dropped: list[str]


@dataclass(frozen=True)
class Wanted:
    """One partial index :func:`ensure_partial` should keep: its name, its WHERE clause, what it
    holds in words (progress lines and the index's comment) and how many rows (biggest built first)."""

    name: str
    predicate: str
    label: str
    rows: int
    unit: str = "rows"


def existing_with(table: str, prefixes: list[str]) -> dict[str, bool]:
    """``{index name: valid}`` of the indexes on ``table`` whose name starts with one of ``prefixes``."""
    likes = [p.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%" for p in prefixes]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = %s::regclass AND c.relname LIKE ANY(%s)",
            [table, likes],
        )
        return dict(cursor.fetchall())


def existing(model_id: int) -> dict[str, bool]:
    """``{index name: valid}`` of the model's institution indexes (either kind)."""
    return existing_with(SPACE.table, [_prefix(model_id, False), _prefix(model_id, True)])


def ensure(model_id: int, dim: int, *, progress: Callable[[str], None] = lambda line: None,
           m: int = 16, ef_construction: int = 64) -> Outcome:
    """Build (CONCURRENTLY) the index of every institution :func:`wanted` names that lacks one,
    drop the others of this model and any invalid one. Idempotent; one run per model at a time (a
    second, in another process, returns at once: an index the first is building would look
    invalid to it). Inside a transaction (where CONCURRENTLY is refused) the indexes are built
    and dropped plainly: call it outside one (the embed stage runs it after its commit)."""
    binary = vectors.index_exists(SPACE, model_id, binary=True)
    if not binary and not vectors.index_exists(SPACE, model_id):
        progress(f"model {model_id} has no HNSW index yet: no institution indexes")
        want: list[Wanted] = []
    else:
        want = [Wanted(index_name(model_id, v, binary=binary), predicate(model_id, v), f"institution {v!r}", n, "works")
                for v, n in wanted(model_id).items()]
    if binary:
        expr, opclass = vectors._bits(SPACE, dim), "bit_hamming_ops"
    else:
        expr, opclass = SPACE.cast(dim), f"{SPACE.kind}_cosine_ops"
    return ensure_partial(SPACE.table, (LOCK_CLASS, int(model_id)), [_prefix(model_id, False), _prefix(model_id, True)],
                          want, expr, opclass, progress=progress, busy=f"the institution indexes of model {model_id}",
                          m=m, ef_construction=ef_construction)


def ensure_partial(table: str, lock: tuple[int, int], prefixes: list[str], want: list[Wanted], expr: str, opclass: str, *,
                   progress: Callable[[str], None], busy: str, m: int = 16, ef_construction: int = 64) -> Outcome:
    """Keep exactly the HNSW indexes ``want`` names among those on ``table`` starting with one of
    ``prefixes``: build the missing ones (CONCURRENTLY outside a transaction: the table stays
    writable), drop the others and any invalid one (an interrupted build). A session advisory lock
    ``lock`` makes it one run at a time: a second, in another process, returns at once (an index
    the first is building would look invalid to it)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", list(lock))
        if not cursor.fetchone()[0]:
            progress(f"{busy} are being built by another process: left to it")
            return Outcome([], [], [])
    try:
        return _ensure(table, prefixes, want, expr, opclass, progress, m, ef_construction)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", list(lock))


def _ensure(table: str, prefixes: list[str], want: list[Wanted], expr: str, opclass: str,
            progress: Callable[[str], None], m: int, ef_construction: int) -> Outcome:
    concurrently = "" if connection.in_atomic_block else " CONCURRENTLY"
    names = {w.name: w for w in want}
    outcome = Outcome([], [], [])
    for name, valid in sorted(existing_with(table, prefixes).items()):
        if name in names and valid:
            outcome.kept.append(name)
            continue
        progress(f"dropping {name}" + ("" if valid else " (invalid: an interrupted build)"))
        _drop(name, concurrently)
        outcome.dropped.append(name)
    todo = [w for w in want if w.name not in outcome.kept]
    for i, w in enumerate(sorted(todo, key=lambda w: (-w.rows, w.name)), 1):
        progress(f"[{i}/{len(todo)}] building {w.name} for {w.label} ({w.rows:,} {w.unit})")
        t = time.monotonic()
        _seen.pop(w.name, None)
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE INDEX{concurrently} {vectors._ident(w.name)} ON {vectors._ident(table)} USING hnsw (({expr}) {opclass}) "
                f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)}) WHERE {w.predicate}"
            )
            cursor.execute(f"COMMENT ON INDEX {vectors._ident(w.name)} IS {vectors._quote(w.label)}")
        progress(f"  built in {time.monotonic() - t:.1f} s")
        outcome.built.append(w.name)
    return outcome


def _drop(name: str, concurrently: str) -> None:
    _seen.pop(name, None)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX{concurrently} IF EXISTS {vectors._ident(name)}")
