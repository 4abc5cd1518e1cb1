"""``STORAGE_URL`` and friends into Django ``STORAGES`` entries for S3-compatible object storage.

``STORAGE_URL=s3://BUCKET[/PREFIX][?endpoint=URL&region=NAME&cdn=DOMAIN]`` puts the public store
(derivatives, face crops, map exports) in that bucket; ``PRIVATE_STORAGE_URL`` (same form) the
private one (fetched import files). Without ``PRIVATE_STORAGE_URL`` both share the bucket: the
public files under ``PREFIX`` (default ``public``), the private ones under ``private`` — then the
bucket policy must make only the public prefix readable. ``STORAGE_ENDPOINT_URL``,
``STORAGE_REGION`` and ``STORAGE_CDN_DOMAIN`` override the query parameters;
``STORAGE_CACHE_CONTROL`` is the public objects' ``Cache-Control``. Credentials come from boto3's
usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, an instance role).
Imported by ``museum/settings.py``: plain parsing, no Django.
"""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

PUBLIC_BACKEND = "archive.storage_s3.PublicS3Storage"
PRIVATE_BACKEND = "archive.storage_s3.PrivateS3Storage"
DEFAULT_CACHE_CONTROL = "public, max-age=86400"


def parse(url: str) -> dict:
    """``{"bucket", "prefix", "endpoint", "region", "cdn"}`` of an ``s3://`` URL."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"storage URL {url!r}: expected s3://BUCKET[/PREFIX][?endpoint=...&region=...&cdn=...]")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"endpoint", "region", "cdn"}
    if unknown:
        raise ValueError(f"storage URL {url!r}: unknown parameter(s) {', '.join(sorted(unknown))}")
    return {"bucket": parts.netloc, "prefix": parts.path.strip("/"), **{k: query.get(k) for k in ("endpoint", "region", "cdn")}}


def stores(environ) -> dict:
    """The ``default`` (public) and ``private`` STORAGES entries, or {} without ``STORAGE_URL``."""
    if not environ.get("STORAGE_URL"):
        return {}
    public = parse(environ["STORAGE_URL"])
    private = parse(environ["PRIVATE_STORAGE_URL"]) if environ.get("PRIVATE_STORAGE_URL") else None
    if private is None:
        public["prefix"] = public["prefix"] or "public"
        private = {**public, "prefix": "private", "cdn": None}
    if public["bucket"] == private["bucket"]:
        a, b = public["prefix"], private["prefix"]
        if a == b or not a or not b or a.startswith(b + "/") or b.startswith(a + "/"):
            raise ValueError(
                f"the public ({a or 'the whole bucket'}) and private ({b or 'the whole bucket'}) stores overlap in "
                f"bucket {public['bucket']!r}: give each its own prefix or bucket"
            )
    common = {
        "endpoint_url": environ.get("STORAGE_ENDPOINT_URL") or public["endpoint"],
        "region_name": environ.get("STORAGE_REGION") or public["region"],
    }
    if common["endpoint_url"]:
        common["addressing_style"] = "path"  # MinIO, Ceph, moto: bucket in the path, not the host name

    def options(where: dict, **extra) -> dict:
        return {k: v for k, v in {"bucket_name": where["bucket"], "location": where["prefix"], **common, **extra}.items() if v}

    return {
        "default": {
            "BACKEND": PUBLIC_BACKEND,
            "OPTIONS": options(
                public,
                custom_domain=environ.get("STORAGE_CDN_DOMAIN") or public["cdn"],
                object_parameters={"CacheControl": environ.get("STORAGE_CACHE_CONTROL") or DEFAULT_CACHE_CONTROL},
            ),
        },
        "private": {"BACKEND": PRIVATE_BACKEND, "OPTIONS": options(private)},
    }
