"""URLconf for browser tests: the project's routes, with MEDIA served from the *current*
MEDIA_ROOT (the project's media route fixes its folder at import; tests use a temporary one)."""
from django.conf import settings
from django.urls import include, path, re_path
from django.views.static import serve


def media(request, path):
    return serve(request, path, document_root=settings.MEDIA_ROOT)


urlpatterns = [
    re_path(r"^media/(?P<path>.*)$", media),
    path("", include("museum.urls")),
]
