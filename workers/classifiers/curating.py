"""Make a classifier and keep its examples: the plain functions behind the curator pages and the API."""
from __future__ import annotations

from typing import Iterable

from django.db import transaction
from django.db.models import Count
from django.utils.text import slugify

from archive.models import Artwork, Classifier, ClassifierExample, Label
from archive.models.labels import TRAINED_GROUP

SOURCE = "curator-trained classifier"


def unique_slug(name: str) -> str:
    base = slugify(name)[:200] or "classifier"
    slug, n = base, 2
    while Label.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def create_classifier(name: str, *, description: str = "", target_precision: float = 0.9, seed: int = 0, user=None) -> Classifier:
    """A classifier and its label (group ``trained``, unpublished until first applied)."""
    name = (name or "").strip()
    if not name:
        raise ValueError("a classifier needs a name")
    if len(name) > 255:
        raise ValueError("the name is longer than 255 characters")
    target_precision = float(target_precision)
    if not 0 < target_precision <= 1:
        raise ValueError(f"the target precision must be above 0 and at most 1, got {target_precision}")
    with transaction.atomic():
        label = Label.objects.create(
            name=name, slug=unique_slug(name), group=TRAINED_GROUP, description=description, source=SOURCE,
            published=False, created_by=user,
        )
        return Classifier.objects.create(label=label, target_precision=target_precision, seed=int(seed), created_by=user)


def parse_ids(values: Iterable) -> list[int]:
    """Artwork ids from a form or JSON list (also "1,2 3" strings); raises ValueError on junk."""
    ids: list[int] = []
    for value in values:
        for part in str(value).replace(",", " ").split():
            try:
                ids.append(int(part))
            except ValueError:
                raise ValueError(f"not an artwork id: {part!r}") from None
    return ids


def add_examples(classifier: Classifier, artwork_ids: Iterable[int], positive: bool, *, user=None) -> dict:
    """Mark these artworks as positive (or negative) examples (a later call changes an earlier
    one). Unknown ids are refused as a whole. Returns {"added", "changed", "unchanged"}."""
    ids = sorted({int(i) for i in artwork_ids})
    if not ids:
        raise ValueError("no artworks given")
    known = set(Artwork.objects.filter(pk__in=ids).values_list("pk", flat=True))
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValueError(f"no artwork with id {', '.join(map(str, unknown[:10]))}{' ...' if len(unknown) > 10 else ''}")
    counts = {"added": 0, "changed": 0, "unchanged": 0}
    with transaction.atomic():
        existing = dict(ClassifierExample.objects.filter(classifier=classifier, artwork_id__in=ids).values_list("artwork_id", "positive"))
        new = [ClassifierExample(classifier=classifier, artwork_id=i, positive=positive, user=user) for i in ids if i not in existing]
        ClassifierExample.objects.bulk_create(new)
        flip = [i for i, p in existing.items() if p != positive]
        ClassifierExample.objects.filter(classifier=classifier, artwork_id__in=flip).update(positive=positive, user=user)
        counts["added"], counts["changed"] = len(new), len(flip)
        counts["unchanged"] = len(existing) - len(flip)
    return counts


def remove_examples(classifier: Classifier, artwork_ids: Iterable[int]) -> int:
    return ClassifierExample.objects.filter(classifier=classifier, artwork_id__in=[int(i) for i in artwork_ids]).delete()[0]


def example_counts(classifier: Classifier) -> dict:
    rows = dict(classifier.examples.values_list("positive").order_by().annotate(n=Count("id")).values_list("positive", "n"))
    return {"positive": rows.get(True, 0), "negative": rows.get(False, 0)}
