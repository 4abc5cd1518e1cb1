"""The IIIF endpoints: JSON-LD with the Presentation 3 profile, readable from any origin (viewers
on other sites load them). A private curator collection answers only its owner and staff, like
its page and its exports."""
from __future__ import annotations

import json

from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render

from archive.models import Artwork, Collection, Label

from ..models_state import active_model
from . import annotations, collections, ids, manifest


ACTIVITY_STREAMS = 'application/ld+json;profile="https://www.w3.org/ns/activitystreams"'


def _json(data: dict, *, private: bool = False, content_type: str = ids.JSON_LD) -> HttpResponse:
    response = HttpResponse(json.dumps(data, ensure_ascii=False), content_type=content_type)
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = "private, no-store" if private else "public, max-age=300"
    return response


def _page(request) -> int | None:
    value = request.GET.get("page")
    if value in (None, ""):
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError("page must be a whole number from 1")
    return int(value)


def _paged(request, build, *, private: bool = False):
    try:
        return _json(build(_page(request)), private=private)
    except (ValueError, collections.NoSuchPage) as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")


def artwork_manifest(request, pk: int):
    artwork = get_object_or_404(Artwork, pk=pk)
    return _json(manifest.build(artwork, ids.base_url(request), model=active_model()))


def label_collection(request, slug: str):
    label = get_object_or_404(Label, slug=slug, published=True)
    base, model = ids.base_url(request), active_model()
    return _paged(request, lambda page: collections.label_collection(label, base, model, page))


def curator_collection(request, slug: str):
    collection = get_object_or_404(Collection, slug=slug)
    private = not collection.is_public
    if private and collection.owner_id != getattr(request.user, "pk", None) and not request.user.is_staff:
        raise Http404("No such collection")
    base = ids.base_url(request)
    return _paged(request, lambda page: collections.curator_collection(collection, base, page), private=private)


def institution_collection(request, slug: str):
    name = collections.institution_named(slug)
    if name is None:
        raise Http404("No such institution")
    base = ids.base_url(request)
    return _paged(request, lambda page: collections.institution_collection(name, base, page))


def labels_collection(request):
    return _json(collections.labels_collection(ids.base_url(request)))


def top_collection(request):
    return _json(collections.top_collection(ids.base_url(request)))


def context(request):
    return _json(annotations.context(ids.base_url(request)), content_type="application/ld+json")


def viewer(request):
    """A page that opens a manifest (``?manifest=URL``, by default the top collection's first
    work): its image in deep zoom and its labels beside it."""
    return render(request, "explorer/iiif_viewer.html", {"manifest": request.GET.get("manifest", "")})


def activity_stream(request):
    from . import activity

    return _json(activity.collection(ids.base_url(request)), content_type=ACTIVITY_STREAMS)


def activity_page(request, number: int):
    from . import activity

    try:
        return _json(activity.page(ids.base_url(request), number), content_type=ACTIVITY_STREAMS)
    except ValueError as exc:
        raise Http404(str(exc)) from None
