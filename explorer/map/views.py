"""The map page and its small JSON endpoints. Point data and thumbnails are static files written by
the layout job (``workers.layouts.export``); these views only describe them and answer lookups."""
from __future__ import annotations

import json

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from archive.models import Artwork, Collection, CollectionItem, EmbeddingModel, Job, Label, Layout, LayoutPoint, Region
from workers.layouts import export
from workers.layouts.build import labels_model_id

from workers.classifiers.curating import MAX_EXAMPLES_PER_CALL

from ..permissions import is_curator
from ..search import MAX_QUERY_CHARS, Filters, clean_text

MANIFEST_TTL = 300  # seconds; the files themselves are immutable, only the label list can change
SEARCH_LIMIT = 200_000
SELECTION_LIMIT = 50_000
THUMBS_LIMIT = 200  # ids per thumbs.json request (the page asks only for the few points in view)
THUMB_SIZE = 256  # derivative drawn for the few points in view at the deepest zoom


def ready_layouts():
    return Layout.objects.filter(state=Layout.State.READY, export_version__gt=0).order_by("-is_default", "name")


def map_page(request):
    layouts = list(ready_layouts().values("slug", "name", "method", "is_default"))
    wanted = request.GET.get("layout")
    current = next((l for l in layouts if l["slug"] == wanted), layouts[0] if layouts else None)
    config = {}
    if current:
        config = {
            "layout": current["slug"],
            "layouts": layouts,
            "manifestUrl": reverse("explorer:map-manifest", args=[current["slug"]]),
            "searchUrl": reverse("explorer:map-search", args=[current["slug"]]),
            "thumbsUrl": reverse("explorer:map-thumbs", args=[current["slug"]]),
            "collectionUrl": reverse("explorer:map-collection", args=[current["slug"]]),
            "infoUrl": reverse("explorer:map-artwork", args=[0]).replace("0.json", "{id}.json"),
            "artworkUrl": reverse("explorer:artwork", args=[0]).replace("/0/", "/{id}/"),
            "authenticated": request.user.is_authenticated,
            "loginUrl": f"{settings.LOGIN_URL}?next={request.path}",
        }
        if is_curator(request.user):
            # A selection goes straight to a classifier's examples (the classifiers API, CSRF-checked).
            config["classifierExamplesUrl"] = reverse("explorer:api:classifier-examples", args=[0]).replace("/0/", "/{id}/")
            config["classifierLimit"] = MAX_EXAMPLES_PER_CALL
    building = Job.objects.filter(kind=Job.Kind.LAYOUT, state__in=[Job.State.QUEUED, Job.State.RUNNING]).order_by("-created_at").first()
    return render(request, "explorer/map.html", {"layouts": layouts, "current": current, "config": config, "building": building})


def build_manifest(layout: Layout) -> dict:
    files = export.read_files(layout.slug, layout.export_version)
    if files is None:
        raise Http404("this map's files are missing; rebuild it with build_map --rebuild")
    b = files["bounds"]
    span = max(b[2] - b[0], b[3] - b[1], 1e-9)
    scale = files["world"] / span
    levels: dict[int, list] = {}
    for r in Region.objects.filter(layout=layout).order_by("level", "cluster"):
        levels.setdefault(r.level, []).append({
            "cluster": r.cluster, "name": r.name, "size": r.size,
            "x": round((r.x - b[0]) * scale, 3), "y": round((r.y - b[1]) * scale, 3),
        })
    model = layout.model
    label_model_id = labels_model_id(layout)
    label_model = model if model and model.pk == label_model_id else EmbeddingModel.objects.filter(pk=label_model_id).first()
    return {
        "layout": {
            "slug": layout.slug, "name": layout.name, "method": layout.method, "seed": layout.seed,
            "subset": layout.subset, "model": model.key if model else layout.params.get("face_model") or "",
            "label_model": label_model.key if label_model else "",
            "untrained": bool(layout.params.get("untrained")), "points": layout.point_count,
            "built_at": layout.built_at.isoformat() if layout.built_at else None, "params": layout.params.get("used", {}),
        },
        "layouts": list(ready_layouts().values("slug", "name", "method")),
        # Artwork maps draw the 256 px derivatives of the few points in view at the deepest zoom
        # (thumbs.json); a face map's points are face crops, which only the atlas holds.
        "hires": not layout.subset.get("faces"),
        "version": layout.export_version,
        "base_url": export.base_url(layout.slug, layout.export_version),
        **{k: files[k] for k in ("count", "bounds", "world", "columns", "chunks", "atlas", "classifications", "year_none", "cls_other")},
        "regions": {"names_from": layout.params.get("region_names_from", "none"),
                    "levels": [{"level": k, "regions": v} for k, v in sorted(levels.items())]},
        "labels": label_list(layout, files.get("labels", [])),
    }


def label_list(layout: Layout, exported: list[dict]) -> list[dict]:
    """Labels for the filter: those counted on the map at export time, then published labels made
    since (no count yet; the search endpoint finds their artworks all the same)."""
    known = {item["slug"] for item in exported}
    newer = Label.objects.filter(published=True).exclude(slug__in=known).order_by("name").values_list("slug", "name", "group")[:2000]
    return list(exported) + [{"slug": s, "name": n, "group": g, "count": None} for s, n, g in newer]


@require_GET
def manifest(request, slug: str):
    row = ready_layouts().filter(slug=slug).values("pk", "export_version").first()
    if row is None:
        raise Http404("no such map")
    key = f"map-manifest:{slug}:{row['pk']}:{row['export_version']}"
    body = cache.get(key)
    if body is None:
        body = json.dumps(build_manifest(Layout.objects.select_related("model").get(pk=row["pk"])), separators=(",", ":"))
        cache.set(key, body, MANIFEST_TTL)
    response = HttpResponse(body, content_type="application/json")
    response["Cache-Control"] = "public, max-age=60"
    return response


@require_GET
def search(request, slug: str):
    """Artwork ids on this map matching ``label=SLUG`` or a metadata text query ``q``."""
    layout = get_object_or_404(Layout, slug=slug)
    label_slug, q = clean_text(request.GET.get("label", "")), clean_text(request.GET.get("q", ""), 10_000)
    if len(q) > MAX_QUERY_CHARS:
        return JsonResponse({"error": f"the query is too long ({len(q)} characters; at most {MAX_QUERY_CHARS})"}, status=400)
    if label_slug:
        label = get_object_or_404(Label, slug=label_slug)
        # The artworks that show the label, by the same rule as its label page and the search
        # filter (threshold, curator decisions): explorer.search.Filters.
        model = EmbeddingModel.objects.filter(pk=labels_model_id(layout)).first()
        on_map = Artwork.objects.filter(pk__in=LayoutPoint.objects.filter(layout=layout).values("artwork_id"))
        shown = Filters(label=label.slug).apply(on_map, model, include_drafts=True)
        ids = list(shown.order_by().values_list("id", flat=True)[: SEARCH_LIMIT + 1])
        what = {"label": label.slug, "name": label.name}
    elif q:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM archive_artwork WHERE search_document @@ websearch_to_tsquery('english', %s) "
                "AND id IN (SELECT artwork_id FROM archive_layoutpoint WHERE layout_id = %s) LIMIT %s",
                [q, layout.pk, SEARCH_LIMIT + 1],
            )
            ids = [row[0] for row in cursor.fetchall()]
        what = {"q": q}
    else:
        return JsonResponse({"error": "give label=SLUG or q=TEXT"}, status=400)
    truncated = len(ids) > SEARCH_LIMIT
    return JsonResponse({**what, "ids": ids[:SEARCH_LIMIT], "count": min(len(ids), SEARCH_LIMIT), "truncated": truncated})


@require_GET
def thumbs(request, slug: str):
    """Derivative URLs (and aspect) of up to THUMBS_LIMIT artworks on this map: ``?ids=1,2,3`` ->
    ``{"thumbs": {"1": [url, width, height], ...}}`` (artworks without an image are left out)."""
    layout = get_object_or_404(Layout, slug=slug)
    try:
        ids = [int(v) for v in request.GET.get("ids", "").split(",") if v.strip()]
    except ValueError:
        return JsonResponse({"error": "ids must be comma-separated artwork ids"}, status=400)
    if not ids:
        return JsonResponse({"error": "give ids=ID,ID,..."}, status=400)
    if len(ids) > THUMBS_LIMIT:
        return JsonResponse({"error": f"at most {THUMBS_LIMIT} ids per request"}, status=400)
    out = {}
    rows = (Artwork.objects.filter(pk__in=ids, layout_points__layout=layout).distinct()
            .only("status", "sha256", "width", "height"))
    for a in rows:
        if a.has_image:
            w, h = a.width or 1, a.height or 1
            scale = min(1.0, THUMB_SIZE / max(w, h))
            out[str(a.pk)] = [a.derivative_url(THUMB_SIZE), max(1, round(w * scale)), max(1, round(h * scale))]
    response = JsonResponse({"thumbs": out})
    response["Cache-Control"] = "public, max-age=3600"
    return response


@require_GET
def artwork_info(request, pk: int):
    """Title and thumbnail for the hover card."""
    a = Artwork.objects.filter(pk=pk).only("title", "creator", "display_date", "status", "sha256", "classification").first()
    if a is None:
        raise Http404("no such artwork")
    response = JsonResponse({
        "id": a.pk, "title": str(a), "creator": a.creator, "date": a.display_date, "classification": a.classification,
        "thumbnail": a.derivative_url(256), "url": reverse("explorer:artwork", args=[a.pk]),
    })
    response["Cache-Control"] = "public, max-age=3600"
    return response


@require_POST
def save_collection(request, slug: str):
    """Save a map selection as a Collection. JSON body: {"title": str, "ids": [artwork ids], "description": str}."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "log in to save a selection", "login_url": f"{settings.LOGIN_URL}?next=/map/"}, status=401)
    layout = get_object_or_404(Layout, slug=slug)
    try:
        body = json.loads(request.body or b"{}")
        ids = [int(i) for i in body.get("ids", [])]
    except (ValueError, TypeError, AttributeError):
        return JsonResponse({"error": "the body must be JSON with a list of artwork ids"}, status=400)
    if not ids:
        return JsonResponse({"error": "the selection is empty"}, status=400)
    if len(ids) > SELECTION_LIMIT:
        return JsonResponse({"error": f"at most {SELECTION_LIMIT} artworks per collection"}, status=400)
    title = (str(body.get("title") or "").strip() or f"Map selection {timezone.now():%Y-%m-%d %H:%M}")[:255]
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT artwork_id FROM archive_layoutpoint WHERE layout_id = %s AND artwork_id = ANY(%s)", [layout.pk, ids])
        on_map = {row[0] for row in cursor.fetchall()}
    ordered = list(dict.fromkeys(i for i in ids if i in on_map))
    if not ordered:
        return JsonResponse({"error": "none of these artworks is on this map"}, status=400)
    with transaction.atomic():
        base = slugify(title)[:200] or "selection"
        slug_value, n = base, 1
        while Collection.objects.filter(slug=slug_value).exists():
            n += 1
            slug_value = f"{base}-{n}"
        collection = Collection.objects.create(
            title=title, slug=slug_value, owner=request.user,
            description=str(body.get("description") or f"Selected on the map “{layout.name}”.")[:5000],
        )
        CollectionItem.objects.bulk_create([CollectionItem(collection=collection, artwork_id=a, position=i) for i, a in enumerate(ordered)])
    try:
        url = reverse("explorer:collection", args=[collection.slug])
    except NoReverseMatch:
        url = ""
    return JsonResponse({"id": collection.pk, "slug": collection.slug, "title": collection.title, "count": len(ordered), "url": url}, status=201)
