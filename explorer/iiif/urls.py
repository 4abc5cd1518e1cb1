from django.urls import path

from . import views

app_name = "iiif"
urlpatterns = [
    path("collection.json", views.top_collection, name="top"),
    path("context.json", views.context, name="context"),
    path("labels/collection.json", views.labels_collection, name="labels"),
    path("artwork/<int:pk>/manifest.json", views.artwork_manifest, name="manifest"),
    path("label/<slug:slug>/collection.json", views.label_collection, name="label"),
    path("collection/<slug:slug>/collection.json", views.curator_collection, name="collection"),
    path("institution/<slug:slug>/collection.json", views.institution_collection, name="institution"),
    path("activity/all-changes.json", views.activity_stream, name="activity"),
    path("activity/page/<int:number>.json", views.activity_page, name="activity_page"),
    path("viewer/", views.viewer, name="viewer"),
]
