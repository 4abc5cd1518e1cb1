"""/api/v1/ routes."""
from django.urls import NoReverseMatch, include, path, reverse
from drf_spectacular.views import SpectacularAPIView
from rest_framework import routers
from rest_framework.response import Response

from . import classifiers, discovery, views

# Endpoints beside the viewsets, listed by the API root too: (key, url name).
OTHER_ENDPOINTS = [
    ("search", "explorer:api:search"), ("search/facets", "explorer:api:search-facets"),
    ("search/image", "explorer:api:search-image"), ("stats", "explorer:api:stats"),
    ("decisions", "explorer:api:decisions"), ("doppelganger", "explorer:api-doppelganger"),
    ("schema", "explorer:api:schema"), ("docs", "explorer:api:docs"),
]


class APIRootView(routers.APIRootView):
    """Every endpoint of /api/v1/ (the viewsets and the others); the schema describes each."""

    def get(self, request, *args, **kwargs):
        data = dict(super().get(request, *args, **kwargs).data)
        for key, name in OTHER_ENDPOINTS:
            try:
                data[key] = request.build_absolute_uri(reverse(name))
            except NoReverseMatch:
                continue
        return Response(data)


class Router(routers.DefaultRouter):
    APIRootView = APIRootView


router = Router()
router.register("artworks", views.ArtworkViewSet, basename="artwork")
router.register("labels", views.LabelViewSet, basename="label")
router.register("collections", views.CollectionViewSet, basename="collection")
router.register("jobs", views.JobViewSet, basename="job")
router.register("classifiers", classifiers.ClassifierViewSet, basename="classifier")

urlpatterns = [
    path("search/", views.SearchView.as_view(), name="search"),
    path("search/facets/", views.FacetsView.as_view(), name="search-facets"),
    path("stats/", views.StatsView.as_view(), name="stats"),
    path("search/image/", views.ImageSearchView.as_view(), name="search-image"),
    path("search/colour/", discovery.ColourSearchView.as_view(), name="search-colour"),
    path("path/", discovery.PathView.as_view(), name="path"),
    path("timeline/", discovery.TimelineView.as_view(), name="timeline"),
    path("timeline/points/", discovery.TimelinePointsView.as_view(), name="timeline-points"),
    path("timeline/viewport/", discovery.TimelineViewportView.as_view(), name="timeline-viewport"),
    path("decisions/", views.DecisionView.as_view(), name="decisions"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", views.SwaggerView.as_view(url_name="explorer:api:schema"), name="docs"),
    path("", include(router.urls)),
]
