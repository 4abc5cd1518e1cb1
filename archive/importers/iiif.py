"""IIIF Presentation API manifests (v2 and v3), single or in a collection, from a file or a URL.

From each manifest: label, metadata pairs, rights / license, requiredStatement / attribution,
homepage / related, the image of the first canvas (or, with ``canvases="all"``, one artwork per
canvas) and its image service (v2 ``service.@id``, v3 ``service[].id``). A manifest that cannot
be read or understood is one JobError with the reason; the other manifests of a collection go on.

When an image has an image service, the image is requested from it at a bounded size
(``full/!2048,2048/0/default.jpg``, the same syntax in Image API 2 and 3: fit within, never
upscaled) instead of the full resolution, which can be hundreds of megapixels; the annotation's own
image URL is the fallback. The derivatives need no more than that.
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urljoin

from .base import Record, RecordError, Source
from .policy import Refused, SourcePolicy

V2 = "http://iiif.io/api/presentation/2"
V3 = "http://iiif.io/api/presentation/3"
MAX_DEPTH = 4
# Long side requested from an image service: twice the largest derivative.
SERVICE_IMAGE_SIZE = 2048

_TAG = re.compile(r"<[^>]+>")

# Metadata labels (lower case) that fill Artwork fields.
LABELS = {
    "creator": ("artist", "creator", "author", "maker", "artist/maker", "painter", "photographer", "attribution"),
    "display_date": ("date", "dated", "created", "date created", "creation date", "object date", "date made"),
    "medium": ("medium", "technique", "materials", "material", "medium/technique"),
    "classification": ("type", "classification", "object type", "genre", "object name"),
    "institution": ("repository", "institution", "holding institution", "museum", "collection"),
    "credit_line": ("credit line", "credit"),
    "rights": ("rights", "rights statement", "license", "licence", "copyright"),
    "source_url": ("source", "source url", "source record", "record"),
    "rights_url": ("rights url", "rights uri", "license url", "licence url"),
}
# Fields that take a pair's value only when it is a URL.
URL_LABEL_FIELDS = {"source_url", "rights_url"}
# metadata keys of the import's own; a metadata pair of that name does not replace them.
RESERVED_KEYS = {
    "iiif_version", "iiif_metadata", "summary", "manifest_location", "canvas", "image_url", "canvas_size",
    "import_origin", "field_sources", "enriched_from", "possible_matches",
}
_KEY = re.compile(r"[^a-z0-9]+")
_NAV_YEAR = re.compile(r"^(-?\d{1,6})-\d\d-\d\d")


class ManifestProblem(Exception):
    pass


def is_iiif(document: Any) -> bool:
    if not isinstance(document, dict):
        return False
    context = document.get("@context")
    contexts = context if isinstance(context, list) else [context]
    return any(isinstance(c, str) and "iiif.io/api/presentation" in c for c in contexts)


def version(document: dict) -> int:
    context = document.get("@context")
    contexts = context if isinstance(context, list) else [context]
    if any(isinstance(c, str) and c.startswith(V3) for c in contexts):
        return 3
    if any(isinstance(c, str) and c.startswith(V2) for c in contexts):
        return 2
    return 3 if "type" in document and "@type" not in document else 2


def load(location: str, timeout: float | None = None) -> Any:
    """Parse a manifest/collection from a path, file:// URL or http(s) URL; ValueError with the reason.
    URLs go through the guarded client (:mod:`archive.fetch`), capped at ``MAX_MANIFEST_BYTES``."""
    if location.startswith(("http://", "https://")):
        from django.conf import settings

        from archive import fetch

        data = fetch.fetch_bytes(
            location, max_bytes=int(getattr(settings, "MAX_MANIFEST_BYTES", 100_000_000)), what="manifests",
            limit_name="MAX_MANIFEST_BYTES", headers={"Accept": "application/ld+json, application/json"}, timeout=timeout,
        )
    else:
        path = Path(location[7:] if location.startswith("file://") else location)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read {location}: {exc.strerror or exc}") from None
    if not data.strip():
        raise ValueError("the manifest is empty")
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid UTF-8 text (bad encoding at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


# --- value helpers ------------------------------------------------------------------------------------

def text(value: Any, lang: str = "en") -> str:
    """A display string from a v2 value (string, list, {"@value"}) or a v3 language map."""
    if value is None:
        return ""
    if isinstance(value, (str, int, float)):
        return _clean(str(value))
    if isinstance(value, list):
        parts = [text(v, lang) for v in value]
        preferred = [text(v, lang) for v in value if isinstance(v, dict) and v.get("@language", "").startswith(lang)]
        return "; ".join(p for p in (preferred or parts) if p)
    if isinstance(value, dict):
        if "@value" in value:
            return _clean(str(value["@value"]))
        for key in (lang, "none", *value.keys()):
            if key in value:
                return text(value[key], lang)
    return ""


def _clean(value: str) -> str:
    return html.unescape(_TAG.sub("", value)).strip()


def _id(obj: Any) -> str:
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict):
        value = obj.get("id") or obj.get("@id") or ""
        return value if isinstance(value, str) else ""
    return ""


def _as_list(value: Any, what: str) -> list:
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise ManifestProblem(f"{what} must be a list, found {type(value).__name__}")
    return value


# --- parsing ------------------------------------------------------------------------------------------

def canvases(manifest: dict, ver: int) -> list[dict]:
    if ver == 3:
        items = manifest.get("items")
        if items is None:
            raise ManifestProblem("the manifest has no 'items' (no canvases)")
        found = _as_list(items, "'items'")
    else:
        sequences = _as_list(manifest.get("sequences"), "'sequences'")
        if not sequences:
            raise ManifestProblem("the manifest has no 'sequences' (no canvases)")
        if not isinstance(sequences[0], dict):
            raise ManifestProblem(f"'sequences' must hold objects, found {type(sequences[0]).__name__}")
        found = _as_list(sequences[0].get("canvases"), "'canvases'")
    found = [c for c in found if isinstance(c, dict)]
    if not found:
        raise ManifestProblem("the manifest has no canvases")
    return found


def canvas_image(canvas: dict, ver: int) -> tuple[str, str]:
    """(image URL, image service URL) of a canvas; raises ManifestProblem when it has no image."""
    if ver == 3:
        pages = _as_list(canvas.get("items"), "canvas 'items'")
        annotations = _as_list(pages[0].get("items"), "annotation page 'items'") if pages and isinstance(pages[0], dict) else []
        bodies = []
        for annotation in annotations:
            if isinstance(annotation, dict):
                body = annotation.get("body")
                if isinstance(body, dict) and body.get("type") == "Choice":
                    bodies.extend(_as_list(body.get("items"), "choice 'items'"))
                else:
                    bodies.extend(_as_list(body, "annotation 'body'"))
        resource = next((b for b in bodies if isinstance(b, dict) and b.get("type", "Image") == "Image"), None)
    else:
        images = _as_list(canvas.get("images"), "canvas 'images'")
        resource = images[0].get("resource") if images and isinstance(images[0], dict) else None
        if isinstance(resource, dict) and resource.get("@type") == "oa:Choice":
            resource = resource.get("default")
    if not isinstance(resource, dict):
        raise ManifestProblem(f"canvas {_id(canvas) or ''} has no image".replace("  ", " "))
    services = resource.get("service")
    service = ""
    for svc in services if isinstance(services, list) else [services]:
        service = _id(svc)
        if service:
            break
    url = _id(resource)
    if not url and service:
        url = bounded_image_url(service)
    if not url:
        raise ManifestProblem(f"the image of canvas {_id(canvas)} has no id/URL")
    return url, service


def bounded_image_url(service: str, size: int = SERVICE_IMAGE_SIZE) -> str:
    """The image service's URL for the whole image fitted within size x size (Image API 2 and 3)."""
    return f"{service.rstrip('/')}/full/!{size},{size}/0/default.jpg"


def _pairs(manifest: dict) -> list[tuple[str, str, list[str]]]:
    """(label, value text, the value's separate strings) of each metadata pair."""
    metadata = manifest.get("metadata")
    if not isinstance(metadata, list):
        return []
    pairs = []
    for entry in metadata:
        if isinstance(entry, dict):
            label, value = text(entry.get("label")), text(entry.get("value"))
            if label and value:
                pairs.append((label, value, _values(entry.get("value")) or [value]))
    return pairs


def _values(value: Any, lang: str = "en") -> list[str]:
    """The strings of a v3 language map's preferred language (or a v2 list), each on its own."""
    if isinstance(value, dict) and "@value" not in value:
        for key in (lang, "none", *value.keys()):
            if isinstance(value.get(key), list):
                return [t for t in (text(v) for v in value[key]) if t]
        return []
    if isinstance(value, list):
        return [t for t in (text(v) for v in value) if t]
    return []


def metadata_key(label: str) -> str:
    """The ``metadata`` key of a metadata pair: its label in lower case, words joined by _."""
    return _KEY.sub("_", label.lower()).strip("_")[:100]


def _nav_year(value: Any) -> int | None:
    match = _NAV_YEAR.match(value) if isinstance(value, str) else None
    return int(match.group(1)) if match else None


def manifest_fields(manifest: dict, ver: int, location: str) -> dict:
    pairs = _pairs(manifest)
    fields: dict[str, Any] = {"title": text(manifest.get("label"))}
    # Pairs that name no catalogue field are kept in metadata under their label (every value).
    extra: dict[str, Any] = {}
    for label, value, values in pairs:
        field = next((f for f, names in LABELS.items() if label.lower() in names), None)
        if field in URL_LABEL_FIELDS and not value.startswith(("http://", "https://")):
            field = None
        if field is not None and field not in fields:
            fields[field] = value
        else:  # no catalogue field, or one already read: the pair is a field of the record's own
            key = metadata_key(label)
            if key and key not in RESERVED_KEYS and key not in extra:
                extra[key] = values[0] if len(values) == 1 else values
    if ver == 3:
        rights = manifest.get("rights")
        if isinstance(rights, str):
            fields.setdefault("rights_url", rights)  # a "Rights URL" pair is the URL as its source recorded it
            fields.setdefault("rights", rights)
        required = manifest.get("requiredStatement")
        if isinstance(required, dict):
            # An attribution that only names the institution already read is not a credit line.
            statement = text(required.get("value"))
            if statement != fields.get("institution"):
                fields.setdefault("credit_line", statement)
        homepage = manifest.get("homepage")
        homepages = homepage if isinstance(homepage, list) else [homepage]
        fields.setdefault("source_url", next((_id(h) for h in homepages if _id(h)), ""))
        year = _nav_year(manifest.get("navDate"))
        if year is not None:
            fields["year_start"] = year
        providers = manifest.get("provider")
        if isinstance(providers, list) and providers and isinstance(providers[0], dict):
            fields.setdefault("institution", text(providers[0].get("label")))
        summary = text(manifest.get("summary"))
    else:
        license_ = manifest.get("license")
        license_ = license_[0] if isinstance(license_, list) and license_ else license_
        if isinstance(license_, str):
            fields.setdefault("rights", license_)
            if license_.startswith(("http://", "https://")):
                fields["rights_url"] = license_
        attribution = text(manifest.get("attribution"))
        if attribution:
            fields.setdefault("credit_line", attribution)
        related = manifest.get("related")
        related = related[0] if isinstance(related, list) and related else related
        fields.setdefault("source_url", _id(related))
        summary = text(manifest.get("description"))
    manifest_id = _id(manifest)
    if manifest_id.startswith(("http://", "https://")):
        fields["iiif_manifest_url"] = manifest_id
    elif location.startswith(("http://", "https://")):
        fields["iiif_manifest_url"] = location
    fields["metadata"] = {
        **extra,
        "iiif_version": ver,
        "iiif_metadata": [{"label": k, "value": v} for k, v, _ in pairs],
        **({"summary": summary} if summary else {}),
        "manifest_location": location,
    }
    return {k: v for k, v in fields.items() if v not in (None, "")}


class IIIFSource(Source):
    kind = "iiif"

    def __init__(self, location: str, *, canvases: str = "first", source: str | None = None):
        if canvases not in ("first", "all"):
            raise ValueError("canvases must be 'first' or 'all'")
        self.location = str(location)
        self.canvases = canvases
        self.source = source or "iiif"
        self._document = None
        # A manifest given as a local file may reference files in its folder; a fetched one only URLs.
        remote = self.location.startswith(("http://", "https://"))
        self.policy = SourcePolicy() if remote else SourcePolicy.for_root(Path(_local(self.location)).resolve().parent)

    def params(self) -> dict:
        return {"location": self.location, "canvases": self.canvases, "source": self.source}

    def describe(self) -> str:
        return f"IIIF {self.location}"

    def _load(self) -> Any:
        if self._document is None:
            self._document = load(self.location)
        return self._document

    def count(self) -> int | None:
        try:
            document = self._load()
        except ValueError:
            return 1
        if isinstance(document, dict) and _kind(document) == "collection":
            return len(_collection_refs(document)) if self.canvases == "first" else None
        if self.canvases == "first":
            return 1
        try:
            return len(canvases(document, version(document)))
        except (ManifestProblem, AttributeError):
            return 1

    def records(self, positions: set[int] | None = None) -> Iterator[Record | RecordError]:
        yield from self._from_location(self.location, depth=0, document=self._document)

    def _payload(self, location: str) -> dict:
        return {"kind": "reread", "importer": "iiif", "params": {**self.params(), "location": location}, "position": None}

    def _from_location(self, location: str, depth: int, document: Any = None) -> Iterator[Record | RecordError]:
        if document is None:
            try:
                document = load(location)
            except ValueError as exc:
                yield RecordError(location, f"IIIF manifest: {exc}", payload=self._payload(location))
                return
        if not isinstance(document, dict):
            yield RecordError(location, f"IIIF manifest must be a JSON object, found {type(document).__name__}", payload=self._payload(location))
            return
        kind = _kind(document)
        if kind == "collection":
            if depth >= MAX_DEPTH:
                yield RecordError(location, f"IIIF collection nested deeper than {MAX_DEPTH} levels", payload=self._payload(location))
                return
            refs = _collection_refs(document)
            if not refs:
                yield RecordError(location, "IIIF collection lists no manifests", payload=self._payload(location))
            for ref in refs:
                child = _resolve(location, ref)
                try:
                    child = self.policy.check(child)
                except Refused as exc:
                    yield RecordError(child, f"IIIF collection: {exc}", payload=self._payload(location))
                    continue
                yield from self._from_location(child, depth + 1)
            return
        if kind != "manifest":
            yield RecordError(
                location, f"not a IIIF manifest or collection (type {document.get('type') or document.get('@type')!r})",
                payload=self._payload(location),
            )
            return
        try:
            yield from self._manifest_records(document, location)
        except ManifestProblem as exc:
            yield RecordError(location, f"IIIF manifest: {exc}", payload=self._payload(location))

    def _manifest_records(self, manifest: dict, location: str) -> Iterator[Record | RecordError]:
        ver = version(manifest)
        fields = manifest_fields(manifest, ver, location)
        found = canvases(manifest, ver)
        manifest_id = _id(manifest) or location
        if self.canvases == "first":
            if len(found) == 1 and _unpainted(found[0], ver):
                # A record published without an image (an empty painting page): its metadata alone.
                yield Record(source=self.source, source_id=str(manifest_id)[:512],
                             fields={**fields, "metadata": {**fields.get("metadata", {}), "canvas": _id(found[0])}},
                             images=[], has_metadata=True, item=location, roots=self.policy.root_list())
                return
            url, service = canvas_image(found[0], ver)
            yield self._record(manifest_id, fields, url, service, location, found[0], ver)
            return
        for index, canvas in enumerate(found, start=1):
            try:
                url, service = canvas_image(canvas, ver)
            except ManifestProblem as exc:
                yield RecordError(f"{location} canvas {index}", f"IIIF manifest: {exc}", payload=self._payload(location))
                continue
            canvas_id = _id(canvas) or f"{manifest_id}#canvas={index}"
            canvas_fields = dict(fields)
            label = text(canvas.get("label"))
            if label and len(found) > 1:
                canvas_fields["title"] = f"{fields.get('title', '')} — {label}".strip(" —")
            yield self._record(canvas_id, canvas_fields, url, service, location, canvas, ver)

    def _record(self, source_id, fields, url, service, location, canvas, ver) -> Record:
        fields = dict(fields)
        fields["metadata"] = {**fields.get("metadata", {}), "canvas": _id(canvas), "image_url": url}
        size = _size(canvas)
        if size:
            fields["metadata"]["canvas_size"] = size  # the full image's size; a service image is smaller
        images = [_resolve(location, url)]
        if service:
            fields["iiif_image_service"] = service
            if service.startswith(("http://", "https://")):
                bounded = bounded_image_url(service)
                images = [bounded] + [i for i in images if i != bounded]
        return Record(
            source=self.source, source_id=str(source_id)[:512], fields=fields,
            images=images, has_metadata=True, item=f"{location} ({url})", roots=self.policy.root_list(),
        )


def _unpainted(canvas: dict, ver: int) -> bool:
    """A v3 canvas whose painting pages are there and all empty: no image on purpose."""
    pages = canvas.get("items")
    return (ver == 3 and isinstance(pages, list) and bool(pages)
            and all(isinstance(p, dict) and p.get("items") == [] for p in pages))


def _size(canvas: dict) -> list[int] | None:
    width, height = canvas.get("width"), canvas.get("height")
    if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
        return [width, height]
    return None


def _kind(document: dict) -> str:
    value = document.get("type") or document.get("@type") or ""
    value = value if isinstance(value, str) else ""
    value = value.split(":")[-1].lower()
    return {"manifest": "manifest", "collection": "collection"}.get(value, value)


def _collection_refs(document: dict) -> list[str]:
    refs = []
    keys = ("items",) if version(document) == 3 else ("manifests", "collections", "members")
    entries = []
    for key in keys:
        value = document.get(key)
        if isinstance(value, list):
            entries.extend(value)
    for entry in entries:
        ref = _id(entry)
        if ref:
            refs.append(ref)
    return refs


def _local(location: str) -> str:
    return location[7:] if location.startswith("file://") else location


def _resolve(base: str, ref: str) -> str:
    """A reference relative to the manifest's own location (for local files and relative URLs)."""
    if ref.startswith(("http://", "https://", "/")) or ref.startswith("file://"):
        return ref[7:] if ref.startswith("file://") else ref
    if base.startswith(("http://", "https://")):
        return urljoin(base, ref)
    return str((Path(base).parent / ref).resolve())
