"""Public pages: home, label browser, label page, artwork page, search."""
from __future__ import annotations

from django.db.models import Count
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render
from django.template.loader import select_template
from django.template import TemplateDoesNotExist

from archive.models import Artwork, Face, Label, Layout

from .. import browse, search as search_mod
from ..models_state import active_model, untrained_notice
from ..permissions import is_curator
from ..similar import similar_to


def _faces_template_exists() -> bool:
    try:
        select_template(["explorer/_faces.html"])
        return True
    except TemplateDoesNotExist:
        return False


def home(request):
    model = active_model()
    visible = Artwork.objects.exclude(status=Artwork.Status.DUPLICATE)
    institutions = list(
        visible.exclude(institution="").values("institution").annotate(n=Count("id")).order_by("-n")[:12]
    )
    labels = list(browse.published_labels())
    counts = browse.label_counts(model.pk if model else None)
    groups: dict[str, list] = {}
    for label in labels:
        if counts.get(label.pk):
            groups.setdefault(label.group, []).append((label, counts[label.pk]))
    for group in groups.values():
        group.sort(key=lambda lc: -lc[1])
    featured = list(visible.filter(status=Artwork.Status.OK).order_by("?")[:8])
    context = {
        "artwork_count": visible.count(),
        "image_count": visible.filter(status=Artwork.Status.OK).count(),
        "label_count": len(labels),
        "face_count": Face.objects.filter(not_a_face=False).count(),
        "institutions": institutions,
        "groups": sorted(groups.items())[:8],
        "featured": featured,
        "model": model,
        "has_map": Layout.objects.filter(state=Layout.State.READY).exists(),
        "untrained_notice": untrained_notice(model),
    }
    return render(request, "explorer/home.html", context)


def label_list(request):
    group = search_mod.clean_text(request.GET.get("group"), 50)
    name = search_mod.clean_text(request.GET.get("name"), 100)
    model = active_model()
    counts = browse.label_counts(model.pk if model else None)
    labels = [(label, counts.get(label.pk, 0)) for label in browse.published_labels(group, name)]
    grouped: dict[str, list] = {}
    for label, n in labels:
        grouped.setdefault(label.group, []).append((label, n))
    return render(
        request,
        "explorer/label_list.html",
        {"grouped": sorted(grouped.items()), "groups": browse.label_groups(), "group": group, "name": name,
         "total": len(labels), "model": model, "untrained_notice": untrained_notice(model)},
    )


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
        return HttpResponseBadRequest(str(exc))
    context = {"label": label, "page": page, "model": model, "untrained_notice": untrained_notice(model),
               "first": not request.GET.get("cursor")}
    if request.GET.get("partial") == "1":
        return render(request, "explorer/_label_cards.html", context)
    context["count"] = browse.label_count(label, model_id, threshold=threshold)
    return render(request, "explorer/label_detail.html", context)


def artwork_detail(request, pk: int):
    artwork = get_object_or_404(Artwork, pk=pk)
    model = active_model()
    curator = is_curator(request.user)
    shown = browse.artwork_labels(artwork, model_id=model.pk if model else None, include_rejected=curator)
    faces = list(artwork.faces.filter(not_a_face=False).order_by("x")) if _faces_template_exists() else []
    context = {
        "artwork": artwork,
        "labels": shown,
        "similar": similar_to(artwork, model, limit=12),
        "faces": faces,
        "has_faces_template": _faces_template_exists(),
        "model": model,
        "untrained_notice": untrained_notice(model),
        "is_curator": curator,
        "all_labels": Label.objects.filter(published=True).order_by("name").only("id", "name") if curator else [],
        "deep_zoom": artwork.iiif_image_service.rstrip("/") + "/info.json" if artwork.iiif_image_service else "",
        # Slug of a ready map with this artwork on it (the default map first), or None: no link.
        "show_on_map": Layout.objects.filter(state=Layout.State.READY, export_version__gt=0, points__artwork=artwork)
        .order_by("-is_default", "name").values_list("slug", flat=True).first(),
    }
    return render(request, "explorer/artwork_detail.html", context)


def search(request):
    q = request.GET.get("q", "")
    try:
        filters = search_mod.Filters.from_params(request.GET)
        page = max(1, min(int(request.GET.get("page") or 1), 1000))
    except search_mod.BadSearch as exc:
        return render(request, "explorer/search.html", _search_context(request, error=str(exc)), status=400)
    except ValueError:
        return render(request, "explorer/search.html", _search_context(request, error="page must be a number"), status=400)
    per_page = 48
    try:
        result = search_mod.search(q, filters, offset=(page - 1) * per_page, limit=per_page)
    except search_mod.BadSearch as exc:
        return render(request, "explorer/search.html", _search_context(request, error=str(exc)), status=400)
    context = _search_context(request, result=result, page=page, filters=filters)
    context["has_next"] = page * per_page < result.total
    context["untrained_notice"] = untrained_notice(result.model) if result.used_meaning else ""
    return render(request, "explorer/search.html", context)


def _search_context(request, **extra):
    institutions = (
        Artwork.objects.exclude(institution="").values_list("institution", flat=True).distinct().order_by("institution")[:200]
    )
    classifications = (
        Artwork.objects.exclude(classification="").values_list("classification", flat=True).distinct().order_by("classification")[:200]
    )
    context = {
        "q": request.GET.get("q", ""),
        "params": request.GET,
        "institutions": institutions,
        "classifications": classifications,
        "labels": Label.objects.filter(published=True).order_by("name").only("slug", "name"),
        "is_curator": is_curator(request.user),
    }
    context.update(extra)
    return context


def search_image(request):
    if request.method != "POST":
        return render(request, "explorer/search_image.html", {})
    upload = request.FILES.get("image")
    if upload is None:
        return render(request, "explorer/search_image.html", {"error": "Choose an image file to search with."}, status=400)
    try:
        image = search_mod.prepare_query_image(upload)
    except search_mod.BadSearch as exc:
        return render(request, "explorer/search_image.html", {"error": str(exc)}, status=400)
    result = search_mod.search_by_image(image)
    return render(
        request,
        "explorer/search_image.html",
        {"result": result, "untrained_notice": untrained_notice(result.model), "is_curator": is_curator(request.user)},
    )
