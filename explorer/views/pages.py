"""Public pages: home, label browser, label page, artwork page, search."""
from __future__ import annotations

from urllib.parse import urlencode

from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.template import TemplateDoesNotExist
from django.template.loader import select_template
from django.views.decorators.http import require_GET

from archive.models import Artwork, Label, Layout

from .. import browse, colours as colour_search, image_text, label_suggest, record, search as search_mod, stats, uploads
from ..forms import LabelFilterForm, SearchForm, first_error
from ..iiif import ids as iiif_ids
from ..models_state import active_model, untrained_notice
from ..permissions import is_curator
from ..similar import similar_to
from ..throttles import ImageSearchThrottle, SearchThrottle, throttled
from .errors import bad_request

HOME_GROUPS = 8
PER_PAGE = 48


def _faces_template_exists() -> bool:
    try:
        select_template(["explorer/_faces.html"])
        return True
    except TemplateDoesNotExist:
        return False


def home(request):
    figures = stats.home()
    context = {
        "artwork_count": figures["artworks"],
        "image_count": figures["images"],
        "label_count": figures["labels"],
        "face_count": figures["faces"],
        "institutions": figures["institutions"],
        "groups": [(group, labels[: stats.GROUP_LABELS], len(labels)) for group, labels in figures["groups"][:HOME_GROUPS]],
        "more_groups": max(0, len(figures["groups"]) - HOME_GROUPS),
        "featured": stats.random_artworks(10),  # fills the mosaic: two large tiles and eight small
        "model": figures["model"],
        "has_map": figures["has_map"],
        "untrained_notice": untrained_notice(figures["model"]),
    }
    return render(request, "explorer/home.html", context)


def label_list(request):
    form = LabelFilterForm(request.GET)
    model = active_model()
    context = {"groups": browse.label_groups(), "model": model, "untrained_notice": untrained_notice(model)}
    if not form.is_valid():
        context.update(grouped=[], total=0, hidden=0, group="", name="", show="", sort="", error=first_error(form))
        return render(request, "explorer/label_list.html", context, status=400)
    data = form.cleaned_data
    counts = browse.label_counts(model.pk if model else None)
    grouped: dict[str, list] = {}
    total = hidden = 0
    for label in browse.published_labels(data["group"], data["name"]).only("id", "slug", "name", "group"):
        n = counts.get(label.pk, 0)
        if not n and data["show"] != "all":
            hidden += 1
            continue
        grouped.setdefault(label.group, []).append((label, n))
        total += 1
    if data["sort"] == "count":
        grouped = {g: sorted(labels, key=lambda pair: -pair[1]) for g, labels in grouped.items()}
    filtered = {k: v for k, v in data.items() if v}
    context.update(
        grouped=sorted(grouped.items()), total=total, hidden=hidden, **data,
        show_all_query=urlencode(filtered | {"show": "all"}),
        filtered=bool(data["group"] or data["name"]),
    )
    return render(request, "explorer/label_list.html", context)


def label_detail(request, slug: str):
    label = get_object_or_404(Label, slug=slug)
    if not label.published and not is_curator(request.user):
        raise Http404("No such label")
    model = active_model()
    model_id = model.pk if model else None
    threshold = browse.thresholds([label], model_id)[label.pk] if model_id else None
    try:
        page = browse.label_page(label, model_id=model_id, cursor=request.GET.get("cursor"), limit=browse.PAGE_SIZE, threshold=threshold)
    except browse.BadCursor as exc:
        return bad_request(request, str(exc))
    context = {"label": label, "page": page, "model": model, "untrained_notice": untrained_notice(model),
               "first": not request.GET.get("cursor"), "threshold": threshold}
    if request.GET.get("partial") == "1":
        return render(request, "explorer/_label_cards.html", context)
    context["count"] = browse.label_count(label, model_id, threshold=threshold)
    context["iconclass"] = browse.iconclass_context(label, model_id)
    return render(request, "explorer/label_detail.html", context)


def artwork_detail(request, pk: int):
    artwork = get_object_or_404(Artwork, pk=pk)
    model = active_model()
    curator = is_curator(request.user)
    shown = browse.artwork_labels(artwork, model_id=model.pk if model else None, include_rejected=curator, include_drafts=curator)
    faces = list(artwork.faces.filter(not_a_face=False).order_by("x")) if _faces_template_exists() else []
    palette = colour_search.palette_of(artwork)
    more = colour_search.query_for_palette(palette)
    q = search_mod.clean_text(request.GET.get("q", ""), 200)
    text = image_text.text_of(artwork.pk)
    context = {
        "q": q,
        "image_text": text.text if text is not None else "",
        "text_highlights": image_text.highlights(artwork, q) if q and text is not None and text.word_count else None,
        "artwork": artwork,
        "catalogue": record.catalogue_facts(artwork),
        "other_fields": record.other_fields(artwork),
        "record_sources": record.record_sources(artwork),
        "palette": palette,
        "more_in_colours": "/colours/?" + urlencode(more.as_params()) if more else "",
        "labels": shown,
        "similar": similar_to(artwork, model, limit=12),
        "faces": faces,
        "has_faces_template": _faces_template_exists(),
        "model": model,
        "untrained_notice": untrained_notice(model),
        "is_curator": curator,
        "iiif_manifest": iiif_ids.manifest(iiif_ids.base_url(request), artwork.pk),
        "deep_zoom": artwork.iiif_image_service.rstrip("/") + "/info.json" if artwork.iiif_image_service else "",
        # Slug of a ready map with this artwork on it (the default map first), or None: no link.
        "show_on_map": Layout.objects.filter(state=Layout.State.READY, export_version__gt=0, points__artwork=artwork)
        .order_by("-is_default", "name").values_list("slug", flat=True).first(),
    }
    return render(request, "explorer/artwork_detail.html", context)


@throttled(SearchThrottle)
def search(request):
    form = SearchForm(request.GET)
    if not form.is_valid():
        return render(request, "explorer/search.html", _search_context(request, error=first_error(form)), status=400)
    q, page = form.cleaned_data["q"], form.cleaned_data["page"] or 1
    filters = search_mod.Filters.from_params(request.GET)
    if not q and not filters:
        return render(request, "explorer/search.html", _search_context(request))
    curator = is_curator(request.user)
    try:
        result = search_mod.search(q, filters, offset=(page - 1) * PER_PAGE, limit=PER_PAGE, include_drafts=curator)
    except search_mod.BadSearch as exc:
        return render(request, "explorer/search.html", _search_context(request, error=str(exc)), status=400)
    context = _search_context(request, result=result, page=page, filters=filters)
    context["has_next"] = page * PER_PAGE < result.total and page < 1000
    context["untrained_notice"] = untrained_notice(result.model) if result.used_meaning else ""
    return render(request, "explorer/search.html", context)


def _search_context(request, **extra):
    facets = stats.facet_options()
    curator = is_curator(request.user)
    params = request.GET
    institutions, institution = _choices(facets["institutions"], params.get("institution", ""))
    classifications, classification = _choices(facets["classifications"], params.get("classification", ""), fold=True)
    context = {
        "q": params.get("q", ""),
        "params": params,
        "institutions": institutions,
        "institution": institution,
        "classifications": classifications,
        "classification": classification,
        "label_filter": _label_filter(params.get("label", ""), curator),
        "is_curator": curator,
        "has_filters": any(params.get(k) for k in ("creator", "year_from", "year_to", "label", "institution", "classification")),
    }
    context.update(extra)
    return context


def _label_filter(value: str, curator: bool) -> dict:
    """What the label box shows: the label's name for a slug from the address bar, and whether the
    text names no label (then the page says so, and the filter stays visible)."""
    label = label_suggest.resolve(value, include_drafts=curator)
    return {"text": label.name if label else value, "missing": bool(value) and label is None}


@require_GET
def label_suggestions(request):
    """Type-ahead for label boxes: ``?q=`` text → up to 12 labels (published; curators also drafts)."""
    text = search_mod.clean_text(request.GET.get("q"), 100)
    rows = label_suggest.suggest(text, include_drafts=is_curator(request.user))
    response = JsonResponse({"labels": rows})
    response["Cache-Control"] = "private, max-age=60"
    return response


def _choices(options, current: str, *, fold: bool = False) -> tuple[list, str]:
    """A filter's options and the one to show selected. A value from the address bar that is not
    among them (a shared link, a value no artwork has yet) is added, so the page shows the filter
    that was applied; ``fold`` matches case-insensitively, as the filter does."""
    current = current.strip()
    if not current:
        return list(options), ""
    for option in options:
        if option == current or (fold and option.lower() == current.lower()):
            return list(options), option
    return [current, *options], current


@throttled(ImageSearchThrottle, methods=("POST",))
def search_image(request):
    if request.method != "POST":
        return render(request, "explorer/search_image.html", {})
    upload = request.FILES.get("image")
    if uploads.too_large(request):  # the upload guard stopped it at UPLOAD_MAX_BYTES
        return render(request, "explorer/search_image.html", {"error": uploads.too_large_message()}, status=413)
    if upload is None:
        return render(request, "explorer/search_image.html", {"error": "Choose an image file to search with."}, status=400)
    try:
        image = search_mod.prepare_query_image(upload)
    except search_mod.BadSearch as exc:
        return render(request, "explorer/search_image.html", {"error": str(exc)}, status=getattr(exc, "status", 400))
    result = search_mod.search_by_image(image)
    return render(
        request,
        "explorer/search_image.html",
        {"result": result, "untrained_notice": untrained_notice(result.model), "is_curator": is_curator(request.user)},
    )
