from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from explorer.login_throttle import LoginView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("explorer.urls")),
]

if settings.DEBUG or settings.SERVE_MEDIA:
    import posixpath

    from django.http import Http404
    from django.views.static import serve

    def serve_media(request, path, document_root=None):
        # Fitted map models live outside MEDIA_ROOT (MAP_MODEL_ROOT); an older version kept them
        # under maps/_models/, and a pickle left there must not be served.
        clean = posixpath.normpath(path).lstrip("/")
        # Fetched metadata files were once kept under imports/ (now PRIVATE_ROOT): never served.
        if clean.startswith(("maps/_models/", "imports/")) or clean.endswith(".pkl"):
            raise Http404("not a public file")
        return serve(request, path, document_root=document_root)

    urlpatterns += [path("media/<path:path>", serve_media, {"document_root": settings.MEDIA_ROOT})]
