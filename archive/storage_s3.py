"""S3-compatible object storage for the public and private stores (django-storages over boto3).

Selected by ``STORAGE_URL`` (see :mod:`museum.object_storage` and docs/deploy.md); any service that
speaks the S3 API works (AWS S3, MinIO, Ceph, R2, moto in the tests).

* :class:`PublicS3Storage` — derivatives, face crops, map exports. Plain URLs (no signature) on the
  bucket's endpoint or the CDN domain; the bucket (or its public prefix) must be readable by
  anyone, by bucket policy. Objects get a ``Cache-Control`` header.
* :class:`PrivateS3Storage` — fetched import files. No URL at all (like the private folder), so
  nothing a page renders can point at it; the bucket (or prefix) must not be public.

Reads are one GET each (:meth:`read_bytes`; django-storages' own ``open`` makes a HEAD first and
spools to a temporary file), so a worker's decode threads read many files at once without waiting
on extra round trips. boto3 clients are thread-safe; django-storages keeps one per thread.
"""
from __future__ import annotations

import functools
import io
import threading

from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError, HTTPClientError
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

from archive.storage import StoreUnavailable

MISSING = {"404", "NoSuchKey", "NotFound"}
UNAVAILABLE = {"SlowDown", "ServiceUnavailable", "RequestTimeout", "Throttling", "InternalError", "503", "500"}
# Fail fast on an unreachable endpoint (botocore's defaults wait 60 s per connection attempt), retry
# a few times with back-off (botocore's standard mode), and keep enough connections per client
# for a worker's reading threads.
CLIENT = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=64)


def _reachable(method):
    """Turn "could not reach the store" into :class:`StoreUnavailable` (a transient error)."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (BotoConnectionError, HTTPClientError) as exc:
            raise StoreUnavailable(f"{self.describe()} could not be reached: {exc}") from exc
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            if error.get("Code") in UNAVAILABLE or status >= 500:
                raise StoreUnavailable(f"{self.describe()} is unavailable: {error.get('Code')} {error.get('Message', '')}") from exc
            raise

    return call


class S3Store(S3Storage):
    def __init__(self, **settings):
        super().__init__(**settings)
        self.client_config = self.client_config.merge(CLIENT)
        self._client = None
        self._client_lock = threading.Lock()

    @property
    def client(self):
        """One boto3 client for every thread (clients are thread-safe; django-storages builds a
        resource per thread, which costs a tenth of a second of CPU each)."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self.connection.meta.client
        return self._client

    @_reachable
    def read_bytes(self, name: str) -> bytes:
        """The object's bytes in one GET (FileNotFoundError when it is missing)."""
        key = self._normalize_name(clean_name(name))
        try:
            response = self.client.get_object(Bucket=self.bucket_name, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in MISSING:
                raise FileNotFoundError(f"s3://{self.bucket_name}/{key} does not exist") from None
            raise
        return response["Body"].read()

    exists = _reachable(S3Storage.exists)
    _save = _reachable(S3Storage._save)
    _open = _reachable(S3Storage._open)
    delete = _reachable(S3Storage.delete)
    listdir = _reachable(S3Storage.listdir)
    size = _reachable(S3Storage.size)

    def open_bytes(self, name: str) -> io.BytesIO:
        return io.BytesIO(self.read_bytes(name))

    def describe(self) -> str:
        return f"s3://{self.bucket_name}/{self.location}".rstrip("/")


class PublicS3Storage(S3Store):
    """The public store: plain URLs (bucket endpoint or ``custom_domain``, the CDN)."""

    querystring_auth = False


class PrivateS3Storage(S3Store):
    """The private store: files only the workers read; they have no URL."""

    def url(self, name, *args, **kwargs):
        raise ValueError("the private store's files have no URL")
