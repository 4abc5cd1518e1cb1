"""One artwork as a IIIF Presentation 3.0 Manifest.

Everything the IIIF importer (:mod:`archive.importers.iiif`) reads back is here: the label (title),
``metadata`` pairs for each catalogue field and each field the record keeps in ``metadata``,
``rights`` (only a Creative Commons or RightsStatements.org URI, in their http form; the rights
text is a metadata pair, and so is the rights URL as recorded when it differs), ``requiredStatement`` (the credit line), ``navDate`` (the first year), ``homepage`` (the
artwork page here, then the record's page at its source), and one Canvas of the full image's size
painted with the largest derivative, which carries the source's IIIF image service when the
artwork has one. Machine labels are an AnnotationPage of ``tagging`` annotations whose
``creator`` is the model (type Software), see :mod:`explorer.iiif.annotations`.
"""
from __future__ import annotations

import re

from django.conf import settings

from archive.importers.mapping import as_text
from archive.models import Artwork

from .. import content_search
from . import ids
from .annotations import label_page
from .check import RIGHTS

# metadata keys that are the archive's bookkeeping or an earlier import's, not the record's fields.
INTERNAL_KEYS = {
    "field_sources", "enriched_from", "import_origin", "possible_matches", "canvas_size", "canvas", "image_url",
    "manifest_location", "iiif_version", "iiif_metadata", "summary",
}
# Catalogue columns as metadata pairs, labelled the way the importer's LABELS read them back.
FIELD_LABELS = (
    ("creator", "Creator"),
    ("display_date", "Date"),
    ("medium", "Medium"),
    ("classification", "Classification"),
    ("institution", "Institution"),
    ("credit_line", "Credit line"),
    ("rights", "Rights"),
    ("source_url", "Source"),
)


def lang(*values: str, language: str = "none") -> dict:
    return {language: [v for v in values]}


def rights_uri(url: str) -> str:
    """The value ``rights`` may hold for a stored rights URL: a Creative Commons or
    RightsStatements.org URI in the form they define it (http, trailing slash), else "" (any other
    rights text or URL stays a metadata pair)."""
    if not url:
        return ""
    canonical = re.sub(r"^https://", "http://", url.strip())
    canonical = canonical if canonical.endswith("/") else canonical + "/"
    return canonical if RIGHTS.match(canonical) else ""


def largest_size() -> int:
    return max(settings.DERIVATIVE_SIZES)


def derivative_size(artwork: Artwork, size: int) -> tuple[int, int]:
    """Width and height of the derivative of a long side ``size`` (never upscaled)."""
    width, height = artwork.width or size, artwork.height or size
    if max(width, height) <= size:
        return width, height
    scale = size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def metadata_pairs(artwork: Artwork) -> list[dict]:
    pairs = [{"label": lang("Identifier", language="en"), "value": lang(f"{artwork.source}:{artwork.source_id}")}]
    for field, label in FIELD_LABELS:
        value = getattr(artwork, field)
        if value:
            pairs.append({"label": lang(label, language="en"), "value": lang(str(value))})
    if artwork.rights_url and artwork.rights_url != rights_uri(artwork.rights_url):
        # The URL as recorded (https, another licence's page): ``rights`` has the canonical form or nothing.
        pairs.append({"label": lang("Rights URL", language="en"), "value": lang(artwork.rights_url)})
    for key, value in sorted((artwork.metadata or {}).items()):
        if key in INTERNAL_KEYS or key.endswith("_full") or value in (None, "", [], {}):
            continue
        if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
            values = [str(v) for v in value if str(v).strip()]
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            values = [str(value)]
        else:
            values = [as_text(value)]
        values = [v for v in values if v.strip()]
        if values:
            pairs.append({"label": lang(key, language="none"), "value": {"none": values}})
    return pairs


def image_body(artwork: Artwork, base: str) -> dict:
    size = largest_size()
    width, height = derivative_size(artwork, size)
    body = {
        "id": ids.absolute(base, artwork.derivative_url(size)), "type": "Image", "format": "image/jpeg",
        "width": width, "height": height,
    }
    if artwork.iiif_image_service:
        body["service"] = [image_service(artwork.iiif_image_service)]
    return body


def image_service(url: str) -> dict:
    """The source's image service. Its version is unknown without fetching its info.json; a ``/2/``
    or ``/3/`` in the URL (the usual layout, e.g. ``/iiif/2/ID``) tells it."""
    if re.search(r"/iiif/3/|/image/3/|/iiif3/", url):
        return {"id": url, "type": "ImageService3", "profile": "level1"}
    return {"id": url, "type": "ImageService2", "profile": "http://iiif.io/api/image/2/level1.json"}


def thumbnail(artwork: Artwork, base: str) -> list[dict]:
    width, height = derivative_size(artwork, 256)
    return [{"id": ids.absolute(base, artwork.thumbnail_url), "type": "Image", "format": "image/jpeg",
             "width": width, "height": height}]


def summary(artwork: Artwork) -> str:
    parts = [artwork.creator, artwork.display_date, artwork.medium]
    return ", ".join(p for p in parts if p)


def canvas(artwork: Artwork, base: str, model=None) -> dict:
    canvas_id = ids.canvas(base, artwork.pk)
    if artwork.has_image:
        width, height = artwork.width or 0, artwork.height or 0
        body = image_body(artwork, base)
        width, height = (width, height) if width and height else (body["width"], body["height"])
        painting = [{
            "id": f"{canvas_id}/annotation/image", "type": "Annotation", "motivation": "painting",
            "body": body, "target": canvas_id,
        }]
    else:
        # No image: an empty canvas, so that the record (metadata, rights) is still a valid Manifest.
        width, height, painting = 1000, 1000, []
    out = {
        "id": canvas_id, "type": "Canvas", "label": lang(artwork.title or f"Artwork {artwork.pk}"),
        "width": width, "height": height,
        "items": [{"id": f"{canvas_id}/page/painting", "type": "AnnotationPage", "items": painting}],
    }
    if artwork.has_image:
        out["thumbnail"] = thumbnail(artwork, base)
    tags = label_page(artwork, base, canvas_id, model)
    if tags is not None:
        out["annotations"] = [tags]
    return out


def build(artwork: Artwork, base: str, *, model=None) -> dict:
    """The artwork's Manifest; ``model`` is the embedding model whose labels are shown (the active one)."""
    manifest_id = ids.manifest(base, artwork.pk)
    title = artwork.title or f"Artwork {artwork.pk}"
    out = {
        "@context": [ids.context(base), ids.PRESENTATION_CONTEXT],
        "id": manifest_id,
        "type": "Manifest",
        "label": lang(title),
        "metadata": metadata_pairs(artwork),
    }
    text = summary(artwork)
    if text:
        out["summary"] = lang(text)
    rights = rights_uri(artwork.rights_url)
    if rights:
        out["rights"] = rights
    attribution = artwork.credit_line or artwork.institution
    if attribution:
        out["requiredStatement"] = {"label": lang("Attribution", language="en"), "value": lang(attribution)}
    if artwork.year_start is not None and 0 < artwork.year_start < 10000:
        out["navDate"] = f"{artwork.year_start:04d}-01-01T00:00:00Z"
    homepage = [{"id": ids.artwork_page(base, artwork.pk), "type": "Text", "label": lang(title), "format": "text/html"}]
    if artwork.source_url:
        homepage.append({"id": artwork.source_url, "type": "Text", "label": lang(f"{title} (source record)"), "format": "text/html"})
    out["homepage"] = homepage
    if artwork.has_image:
        out["thumbnail"] = thumbnail(artwork, base)
    out["seeAlso"] = [{"id": f"{base}/api/v1/artworks/{artwork.pk}/", "type": "Dataset", "format": "application/json",
                       "label": lang("The record in the archive's JSON API", language="en")}]
    # IIIF Content Search 2.0 over the text read in the image and the labels (explorer/content_search.py).
    out["service"] = [content_search.service(base, artwork.pk)]
    out["items"] = [canvas(artwork, base, model)]
    return out
