"""Label type-ahead: a few labels matching what a visitor types, instead of shipping the whole
vocabulary (thousands of labels) as ``<option>``s on every search page; and the rule that turns
typed text back into a label (its slug, else its name), so the filter also works without script."""
from __future__ import annotations

from django.db.models import Case, IntegerField, Q, Value, When
from django.db.models.functions import Length, Lower

from archive.models import Label

LIMIT = 12


def _plain(text: str, limit: int) -> str:
    """Printable text, runs of white space folded (NUL and control characters never reach SQL)."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in (text or "")[: limit * 4]).split())[:limit]


def visible_labels(include_drafts: bool):
    return Label.objects.all() if include_drafts else Label.objects.filter(published=True)


def suggest(text: str, *, include_drafts: bool = False, limit: int = LIMIT) -> list[dict]:
    """Labels whose name starts with ``text`` first, then those containing it, shortest first."""
    text = _plain(text, 100)
    if not text:
        return []
    rows = (
        visible_labels(include_drafts)
        .filter(Q(name__icontains=text) | Q(slug__istartswith=text))
        .annotate(_rank=Case(When(name__iexact=text, then=Value(0)), When(name__istartswith=text, then=Value(1)),
                             default=Value(2), output_field=IntegerField()))
        .order_by("_rank", Length("name"), Lower("name"), "slug")
        .values("pk", "slug", "name", "group", "published")[:limit]
    )
    return [{"id": r["pk"], "slug": r["slug"], "name": r["name"], "group": r["group"], "draft": not r["published"]}
            for r in rows]


def resolve(text: str, *, include_drafts: bool = False) -> Label | None:
    """The label ``text`` names: a slug exactly, else a name (case-insensitive; published first)."""
    text = _plain(text, 255)
    if not text:
        return None
    labels = visible_labels(include_drafts)
    return (labels.filter(slug=text).first()
            or labels.filter(name__iexact=text).order_by("-published", "group", "pk").first())
