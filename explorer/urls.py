"""Explorer routes: public pages, the curator workspace, the operators' job dashboard and /api/v1/.
(The faces and map engineers each add one ``include`` line below; keep them.)"""
from django.urls import include, path

from . import api_faces
from .views import classifiers, content_search, curator, discovery, jobs, pages

app_name = "explorer"
urlpatterns = [
    path("", pages.home, name="home"),
    path("labels/", pages.label_list, name="labels"),
    path("labels/suggest/", pages.label_suggestions, name="label_suggestions"),
    path("labels/<slug:slug>/", pages.label_detail, name="label"),
    path("artworks/<int:pk>/", pages.artwork_detail, name="artwork"),
    path("artworks/<int:pk>/decide/", curator.decide, name="decide"),
    path("search/", pages.search, name="search"),
    path("search/image/", pages.search_image, name="search_image"),
    # IIIF Content Search 2.0 over the text in the images and the labels (docs/ocr.md).
    path("iiif/search", content_search.archive_search, name="iiif_search"),
    path("iiif/artwork/<int:pk>/search", content_search.artwork_search, name="iiif_artwork_search"),
    path("colours/", discovery.colour_page, name="colours"),
    path("path/", discovery.path_page, name="path"),
    path("timeline/", discovery.timeline_page, name="timeline"),
    path("curate/labels/new/", curator.prompt_label_new, name="prompt_label_new"),
    path("curate/labels/<slug:slug>/", curator.prompt_label_review, name="prompt_label_review"),
    path("curate/classifiers/", classifiers.classifier_list, name="classifiers"),
    path("curate/classifiers/examples/", classifiers.classifier_examples, name="classifier_examples_any"),
    path("curate/classifiers/<int:pk>/", classifiers.classifier_detail, name="classifier"),
    path("curate/classifiers/<int:pk>/examples/", classifiers.classifier_examples, name="classifier_examples"),
    path("curate/classifiers/<int:pk>/review/", classifiers.classifier_review, name="classifier_review"),
    path("curate/classifiers/<int:pk>/train/", classifiers.classifier_train, name="classifier_train"),
    path("curate/classifiers/<int:pk>/apply/", classifiers.classifier_apply, name="classifier_apply"),
    path("collections/", curator.collection_list, name="collections"),
    path("collections/save/", curator.collection_save, name="collection_save"),
    path("collections/<slug:slug>/", curator.collection_detail, name="collection"),
    path("collections/<slug:slug>/export.<str:fmt>", curator.collection_export, name="collection_export"),
    path("jobs/", jobs.job_list, name="jobs"),
    path("jobs/<int:pk>/", jobs.job_detail, name="job"),
    path("jobs/<int:pk>/<str:action>/", jobs.job_action, name="job_action"),
    path("api/v1/doppelganger/", api_faces.DoppelgangerView.as_view(), name="api-doppelganger"),
    path("api/v1/", include(("explorer.api.urls", "api"))),
    path("map/", include("explorer.map.urls")),
    path("iiif/", include("explorer.iiif.urls")),
    path("doppelganger/", include("explorer.doppelganger.urls")),
]
