"""The demo's default source: public-domain works from the Art Institute of Chicago's open API.

:func:`fetch` pages through ``/artworks/search`` (public-domain works with an image), writes the
records to a JSON file under ``imports/`` of the private store (:mod:`archive.storage`) and returns a :class:`MetadataSource` that
imports it with the "aic" mapping (images from the AIC IIIF image server). Where the API cannot be
reached (a machine without internet access) it raises :class:`ApiUnavailable` with what to do.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from django.conf import settings

from archive import storage

from .metadata import IMPORTS_DIR, MetadataSource

DEFAULT_API_URL = "https://api.artic.edu/api/v1"
FIELDS = (
    "id,title,artist_display,artist_title,date_display,date_start,date_end,medium_display,image_id,credit_line,"
    "classification_title,artwork_type_title,place_of_origin,dimensions,is_public_domain,department_title,"
    "style_title,subject_titles,thumbnail"
)
PAGE = 100


class ApiUnavailable(Exception):
    pass


def api_url() -> str:
    return getattr(settings, "AIC_API_URL", DEFAULT_API_URL).rstrip("/")


def fetch(count: int, *, timeout: float = 10.0) -> Path:
    """Through the guarded client (:mod:`archive.fetch`), like every fetch of an import."""
    from urllib.parse import urlencode

    from archive import fetch as guarded

    base = api_url()
    records: list[dict] = []
    iiif_url = "https://www.artic.edu/iiif/2"
    page = 1
    headers = {"User-Agent": "museum-archive-importer (open-source; demo)"}
    while len(records) < count:
        params = {
            "query[bool][must][0][term][is_public_domain]": "true",
            "query[bool][must][1][exists][field]": "image_id",
            "fields": FIELDS,
            "limit": min(PAGE, count - len(records)) if page == 1 else PAGE,
            "page": page,
        }
        try:
            body = json.loads(guarded.fetch_bytes(
                f"{base}/artworks/search?{urlencode(params)}", max_bytes=50_000_000, headers=headers, timeout=timeout,
            ))
        except ValueError as exc:  # FetchError (refused, unreachable, HTTP status) or bad JSON
            raise ApiUnavailable(
                f"cannot reach the Art Institute of Chicago API at {base} ({exc}). "
                "This machine may have no internet access. Give a SOURCE instead: a folder of images, a metadata "
                "CSV/JSON/JSONL file or a IIIF manifest, e.g.  ./run manage import ../shared/data/artworks/aic-artwall"
            ) from None
        data = body.get("data") or []
        iiif_url = (body.get("config") or {}).get("iiif_url", iiif_url)
        if not data:
            break
        for row in data:
            if row.get("image_id"):
                row["image_url"] = f"{iiif_url}/{row['image_id']}/full/843,/0/default.jpg"
                records.append(row)
        page += 1
        time.sleep(0.2)  # be polite to a public API
    store = storage.private()
    target = f"{IMPORTS_DIR}/aic-api-{time.strftime('%Y%m%d-%H%M%S')}.json"
    storage.save(store, target, json.dumps({"data": records[:count], "config": {"iiif_url": iiif_url}}), overwrite=True)
    return storage.local_copy(store, target)


def source(count: int) -> MetadataSource:
    return MetadataSource(str(fetch(count)), mapping="aic")
