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

import io

from botocore.exceptions import ClientError
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

MISSING = {"404", "NoSuchKey", "NotFound"}


class S3Store(S3Storage):
    def read_bytes(self, name: str) -> bytes:
        """The object's bytes in one GET (FileNotFoundError when it is missing)."""
        key = self._normalize_name(clean_name(name))
        try:
            response = self.connection.meta.client.get_object(Bucket=self.bucket_name, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in MISSING:
                raise FileNotFoundError(f"s3://{self.bucket_name}/{key} does not exist") from None
            raise
        return response["Body"].read()

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
