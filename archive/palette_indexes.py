"""Partial HNSW indexes on the palette signatures per common filter value: per classification and
per period of years (PALETTE_PERIOD_YEARS wide), so that a colour search within a filter keeping a
few percent of the archive walks a graph of a bucket that holds its set at a high share.

The colour search checks its filters on the palette row (the artwork's years, classification,
institution and duplicate flag are copied there by triggers, migration 0026). Through the method's
own index, an iterative scan visits about ``limit / share`` entries until a page passes; a filter
keeping 3 % of the archive costs some 36 ms of backend CPU at 300k (docs/perf/discovery.md), and
ranking its 10,000 rows exactly costs as much. Within the index of its century the same filter
(years 1600-1620) keeps a fifth of the entries: a few hundred are visited.

A period's index holds every palette whose years *overlap* it (first year <= its end, last year
>= its start); periods start every half period (1600-1699, 1650-1749, ...), so a window of up to
half a period lies inside one, and a longer one inside one or across two (each is then scanned
with the whole filter and the pages merged). A classification's index holds its palettes (stored
in upper case).

Which buckets get an index: those holding at least PALETTE_FILTER_INDEX_MIN palettes (below, the
sets they can hold are ranked exactly) and at most PALETTE_FILTER_INDEX_MAX_SHARE of them (above,
the method's index is about as good); PALETTE_FILTER_INDEXES names the kinds (``period``,
``classification``, ``institution``). The indexes are maintained by PostgreSQL as palettes are
written (a new row in the bucket goes into its index), so searches through them stay exact with
respect to the filter; :func:`ensure` (after each palette job, and ``manage.py
vector_filter_indexes``) builds those of buckets that grew into range and drops the others,
through :func:`archive.filter_indexes.ensure_partial` (CONCURRENTLY, one run at a time).
"""
from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from typing import Callable

from django.conf import settings
from django.db import connection

from . import colour, filter_indexes, vectors

SPACE = colour.PALETTES
LOCK_CLASS = 0x5049  # "PI": session advisory lock (LOCK_CLASS, crc of the method) held while ensure() runs
KINDS = ("period", "classification", "institution")

# The years of a palette row: its first and last (either way round), and as a range (the GiST
# index's expression, migration 0026, which the search's own year condition uses).
FIRST_YEAR = "LEAST(year_start, COALESCE(year_end, year_start))"
LAST_YEAR = "GREATEST(year_start, COALESCE(year_end, year_start))"
YEARS_RANGE = f"int4range({FIRST_YEAR}, {LAST_YEAR}, '[]')"


def kinds() -> list[str]:
    value = getattr(settings, "PALETTE_FILTER_INDEXES", "period,classification")
    chosen = [k.strip() for k in (value.split(",") if isinstance(value, str) else value) if k.strip()]
    unknown = set(chosen) - set(KINDS)
    if unknown:
        raise ValueError(f"PALETTE_FILTER_INDEXES: unknown kind(s) {sorted(unknown)}; choose from {', '.join(KINDS)}")
    return chosen


def period_years() -> int:
    return max(1, int(getattr(settings, "PALETTE_PERIOD_YEARS", 100)))


def min_rows() -> int:
    return int(getattr(settings, "PALETTE_FILTER_INDEX_MIN", 5_000))


def max_share() -> float:
    return float(getattr(settings, "PALETTE_FILTER_INDEX_MAX_SHARE", 0.5))


@dataclass(frozen=True)
class Bucket:
    """One filter value with (possibly) its own index: ``kind`` and ``value`` (a period's first year)."""

    kind: str
    value: str | int

    def suffix(self) -> str:
        if self.kind == "period":
            start = int(self.value)
            return f"y{period_years()}_" + (f"m{-start}" if start < 0 else str(start))
        return self.kind[0] + "_" + hashlib.sha1(str(self.value).encode()).hexdigest()[:12]

    def condition(self) -> str:
        """The index's WHERE clause past its method, as the search states it literally (beside
        ``method = ...``) for the planner to take the index."""
        if self.kind == "period":
            # The overlap as two comparisons, not the range's &&: that one the GiST index on the
            # years answers, and the planner would read the whole period through it and sort.
            start = int(self.value)
            return f"{FIRST_YEAR} <= {start + period_years() - 1} AND {LAST_YEAR} >= {start} AND NOT duplicate"
        return f"{self.kind} = {vectors._quote(str(self.value))} AND NOT duplicate"

    def label(self) -> str:
        if self.kind == "period":
            return f"years {int(self.value)}-{int(self.value) + period_years() - 1}"
        return f"{self.kind} {self.value!r}"


def _prefix(method: str) -> str:
    return vectors.index_name(SPACE, method) + "_"


def index_name(bucket: Bucket, method: str = colour.METHOD) -> str:
    return _prefix(method) + bucket.suffix()


def predicate(bucket: Bucket, method: str = colour.METHOD) -> str:
    return f"{SPACE.model_column} = {vectors._quote(method)} AND {bucket.condition()}"


def period_step() -> int:
    """Periods start every half period (1600-1699, 1650-1749, ...): a window of up to half a
    period lies inside one, where it keeps at least half of its share of that period's index."""
    return max(1, period_years() // 2)


def period_covers(year_from: int | None, year_to: int | None) -> list[list[Bucket]]:
    """The ways one period, or two overlapping or adjacent ones, hold a window of years ([] when
    either end is open)."""
    if year_from is None or year_to is None or year_to < year_from:
        return []
    width, step = period_years(), period_step()

    def starts(low: int, high: int) -> list[int]:  # period starts within [low, high]
        return list(range(-(-low // step) * step, high + 1, step))

    singles = [[Bucket("period", s)] for s in starts(year_to - width + 1, year_from)]
    pairs = [[Bucket("period", a), Bucket("period", b)]
             for a in starts(year_from - width + 1, year_from) for b in starts(year_to - width + 1, year_to)
             if a < b <= a + width]
    return singles + pairs


def covering(*, year_from=None, year_to=None, classification: str = "", institution: str = "",
             method: str = colour.METHOD, max_age: float = 0) -> list[tuple[Bucket, int]]:
    """The indexed buckets whose union holds every palette a filter can return: its classification's
    (or institution's) index, or one or two periods holding its years, the option holding the
    fewest rows; ``[(bucket, rows its index holds)]``, [] when none covers it."""
    enabled = set(kinds())
    options: list[list[Bucket]] = []
    if classification and "classification" in enabled:
        options.append([Bucket("classification", classification.upper())])
    if institution and "institution" in enabled:
        options.append([Bucket("institution", institution)])
    if "period" in enabled:
        options += period_covers(year_from, year_to)
    best: list[tuple[Bucket, int]] = []
    for buckets in options:
        found = [(b, filter_indexes.indexed_rows(index_name(b, method), max_age=max_age)) for b in buckets]
        if all(rows for _, rows in found) and (not best or sum(r for _, r in found) < sum(r for _, r in best)):
            best = found
    return best


def counts(method: str = colour.METHOD) -> dict[Bucket, int]:
    """Palettes per bucket of every enabled kind (duplicates left out), and ``None``: all of them."""
    out: dict = {}
    enabled = kinds()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM archive_artworkpalette WHERE method = %s AND NOT duplicate", [method])
        out[None] = int(cursor.fetchone()[0])
        for kind in ("classification", "institution"):
            if kind in enabled:
                cursor.execute(f"SELECT {kind}, count(*) FROM archive_artworkpalette WHERE method = %s AND NOT duplicate "
                               f"AND {kind} <> '' GROUP BY 1", [method])
                out.update({Bucket(kind, v): int(n) for v, n in cursor.fetchall()})
        if "period" in enabled:
            width, step = period_years(), period_step()
            cursor.execute(
                f"SELECT p, count(*) FROM (SELECT {FIRST_YEAR} AS lo, {LAST_YEAR} AS hi FROM archive_artworkpalette"
                " WHERE method = %s AND NOT duplicate AND year_start IS NOT NULL) r,"
                " generate_series(floor((lo - %s + 1)::float / %s)::int * %s, floor(hi::float / %s)::int * %s, %s) p"
                " WHERE p + %s - 1 >= lo GROUP BY 1",
                [method, width, step, step, step, step, step, width],
            )
            out.update({Bucket("period", int(p)): int(n) for p, n in cursor.fetchall()})
    return out


def wanted(method: str = colour.METHOD) -> dict[Bucket, int]:
    """``{bucket: palettes}`` of the buckets that call for an index."""
    found = counts(method)
    total = found.pop(None)
    low, high = min_rows(), max_share() * total
    return {b: n for b, n in found.items() if low <= n <= high}


def ensure(method: str = colour.METHOD, *, progress: Callable[[str], None] = lambda line: None,
           m: int = 16, ef_construction: int = 64) -> filter_indexes.Outcome:
    """Build the index of every bucket :func:`wanted` names that lacks one and drop the others of
    this method (and any invalid one); nothing before the method's own index exists. Idempotent,
    one run per method at a time; call it outside a transaction (CONCURRENTLY)."""
    if not vectors.index_exists(SPACE, method):
        progress(f"palette method {method} has no HNSW index yet: no filter indexes")
        want = []
    else:
        want = [filter_indexes.Wanted(index_name(b, method), predicate(b, method), b.label(), n, "palettes")
                for b, n in wanted(method).items()]
    return filter_indexes.ensure_partial(
        SPACE.table, (LOCK_CLASS, zlib.crc32(method.encode()) & 0x7FFFFFFF), [_prefix(method)], want,
        SPACE.cast(colour.SIGNATURE_DIM), f"{SPACE.kind}_cosine_ops", progress=progress,
        busy=f"the filter indexes of palette method {method}", m=m, ef_construction=ef_construction)
