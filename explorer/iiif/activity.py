"""The archive's own IIIF Change Discovery 1.0 stream (``/iiif/activity/all-changes.json``), so
that another archive (or this project's ``manage.py harvest``) fetches only what changed here.

Each artwork appears once, as its newest activity (the specification lets a publisher keep only
the latest activity of each resource): ``Create`` when its row has not changed since it was
created, else ``Update``, at ``updated_at``; the pages run oldest first, ``IIIF_COLLECTION_PAGE_SIZE``
activities each, on the index ``artwork_updated``. A deleted row leaves no trace in the table, so
deletes are not published; re-importing a source rewrites its rows, which then appear as updated.
"""
from __future__ import annotations

from datetime import timezone

from archive.models import Artwork

from . import ids
from .collections import page_size

CONTEXT = "http://iiif.io/api/discovery/1/context.json"


def stream_url(base: str) -> str:
    return f"{base}/iiif/activity/all-changes.json"


def page_url(base: str, number: int) -> str:
    return f"{base}/iiif/activity/page/{number}.json"


def _pages(total: int) -> int:
    return max(1, -(-total // page_size()))


def collection(base: str) -> dict:
    total = Artwork.objects.count()
    pages = _pages(total)
    return {
        "@context": CONTEXT, "id": stream_url(base), "type": "OrderedCollection", "totalItems": total,
        "first": {"id": page_url(base, 0), "type": "OrderedCollectionPage"},
        "last": {"id": page_url(base, pages - 1), "type": "OrderedCollectionPage"},
    }


def _time(moment) -> str:
    """xsd:dateTime in UTC, to the second."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def page(base: str, number: int) -> dict:
    """Page ``number`` (from 0); ValueError when there is no such page."""
    size, total = page_size(), Artwork.objects.count()
    pages = _pages(total)
    if not 0 <= number < pages:
        raise ValueError(f"page must be between 0 and {pages - 1}")
    rows = (Artwork.objects.order_by("updated_at", "id").values_list("id", "created_at", "updated_at")
            [number * size:(number + 1) * size])
    items = []
    for pk, created, updated in rows:
        kind = "Create" if (updated - created).total_seconds() < 1 else "Update"
        items.append({
            "id": f"{base}/iiif/activity/artwork/{pk}/{int(updated.timestamp() * 1_000_000)}", "type": kind,
            "object": {"id": ids.manifest(base, pk), "type": "Manifest"}, "endTime": _time(updated),
        })
    out = {
        "@context": CONTEXT, "id": page_url(base, number), "type": "OrderedCollectionPage",
        "partOf": {"id": stream_url(base), "type": "OrderedCollection"}, "startIndex": number * size,
        "orderedItems": items,
    }
    if number > 0:
        out["prev"] = {"id": page_url(base, number - 1), "type": "OrderedCollectionPage"}
    if number < pages - 1:
        out["next"] = {"id": page_url(base, number + 1), "type": "OrderedCollectionPage"}
    return out
