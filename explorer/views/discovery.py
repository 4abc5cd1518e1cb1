"""Pages for the ways in beyond labels: search by colour, the path between two artworks."""
from __future__ import annotations

from urllib.parse import urlencode

from django.shortcuts import render

from .. import colours as colour_search, search as search_mod
from ..permissions import is_curator
from ..throttles import SearchThrottle, throttled
from .pages import _search_context

PER_PAGE = 48
DEFAULT_PICKS = [("#b03a2e", 60), ("#1f4e79", 40), ("#e8d8a8", 0)]


def colour_picks(params) -> tuple[list[str], list[str]]:
    """Colours and amounts from a query string: the page's repeated ``colour``/``amount`` inputs
    (a colour with amount 0 is not used) or the API's comma lists ``colours``/``amounts``."""
    if params.getlist("colour"):
        hexes, amounts = params.getlist("colour"), params.getlist("amount")
        pairs = [(h, a) for h, a in zip(hexes, amounts + [""] * len(hexes)) if a.strip() not in ("0", "0.0")]
        return [h for h, _ in pairs], [a for _, a in pairs if a.strip()]
    return colour_search._split(params.get("colours")), colour_search._split(params.get("amounts"))


@throttled(SearchThrottle)
def colour_page(request):
    params = request.GET
    context = _search_context(request, clear_url="/colours/")
    hexes, amounts = colour_picks(params)
    shown = []
    for h in hexes:  # the colour inputs need #rrggbb; a colour that is not one is shown as black
        try:
            shown.append(colour_search.colour.to_hex(colour_search.colour.parse_hex(h)))
        except ValueError:
            shown.append("#000000")
    picks = list(zip(shown, amounts or [round(100 / max(1, len(hexes)))] * len(hexes)))
    context["picks"] = [(h, a) for h, a in picks] + [(h, 0) for h, _ in DEFAULT_PICKS[len(picks):]] if picks else DEFAULT_PICKS
    if not hexes:
        return render(request, "explorer/colour_search.html", context)
    try:
        page = max(1, min(int(params.get("page") or 1), colour_search.MAX_RESULTS // PER_PAGE))
    except ValueError:
        page = 1
    try:
        query = colour_search.parse(hexes, amounts or None)
        filters = search_mod.Filters.from_params(params)
        found = colour_search.search(query, filters, offset=(page - 1) * PER_PAGE, limit=PER_PAGE,
                                     include_drafts=is_curator(request.user))
    except search_mod.BadSearch as exc:
        context["error"] = str(exc)
        return render(request, "explorer/colour_search.html", context, status=400)
    rest = [(k, v) for k in params for v in params.getlist(k) if k != "page"]
    context.update({
        "query": query, "found": found, "page": page, "has_next": len(found) == PER_PAGE and page * PER_PAGE < colour_search.MAX_RESULTS,
        "page_query": urlencode(rest),
        "clear_url": "/colours/?" + urlencode(query.as_params()),
    })
    return render(request, "explorer/colour_search.html", context)


def _artwork_ref(value) -> int | None:
    """An artwork from a form field: its number or its page's address (``/artworks/12/``)."""
    import re

    match = re.search(r"(\d+)/?\s*$", str(value or "").strip())
    return int(match.group(1)) if match and len(match.group(1)) < 12 else None


@throttled(SearchThrottle)
def path_page(request):
    from django.http import Http404

    from archive.models import Artwork

    from .. import path as path_mod
    from ..models_state import active_model, untrained_notice

    params = request.GET
    start, end = _artwork_ref(params.get("from")), _artwork_ref(params.get("to"))
    context = {"start_ref": params.get("from", ""), "end_ref": params.get("to", "")}
    if params.get("from") and start is None or params.get("to") and end is None:
        context["error"] = "give each artwork as its number or the address of its page"
        return render(request, "explorer/path.html", context, status=400)
    ends = Artwork.objects.defer("search_document", "metadata", "phash_bits").in_bulk([a for a in (start, end) if a])
    for ref in (start, end):
        if ref is not None and ref not in ends:
            raise Http404(f"no artwork {ref}")
    context.update({"start": ends.get(start), "end": ends.get(end)})
    if start is None or end is None:
        return render(request, "explorer/path.html", context)
    model = active_model()
    try:
        found = path_mod.find_path(start, end, model)
    except path_mod.NoPath as exc:
        context["error"] = str(exc)
        return render(request, "explorer/path.html", context, status=400)
    works = path_mod.path_artworks(found)
    from ..on_map import path_url

    context.update({
        "map_url": path_url(found.ids),
        "steps": list(zip(works, [None, *found.similarities])),
        "untrained_notice": untrained_notice(model),
        "share_url": request.build_absolute_uri(f"/path/?{urlencode({'from': start, 'to': end})}"),
    })
    return render(request, "explorer/path.html", context)


@throttled(SearchThrottle)
def timeline_page(request):
    from .. import timeline as timeline_mod
    from ..models_state import active_model

    context = _search_context(request, clear_url="/timeline/")
    try:
        filters = search_mod.Filters.from_params(request.GET)
        context["timeline"] = timeline_mod.build(filters, bins=30, per_bin=4, include_drafts=is_curator(request.user),
                                                 model=active_model())
    except search_mod.BadSearch as exc:
        context["error"] = str(exc)
        return render(request, "explorer/timeline.html", context, status=400)
    context["most"] = max((b.count for b in context["timeline"].bins), default=0) or 1
    filter_names = ("creator", "year_from", "year_to", "label", "institution", "classification")
    given = {k: request.GET[k] for k in filter_names if request.GET.get(k)}
    context["points_query"] = urlencode(given)
    context["viewport_query"] = urlencode({k: v for k, v in given.items() if k not in ("year_from", "year_to")})
    return render(request, "explorer/timeline.html", context)
