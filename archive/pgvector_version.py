"""The pgvector version the project needs, and a Django system check that says when it is missing.

halfvec storage, binary quantization and iterative index scans (search within filters that returns
every match) need pgvector 0.8.0. The embedded server bundles it; an external server
(``DATABASE_URL``) may not, and then ``migrate`` and ``check --database default`` report an error
that names the version needed instead of failing on some later query.
"""
from __future__ import annotations

from django.core.checks import Error, Tags, register
from django.db import connections

REQUIRED = (0, 8, 0)
REQUIRED_TEXT = ".".join(map(str, REQUIRED))


def parse(version: str | None) -> tuple[int, ...] | None:
    if not version:
        return None
    return tuple(int(part) for part in version.split(".")[:3] if part.isdigit())


def versions(connection) -> tuple[str | None, str | None]:
    """(installed extension version in this database, newest version the server offers)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT installed_version, default_version FROM pg_available_extensions WHERE name = 'vector'")
        row = cursor.fetchone()
    return (row[0], row[1]) if row else (None, None)


def problem(installed: str | None, available: str | None) -> str | None:
    """Why this server's pgvector will not do, or None when it will."""
    if available is None:
        return f"the PostgreSQL server has no pgvector extension; install pgvector >= {REQUIRED_TEXT}"
    if parse(available) < REQUIRED:
        return (
            f"the PostgreSQL server offers pgvector {available}; this project needs pgvector >= {REQUIRED_TEXT} "
            "(halfvec, binary quantization, iterative index scans): upgrade pgvector on the server, then run "
            "migrate (it runs ALTER EXTENSION vector UPDATE), or unset DATABASE_URL to use the embedded server"
        )
    if installed is not None and parse(installed) < REQUIRED:
        return (
            f"the database has pgvector {installed} installed while the server offers {available}; run migrate "
            "(or ALTER EXTENSION vector UPDATE as the extension's owner) to reach >= " + REQUIRED_TEXT
        )
    return None


@register(Tags.database)
def check_pgvector(app_configs=None, databases=None, **kwargs):
    errors = []
    for alias in databases or ():
        connection = connections[alias]
        if connection.vendor != "postgresql":
            continue
        reason = problem(*versions(connection))
        if reason:
            errors.append(Error(reason, hint=f"pgvector >= {REQUIRED_TEXT} is required", id="archive.E001"))
    return errors
