"""Upsert the vocabulary into Label rows without overwriting curators' work.

New slugs are created. For existing labels the descriptive fields (name, group, source,
description) follow the vocabulary, while the curator-owned fields (prompt, threshold,
published) are only replaced with ``force=True``. Labels created by curators (``created_by``
set) are never changed. Running it twice changes nothing the second time.

:func:`load_iconclass` does the same for the Iconclass subjects (group ``iconclass``,
``workers/vocabulary/iconclass_subjects.csv``) and sets their parent links.
"""
from __future__ import annotations

from typing import Iterable

from django.db import transaction
from django.utils.text import slugify
from tqdm import tqdm

from archive.models import Label
from archive.models.labels import ICONCLASS_GROUP

DESCRIPTIVE = ("name", "group", "source", "description", "notation")
CURATED = ("prompt", "threshold", "published")


def _get(item, name, default=None):
    if isinstance(item, dict):
        return item.get(name, default)
    return getattr(item, name, default)


def _values(item) -> dict:
    name = str(_get(item, "name") or "").strip()
    if not name:
        raise ValueError(f"vocabulary item without a name: {item!r}")
    threshold = _get(item, "threshold")
    published = _get(item, "published")
    return {
        "name": name[:255],
        "slug": (str(_get(item, "slug") or "") or slugify(name))[:255],
        "group": str(_get(item, "group") or "")[:50],
        "source": str(_get(item, "source") or "")[:255],
        "description": str(_get(item, "description") or ""),
        "notation": str(_get(item, "notation") or "")[:255],
        "prompt": str(_get(item, "prompt") or ""),
        "threshold": float(threshold) if threshold not in (None, "") else None,
        "published": True if published in (None, "") else str(published).lower() not in ("0", "false", "no"),
    }


def load_vocabulary(items: Iterable | None = None, *, force: bool = False, progress: bool = False) -> dict[str, int]:
    """Upsert ``items`` (default: ``workers.vocabulary.load_labels()``). Returns counts of
    created / updated / unchanged / skipped (curator-created) labels."""
    if items is None:
        from workers.vocabulary import load_labels

        items = load_labels()
    values = {}
    for item in items:
        v = _values(item)
        values[v["slug"]] = v  # a slug listed twice: the last one wins
    existing = {label.slug: label for label in Label.objects.filter(slug__in=list(values))}
    counts = {"created": 0, "updated": 0, "unchanged": 0, "skipped": 0}
    create, update = [], []
    fields = DESCRIPTIVE + (CURATED if force else ())
    for slug, v in tqdm(values.items(), desc="vocabulary", unit="label", disable=not progress):
        label = existing.get(slug)
        if label is None:
            create.append(Label(**v))
            continue
        if label.created_by_id is not None:
            counts["skipped"] += 1
            continue
        changed = [f for f in fields if getattr(label, f) != v[f]]
        if changed:
            for f in changed:
                setattr(label, f, v[f])
            update.append(label)
        else:
            counts["unchanged"] += 1
    with transaction.atomic():
        Label.objects.bulk_create(create, batch_size=1000)
        Label.objects.bulk_update(update, list(fields), batch_size=1000)
    counts["created"], counts["updated"] = len(create), len(update)
    return counts


ICONCLASS_SOURCE = "Iconclass (CC0), https://iconclass.org/"


def load_iconclass(subjects=None, *, progress: bool = False) -> dict[str, int]:
    """Upsert the Iconclass subjects (default: the shipped ``iconclass_subjects.csv``) as labels
    of the ``iconclass`` group, then point each at its parent. Returns the same counts as
    :func:`load_vocabulary` plus ``parents`` (links set or changed)."""
    if subjects is None:
        from workers.vocabulary import iconclass_subjects

        subjects = iconclass_subjects()
    subjects = list(subjects)
    items = [
        {"name": s.name, "slug": s.slug, "group": ICONCLASS_GROUP, "source": ICONCLASS_SOURCE,
         "description": s.text, "notation": s.notation}
        for s in subjects
    ]
    counts = load_vocabulary(items, progress=progress)
    by_notation = dict(Label.objects.filter(group=ICONCLASS_GROUP).exclude(notation="").values_list("notation", "id"))
    parent_of = {s.notation: s.parent for s in subjects}
    changed = []
    for label in Label.objects.filter(group=ICONCLASS_GROUP, notation__in=[s.notation for s in subjects]).only("id", "notation", "parent_id"):
        wanted = by_notation.get(parent_of.get(label.notation) or "")
        if label.parent_id != wanted:
            label.parent_id = wanted
            changed.append(label)
    Label.objects.bulk_update(changed, ["parent"], batch_size=1000)
    counts["parents"] = len(changed)
    return counts
