"""PostgreSQL extensions the archive uses where the server has them (pg_trgm, btree_gist)."""
from __future__ import annotations

from django.db import DatabaseError, transaction


def ensure(connection, name: str) -> bool:
    """Create extension ``name`` on ``connection`` when the server offers it; False when it does
    not, or when this role may not create it (nothing else is changed then)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT installed_version IS NOT NULL FROM pg_available_extensions WHERE name = %s", [name])
        row = cursor.fetchone()
        if row is None:
            return False
        if not row[0]:
            try:
                with transaction.atomic(using=connection.alias):  # a savepoint inside a migration's transaction
                    cursor.execute(f"CREATE EXTENSION IF NOT EXISTS {name}")
            except DatabaseError:
                return False
    return True
