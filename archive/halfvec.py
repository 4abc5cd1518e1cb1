"""Artwork embeddings from ``vector`` (float32) to ``halfvec`` (float16), in batches, while the
archive stays in use (migration ``0016_artwork_embeddings_halfvec``).

1. a ``halfvec`` column is added beside ``vector`` (catalogue only) and a trigger fills it for
   every row written from now on (the embed stage keeps running);
2. existing rows are converted in batches of ``batch_size`` ids, each its own short transaction;
3. each model's HNSW index is built on the new column (``halfvec_cosine_ops``) with
   ``CREATE INDEX CONCURRENTLY``, while the old index keeps serving searches;
4. one short transaction swaps the columns: the old column and its indexes are dropped, the new one
   takes the name ``vector``, the new indexes the old names.

Rows converted in step 2 are new row versions that still carry the dropped float32 bytes until the
table is rewritten: ``VACUUM FULL archive_artworkembedding`` (it locks the table while it runs) or
pg_repack reclaims them; rows written afterwards are compact (see docs/database.md).
"""
from __future__ import annotations

import re
from typing import Callable

from django.db import transaction

TABLE = "archive_artworkembedding"
NEW_COLUMN = "vector_half"
TRIGGER = "archive_artworkembedding_half_sync"
DEFAULT_BATCH = 20_000


def _column_type(cursor, column: str) -> str | None:
    cursor.execute(
        "SELECT udt_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = %s AND column_name = %s",
        [TABLE, column],
    )
    row = cursor.fetchone()
    return row[0] if row else None


def _hnsw_indexes(cursor, column: str) -> list[tuple[str, str]]:
    """(name, definition) of the table's HNSW indexes on ``column``."""
    cursor.execute(
        "SELECT c.relname, pg_get_indexdef(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = %s::regclass AND am.amname = 'hnsw'",
        [TABLE],
    )
    return [(name, ddl) for name, ddl in cursor.fetchall() if re.search(rf"\(\({column}\)?::", ddl)]


def convert(connection, *, batch_size: int = DEFAULT_BATCH, log: Callable[[str], None] = lambda m: None) -> int:
    """Convert the table's ``vector`` column to ``halfvec`` (idempotent). Runs in autocommit mode
    (outside any transaction: the concurrent index builds need that). Returns rows converted."""
    with connection.cursor() as cursor:
        if _column_type(cursor, "vector") == "halfvec":
            return 0
        cursor.execute(f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS {NEW_COLUMN} halfvec")
        cursor.execute(
            f"CREATE OR REPLACE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN NEW.{NEW_COLUMN} := NEW.vector::halfvec; RETURN NEW; END $$"
        )
        cursor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {TABLE}")
        cursor.execute(
            f"CREATE TRIGGER {TRIGGER} BEFORE INSERT OR UPDATE OF vector ON {TABLE} "
            f"FOR EACH ROW EXECUTE FUNCTION {TRIGGER}()"
        )
        cursor.execute(f"SELECT coalesce(min(id), 0), coalesce(max(id), 0) FROM {TABLE} WHERE {NEW_COLUMN} IS NULL")
        low, high = cursor.fetchone()
    converted = 0
    start = low
    while start <= high and high:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {TABLE} SET {NEW_COLUMN} = vector::halfvec WHERE id >= %s AND id < %s AND {NEW_COLUMN} IS NULL",
                [start, start + batch_size],
            )
            converted += cursor.rowcount
        start += batch_size
        log(f"converted {converted:,} artwork embeddings to halfvec")
    with connection.cursor() as cursor:
        old = _hnsw_indexes(cursor, "vector")
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
        cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(f"UPDATE {TABLE} SET {NEW_COLUMN} = vector::halfvec WHERE {NEW_COLUMN} IS NULL")
        cursor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {TABLE}")
        cursor.execute(f"DROP FUNCTION IF EXISTS {TRIGGER}()")
        cursor.execute(f"ALTER TABLE {TABLE} DROP COLUMN vector")
        cursor.execute(f"ALTER TABLE {TABLE} RENAME COLUMN {NEW_COLUMN} TO vector")
        cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN vector SET NOT NULL")
        for temp, name in renames:
            cursor.execute(f"ALTER INDEX {temp} RENAME TO {name}")
    log(f"artwork embeddings are halfvec ({converted:,} rows converted, {len(renames)} HNSW index(es) rebuilt)")
    return converted


def revert(connection) -> None:
    """Back to ``vector`` (float32 of the float16 values), in one statement (locks the table)."""
    with connection.cursor() as cursor:
        if _column_type(cursor, "vector") != "halfvec":
            return
        indexes = _hnsw_indexes(cursor, "vector")
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {name}")
        cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN vector TYPE vector USING vector::vector")
        for _, ddl in indexes:
            ddl = re.sub(r"::halfvec\((\d+)\)", r"::vector(\1)", ddl).replace("halfvec_", "vector_")
            cursor.execute(ddl)
