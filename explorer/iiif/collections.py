"""IIIF Presentation 3.0 Collections of artwork manifests: one per label, per curator collection
and per institution, and the top collection that lists them.

A collection lists manifests by reference (id, type, label, thumbnail). Presentation 3 has no
paging of Collections, so a large one is bounded: up to ``IIIF_COLLECTION_PAGE_SIZE`` manifests are
listed directly; above that the collection lists its pages as child Collections (``?page=1``,
``?page=2``, ...), each listing up to that many manifests. Clients (and the importer, which follows
nested collections) walk the pages like any nested collection.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from django.conf import settings
from django.db import connection

from archive.models import Artwork, Collection, Label, LabelDecision

from .. import content_search
from . import ids
from .manifest import derivative_size, lang

REF_FIELDS = ("id", "title", "status", "sha256", "width", "height")


def page_size() -> int:
    return max(1, int(getattr(settings, "IIIF_COLLECTION_PAGE_SIZE", 1000)))


class NoSuchPage(ValueError):
    pass


def manifest_ref(artwork: Artwork, base: str) -> dict:
    ref = {"id": ids.manifest(base, artwork.pk), "type": "Manifest", "label": lang(artwork.title or f"Artwork {artwork.pk}")}
    if artwork.has_image:
        width, height = derivative_size(artwork, 256)
        ref["thumbnail"] = [{"id": ids.absolute(base, artwork.thumbnail_url), "type": "Image", "format": "image/jpeg",
                             "width": width, "height": height}]
    return ref


@dataclass
class Listing:
    """What a collection lists: its total and a function giving the artworks at (offset, limit)."""

    total: int
    slice: Callable[[int, int], list[Artwork]]


def document(url: Callable[[int | None], str], label: str, listing: Listing, base: str, page: int | None,
             *, summary: str = "") -> dict:
    """The collection at ``url(None)``, or its page ``page`` (1-based)."""
    size = page_size()
    pages = max(1, -(-listing.total // size))
    out = {"@context": ids.PRESENTATION_CONTEXT, "id": url(page), "type": "Collection"}
    if page is None and listing.total > size:
        out["label"] = lang(label)
        if summary:
            out["summary"] = lang(summary)
        out["items"] = [
            {"id": url(n), "type": "Collection", "label": lang(f"{label}, page {n} of {pages}")} for n in range(1, pages + 1)
        ]
        return out
    if page is not None and not 1 <= page <= pages:
        raise NoSuchPage(f"page must be between 1 and {pages}")
    offset = (page - 1) * size if page else 0
    out["label"] = lang(f"{label}, page {page} of {pages}" if page else label)
    if summary:
        out["summary"] = lang(summary)
    if page:
        out["partOf"] = [{"id": url(None), "type": "Collection", "label": lang(label)}]
    out["items"] = [manifest_ref(a, base) for a in listing.slice(offset, size)]
    return out


def _artworks(ids_in_order: list[int]) -> list[Artwork]:
    found = Artwork.objects.only(*REF_FIELDS).in_bulk(ids_in_order)
    return [found[i] for i in ids_in_order if i in found]


# --- curator collections ------------------------------------------------------------------------------

def curator_listing(collection: Collection) -> Listing:
    items = collection.items.order_by("position", "id")

    def slice_(offset: int, limit: int) -> list[Artwork]:
        return _artworks(list(items.values_list("artwork_id", flat=True)[offset:offset + limit]))

    return Listing(items.count(), slice_)


def curator_collection(collection: Collection, base: str, page: int | None = None) -> dict:
    return document(lambda p: ids.curator_collection(base, collection.slug, p), collection.title,
                    curator_listing(collection), base, page, summary=collection.description)


# --- institutions -------------------------------------------------------------------------------------

MAX_INSTITUTIONS = 10_000


def institutions() -> list[str]:
    """The distinct institutions, by a loose scan of the institution index (one probe per
    institution, however many works each has)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH RECURSIVE v(value) AS (
              (SELECT institution FROM archive_artwork WHERE institution > '' ORDER BY institution LIMIT 1)
              UNION ALL
              SELECT (SELECT institution FROM archive_artwork WHERE institution > v.value ORDER BY institution LIMIT 1)
              FROM v WHERE v.value IS NOT NULL
            )
            SELECT value FROM v WHERE value IS NOT NULL LIMIT %s
            """,
            [MAX_INSTITUTIONS],
        )
        return [row[0] for row in cursor.fetchall()]


def institution_named(slug: str) -> str | None:
    return next((name for name in institutions() if ids.institution_slug(name) == slug), None)


def institution_collection(name: str, base: str, page: int | None = None) -> dict:
    works = Artwork.objects.filter(institution=name).order_by("id")

    def slice_(offset: int, limit: int) -> list[Artwork]:
        return list(works.only(*REF_FIELDS)[offset:offset + limit])

    return document(lambda p: ids.institution_collection(base, name, p), name, Listing(works.count(), slice_), base, page,
                    summary=f"The works of {name} in this archive")


# --- labels -------------------------------------------------------------------------------------------

def label_listing(label: Label, model_id: int | None) -> Listing:
    """The artworks shown under a label, in the label page's order: the ones curators added or
    confirmed, then the machine-labelled ones above the threshold by score (without the ones
    curators decided on)."""
    from explorer import browse

    curated = list(
        LabelDecision.objects.filter(label=label, decision__in=[browse.ADDED, browse.ACCEPTED])
        .order_by("-created_at", "id").values_list("artwork_id", flat=True)
    )
    where, params = "", []
    if model_id is not None:
        threshold = browse.thresholds([label], model_id)[label.pk]
        where = ("FROM archive_artworklabel al WHERE al.label_id = %s AND al.model_id = %s"
                 + (" AND al.score >= %s" if threshold is not None else "")
                 + " AND NOT EXISTS (SELECT 1 FROM archive_labeldecision d WHERE d.label_id = al.label_id"
                   " AND d.artwork_id = al.artwork_id)")
        params = [label.pk, model_id] + ([threshold] if threshold is not None else [])
        with connection.cursor() as c:
            c.execute(f"SELECT count(*) {where}", params)
            machine = c.fetchone()[0]
    else:
        machine = 0

    def slice_(offset: int, limit: int) -> list[Artwork]:
        chosen = curated[offset:offset + limit]
        rest = limit - len(chosen)
        if rest > 0 and machine:
            with connection.cursor() as c:
                c.execute(f"SELECT al.artwork_id {where} ORDER BY al.score DESC, al.id DESC OFFSET %s LIMIT %s",
                          params + [max(0, offset - len(curated)), rest])
                chosen += [row[0] for row in c.fetchall()]
        return _artworks(chosen)

    return Listing(len(curated) + machine, slice_)


def label_collection(label: Label, base: str, model, page: int | None = None) -> dict:
    summary = f"Works labelled “{label.name}”"
    if model is not None:
        summary += f" by the model {model.key}" + (" (untrained: random weights, labels not meaningful)" if model.untrained else "")
        summary += ", and by curators"
    return document(lambda p: ids.label_collection(base, label.slug, p), label.name,
                    label_listing(label, model.pk if model else None), base, page, summary=summary)


# --- the top collection -------------------------------------------------------------------------------

def labels_collection(base: str) -> dict:
    labels = Label.objects.filter(published=True).order_by("group", "name").only("slug", "name")
    return {
        "@context": ids.PRESENTATION_CONTEXT, "id": f"{base}/iiif/labels/collection.json", "type": "Collection",
        "label": lang("Labels"),
        "items": [{"id": ids.label_collection(base, l.slug), "type": "Collection", "label": lang(l.name)} for l in labels],
    }


def top_collection(base: str) -> dict:
    """Institutions, public curator collections and the labels."""
    items = [{"id": ids.institution_collection(base, name), "type": "Collection", "label": lang(name)} for name in institutions()]
    items += [
        {"id": ids.curator_collection(base, c.slug), "type": "Collection", "label": lang(c.title)}
        for c in Collection.objects.filter(is_public=True).order_by("title")
    ]
    items.append({"id": f"{base}/iiif/labels/collection.json", "type": "Collection", "label": lang("Labels")})
    return {"@context": ids.PRESENTATION_CONTEXT, "id": ids.top_collection(base), "type": "Collection",
            "label": lang("The archive"), "service": [content_search.service(base)], "items": items}
