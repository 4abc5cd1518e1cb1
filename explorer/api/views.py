"""/api/v1: the same data the pages show, as JSON. Reads are public (throttled); writes need a
signed-in curator (labels, decisions, collections) or operator (jobs) and a CSRF token."""
from __future__ import annotations

import json

from django.db.models.functions import Lower
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework import mixins, serializers as drf, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from archive.models import Artwork, Job, Label

from .. import browse, collecting, jobs as job_control, prompt_labels, search as search_mod, stats, uploads
from ..forms import QueryForm, first_error
from ..models_state import active_model
from ..permissions import CuratorOrReadOnly, IsCurator, IsOperator, is_curator
from ..similar import similar_to
from ..throttles import ImageSearchThrottle, SearchThrottle
from . import serializers as s
from .pagination import Pagination, whole_number

FILTER_PARAMS = [
    OpenApiParameter("creator", str, description="words of the creator's name, as prefixes (\"van gog\")"),
    OpenApiParameter("year_from", int, description="made in or after this year"),
    OpenApiParameter("year_to", int, description="made in or before this year"),
    OpenApiParameter("label", str, description="label slug"),
    OpenApiParameter("institution", str),
    OpenApiParameter("classification", str),
]


def _filters(request) -> search_mod.Filters:
    try:
        return search_mod.Filters.from_params(request.query_params)
    except search_mod.BadSearch as exc:
        raise ValidationError({"detail": str(exc)}) from None


def _int_param(request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    return whole_number(raw, name, low, high)


def _model_info(model) -> dict | None:
    if model is None:
        return None
    return {"key": model.key, "untrained": model.untrained, "dim": model.dim}


class ArtworkViewSet(viewsets.ReadOnlyModelViewSet):
    """Artworks, filterable; the detail includes labels (curator decisions applied), faces and similar artworks."""

    serializer_class = s.ArtworkSummarySerializer
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        qs = search_mod.base_queryset().order_by("id")
        if self.action == "list":
            qs = _filters(self.request).apply(qs, active_model(), include_drafts=is_curator(self.request.user))
        return qs

    def get_serializer_class(self):
        return s.ArtworkDetailSerializer if self.action == "retrieve" else s.ArtworkSummarySerializer

    @extend_schema(parameters=FILTER_PARAMS)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def retrieve(self, request, *args, **kwargs):
        artwork = get_object_or_404(Artwork, pk=kwargs["pk"])
        model = active_model()
        context = self.get_serializer_context()
        curator = is_curator(request.user)
        context["labels"] = browse.artwork_labels(artwork, model_id=model.pk if model else None,
                                                  include_rejected=curator, include_drafts=curator)
        context["similar"] = similar_to(artwork, model, limit=12)
        data = s.ArtworkDetailSerializer(artwork, context=context).data
        data["model"] = _model_info(model)
        return Response(data)

    @extend_schema(parameters=[OpenApiParameter("limit", int, description="1-100, default 12")],
                   responses=s.ScoredArtworkSerializer(many=True))
    @action(detail=True)
    def similar(self, request, pk=None):
        artwork = get_object_or_404(Artwork, pk=pk)
        limit = _int_param(request, "limit", 12, 1, 100)
        model = active_model()
        hits = similar_to(artwork, model, limit=limit)
        return Response({"model": _model_info(model),
                         "results": [{"artwork": s.ArtworkSummarySerializer(a).data, "score": sc} for a, sc in hits]})


class LabelViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Published labels with artwork counts. Curators also see drafts and create labels from a prompt."""

    serializer_class = s.LabelSerializer
    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"
    permission_classes = [CuratorOrReadOnly]

    def get_queryset(self):
        qs = Label.objects.all() if is_curator(self.request.user) else Label.objects.filter(published=True)
        group = search_mod.clean_text(self.request.query_params.get("group"), 50)
        name = search_mod.clean_text(self.request.query_params.get("name"), 100)
        if group:
            qs = qs.filter(group=group[:50])
        if name:
            qs = qs.filter(name__icontains=name[:100])
        notation = search_mod.clean_text(self.request.query_params.get("notation"), 255)
        if notation:
            qs = qs.filter(notation=notation)
        return qs.select_related("parent").order_by("group", Lower("name"), "name")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        model = active_model()
        context["counts"] = browse.label_counts(model.pk if model else None)
        return context

    @extend_schema(parameters=[OpenApiParameter("group", str), OpenApiParameter("name", str),
                               OpenApiParameter("notation", str, description="Iconclass notation, exactly (e.g. 11H)")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=s.PromptLabelSerializer, responses=s.LabelSerializer)
    def create(self, request, *args, **kwargs):
        form = s.PromptLabelSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            label = prompt_labels.create_prompt_label(form.validated_data["name"], form.validated_data.get("prompt", ""),
                                                      request.user, group=form.validated_data.get("group") or "curated")
        except ValueError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(s.LabelSerializer(label, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[OpenApiParameter("cursor", str, description="the 'next' value of the previous page"),
                               OpenApiParameter("limit", int, description="1-200, default 48")],
                   responses=inline_serializer("LabelArtworksPage", {
                       "results": drf.ListField(child=drf.DictField()), "next": drf.CharField(allow_null=True)}))
    @action(detail=True)
    def artworks(self, request, slug=None):
        """A label's artworks, best score first, keyset-paginated: pass ``next`` back as ``cursor``."""
        label = self.get_object()
        model = active_model()
        limit = _int_param(request, "limit", browse.PAGE_SIZE, 1, 200)
        try:
            page = browse.label_page(label, model_id=model.pk if model else None, cursor=request.query_params.get("cursor"), limit=limit)
        except browse.BadCursor as exc:
            raise ValidationError({"cursor": str(exc)}) from None
        return Response({
            "model": _model_info(model),
            "results": [{"artwork": s.ArtworkSummarySerializer(a).data, "score": sc, "added_by_curator": added}
                        for a, sc, added in page.items],
            "next": page.next_cursor,
        })

    @extend_schema(parameters=[OpenApiParameter("limit", int, description="1-500, default 60")],
                   responses=s.ScoredArtworkSerializer(many=True))
    @action(detail=True, permission_classes=[IsCurator])
    def scores(self, request, slug=None):
        """Score a (draft) label over the whole archive: its top artworks, for review before publishing."""
        label = self.get_object()
        limit = _int_param(request, "limit", prompt_labels.REVIEW_SIZE, 1, 500)
        try:
            scores = prompt_labels.score_label(label, limit=limit)
        except LookupError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        found = Artwork.objects.in_bulk([a for a, _ in scores])
        return Response([{"artwork": s.ArtworkSummarySerializer(found[a]).data, "score": sc} for a, sc in scores if a in found])

    @extend_schema(request=s.PublishSerializer, responses=s.PublishedLabelSerializer)
    @action(detail=True, methods=["post"], permission_classes=[IsCurator])
    def publish(self, request, slug=None):
        """Publish the label (the excluded artworks are rejected for it) and start the job that
        scores it over the whole archive; answers at once with the label and that job."""
        label = self.get_object()
        form = s.PublishSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        excluded = set(form.validated_data["exclude"])
        job = prompt_labels.publish(label, threshold=form.validated_data.get("threshold"), user=request.user)
        for artwork in Artwork.objects.filter(pk__in=excluded):
            browse.decide(artwork, label, "rejected", request.user)
        label.refresh_from_db()
        context = {**self.get_serializer_context(), "job": job}
        return Response(s.PublishedLabelSerializer(label, context=context).data)


class DecisionView(APIView):
    """Accept, reject or add a label on an artwork (or clear the decision)."""

    permission_classes = [IsCurator]

    @extend_schema(request=s.DecisionSerializer, responses=s.DecisionSerializer)
    def post(self, request):
        form = s.DecisionSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        artwork = get_object_or_404(Artwork, pk=form.validated_data["artwork"])
        label = get_object_or_404(Label, pk=form.validated_data["label"])
        browse.decide(artwork, label, form.validated_data["decision"], request.user)
        return Response(form.validated_data)


class SearchView(APIView):
    """Free text by meaning (CLIP) and metadata (full text), fused with reciprocal rank fusion, plus filters."""

    permission_classes = [AllowAny]
    throttle_classes = [*api_settings.DEFAULT_THROTTLE_CLASSES, SearchThrottle]

    @extend_schema(parameters=[OpenApiParameter("q", str, description="free text (at most 500 characters)"), *FILTER_PARAMS,
                               OpenApiParameter("offset", int, description="0-10000"),
                               OpenApiParameter("limit", int, description="1-100, default 48")],
                   responses=inline_serializer("SearchResults", {
                       "count": drf.IntegerField(), "count_capped": drf.BooleanField(),
                       "next": drf.CharField(allow_null=True), "previous": drf.CharField(allow_null=True),
                       "results": s.ScoredArtworkSerializer(many=True), "notices": drf.ListField(child=drf.CharField())}))
    def get(self, request):
        offset = _int_param(request, "offset", 0, 0, 10_000)
        limit = _int_param(request, "limit", 48, 1, 100)
        form = QueryForm(request.query_params)
        if not form.is_valid():
            raise ValidationError({"detail": first_error(form)})
        filters = _filters(request)
        try:
            result = search_mod.search(form.cleaned_data["q"], filters, offset=offset, limit=limit,
                                       include_drafts=is_curator(request.user))
        except search_mod.BadSearch as exc:
            raise ValidationError({"detail": str(exc)}) from None
        url = request.build_absolute_uri()
        next_url = previous_url = None
        if offset + limit < result.total and offset + limit <= 10_000:
            next_url = replace_query_param(url, "offset", offset + limit)
        if offset > limit:
            previous_url = replace_query_param(url, "offset", offset - limit)
        elif offset:
            previous_url = remove_query_param(url, "offset")
        return Response({
            "count": result.total,
            "count_capped": result.total_capped,
            "next": next_url,
            "previous": previous_url,
            "model": _model_info(result.model),
            "used_meaning": result.used_meaning,
            "notices": result.notices,
            "results": [{"artwork": s.ArtworkSummarySerializer(a).data, "score": sc} for a, sc in result.artworks],
        })


class FacetsView(APIView):
    """The search filters' options: institutions, classifications and label groups."""

    permission_classes = [AllowAny]

    @extend_schema(responses=inline_serializer("SearchFacets", {
        "institutions": drf.ListField(child=drf.CharField()), "classifications": drf.ListField(child=drf.CharField()),
        "label_groups": drf.ListField(child=drf.CharField())}))
    def get(self, request):
        options = stats.facet_options()
        return Response({**options, "label_groups": browse.label_groups()})


class StatsView(APIView):
    """What the archive holds (the home page): counts, institutions, label groups with their largest labels."""

    permission_classes = [AllowAny]

    @extend_schema(responses=s.ArchiveStatsSerializer)
    def get(self, request):
        figures = stats.home(include_drafts=False)
        return Response(s.ArchiveStatsSerializer({
            **figures,
            "model": _model_info(figures["model"]),
            "groups": [{"group": g, "labels": [{"slug": l.slug, "name": l.name, "count": n} for l, n in labels[:stats.GROUP_LABELS]],
                        "label_count": len(labels)} for g, labels in figures["groups"]],
        }).data)


class ImageSearchView(APIView):
    """Upload an image (multipart field ``image``); get the artworks that look most like it."""

    permission_classes = [AllowAny]
    parser_classes = [MultiPartParser, FormParser]
    throttle_classes = [*api_settings.DEFAULT_THROTTLE_CLASSES, ImageSearchThrottle]

    @extend_schema(parameters=[OpenApiParameter("limit", int, description="1-100, default 24")],
                   request={"multipart/form-data": inline_serializer("ImageUpload", {"image": drf.ImageField()})},
                   responses=inline_serializer("ImageSearchResults", {
                       "results": s.ImageMatchSerializer(many=True), "notices": drf.ListField(child=drf.CharField())}))
    def post(self, request):
        limit = _int_param(request, "limit", 24, 1, 100)
        upload = request.FILES.get("image")
        if uploads.too_large(request._request):  # the upload guard stopped it at UPLOAD_MAX_BYTES
            return Response({"image": [uploads.too_large_message()]}, status=413)
        if upload is None:
            raise ValidationError({"image": "upload an image file in the multipart field 'image'"})
        try:
            image = search_mod.prepare_query_image(upload)
        except search_mod.BadSearch as exc:
            if getattr(exc, "status", 400) != 400:
                return Response({"image": [str(exc)], "code": exc.code}, status=exc.status)
            raise ValidationError({"image": str(exc)}) from None
        result = search_mod.search_by_image(image, limit=limit)
        return Response({
            "model": _model_info(result.model),
            "notices": result.notices,
            "results": [{"artwork": s.ArtworkSummarySerializer(a).data, "score": sc, "copy": a.pk in result.copies}
                        for a, sc in result.artworks],
        })


class CollectionViewSet(viewsets.ModelViewSet):
    """Collections: public ones for everyone, own ones for their curator. Writes need a curator."""

    serializer_class = s.CollectionSerializer
    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"
    permission_classes = [CuratorOrReadOnly]

    def get_queryset(self):
        return collecting.visible_collections(self.request.user).select_related("owner").order_by("-updated_at")

    def _check_edit(self, collection):
        if not collecting.can_edit(collection, self.request.user):
            raise PermissionDenied("Only the collection's owner (or staff) can change it.")

    def perform_create(self, serializer):
        artworks = serializer.validated_data.pop("artworks", [])
        collection = serializer.save(owner=self.request.user, slug=collecting.unique_slug(serializer.validated_data["title"]))
        collecting.add_items(collection, artworks)

    def perform_update(self, serializer):
        self._check_edit(serializer.instance)
        artworks = serializer.validated_data.pop("artworks", [])
        collection = serializer.save()
        collecting.add_items(collection, artworks)

    def perform_destroy(self, instance):
        self._check_edit(instance)
        instance.delete()

    @extend_schema(parameters=[OpenApiParameter("as", str, enum=["json", "csv", "iiif"], description="export format")],
                   responses={(200, "application/json"): OpenApiTypes.OBJECT, (200, "text/csv"): OpenApiTypes.STR})
    @action(detail=True)
    def export(self, request, slug=None):
        collection = self.get_object()
        kind = request.query_params.get("as", "json")
        base = request.build_absolute_uri("/").rstrip("/")
        if kind == "csv":
            response = HttpResponse(collecting.export_csv(collection, base), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="{collection.slug}.csv"'
            return response
        if kind == "json":
            return Response(collecting.export_json(collection, base))
        if kind == "iiif":
            return HttpResponse(json.dumps(collecting.export_iiif(collection, base)),
                                content_type='application/ld+json;profile="http://iiif.io/api/presentation/3/context.json"')
        raise ValidationError({"as": "one of json, csv, iiif"})


class JobViewSet(viewsets.ViewSet):
    """Jobs for operators: list, detail (poll it for progress), launch, pause/resume/cancel, retry failed items."""

    permission_classes = [IsOperator]
    serializer_class = s.JobSerializer
    lookup_value_regex = r"[0-9]+"

    pagination_class = Pagination

    @extend_schema(parameters=[OpenApiParameter("state", str), OpenApiParameter("kind", str),
                               OpenApiParameter("limit", int, description="1-200, default 50"),
                               OpenApiParameter("offset", int, description="0-100000")],
                   responses=inline_serializer("PaginatedJobList", {
                       "count": drf.IntegerField(), "next": drf.CharField(allow_null=True),
                       "previous": drf.CharField(allow_null=True), "results": s.JobSerializer(many=True)}))
    def list(self, request):
        """Recent jobs, newest first, paginated like every list (``count``, ``next``, ``previous``)."""
        jobs = Job.objects.select_related("created_by").order_by("-created_at", "-id")
        if request.query_params.get("state"):
            jobs = jobs.filter(state=search_mod.clean_text(request.query_params["state"], 12))
        if request.query_params.get("kind"):
            jobs = jobs.filter(kind=search_mod.clean_text(request.query_params["kind"], 20))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(jobs, request, view=self)
        return paginator.get_paginated_response([job_control.describe(j) for j in page])

    @extend_schema(responses=s.JobSerializer)
    def retrieve(self, request, pk=None):
        return Response(job_control.describe(self._job(pk)))

    @extend_schema(request=s.JobLaunchSerializer, responses=s.JobSerializer)
    def create(self, request):
        form = s.JobLaunchSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            job = job_control.launch(data["kind"], data.get("params") or {}, data["mode"], request.user)
        except job_control.JobControlError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(job_control.describe(job), status=status.HTTP_201_CREATED)

    def _job(self, pk) -> Job:
        if not str(pk).isdigit():
            raise NotFound("job ids are whole numbers")
        try:
            return Job.objects.get(pk=int(pk))
        except Job.DoesNotExist:
            raise NotFound(f"no job #{pk}") from None

    def _control(self, request, pk, what):
        try:
            job = job_control.control(self._job(pk), what, request.user)
        except job_control.JobControlError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(job_control.describe(job))

    @extend_schema(request=None, responses=s.JobSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._control(request, pk, "pause")

    @extend_schema(request=None, responses=s.JobSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._control(request, pk, "resume")

    @extend_schema(request=None, responses=s.JobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._control(request, pk, "cancel")

    @extend_schema(request=None, responses=s.JobSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        return self._control(request, pk, "retry")

    @extend_schema(responses=s.JobErrorSerializer(many=True))
    @action(detail=True)
    def errors(self, request, pk=None):
        job = self._job(pk)
        offset = _int_param(request, "offset", 0, 0, 10_000_000)
        limit = _int_param(request, "limit", 100, 1, 1000)
        rows = job.errors.order_by("id")[offset : offset + limit]
        return Response({"count": job.errors.count(), "results": s.JobErrorSerializer(rows, many=True).data})


class SwaggerView(SpectacularSwaggerSplitView):
    """Swagger UI served from static/vendor (copied from drf-spectacular-sidecar): no CDN; its
    settings script is a separate request (no inline script, for the Content-Security-Policy)."""

    @staticmethod
    def _swagger_ui_resource(filename):
        from django.templatetags.static import static

        return static(f"vendor/swagger-ui-dist/{filename}")

    @staticmethod
    def _swagger_ui_favicon():
        from django.templatetags.static import static

        return static("vendor/swagger-ui-dist/favicon-32x32.png")
