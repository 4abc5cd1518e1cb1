"""A vector table's ``vector`` column from float32 to ``halfvec`` (float16), in batches, while the
archive stays in use: artwork embeddings (migration ``0016_artwork_embeddings_halfvec``) and face
vectors (``0027_face_vectors_halfvec``). Every function takes the table (default: artwork embeddings).

1. a ``halfvec`` column is added beside ``vector`` (catalogue only) and a trigger fills it for
   every row written from now on (the embed and faces stages keep running);
2. existing rows are converted in batches of ``batch_size`` ids, each its own short transaction;
3. each model's HNSW index is built on the new column (``halfvec_cosine_ops``, faces ``halfvec_l2_ops``) with
   ``CREATE INDEX CONCURRENTLY``, while the old index keeps serving searches;
4. one short transaction swaps the columns: the old column and its indexes are dropped, the new one
   takes the name ``vector``, the new indexes the old names.

Rows converted in step 2 are new row versions that still carry the dropped float32 bytes until the
table is rewritten: ``VACUUM FULL <table>`` (it locks the table while it runs) or
pg_repack reclaims them; rows written afterwards are compact (see docs/database.md).
"""
from __future__ import annotations

import re
from typing import Callable

from django.db import transaction

TABLE = "archive_artworkembedding"
FACES_TABLE = "archive_face"
TABLES = (TABLE, FACES_TABLE)
NEW_COLUMN = "vector_half"
TRIGGER = "archive_artworkembedding_half_sync"
DEFAULT_BATCH = 20_000


def trigger_name(table: str) -> str:
    """The name of the trigger (and its function) that fills the new column during the conversion."""
    return f"{_table(table)}_half_sync"


def _table(table: str) -> str:
    if table not in TABLES:
        raise ValueError(f"no halfvec conversion for table {table!r}")
    return table


def _column_type(cursor, column: str, table: str = TABLE) -> str | None:
    cursor.execute(
        "SELECT udt_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = %s AND column_name = %s",
        [table, column],
    )
    row = cursor.fetchone()
    return row[0] if row else None


def _hnsw_indexes(cursor, column: str, table: str = TABLE) -> list[tuple[str, str]]:
    """(name, definition) of the table's HNSW indexes on ``column``."""
    cursor.execute(
        "SELECT c.relname, pg_get_indexdef(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = %s::regclass AND am.amname = 'hnsw'",
        [table],
    )
    return [(name, ddl) for name, ddl in cursor.fetchall() if re.search(rf"\(\({column}\)?::", ddl)]


def convert(
    connection, *, table: str = TABLE, batch_size: int = DEFAULT_BATCH, log: Callable[[str], None] = lambda m: None
) -> int:
    """Convert ``table``'s ``vector`` column to ``halfvec`` (idempotent). Runs in autocommit mode
    (outside any transaction: the concurrent index builds need that). Returns rows converted."""
    trigger = trigger_name(table)
    what = "face vectors" if table == FACES_TABLE else "artwork embeddings"
    with connection.cursor() as cursor:
        if _column_type(cursor, "vector", table) == "halfvec":
            return 0
        cursor.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {NEW_COLUMN} halfvec")
        cursor.execute(
            f"CREATE OR REPLACE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN NEW.{NEW_COLUMN} := NEW.vector::halfvec; RETURN NEW; END $$"
        )
        cursor.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        cursor.execute(
            f"CREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE OF vector ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {trigger}()"
        )
        cursor.execute(f"SELECT coalesce(min(id), 0), coalesce(max(id), 0) FROM {table} WHERE {NEW_COLUMN} IS NULL")
        low, high = cursor.fetchone()
    converted = 0
    start = low
    while start <= high and high:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {NEW_COLUMN} = vector::halfvec WHERE id >= %s AND id < %s AND {NEW_COLUMN} IS NULL",
                [start, start + batch_size],
            )
            converted += cursor.rowcount
        start += batch_size
        log(f"converted {converted:,} {what} to halfvec")
    with connection.cursor() as cursor:
        old = _hnsw_indexes(cursor, "vector", table)
        renames = []
        for name, ddl in old:
            temp = f"{name[:55]}_half"
            new_ddl = (
                ddl.replace("CREATE INDEX", "CREATE INDEX CONCURRENTLY IF NOT EXISTS", 1)
                .replace(f" {name} ", f" {temp} ", 1)
                .replace("vector_cosine_ops", "halfvec_cosine_ops")
                .replace("vector_l2_ops", "halfvec_l2_ops")
                .replace("vector_ip_ops", "halfvec_ip_ops")
            )
            new_ddl = re.sub(r"\(\(vector\)?::vector\((\d+)\)\)", rf"(({NEW_COLUMN})::halfvec(\1))", new_ddl)
            new_ddl = re.sub(r"\(\(vector::vector\((\d+)\)\)", rf"(({NEW_COLUMN}::halfvec(\1))", new_ddl)
            log(f"building {temp} (HNSW on halfvec)")
            cursor.execute(new_ddl)
            renames.append((temp, name))
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(f"UPDATE {table} SET {NEW_COLUMN} = vector::halfvec WHERE {NEW_COLUMN} IS NULL")
        cursor.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        cursor.execute(f"DROP FUNCTION IF EXISTS {trigger}()")
        cursor.execute(f"ALTER TABLE {table} DROP COLUMN vector")
        cursor.execute(f"ALTER TABLE {table} RENAME COLUMN {NEW_COLUMN} TO vector")
        cursor.execute(f"ALTER TABLE {table} ALTER COLUMN vector SET NOT NULL")
        for temp, name in renames:
            cursor.execute(f"ALTER INDEX {temp} RENAME TO {name}")
    log(f"{what} are halfvec ({converted:,} rows converted, {len(renames)} HNSW index(es) rebuilt)")
    return converted


def revert(connection, *, table: str = TABLE) -> None:
    """Back to ``vector`` (float32 of the float16 values), in one statement (locks the table)."""
    table = _table(table)
    with connection.cursor() as cursor:
        if _column_type(cursor, "vector", table) != "halfvec":
            return
        indexes = _hnsw_indexes(cursor, "vector", table)
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {name}")
        cursor.execute(f"ALTER TABLE {table} ALTER COLUMN vector TYPE vector USING vector::vector")
        for _, ddl in indexes:
            ddl = re.sub(r"::halfvec\((\d+)\)", r"::vector(\1)", ddl).replace("halfvec_", "vector_")
            cursor.execute(ddl)
