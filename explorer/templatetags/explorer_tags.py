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
    """``<optgroup>``s of ``<option>``s for a label select box, by vocabulary group, from
    ``(slug, name, group, published)`` rows. A vocabulary has thousands of labels: the HTML is built
    once per distinct label list (cached under a digest of the rows) and the selected option is
    marked in the cached text."""
    import hashlib

    from django.core.cache import cache
    from django.utils.html import escape
    from django.utils.safestring import mark_safe

    rows = list(labels)
    key = "label-options:" + hashlib.sha1(repr(rows).encode()).hexdigest()
    html = cache.get(key)
    if html is None:
        html = _label_options_html(rows)
        cache.set(key, html, 3600)
    if selected:
        option = f'<option value="{escape(selected)}">'
        if option in html:
            html = html.replace(option, option[:-1] + " selected>", 1)
        else:  # a slug from the address bar that names no label (shown, so the filter is visible)
            html = f'<option value="{escape(selected)}" selected>{escape(selected)} (no such label)</option>' + html
    return mark_safe(html)


def _label_options_html(rows) -> str:
    from django.utils.html import format_html, format_html_join

    groups: dict[str, list] = {}
    for row in rows:
        groups.setdefault(row[2], []).append(row)
    parts = []
    for group in sorted(groups):
        options = format_html_join(
            "", '<option value="{}">{}{}</option>',
            ((slug, name, "" if published else " (draft)") for slug, name, _, published in groups[group]),
        )
        parts.append(format_html('<optgroup label="{}">{}</optgroup>', group[:1].upper() + group[1:], options))
    return "".join(parts)


@register.simple_tag
def curator_classifiers():
    """The classifiers a curator can add examples to (the "Add to a classifier" buttons)."""
    from archive.models import Classifier

    return list(Classifier.objects.select_related("label").order_by("label__name")[:100])
