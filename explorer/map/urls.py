from django.urls import path

from . import views

urlpatterns = [
    path("", views.map_page, name="map"),
    path("artwork/<int:pk>.json", views.artwork_info, name="map-artwork"),
    path("<slug:slug>/manifest.json", views.manifest, name="map-manifest"),
    path("<slug:slug>/search.json", views.search, name="map-search"),
    path("<slug:slug>/thumbs.json", views.thumbs, name="map-thumbs"),
    path("<slug:slug>/collections", views.save_collection, name="map-collection"),
]
