"""/api/v1/ routes."""
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from . import classifiers, discovery, views

router = DefaultRouter()
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
    path("decisions/", views.DecisionView.as_view(), name="decisions"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", views.SwaggerView.as_view(url_name="explorer:api:schema"), name="docs"),
    path("", include(router.urls)),
]
