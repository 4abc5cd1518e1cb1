"""/api/v1 for the ways in beyond labels: search by colour, the path between two artworks."""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers as drf
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from .. import colours as colour_search, search as search_mod
from ..permissions import is_curator
from ..throttles import SearchThrottle
from . import serializers as s
from .views import FILTER_PARAMS, _filters, _int_param


class PaletteColourSerializer(drf.Serializer):
    hex = drf.CharField(help_text="#rrggbb (sRGB)")
    lab = drf.ListField(child=drf.FloatField(), help_text="CIELAB (D65): L, a, b")
    share = drf.FloatField(help_text="share of the image's pixels, 0-1")


class ColourSearchView(APIView):
    """Artworks whose palettes are closest to one to three colours (with how much of the image
    each should cover), best first; combinable with every search filter."""

    permission_classes = [AllowAny]
    throttle_classes = [*api_settings.DEFAULT_THROTTLE_CLASSES, SearchThrottle]

    @extend_schema(parameters=[
        OpenApiParameter("colours", str, required=True, description="1-3 colours, comma-separated: c03020,1f3a80 (# optional)"),
        OpenApiParameter("amounts", str, description="percent of the image per colour, comma-separated (default: equal)"),
        *FILTER_PARAMS,
        OpenApiParameter("offset", int, description=f"0-{colour_search.MAX_RESULTS - 1}"),
        OpenApiParameter("limit", int, description="1-100, default 48"),
    ], responses=inline_serializer("ColourSearchResults", {
        "colours": drf.ListField(child=drf.CharField()), "amounts": drf.ListField(child=drf.FloatField()),
        "next": drf.CharField(allow_null=True), "results": s.ScoredArtworkSerializer(many=True)}))
    def get(self, request):
        offset = _int_param(request, "offset", 0, 0, colour_search.MAX_RESULTS - 1)
        limit = min(_int_param(request, "limit", 48, 1, 100), colour_search.MAX_RESULTS - offset)
        filters = _filters(request)
        try:
            query = colour_search.parse(request.query_params.get("colours"), request.query_params.get("amounts"))
            found = colour_search.search(query, filters, offset=offset, limit=limit, include_drafts=is_curator(request.user))
        except search_mod.BadSearch as exc:
            raise ValidationError({"detail": str(exc)}) from None
        more = len(found) == limit and offset + limit < colour_search.MAX_RESULTS
        return Response({
            "colours": list(query.hexes),
            "amounts": [round(a, 4) for a in query.amounts],
            "next": replace_query_param(request.build_absolute_uri(), "offset", offset + limit) if more else None,
            "results": [{"artwork": s.ArtworkSummarySerializer(a).data, "score": round(sc, 4)} for a, sc in found],
        })


class PathView(APIView):
    """A sequence of works from one artwork to another in small visual steps: a shortest path on
    the active model's nearest-neighbour graph (each step among the previous work's nearest
    neighbours, or the end's), no work twice."""

    permission_classes = [AllowAny]
    throttle_classes = [*api_settings.DEFAULT_THROTTLE_CLASSES, SearchThrottle]

    @extend_schema(parameters=[
        OpenApiParameter("from", int, required=True, description="the first artwork's id"),
        OpenApiParameter("to", int, required=True, description="the last artwork's id"),
    ], responses=inline_serializer("ArtworkPath", {
        "from": drf.IntegerField(), "to": drf.IntegerField(), "model": drf.CharField(),
        "artworks": s.ArtworkSummarySerializer(many=True),
        "similarities": drf.ListField(child=drf.FloatField(), help_text="cosine similarity of each step"),
        "url": drf.CharField(help_text="the path's page")}))
    def get(self, request):
        from django.shortcuts import get_object_or_404

        from archive.models import Artwork

        from .. import path as path_mod
        from ..models_state import active_model
        from .pagination import whole_number

        ends = []
        for name in ("from", "to"):
            raw = request.query_params.get(name)
            if raw in (None, ""):
                raise ValidationError({name: "required: an artwork id"})
            ends.append(whole_number(raw, name, 1, 2**63 - 1))
        for pk in ends:
            get_object_or_404(Artwork, pk=pk)
        model = active_model()
        try:
            found = path_mod.find_path(ends[0], ends[1], model)
        except path_mod.NoPath as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response({
            "from": ends[0], "to": ends[1], "model": model.key,
            "artworks": s.ArtworkSummarySerializer(path_mod.path_artworks(found), many=True).data,
            "similarities": [round(x, 4) for x in found.similarities],
            "url": f"/path/?from={ends[0]}&to={ends[1]}",
        })


class TimelineView(APIView):
    """The artworks along their dates: counts per bin of years over a range (default: the data's)
    with the search filters, and a few works per bin ordered by the hue of their dominant colour.
    Years outside the data are a 400 that says the data's range."""

    permission_classes = [AllowAny]
    throttle_classes = [*api_settings.DEFAULT_THROTTLE_CLASSES, SearchThrottle]

    @extend_schema(parameters=[
        *FILTER_PARAMS,
        OpenApiParameter("bins", int, description="1-200, default 40"),
        OpenApiParameter("per_bin", int, description="works shown per bin, 0-24, default 6"),
    ], responses=inline_serializer("Timeline", {
        "year_from": drf.IntegerField(), "year_to": drf.IntegerField(), "width": drf.IntegerField(help_text="years per bin"),
        "data_from": drf.IntegerField(allow_null=True), "data_to": drf.IntegerField(allow_null=True), "total": drf.IntegerField(),
        "bins": inline_serializer("TimelineBin", {"start": drf.IntegerField(), "end": drf.IntegerField(), "count": drf.IntegerField(),
                                                  "artworks": s.ArtworkSummarySerializer(many=True)}, many=True)}))
    def get(self, request):
        from .. import timeline as timeline_mod
        from ..models_state import active_model

        bins = _int_param(request, "bins", 40, 1, timeline_mod.MAX_BINS)
        per_bin = _int_param(request, "per_bin", 6, 0, timeline_mod.MAX_PER_BIN)
        filters = _filters(request)
        try:
            found = timeline_mod.build(filters, bins=bins, per_bin=per_bin, include_drafts=is_curator(request.user),
                                       model=active_model())
        except search_mod.BadSearch as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response({
            "year_from": found.year_from, "year_to": found.year_to, "width": found.width,
            "data_from": found.data_from, "data_to": found.data_to, "total": found.total,
            "bins": [{"start": b.start, "end": b.end, "count": b.count,
                      "artworks": s.ArtworkSummarySerializer(b.artworks, many=True).data} for b in found.bins],
        })


class TimelinePointsView(APIView):
    """Every dated artwork passing the filters as a point of the zoomable timeline, in one compact
    binary payload (10 bytes a point; layout in the description). Years outside the data are a 400
    that says the data's range."""

    permission_classes = [AllowAny]
    throttle_classes = [*api_settings.DEFAULT_THROTTLE_CLASSES, SearchThrottle]

    @extend_schema(
        parameters=[*FILTER_PARAMS],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
        description=(
            "n points, column after column, little-endian: artwork ids uint32 (4n bytes), years (year_start) int16 (2n), "
            "bands uint16 (2n: the vertical place, 0-65535: along a Hilbert curve through the default map, or the hue of the "
            "dominant colour for works not on a map), dominant colours uint16 (2n: RGB565, 0 without a palette). Sorted by "
            "year, then band. Headers: X-Timeline-Count (n), X-Timeline-Years (data_from-data_to), X-Timeline-Band "
            "(map:SLUG or colour)."),
    )
    def get(self, request):
        from django.http import HttpResponse

        from .. import timeline_points
        from ..models_state import active_model

        filters = _filters(request)
        try:
            span = timeline_points.year_range(filters)
            found = timeline_points.points(filters, include_drafts=is_curator(request.user), model=active_model())
        except search_mod.BadSearch as exc:
            raise ValidationError({"detail": str(exc)}) from None
        response = HttpResponse(found.payload(), content_type="application/octet-stream")
        response["X-Timeline-Count"] = str(len(found))
        response["X-Timeline-Years"] = f"{span[2]}-{span[3]}" if span else ""
        response["X-Timeline-Band"] = f"map:{found.layout}" if found.layout else "colour"
        response["Cache-Control"] = "max-age=60"
        return response


class TimelineViewportView(APIView):
    """The works in a window of the zoomable timeline (year_start from year_from to year_to, band
    from band_from to band_to) with the other filters: at most ``limit``, spread over the window,
    each with its thumbnail. Years outside the data are a 400 that says the data's range; a window
    holding more than 50,000 works (before the bands) is a 400 asking for fewer years."""

    permission_classes = [AllowAny]
    throttle_classes = [*api_settings.DEFAULT_THROTTLE_CLASSES, SearchThrottle]

    @extend_schema(parameters=[
        OpenApiParameter("year_from", int, required=True, description="the window's first year (year_start), within the data"),
        OpenApiParameter("year_to", int, required=True, description="the window's last year, within the data"),
        OpenApiParameter("band_from", int, description="0-65535, default 0"),
        OpenApiParameter("band_to", int, description="0-65535, default 65535"),
        OpenApiParameter("limit", int, description="1-200, default 100"),
        *[p for p in FILTER_PARAMS if p.name not in ("year_from", "year_to")],
    ], responses=inline_serializer("TimelineViewport", {
        "year_from": drf.IntegerField(), "year_to": drf.IntegerField(),
        "band_from": drf.IntegerField(), "band_to": drf.IntegerField(),
        "count": drf.IntegerField(help_text="works in the window (more than the results when above the limit)"),
        "results": inline_serializer("TimelineViewportWork", {
            "artwork": s.ArtworkSummarySerializer(), "year": drf.IntegerField(), "band": drf.IntegerField(),
            "colour": drf.IntegerField(help_text="dominant colour, RGB565 (0: no palette)")}, many=True)}))
    def get(self, request):
        from .. import timeline_points
        from ..models_state import active_model

        years = []
        for name in ("year_from", "year_to"):
            if request.query_params.get(name) in (None, ""):
                raise ValidationError({name: "required: a year"})
            years.append(_int_param(request, name, 0, -99_999, 99_999))
        top = timeline_points.BAND_LEVELS - 1
        band_from = _int_param(request, "band_from", 0, 0, top)
        band_to = _int_param(request, "band_to", top, 0, top)
        limit = _int_param(request, "limit", 100, 1, timeline_points.MAX_VIEWPORT_LIMIT)
        params = request.query_params.copy()
        params.pop("year_from", None)
        params.pop("year_to", None)
        try:
            filters = search_mod.Filters.from_params(params)
            found, count = timeline_points.viewport(filters, years[0], years[1], band_from, band_to, limit=limit,
                                                    include_drafts=is_curator(request.user), model=active_model())
        except search_mod.BadSearch as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response({
            "year_from": years[0], "year_to": years[1], "band_from": band_from, "band_to": band_to, "count": count,
            "results": [{"artwork": s.ArtworkSummarySerializer(a).data, "year": y, "band": b, "colour": c}
                        for a, y, b, c in found],
        })
