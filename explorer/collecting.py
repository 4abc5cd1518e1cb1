"""Curators' collections: create from a list of artwork ids, add/remove items, export as CSV, JSON
(with each artwork's shown labels and their Iconclass notations) and a IIIF Presentation 3 Collection."""
from __future__ import annotations

import io

from django.db import transaction
from django.db.models import Max, Q
from django.utils.text import slugify

from archive.models import Artwork, Collection, CollectionItem

MAX_ITEMS_PER_SAVE = 5000


def unique_slug(title: str, model=Collection) -> str:
    base = slugify(title)[:200] or "collection"
    slug, n = base, 1
    while model.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def parse_ids(values) -> list[int]:
    """Artwork ids from a list of strings or a comma-separated string; bad ones raise ValueError."""
    if isinstance(values, str):
        values = values.split(",")
    ids, seen = [], set()
    for value in values:
        value = str(value).strip()
        if not value:
            continue
        if not value.isdigit():
            raise ValueError(f"artwork id must be a positive whole number, not {value[:30]!r}")
        number = int(value)
        if number not in seen:
            seen.add(number)
            ids.append(number)
    if len(ids) > MAX_ITEMS_PER_SAVE:
        raise ValueError(f"at most {MAX_ITEMS_PER_SAVE} artworks per save")
    return ids


def add_items(collection: Collection, artwork_ids: list[int]) -> int:
    """Append artworks (existing ones only, in the given order, skipping ones already in it)."""
    existing = set(Artwork.objects.filter(pk__in=artwork_ids).values_list("id", flat=True))
    with transaction.atomic():
        start = (collection.items.aggregate(m=Max("position"))["m"] or 0) + 1
        items = [
            CollectionItem(collection=collection, artwork_id=a, position=start + i)
            for i, a in enumerate(a for a in artwork_ids if a in existing)
        ]
        created = CollectionItem.objects.bulk_create(items, ignore_conflicts=True)
    return len(created)


def create_collection(title: str, user, artwork_ids: list[int], *, description: str = "", is_public: bool = False) -> Collection:
    title = (title or "").strip()
    if not title:
        raise ValueError("a collection needs a title")
    collection = Collection.objects.create(
        title=title[:255], slug=unique_slug(title), description=description, owner=user, is_public=is_public
    )
    add_items(collection, artwork_ids)
    return collection


def visible_collections(user):
    """Public collections, plus a signed-in user's own."""
    if user is not None and user.is_authenticated:
        return Collection.objects.filter(Q(is_public=True) | Q(owner=user))
    return Collection.objects.filter(is_public=True)


def can_edit(collection: Collection, user) -> bool:
    from .permissions import is_curator

    return is_curator(user) and (collection.owner_id == user.pk or user.is_staff or collection.owner_id is None)


def artworks_of(collection: Collection):
    return [item.artwork for item in collection.items.select_related("artwork").order_by("position", "id")]


PAGE_SIZE = 96


def page_of(collection: Collection, number) -> "Page":
    """One page of a collection's artworks, in order (the page lists PAGE_SIZE at a time)."""
    from django.core.paginator import Paginator

    from .models_state import HIDDEN_COLUMNS

    items = (
        collection.items.select_related("artwork").defer(*(f"artwork__{c}" for c in HIDDEN_COLUMNS))
        .order_by("position", "id")
    )
    return Paginator(items, PAGE_SIZE).get_page(number)


EXPORT_FIELDS = (
    "id", "title", "creator", "display_date", "year_start", "year_end", "medium", "classification",
    "institution", "rights", "rights_url", "credit_line", "source", "source_id", "source_url",
    "iiif_manifest_url", "iiif_image_service",
)


def _record(artwork: Artwork, base_url: str) -> dict:
    record = {name: getattr(artwork, name) for name in EXPORT_FIELDS}
    record["page_url"] = f"{base_url}/artworks/{artwork.pk}/"
    record["image_url"] = f"{base_url}{artwork.derivative_url_1024}" if artwork.has_image else ""
    return record


def shown_labels(artworks) -> dict[int, list]:
    """``{artwork id: [ShownLabel, ...]}``: the labels the explorer shows (active model, curator
    decisions applied), a few queries for the whole collection."""
    from workers.labeling.visible import visible_labels_for

    return visible_labels_for([a.pk for a in artworks])


def _label_record(shown) -> dict:
    label = shown.label
    return {"slug": label.slug, "name": label.name, "group": label.group, "score": shown.score,
            "by_curator": shown.by_curator, "notation": label.notation, "iconclass_uri": label.iconclass_uri}


def iconclass_notations(labels) -> list[str]:
    """The distinct Iconclass notations among an artwork's shown labels, in their order."""
    return list(dict.fromkeys(s.label.notation for s in labels if s.label.notation))


def export_json(collection: Collection, base_url: str) -> dict:
    artworks = artworks_of(collection)
    labels = shown_labels(artworks)
    records = []
    for artwork in artworks:
        record = _record(artwork, base_url)
        record["labels"] = [_label_record(s) for s in labels.get(artwork.pk, [])]
        record["iconclass"] = iconclass_notations(labels.get(artwork.pk, []))
        records.append(record)
    return {
        "title": collection.title,
        "slug": collection.slug,
        "description": collection.description,
        "owner": collection.owner.get_username() if collection.owner else None,
        "created_at": collection.created_at.isoformat(),
        "artworks": records,
    }


def export_csv(collection: Collection, base_url: str) -> str:
    """The collection as CSV. Cells that a spreadsheet would run as a formula (a title beginning
    with =, +, -, @, | or %) are written with a leading apostrophe (defusedcsv), numbers as they are."""
    from defusedcsv import csv

    out = io.StringIO()
    fields = list(EXPORT_FIELDS) + ["page_url", "image_url", "labels", "iconclass"]
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    artworks = artworks_of(collection)
    labels = shown_labels(artworks)
    for artwork in artworks:
        shown = labels.get(artwork.pk, [])
        # "; "-separated: the shown labels' names, and the distinct Iconclass notations among them
        writer.writerow(_record(artwork, base_url) | {
            "labels": "; ".join(s.label.name for s in shown), "iconclass": "; ".join(iconclass_notations(shown)),
        })
    return out.getvalue()


def export_iiif(collection: Collection, base_url: str) -> dict:
    """The collection as a IIIF Presentation 3 Collection: every artwork, in order, by reference to
    its manifest at ``/iiif/artwork/<id>/manifest.json`` (:mod:`explorer.iiif`), which the IIIF
    importer fetches and reads back with every catalogue field, its rights and its image. Unlike
    ``/iiif/collection/<slug>/collection.json`` it is never split into pages."""
    from django.conf import settings

    from .iiif import collections, ids

    base = (getattr(settings, "IIIF_BASE_URL", "") or base_url).rstrip("/")
    listing = collections.curator_listing(collection)
    out = {
        "@context": ids.PRESENTATION_CONTEXT,
        "id": f"{base}/collections/{collection.slug}/export.iiif.json",
        "type": "Collection",
        "label": {"none": [collection.title]},
    }
    if collection.description:
        out["summary"] = {"none": [collection.description]}
    out["items"] = [collections.manifest_ref(a, base) for a in listing.slice(0, max(listing.total, 1))]
    return out
