from django import template

from explorer import permissions

register = template.Library()


@register.simple_tag
def is_operator(user) -> bool:
    return permissions.is_operator(user)


@register.simple_tag
def is_curator(user) -> bool:
    return permissions.is_curator(user)


@register.simple_tag
def own_collections(user):
    from archive.models import Collection

    if not permissions.is_curator(user):
        return []
    return list(Collection.objects.filter(owner=user).order_by("-updated_at")[:50])


@register.filter
def duration(seconds) -> str:
    """Seconds as '1 h 02 min', '3 min 05 s' or '12 s'."""
    if seconds in (None, ""):
        return "–"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


@register.simple_tag
def curator_classifiers():
    """The classifiers a curator can add examples to (the "Add to a classifier" buttons)."""
    from archive.models import Classifier

    return list(Classifier.objects.select_related("label").prefetch_related("classes__label").order_by("label__name")[:100])


@register.filter
def any_multiclass(classifiers) -> bool:
    """Whether any of these classifiers has classes (the "Add to a classifier" wording)."""
    return any(c.multiclass for c in classifiers)
