"""The HNSW scan settings a search states (archive.vectors.scan_settings): set in one statement,
kept for the session outside a transaction (and skipped when already in place), set for the
transaction alone inside one, and pgvector's defaults for what a search leaves out."""
from __future__ import annotations

import pytest
from django.db import connection, transaction

from archive import vectors


def show() -> tuple[str, str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT '[1]'::vector")  # loads pgvector in this session, which defines its settings
        cursor.execute("SELECT current_setting('hnsw.ef_search'), current_setting('hnsw.iterative_scan'), "
                       "current_setting('hnsw.max_scan_tuples')")
        return tuple(cursor.fetchone())


class Counting:
    """Counts the statements Django sends (a wrapper of the real cursor: they still run)."""

    def __init__(self):
        self.sql = []

    def __call__(self, execute, sql, params, many, context):
        self.sql.append(sql)
        return execute(sql, params, many, context)


@pytest.mark.django_db(transaction=True)
def test_session_settings_are_set_once_and_reset_to_defaults():
    connection.ensure_connection()
    counting = Counting()
    with connection.execute_wrapper(counting), connection.cursor() as cursor:
        vectors.scan_settings(cursor, ef_search=123, iterative="relaxed_order", max_scan_tuples=5000)
        vectors.scan_settings(cursor, ef_search=123, iterative="relaxed_order", max_scan_tuples=5000)
    assert len(counting.sql) == 1 and counting.sql[0].startswith("SELECT set_config")
    assert show() == ("123", "relaxed_order", "5000")
    with connection.cursor() as cursor:
        vectors.scan_settings(cursor)  # a plain search: pgvector's defaults, not the last search's
    assert show() == ("40", "off", "20000")


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_the_settings_end_with_it():
    connection.ensure_connection()
    with connection.cursor() as cursor:
        vectors.scan_settings(cursor, ef_search=77)
    with transaction.atomic(), connection.cursor() as cursor:
        vectors.scan_settings(cursor, ef_search=300, iterative="strict_order", max_scan_tuples=9000)
        assert show() == ("300", "strict_order", "9000")
    assert show() == ("77", "off", "20000")
    counting = Counting()
    with connection.execute_wrapper(counting), connection.cursor() as cursor:
        vectors.scan_settings(cursor, ef_search=77)  # the session still has it: nothing sent
    assert counting.sql == []
    with pytest.raises(ValueError, match="iterative"), connection.cursor() as cursor:
        vectors.scan_settings(cursor, iterative="sideways")


@pytest.mark.django_db(transaction=True)
def test_a_new_connection_gets_the_settings_again():
    connection.ensure_connection()
    with connection.cursor() as cursor:
        vectors.scan_settings(cursor, ef_search=222)
    connection.close()
    connection.ensure_connection()
    assert show()[0] == "40"
    with connection.cursor() as cursor:
        vectors.scan_settings(cursor, ef_search=222)
    assert show()[0] == "222"
