"""What the archive holds, for the home page, the search filters and the API: counts, institutions,
label groups, filter options and a few random works. Built for millions of artworks: the
aggregates are cached (``EXPLORER_STATS_SECONDS``, default 300 s; with ``CACHE_URL`` shared by
every process), their recomputation reads indexes only, the filter options walk the index one
distinct value at a time, and the random picks probe the primary key instead of sorting the table.
"""
from __future__ import annotations

import random

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from archive.models import Artwork, Face, Label, Layout

from . import browse
from .models_state import active_model, display_artworks

INSTITUTIONS_SHOWN = 12
FACET_LIMIT = 200  # options per select box
GROUP_LABELS = 10  # labels shown per group on the home page


def _seconds() -> int:
    return int(getattr(settings, "EXPLORER_STATS_SECONDS", 300))


def _cached(key: str, compute):
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, _seconds())
    return value


def forget() -> None:
    """Drop the cached figures (after an import, or in tests)."""
    cache.delete_many(["explorer:stats:archive", "explorer:stats:facets"])


def _archive_counts() -> dict:
    with connection.cursor() as cursor:
        # One pass over the status index (index-only): artworks per status.
        cursor.execute("SELECT status, count(*) FROM archive_artwork GROUP BY status")
        per_status = dict(cursor.fetchall())
        cursor.execute(
            "SELECT institution, count(*) AS n FROM archive_artwork WHERE institution <> '' AND status <> %s"
            " GROUP BY institution ORDER BY n DESC, institution LIMIT %s",
            [Artwork.Status.DUPLICATE, INSTITUTIONS_SHOWN],
        )
        institutions = [{"institution": name, "n": n} for name, n in cursor.fetchall()]
    return {
        "artworks": sum(n for status, n in per_status.items() if status != Artwork.Status.DUPLICATE),
        "images": per_status.get(Artwork.Status.OK, 0),
        "faces": Face.objects.filter(not_a_face=False).count(),
        "labels": Label.objects.filter(published=True).count(),
        "institutions": institutions,
    }


def archive_counts() -> dict:
    """``{"artworks", "images", "faces", "labels", "institutions": [{"institution", "n"}]}`` (cached)."""
    return _cached("explorer:stats:archive", _archive_counts)


def _distinct(column: str) -> list[str]:
    """The first FACET_LIMIT distinct non-empty values of an indexed column, in order, by a
    loose index scan (one index probe per value, however many rows share it)."""
    assert column in ("institution", "classification")
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE v(value) AS (
              (SELECT {column} FROM archive_artwork WHERE {column} > '' ORDER BY {column} LIMIT 1)
              UNION ALL
              SELECT (SELECT {column} FROM archive_artwork WHERE {column} > v.value ORDER BY {column} LIMIT 1)
              FROM v WHERE v.value IS NOT NULL
            )
            SELECT value FROM v WHERE value IS NOT NULL LIMIT %s
            """,
            [FACET_LIMIT],
        )
        return [row[0] for row in cursor.fetchall()]


def facet_options() -> dict:
    """Search filter options: ``{"institutions": [...], "classifications": [...]}`` (cached)."""
    return _cached(
        "explorer:stats:facets",
        lambda: {"institutions": _distinct("institution"), "classifications": _distinct("classification")},
    )


def label_groups(model_id: int | None, *, include_drafts: bool = False) -> list[tuple[str, list[tuple[Label, int]]]]:
    """``[(group, [(label, count), ...])]``: every group with labels that are shown somewhere,
    its labels by count (largest first). Counts come from the stored per-label counts."""
    counts = browse.label_counts(model_id)
    labels = Label.objects.all() if include_drafts else Label.objects.filter(published=True)
    groups: dict[str, list] = {}
    for label in labels.filter(pk__in=[pk for pk, n in counts.items() if n]).only("id", "slug", "name", "group", "published"):
        groups.setdefault(label.group, []).append((label, counts[label.pk]))
    for members in groups.values():
        members.sort(key=lambda lc: (-lc[1], lc[0].name))
    return sorted(groups.items())


def random_artworks(n: int = 8) -> list[Artwork]:
    """About ``n`` random artworks with images, without sorting the table: random points in the
    id range, each taking the next id with an image (a primary-key probe each)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM archive_artwork")
        low, high = cursor.fetchone()
        if low is None:
            return []
        starts = sorted({random.randint(low, high) for _ in range(n * 3)})
        cursor.execute(
            "SELECT DISTINCT pick.id FROM unnest(%s::bigint[]) AS s(start) CROSS JOIN LATERAL ("
            " SELECT a.id FROM archive_artwork a WHERE a.id >= s.start AND a.status = %s ORDER BY a.id LIMIT 1) pick",
            [starts, Artwork.Status.OK],
        )
        ids = [row[0] for row in cursor.fetchall()]
    random.shuffle(ids)
    found = display_artworks(ids[:n])
    return [found[i] for i in ids[:n] if i in found]


def home(*, include_drafts: bool = False) -> dict:
    """Everything the home page and ``/api/v1/stats/`` show."""
    model = active_model()
    counts = archive_counts()
    return {
        "model": model,
        "artworks": counts["artworks"],
        "images": counts["images"],
        "faces": counts["faces"],
        "labels": counts["labels"],
        "institutions": counts["institutions"],
        "groups": label_groups(model.pk if model else None, include_drafts=include_drafts),
        "has_map": Layout.objects.filter(state=Layout.State.READY).exists(),
    }
