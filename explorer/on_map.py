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
