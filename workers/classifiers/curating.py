"""Make a classifier and keep its examples: the plain functions behind the curator pages and the API."""
from __future__ import annotations

from typing import Iterable

from django.db import transaction
from django.db.models import Count
from django.utils.text import slugify

from archive.models import Artwork, Classifier, ClassifierClass, ClassifierExample, Label
from archive.models.labels import TRAINED_GROUP

SOURCE = "curator-trained classifier"


def unique_slug(name: str) -> str:
    base = slugify(name)[:200] or "classifier"
    slug, n = base, 2
    while Label.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


MAX_CLASSES = 20
MAX_EXAMPLES_PER_CALL = 10_000  # artworks per request that adds examples (a map selection, a pasted list)


def split_class_text(text: str) -> list[str]:
    """Class names typed in one box: one per line, or separated by "/" or commas."""
    return [part.strip() for part in str(text).replace("/", "\n").replace(",", "\n").splitlines() if part.strip()]


def clean_class_names(classes: Iterable[str]) -> list[str]:
    """Class names as given (stripped); ValueError on fewer than two, more than MAX_CLASSES,
    duplicates (ignoring case) or over-long names."""
    names = [str(value).strip() for value in classes if str(value).strip()]
    if len(names) < 2:
        raise ValueError(f"a classifier with classes needs at least two of them (got {len(names)}): e.g. oil, watercolour, print")
    if len(names) > MAX_CLASSES:
        raise ValueError(f"at most {MAX_CLASSES} classes in one classifier (got {len(names)})")
    seen: set[str] = set()
    for name in names:
        if len(name) > 200:
            raise ValueError(f"the class name {name[:40]!r}... is longer than 200 characters")
        if name.casefold() in seen:
            raise ValueError(f"the class “{name}” is given twice")
        seen.add(name.casefold())
    return names


def create_classifier(name: str, *, description: str = "", target_precision: float = 0.9, seed: int = 0,
                      classes: Iterable[str] | None = None, user=None) -> Classifier:
    """A classifier and its label (group ``trained``, unpublished until first applied). With
    ``classes`` (two or more names) a multi-class classifier: each class its own label."""
    name = (name or "").strip()
    if not name:
        raise ValueError("a classifier needs a name")
    if len(name) > 255:
        raise ValueError("the name is longer than 255 characters")
    target_precision = float(target_precision)
    if not 0 < target_precision <= 1:
        raise ValueError(f"the target precision must be above 0 and at most 1, got {target_precision}")
    names = clean_class_names(classes) if classes else []
    with transaction.atomic():
        label = Label.objects.create(
            name=name, slug=unique_slug(name), group=TRAINED_GROUP, description=description, source=SOURCE,
            published=False, created_by=user,
        )
        classifier = Classifier.objects.create(
            label=label, target_precision=target_precision, seed=int(seed), multiclass=bool(names), created_by=user,
        )
        for position, class_name in enumerate(names):
            class_label = Label.objects.create(
                name=class_name, slug=unique_slug(f"{name} {class_name}"), group=TRAINED_GROUP,
                description=f"A class of the classifier “{name}”.", source=SOURCE, published=False, created_by=user,
            )
            ClassifierClass.objects.create(classifier=classifier, label=class_label, position=position)
        return classifier


def find_class(classifier: Classifier, value) -> ClassifierClass:
    """A class of this classifier by its name (ignoring case), its id or ``#n`` (n-th, from 1)."""
    if not classifier.multiclass:
        raise ValueError(f"“{classifier.label.name}” has no classes: add positive or negative examples")
    text = str(value if value is not None else "").strip()
    classes = list(classifier.classes.select_related("label"))
    for c in classes:
        if c.label.name.casefold() == text.casefold():
            return c
    if text.startswith("#") and text[1:].isdigit() and 1 <= int(text[1:]) <= len(classes):
        return classes[int(text[1:]) - 1]
    if text.isdigit():
        for c in classes:
            if c.pk == int(text):
                return c
    names = ", ".join(f"“{c.label.name}”" for c in classes)
    raise ValueError(f"“{classifier.label.name}” has no class {text!r}: its classes are {names}" if text else
                     f"choose a class of “{classifier.label.name}”: {names}")


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


def add_examples(classifier: Classifier, artwork_ids: Iterable[int], positive: bool | None = None, *,
                 klass: ClassifierClass | None = None, user=None) -> dict:
    """Mark these artworks as positive (or negative) examples, or, for a multi-class classifier,
    as examples of ``klass`` (a later call changes an earlier one). Unknown ids are refused as a
    whole. Returns {"added", "changed", "unchanged"}."""
    ids = sorted({int(i) for i in artwork_ids})
    if not ids:
        raise ValueError("no artworks given")
    if len(ids) > MAX_EXAMPLES_PER_CALL:
        raise ValueError(f"{len(ids):,} artworks at once is too many: at most {MAX_EXAMPLES_PER_CALL:,} per request "
                         f"(select fewer, e.g. a smaller box or lasso)")
    if classifier.multiclass:
        if klass is None:
            raise ValueError(f"“{classifier.label.name}” has classes: choose the class these artworks belong to")
        if klass.classifier_id != classifier.pk:
            raise ValueError(f"the class “{klass}” belongs to another classifier")
        side = {"positive": None, "klass_id": klass.pk}
    else:
        if klass is not None:
            raise ValueError(f"“{classifier.label.name}” has no classes: add positive or negative examples")
        if positive is None:
            raise ValueError("say whether these are positive or negative examples")
        side = {"positive": bool(positive), "klass_id": None}
    known = set(Artwork.objects.filter(pk__in=ids).values_list("pk", flat=True))
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValueError(f"no artwork with id {', '.join(map(str, unknown[:10]))}{' ...' if len(unknown) > 10 else ''}")
    counts = {"added": 0, "changed": 0, "unchanged": 0}
    key = (side["positive"], side["klass_id"])
    with transaction.atomic():
        existing = {
            a: (p, k) for a, p, k in
            ClassifierExample.objects.filter(classifier=classifier, artwork_id__in=ids).values_list("artwork_id", "positive", "klass_id")
        }
        new = [ClassifierExample(classifier=classifier, artwork_id=i, user=user, **side) for i in ids if i not in existing]
        ClassifierExample.objects.bulk_create(new)
        flip = [i for i, old in existing.items() if old != key]
        ClassifierExample.objects.filter(classifier=classifier, artwork_id__in=flip).update(user=user, **side)
        counts["added"], counts["changed"] = len(new), len(flip)
        counts["unchanged"] = len(existing) - len(flip)
    return counts


def remove_examples(classifier: Classifier, artwork_ids: Iterable[int]) -> int:
    return ClassifierExample.objects.filter(classifier=classifier, artwork_id__in=[int(i) for i in artwork_ids]).delete()[0]


def example_counts(classifier: Classifier) -> dict:
    """{"positive": n, "negative": n}, or for a multi-class classifier {class name: n} in class order."""
    if classifier.multiclass:
        rows = dict(classifier.examples.values_list("klass_id").order_by().annotate(n=Count("id")).values_list("klass_id", "n"))
        return {c.label.name: rows.get(c.pk, 0) for c in classifier.classes.select_related("label")}
    rows = dict(classifier.examples.values_list("positive").order_by().annotate(n=Count("id")).values_list("positive", "n"))
    return {"positive": rows.get(True, 0), "negative": rows.get(False, 0)}
