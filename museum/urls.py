from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from museum import health
from explorer.login_throttle import LoginView

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("explorer.urls")),
]

if settings.DEBUG or settings.SERVE_MEDIA:
    import posixpath

    from django.http import Http404
    from django.views.static import serve

    from archive import storage

    # Paths an older version kept in the public folder that are private now (fitted map models,
    # fetched metadata files): never served, even before `manage.py upgrade_storage` moved them.
    PRIVATE_PREFIXES = ("maps/_models/", "imports/")

    def serve_media(request, path):
        """The public store's files, where it is a local folder (its folder is read per request, so
        a changed MEDIA_ROOT applies at once); another backend serves its own URLs."""
        clean = posixpath.normpath(path).lstrip("/")
        if clean.startswith(PRIVATE_PREFIXES) or clean.endswith(".pkl"):
            raise Http404("not a public file")
        root = storage.local_path(storage.public())
        if root is None:
            raise Http404("media are not served from here")
        return serve(request, path, document_root=root)

    urlpatterns += [path("media/<path:path>", serve_media)]
