"""The one place that speaks pgvector: bulk writes with COPY, per-model HNSW indexes, kNN queries.

Vector columns (``ArtworkEmbedding.vector``, ``Face.vector``, ``LabelEmbedding.vector``) have no
fixed dimension, so models of any width share a table. Each model gets its own *partial* HNSW
index on ``(vector::<kind>(dim))`` restricted to its rows; :func:`nearest` writes the query with
exactly that expression and predicate, so PostgreSQL uses the index. Artwork embeddings are stored
as ``halfvec`` (16-bit floats: half the bytes of ``vector``, in the table and in the index; CLIP
similarities change in the fourth decimal) and so are faces (128-d: Euclidean distances between real
faces change by at most 0.0002, docs/perf/face_vectors.md); label embeddings stay ``vector``.

Search within a filter uses pgvector's iterative index scans (``hnsw.iterative_scan``): the index
scan goes on past ``ef_search`` until ``limit`` rows pass the filter or ``hnsw.max_scan_tuples``
index entries were visited, so a filter keeps its full ``limit`` matches.
"""
from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from django.db import connection, transaction
from pgvector.psycopg import register_vector

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return name


def to_literal(vector: Sequence[float] | np.ndarray | str) -> str:
    """pgvector text form of a vector: '[0.1,0.2,...]' (a string is taken as that form already)."""
    if isinstance(vector, str):
        return vector
    arr = np.asarray(vector, dtype=np.float32).ravel()
    return "[" + ",".join(repr(float(x)) for x in arr) + "]"


def from_value(value) -> np.ndarray:
    """A vector column value (pgvector's numpy array or text) as float32."""
    if isinstance(value, str):
        return np.array([float(x) for x in value.strip("[]").split(",")], dtype=np.float32)
    if hasattr(value, "to_numpy"):  # pgvector's Vector / HalfVector objects
        value = value.to_numpy()
    return np.asarray(value, dtype=np.float32)


@dataclass(frozen=True)
class VectorSpace:
    """Where a family of vectors lives: table, vector column and the column naming their model."""

    table: str
    model_column: str
    vector_column: str = "vector"
    id_column: str = "id"
    kind: str = "vector"  # pgvector type: "vector" (float32) or "halfvec" (float16)

    def cast(self, dim: int) -> str:
        """The indexed expression: the column at the model's fixed width."""
        return f"{_ident(self.vector_column)}::{_ident(self.kind)}({int(dim)})"


def index_name(space: VectorSpace, model_value: int | str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", str(model_value).lower()).strip("_")[:30]
    return f"{space.table[:20]}_hnsw_{slug}"


def ensure_hnsw_index(
    space: VectorSpace, model_value: int | str, dim: int, *, metric: str = "cosine", m: int = 16, ef_construction: int = 64
) -> str:
    """Create (if missing) the partial HNSW index for one model's vectors. Idempotent."""
    opclass = f"{_ident(space.kind)}_" + {"cosine": "cosine_ops", "l2": "l2_ops", "ip": "ip_ops"}[metric]
    name = index_name(space, model_value)
    _forget_index(name)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {_ident(name)} ON {_ident(space.table)} USING hnsw "
            f"(({space.cast(dim)}) {opclass}) "
            f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)}) "
            f"WHERE {_ident(space.model_column)} = {_predicate_literal(model_value)}"
        )
    return name


_seen_indexes: dict[str, tuple[float, bool]] = {}


def index_exists(space: VectorSpace, model_value: int | str, *, binary: bool = False, max_age: float = 0) -> bool:
    """Whether the model's HNSW index (``binary``: its binary-quantized one) is in the catalogue
    (a plain look-up: no lock on the table). ``max_age`` > 0 accepts an answer this process got at
    most that many seconds ago (a search saves the round trip; this process's own index changes
    forget it at once, another process's are seen within ``max_age``)."""
    name = binary_index_name(space, model_value) if binary else index_name(space, model_value)
    now = time.monotonic()
    seen = _seen_indexes.get(name)
    if max_age > 0 and seen is not None and now - seen[0] < max_age:
        return seen[1]
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        found = bool(cursor.fetchone()[0])
    _seen_indexes[name] = (now, found)
    return found


def _forget_index(name: str) -> None:
    _seen_indexes.pop(name, None)


# --- two-phase search: binary-quantized HNSW candidates, exact re-rank ----------------------------
# binary_quantize() keeps one bit per dimension (the sign): a 512-d vector becomes 64 bytes, so the
# index holds 64 bytes a vector instead of 1,032 (halfvec) or 2,056 (vector). Hamming distance
# between the bits finds candidates; their stored vectors re-rank them exactly.


def binary_index_name(space: VectorSpace, model_value: int | str) -> str:
    return index_name(space, model_value) + "_bq"


def _bits(space: VectorSpace, dim: int, value: str | None = None) -> str:
    expr = value if value is not None else space.cast(dim)
    return f"binary_quantize({expr})::bit({int(dim)})"


def ensure_binary_index(space: VectorSpace, model_value: int | str, dim: int, *, m: int = 16, ef_construction: int = 64) -> str:
    """Create (if missing) the model's partial HNSW index on its binary-quantized vectors. Idempotent."""
    name = binary_index_name(space, model_value)
    _forget_index(name)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {_ident(name)} ON {_ident(space.table)} USING hnsw "
            f"(({_bits(space, dim)}) bit_hamming_ops) "
            f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)}) "
            f"WHERE {_ident(space.model_column)} = {_predicate_literal(model_value)}"
        )
    return name


def two_phase_above() -> int:
    """Rows of one model from which its artworks are searched in two phases (VECTOR_TWO_PHASE_ABOVE)."""
    from django.conf import settings

    return int(getattr(settings, "VECTOR_TWO_PHASE_ABOVE", 10_000_000))


def ensure_artwork_index(model_id: int, dim: int) -> str:
    """The HNSW index a model's artwork embeddings call for, created if missing: on halfvec below
    :func:`two_phase_above` rows; at or above it the binary-quantized one (two-phase search), and
    the halfvec index is then dropped (the binary one is a fraction of its size). Returns its name."""
    space = ARTWORK_EMBEDDINGS
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {space.table} WHERE {space.model_column} = %s", [int(model_id)])
        rows = int(cursor.fetchone()[0])
    # Catalogue look-ups first: a CREATE INDEX, even one that exists, is refused inside a
    # transaction with pending trigger events.
    if rows < two_phase_above() and not index_exists(space, model_id, binary=True):
        if index_exists(space, model_id):
            return index_name(space, model_id)
        return ensure_hnsw_index(space, model_id, dim)
    if not index_exists(space, model_id, binary=True):
        ensure_binary_index(space, model_id, dim)
    if index_exists(space, model_id):
        _forget_index(index_name(space, model_id))
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX IF EXISTS {_ident(index_name(space, model_id))}")
    return binary_index_name(space, model_id)


def nearest_two_phase(
    space: VectorSpace,
    model_value: int | str,
    query: Sequence[float] | np.ndarray,
    *,
    dim: int,
    limit: int = 10,
    candidates: int = 200,
    where: str = "",
    params: Sequence = (),
    columns: Sequence[str] = (),
    iterative: bool = False,
    max_scan_tuples: int | None = None,
) -> list[tuple]:
    """Like :func:`nearest` (cosine) through the binary-quantized index: the ``candidates`` nearest
    by Hamming distance between the sign bits (HNSW on ``bit_hamming_ops``, ``ef_search`` =
    ``candidates``), re-ranked by the exact cosine distance of their stored vectors; the
    ``limit`` best come back, nearest first. ``iterative`` lets the index scan go on until
    ``candidates`` rows pass ``where`` (search within a filter)."""
    extra = "".join(f", {_ident(c)}" for c in columns)
    kind = _ident(space.kind)
    qcast = f"%s::{kind}({int(dim)})"
    inner = (
        f"SELECT {_ident(space.id_column)}, {_ident(space.vector_column)}{extra} FROM {_ident(space.table)} "
        f"WHERE {_ident(space.model_column)} = {_predicate_literal(model_value)}"
        + (f" AND ({where})" if where else "")
        + f" ORDER BY {_bits(space, dim)} <~> {_bits(space, dim, qcast)} LIMIT %s"
    )
    sql = (
        f"WITH candidates AS MATERIALIZED ({inner}) "
        f"SELECT {_ident(space.id_column)}, {_ident(space.vector_column)}::{kind}({int(dim)}) <=> {qcast} AS distance{extra} "
        f"FROM candidates ORDER BY distance, {_ident(space.id_column)} LIMIT %s"
    )
    literal = to_literal(query)
    connection.ensure_connection()
    with connection.cursor() as cursor:
        scan_settings(cursor, ef_search=min(1000, max(int(candidates), 40)), iterative="relaxed_order" if iterative else None,
                      max_scan_tuples=max_scan_tuples)
        cursor.execute(sql, [*params, literal, int(candidates), literal, int(limit)])
        return [tuple(row) for row in cursor.fetchall()]


# --- the index scan's settings: one round trip, remembered per connection -------------------------
# pgvector reads hnsw.ef_search, hnsw.iterative_scan and hnsw.max_scan_tuples when the scan starts.
# Setting them with SET LOCAL inside a transaction took BEGIN, a SET each, the query and COMMIT:
# four to six round trips to the server for one search, each a wait for a core on a busy machine
# (docs/perf/vectors.md: server CPU 2.3 ms, wall 38.5 ms under load). Every search now states all
# three (pgvector's defaults for those it does not need) in one set_config() statement, skipped
# when this connection's session already has them; outside a transaction the values are set for
# the session (kept until the connection closes), inside one only for that transaction (a
# rollback would undo a session value without the cache knowing).

SCAN_DEFAULTS = {"hnsw.ef_search": "40", "hnsw.iterative_scan": "off", "hnsw.max_scan_tuples": "20000"}


def scan_settings(cursor, *, ef_search: int | None = None, iterative: str | None = None, max_scan_tuples: int | None = None,
                  sort: bool = True) -> None:
    """Give the HNSW scan of the next statement on ``cursor`` these settings (pgvector's default for
    each left out), in at most one round trip. ``sort=False`` (inside a transaction only: it must
    not outlive the statement) prices sorting out, so the planner orders by the HNSW index."""
    if not sort and not connection.in_atomic_block:
        raise ValueError("sort=False is for a statement inside a transaction (it is set for that transaction)")
    wanted = {
        "hnsw.ef_search": str(int(ef_search)) if ef_search else SCAN_DEFAULTS["hnsw.ef_search"],
        "hnsw.iterative_scan": iterative or "off",
        "hnsw.max_scan_tuples": str(int(max_scan_tuples)) if iterative and max_scan_tuples else SCAN_DEFAULTS["hnsw.max_scan_tuples"],
    }
    if wanted["hnsw.iterative_scan"] not in ("off", "relaxed_order", "strict_order"):
        raise ValueError(f"iterative must be relaxed_order or strict_order, not {iterative!r}")
    if not sort:
        wanted["enable_sort"] = "off"
    raw = connection.connection
    local = connection.in_atomic_block
    known = getattr(connection, "_hnsw_session", None)
    session = known[1] if known and known[0] is raw else {}
    if local:
        changed = wanted  # a transaction of the caller's: set for it alone, whatever the session has
    else:
        changed = {k: v for k, v in wanted.items() if session.get(k) != v}
    if not changed:
        return
    flag = "true" if local else "false"
    cursor.execute("SELECT " + ", ".join(f"set_config(%s, %s, {flag})" for _ in changed), [x for kv in changed.items() for x in kv])
    if not local:
        connection._hnsw_session = (raw, {**session, **changed})


def _quote(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _predicate_literal(value: int | str) -> str:
    # Partial-index predicates must appear as literals in the query for the planner to match them.
    return str(int(value)) if isinstance(value, int) else _quote(value)


_OPERATORS = {"cosine": "<=>", "l2": "<->", "ip": "<#>"}


def nearest(
    space: VectorSpace,
    model_value: int | str,
    query: Sequence[float] | np.ndarray,
    *,
    dim: int,
    limit: int = 10,
    metric: str = "cosine",
    where: str = "",
    params: Sequence = (),
    ef_search: int | None = None,
    columns: Sequence[str] = (),
    iterative: str | None = None,
    max_scan_tuples: int | None = None,
    through_index: bool = False,
) -> list[tuple]:
    """The ``limit`` nearest rows of one model to ``query``: ``(id, distance, *columns)`` tuples,
    nearest first.

    ``through_index``: the statement runs in a transaction of its own with sorting priced out, so
    the planner reads the rows in the HNSW index's order whatever it guesses of ``where`` (else,
    for a filter another index answers, it may read every row passing it and sort them: the exact
    ranking at the cost of the whole set); two more round trips.

    ``where`` adds SQL conditions (with ``%s`` placeholders bound from ``params``). Without
    ``iterative`` keep them selective-free (e.g. ``not_a_face = false``): the index returns at
    most ``ef_search`` candidates (pgvector's default is 40) before the conditions. With
    ``iterative`` (``"relaxed_order"`` or ``"strict_order"``) the index scan continues until
    ``limit`` rows pass the conditions or ``max_scan_tuples`` index entries were visited
    (pgvector's default 20,000); relaxed order is re-sorted here, so rows come back ordered either way.
    """
    op = _OPERATORS[metric]
    expr = space.cast(dim)
    qcast = f"%s::{_ident(space.kind)}({int(dim)})"
    extra = "".join(f", {_ident(c)}" for c in columns)
    sql = (
        f"SELECT {_ident(space.id_column)}, {expr} {op} {qcast} AS distance{extra} "
        f"FROM {_ident(space.table)} WHERE {_ident(space.model_column)} = {_predicate_literal(model_value)}"
        + (f" AND ({where})" if where else "")
        + f" ORDER BY {expr} {op} {qcast} LIMIT %s"
    )
    if iterative == "relaxed_order":
        # pgvector's advice: materialise the relaxed index order, then sort the few rows exactly.
        # "distance + 0": the planner takes the CTE as already sorted by distance (the inner ORDER
        # BY) and would only break ties; an expression makes it sort for real.
        # The inner scan takes ef_search rows (at least ``limit``): in relaxed order the first
        # ``limit`` to pass are not always the nearest ``limit`` of what the index found.
        sql = f"WITH hits AS MATERIALIZED ({sql}) SELECT * FROM hits ORDER BY distance + 0, {_ident(space.id_column)} LIMIT %s"
    elif iterative not in (None, "strict_order"):
        raise ValueError(f"iterative must be relaxed_order or strict_order, not {iterative!r}")
    literal = to_literal(query)
    connection.ensure_connection()
    limits = [int(limit)]
    if iterative == "relaxed_order":
        limits = [max(int(limit), int(ef_search or 40)), int(limit)]
    with transaction.atomic() if through_index else _no_transaction(), connection.cursor() as cursor:
        scan_settings(cursor, ef_search=ef_search, iterative=iterative, max_scan_tuples=max_scan_tuples, sort=not through_index)
        cursor.execute(sql, [literal, *params, literal, *limits])
        rows = [tuple(row) for row in cursor.fetchall()]
        if through_index:
            # Rolled back (it wrote nothing): the settings go with it, also inside a caller's
            # transaction (a savepoint), where a commit would keep sorting priced out until its end.
            transaction.set_rollback(True)
        return rows


@contextlib.contextmanager
def _no_transaction():
    yield


def copy_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence], *, conflict: Sequence[str] = (), update: Sequence[str] = ()) -> int:
    """Bulk-write rows with COPY into a temporary table, then INSERT ... ON CONFLICT into ``table``.

    Vector values may be numpy arrays or lists; they are sent in pgvector's text form. With
    ``conflict`` columns, existing rows are updated (``update`` columns) or left alone (no
    ``update``), which makes every write idempotent. Returns the number of rows sent.
    """
    table, cols = _ident(table), [_ident(c) for c in columns]
    col_list = ", ".join(cols)
    temp = f"_copy_{table}"
    count = 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {temp}")
        cursor.execute(f"CREATE TEMP TABLE {temp} ON COMMIT DROP AS SELECT {col_list} FROM {table} WITH NO DATA")
        with cursor.copy(f"COPY {temp} ({col_list}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([to_literal(v) if isinstance(v, np.ndarray) else v for v in row])
                count += 1
        if conflict:
            target = ", ".join(_ident(c) for c in conflict)
            action = (
                "DO UPDATE SET " + ", ".join(f"{_ident(c)} = EXCLUDED.{_ident(c)}" for c in update)
                if update
                else "DO NOTHING"
            )
            cursor.execute(f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM {temp} ON CONFLICT ({target}) {action}")
        else:
            cursor.execute(f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM {temp}")
        cursor.execute(f"DROP TABLE {temp}")
    return count


def register(conn=None) -> None:
    """Register pgvector's psycopg adapters on the current connection (returns numpy arrays)."""
    connection.ensure_connection()
    register_vector(conn or connection.connection)


ARTWORK_EMBEDDINGS = VectorSpace(table="archive_artworkembedding", model_column="model_id", kind="halfvec")
FACES = VectorSpace(table="archive_face", model_column="model", kind="halfvec")
LABEL_EMBEDDINGS = VectorSpace(table="archive_labelembedding", model_column="model_id")


# --- numeric bulk writes: binary COPY built with numpy ------------------------------------------
# copy_rows() formats each row in Python, which is fine for thousands of rows. For millions of
# plain numeric rows (e.g. 20 top-k label rows per artwork) and for vectors, copy_arrays() builds
# PostgreSQL's binary COPY stream from numpy column arrays in one vectorised step: no per-row
# Python work, no text formatting or parsing, and float32 values arrive bit for bit.
# Binary forms: numbers big-endian; pgvector ``vector`` = int16 dim, int16 unused (0), dim
# float32; ``halfvec`` the same with float16 (values rounded to the nearest float16); ``timestamp with time zone`` = int64 microseconds since 2000-01-01 UTC.

_BINARY_TYPES = {
    "bigint": ">i8",
    "integer": ">i4",
    "smallint": ">i2",
    "double precision": ">f8",
    "real": ">f4",
    "boolean": "?",
}
_VECTOR_TYPES = {"vector": ">f4", "halfvec": ">f2"}
_PG_EPOCH = np.datetime64("2000-01-01T00:00:00", "us")
_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_PGCOPY_TRAILER = (-1).to_bytes(2, "big", signed=True)


def column_types(table: str) -> dict[str, str]:
    """``{column: SQL data type}`` of a table (an extension's type, such as pgvector's, by its
    name: ``vector``, ``halfvec``). Read from the catalogue on every call (well under a millisecond),
    never cached: a column may change type under a running process (migration 0016 turns artwork
    embeddings from vector into halfvec while workers write)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
            [table],
        )
        return dict(cursor.fetchall())


def binary_copy_payload(types: Sequence[str], arrays: Sequence[np.ndarray]) -> bytes:
    """PostgreSQL binary COPY stream (header, rows, trailer) for equal-length columns.

    ``types`` are SQL type names: keys of ``_BINARY_TYPES``, ``vector`` or ``halfvec`` (a 2-d float
    array, one row per vector, finite values; within float16's range for ``halfvec``) or ``timestamp with time zone`` (numpy datetime64 in UTC). No NULLs.
    """
    n = len(arrays[0]) if arrays else 0
    fields: list[tuple] = [("n", ">i2")]
    values: list[np.ndarray] = []
    for i, (sql_type, array) in enumerate(zip(types, arrays)):
        array = np.asarray(array)
        if len(array) != n:
            raise ValueError("all columns must have the same length")
        if sql_type in _VECTOR_TYPES:
            if array.ndim != 2:
                raise ValueError("a vector column takes a 2-d array (one row per vector)")
            if not np.isfinite(array).all():
                raise ValueError("vectors must be finite (pgvector stores no NaN or infinity)")
            if sql_type == "halfvec":
                with np.errstate(over="ignore"):
                    array = array.astype(np.float16)
                if not np.isfinite(array).all():
                    raise ValueError("halfvec values must be within float16's range (|x| < 65,504)")
            dim = array.shape[1]
            fields += [(f"l{i}", ">i4"), (f"d{i}", ">i2"), (f"u{i}", ">i2"), (f"v{i}", _VECTOR_TYPES[sql_type], (dim,))]
        elif sql_type == "timestamp with time zone":
            fields += [(f"l{i}", ">i4"), (f"v{i}", ">i8")]
            array = (array.astype("datetime64[us]") - _PG_EPOCH).astype(np.int64)
        elif sql_type in _BINARY_TYPES:
            fields += [(f"l{i}", ">i4"), (f"v{i}", _BINARY_TYPES[sql_type])]
        else:
            raise ValueError(f"copy_arrays cannot send SQL type {sql_type!r}; use copy_rows")
        values.append(array)
    rows = np.empty(n, dtype=np.dtype(fields))
    rows["n"] = len(types)
    for i, (sql_type, array) in enumerate(zip(types, values)):
        if sql_type in _VECTOR_TYPES:
            rows[f"l{i}"] = 4 + np.dtype(_VECTOR_TYPES[sql_type]).itemsize * array.shape[1]
            rows[f"d{i}"] = array.shape[1]
            rows[f"u{i}"] = 0
        else:
            rows[f"l{i}"] = rows.dtype[f"v{i}"].itemsize
        rows[f"v{i}"] = array
    return _PGCOPY_HEADER + rows.tobytes() + _PGCOPY_TRAILER


def copy_arrays(
    table: str, arrays: dict[str, np.ndarray], *, conflict: Sequence[str] = (), update: Sequence[str] = ()
) -> int:
    """Bulk-write columns (``{column: array}``: numbers and timestamps 1-d, vectors 2-d) with a binary COPY.

    Without ``conflict`` the rows are copied straight into ``table`` (fastest, for fresh loads).
    With ``conflict`` they go through a temporary table and INSERT ... ON CONFLICT, updating the
    ``update`` columns (or doing nothing), exactly like :func:`copy_rows`. Returns the row count.
    """
    table = _ident(table)
    cols = [_ident(c) for c in arrays]
    types = column_types(table)
    missing = [c for c in cols if c not in types]
    if missing:
        raise ValueError(f"{table} has no column(s) {', '.join(missing)}")
    payload = binary_copy_payload([types[c] for c in cols], [np.asarray(a) for a in arrays.values()])
    n = len(next(iter(arrays.values()))) if arrays else 0
    col_list = ", ".join(cols)
    with transaction.atomic(), connection.cursor() as cursor:
        target = table
        if conflict:
            target = f"_copy_{table}"
            cursor.execute(f"DROP TABLE IF EXISTS {target}")
            cursor.execute(f"CREATE TEMP TABLE {target} ON COMMIT DROP AS SELECT {col_list} FROM {table} WITH NO DATA")
        with cursor.copy(f"COPY {target} ({col_list}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(payload)
        if conflict:
            keys = ", ".join(_ident(c) for c in conflict)
            action = (
                "DO UPDATE SET " + ", ".join(f"{_ident(c)} = EXCLUDED.{_ident(c)}" for c in update) if update else "DO NOTHING"
            )
            cursor.execute(f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM {target} ON CONFLICT ({keys}) {action}")
            cursor.execute(f"DROP TABLE {target}")
    return n


def nearest_among(
    space: VectorSpace,
    model_value: int | str,
    query: Sequence[float] | np.ndarray,
    ids: Sequence[int],
    *,
    dim: int,
    limit: int = 10,
    metric: str = "cosine",
    key: str = "",
) -> list[tuple]:
    """The ``limit`` nearest to ``query`` among the rows of one model whose ``key`` column
    (default: the id column) is in ``ids``: ``(key, distance)`` tuples, nearest first, ties by key.
    Every distance is computed (the rows are found through a b-tree on ``key``, not the HNSW
    index), so nothing in ``ids`` is missed: for small filtered sets."""
    if not len(ids):
        return []
    op = _OPERATORS[metric]
    key = _ident(key or space.id_column)
    expr = f"{space.cast(dim)} {op} %s::{_ident(space.kind)}({int(dim)})"
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH scored AS MATERIALIZED (SELECT {key}, {expr} AS distance FROM {_ident(space.table)}"
            f" WHERE {_ident(space.model_column)} = {_predicate_literal(model_value)} AND {key} = ANY(%s))"
            f" SELECT {key}, distance FROM scored ORDER BY distance, {key} LIMIT %s",
            [to_literal(query), [int(i) for i in ids], int(limit)],
        )
        return [tuple(row) for row in cursor.fetchall()]


def neighbours_of(
    space: VectorSpace,
    model_value: int | str,
    keys: Sequence[int],
    *,
    dim: int,
    limit: int = 10,
    key: str = "",
    metric: str = "cosine",
    ef_search: int | None = None,
    targets: Sequence[Sequence[float] | np.ndarray] = (),
    candidates: int | None = None,
) -> list[tuple]:
    """The ``limit`` nearest rows of one model to each of several stored rows (those whose ``key``
    column, default the id column, is in ``keys``), in one query: each row's own vector is the
    query of an HNSW index scan (a LATERAL join), so no vector travels to or from the client.
    Returns ``(key, neighbour key, distance, *distance to each of targets)`` tuples, each row's
    neighbours nearest first; the row itself is among its neighbours (distance 0).
    ``candidates`` (cosine only): search in two phases through the binary-quantized index, as
    :func:`nearest_two_phase` does, that many candidates by Hamming distance re-ranked exactly."""
    if not len(keys):
        return []
    op = _OPERATORS[metric]
    key = _ident(key or space.id_column)
    vec, table = _ident(space.vector_column), _ident(space.table)
    model = f"{_ident(space.model_column)} = {_predicate_literal(model_value)}"
    cast = f"::{_ident(space.kind)}({int(dim)})"
    extra = "".join(f", h.{vec}{cast} {op} %s{cast}" for _ in targets)
    if candidates:
        bits = f"::bit({int(dim)})"
        scan = (
            f"SELECT c.{key}, c.{vec}, c.{vec}{cast} {op} q.{vec}{cast} AS distance FROM ("
            f"SELECT e.{key}, e.{vec} FROM {table} e WHERE e.{model}"
            f" ORDER BY binary_quantize(e.{vec}{cast}){bits} <~> binary_quantize(q.{vec}{cast}){bits}"
            f" LIMIT {int(candidates)}) c ORDER BY distance LIMIT %s"
        )
        ef_search = max(int(ef_search or 0), min(1000, int(candidates)))
    else:
        scan = (
            f"SELECT e.{key}, e.{vec}, e.{vec}{cast} {op} q.{vec}{cast} AS distance FROM {table} e WHERE e.{model}"
            f" ORDER BY e.{vec}{cast} {op} q.{vec}{cast} LIMIT %s"
        )
    sql = (
        f"SELECT q.{key}, h.{key}, h.distance{extra} FROM {table} q CROSS JOIN LATERAL ({scan}) h"
        f" WHERE q.{model} AND q.{key} = ANY(%s) ORDER BY q.{key}, h.distance"
    )
    connection.ensure_connection()
    with connection.cursor() as cursor:
        scan_settings(cursor, ef_search=ef_search)
        cursor.execute(sql, [*[to_literal(t) for t in targets], int(limit), [int(k) for k in keys]])
        return [tuple(row) for row in cursor.fetchall()]
