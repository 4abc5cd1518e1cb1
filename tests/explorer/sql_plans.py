"""EXPLAIN of a statement with the cheap paths priced out, for tests that check which index a
statement lets the planner take."""
from __future__ import annotations


def plan_of(sql: str) -> str:
    """EXPLAIN of ``sql`` with sequential scans and sorts priced out: on the few hundred rows of a
    test archive a scan and sort is cheaper than any index (and the planner rightly takes it);
    priced out, which ordered path (an HNSW index, the model's or a filter's own) the statement lets
    the planner take is what shows."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(r[0] for r in cursor.fetchall())
