"""Where an artwork sits on the maps (read-only: the map's own code builds and serves them)."""
from __future__ import annotations

from archive.models import Layout, LayoutPoint


def positions(artwork_id: int) -> list[dict]:
    """``[{"layout", "name", "x", "y", "url"}]``: the artwork's point on every ready artwork map
    (face maps excluded), default map first. Served by the (layout, artwork) index."""
    points = (
        LayoutPoint.objects.filter(
            artwork_id=artwork_id, face__isnull=True, layout__state=Layout.State.READY, layout__export_version__gt=0
        )
        .select_related("layout")
        .order_by("-layout__is_default", "layout__name")
    )
    return [
        {"layout": p.layout.slug, "name": p.layout.name, "x": p.x, "y": p.y,
         "url": f"/map/?layout={p.layout.slug}#artwork={artwork_id}"}
        for p in points
    ]


def path_url(artwork_ids: list[int]) -> str | None:
    """The map page drawing a path between two artworks (``#path=ID,ID,...``, in order) on the
    ready artwork map holding most of its works (the default map on a tie), or None when no
    ready map holds any of them."""
    from django.db.models import Count

    best = (
        LayoutPoint.objects.filter(
            artwork_id__in=artwork_ids, face__isnull=True, layout__state=Layout.State.READY, layout__export_version__gt=0
        )
        .values("layout__slug", "layout__is_default")
        .annotate(n=Count("artwork_id", distinct=True))
        .order_by("-n", "-layout__is_default", "layout__slug")
        .first()
    )
    if best is None:
        return None
    return f"/map/?layout={best['layout__slug']}#path={','.join(str(int(i)) for i in artwork_ids)}"
