"""The public URLs of the IIIF resources: every ``id`` is the absolute URL the resource is served at,
built from ``IIIF_BASE_URL`` when it is set (the archive's public address behind a proxy or CDN),
else from the request."""
from __future__ import annotations

from django.conf import settings
from django.utils.text import slugify

PRESENTATION_CONTEXT = "http://iiif.io/api/presentation/3/context.json"
JSON_LD = f'application/ld+json;profile="{PRESENTATION_CONTEXT}"'


def base_url(request=None) -> str:
    configured = (getattr(settings, "IIIF_BASE_URL", "") or "").rstrip("/")
    if configured:
        return configured
    if request is None:
        raise ValueError("IIIF ids need a request or IIIF_BASE_URL")
    return request.build_absolute_uri("/").rstrip("/")


def absolute(base: str, url: str) -> str:
    """A URL of the public store (relative "/media/..." for a local folder) made absolute."""
    if url.startswith(("http://", "https://")):
        return url
    return f"{base}/{url.lstrip('/')}"


def manifest(base: str, artwork_id: int) -> str:
    return f"{base}/iiif/artwork/{artwork_id}/manifest.json"


def canvas(base: str, artwork_id: int) -> str:
    return f"{base}/iiif/artwork/{artwork_id}/canvas/1"


def search(base: str, artwork_id: int | None = None) -> str:
    """The IIIF Content Search 2.0 service of an artwork's manifest, or of the whole archive (the
    top collection's); see explorer/content_search.py."""
    return f"{base}/iiif/artwork/{artwork_id}/search" if artwork_id is not None else f"{base}/iiif/search"


def artwork_page(base: str, artwork_id: int) -> str:
    return f"{base}/artworks/{artwork_id}/"


def label_collection(base: str, slug: str, page: int | None = None) -> str:
    return _paged(f"{base}/iiif/label/{slug}/collection.json", page)


def curator_collection(base: str, slug: str, page: int | None = None) -> str:
    return _paged(f"{base}/iiif/collection/{slug}/collection.json", page)


def institution_slug(name: str) -> str:
    return slugify(name)[:200] or "unnamed"


def institution_collection(base: str, name_or_slug: str, page: int | None = None, *, is_slug: bool = False) -> str:
    slug = name_or_slug if is_slug else institution_slug(name_or_slug)
    return _paged(f"{base}/iiif/institution/{slug}/collection.json", page)


def top_collection(base: str) -> str:
    return f"{base}/iiif/collection.json"


def context(base: str) -> str:
    """The JSON-LD extension context of the project's own terms (the score of a machine label)."""
    return f"{base}/iiif/context.json"


def _paged(url: str, page: int | None) -> str:
    return f"{url}?page={page}" if page else url
