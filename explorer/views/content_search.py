"""The IIIF Content Search 2.0 endpoints (:mod:`explorer.content_search`): JSON for IIIF viewers
(Mirador, Universal Viewer), readable from any origin."""
from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from archive.models import Artwork

from .. import content_search
from ..iiif import ids
from ..search import MAX_QUERY_CHARS, base_queryset, clean_text
from ..throttles import SearchThrottle, throttled

MAX_PAGE = 1000


def _answer(data: dict, status: int = 200) -> JsonResponse:
    response = JsonResponse(data, status=status, json_dumps_params={"ensure_ascii": False})
    response["Content-Type"] = 'application/ld+json;profile="http://iiif.io/api/search/2/context.json"'
    response["Access-Control-Allow-Origin"] = "*"
    return response


def _refusal(request, message: str) -> JsonResponse:
    return _answer({"@context": content_search.CONTEXT, "id": request.build_absolute_uri(), "type": "AnnotationPage",
                    "items": [], "error": message}, status=400)


def _params(request):
    params = request.GET.copy()
    params["q"] = clean_text(params.get("q", ""), 10_000)
    return params


@require_GET
@throttled(SearchThrottle)
def artwork_search(request, pk: int):
    artwork = get_object_or_404(base_queryset(), pk=pk)
    params = _params(request)
    if len(params["q"]) > MAX_QUERY_CHARS:
        return _refusal(request, f"the query is too long (at most {MAX_QUERY_CHARS} characters)")
    urls = content_search.Urls(ids.base_url(request))
    return _answer(content_search.artwork_answer(urls, artwork, params, request.build_absolute_uri()))


@require_GET
@throttled(SearchThrottle)
def archive_search(request):
    params = _params(request)
    if len(params["q"]) > MAX_QUERY_CHARS:
        return _refusal(request, f"the query is too long (at most {MAX_QUERY_CHARS} characters)")
    try:
        page = int(params.get("page") or 1)
    except ValueError:
        return _refusal(request, "page must be a whole number")
    if not 1 <= page <= MAX_PAGE:
        return _refusal(request, f"page must be between 1 and {MAX_PAGE}")
    urls = content_search.Urls(ids.base_url(request))
    return _answer(content_search.archive_answer(urls, params, page))
