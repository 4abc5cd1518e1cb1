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
def label_options(labels, selected="") -> str:
    """``<optgroup>``s of ``<option>``s for a label select box, by vocabulary group. Built in
    Python: a vocabulary has thousands of labels, which a template loop renders slowly."""
    from django.utils.html import format_html, format_html_join
    from django.utils.safestring import mark_safe

    groups: dict[str, list] = {}
    for label in labels:
        groups.setdefault(label.group, []).append(label)
    selected_attr = mark_safe(" selected")
    parts = []
    for group in sorted(groups):
        options = format_html_join(
            "", '<option value="{}"{}>{}{}</option>',
            ((l.slug, selected_attr if l.slug == selected else "", l.name, "" if l.published else " (draft)") for l in groups[group]),
        )
        parts.append(format_html('<optgroup label="{}">{}</optgroup>', group[:1].upper() + group[1:], options))
    return mark_safe("".join(parts))
