"""Keep an uploaded photo in memory only, and refuse it once it is over the size limit.

Django's default upload handlers spool files over 2.5 MB to a temporary file on disk; the
doppelganger views install :class:`SelfieUploadHandler` as their only handler, so the photo's
bytes live in a ``BytesIO`` for the length of the request and nowhere else. Bodies whose declared
length is over the limit are refused before anything is read (:func:`body_too_large`).
"""
from __future__ import annotations

import io

from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, StopUpload

from .service import max_upload_bytes

FIELDS = ("photo", "image")
# Room for the multipart boundaries, headers and the small form fields around the file.
MULTIPART_SLACK = 64 * 1024


def body_too_large(request) -> bool:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return True
    return length > max_upload_bytes() + MULTIPART_SLACK


class SelfieUploadHandler(FileUploadHandler):
    """An in-memory upload handler for one photo field with a hard byte limit."""

    def __init__(self, request=None):
        super().__init__(request)
        self.limit = max_upload_bytes()
        self.too_large = False
        self.buffer: io.BytesIO | None = None
        self.size = 0

    def new_file(self, field_name, *args, **kwargs):
        if field_name not in FIELDS:
            raise SkipFile()
        super().new_file(field_name, *args, **kwargs)
        self.buffer = io.BytesIO()
        self.size = 0

    def receive_data_chunk(self, raw_data, start):
        self.size += len(raw_data)
        if self.size > self.limit:
            self.too_large = True
            self.buffer = None
            raise StopUpload(connection_reset=False)
        self.buffer.write(raw_data)
        return None

    def file_complete(self, file_size):
        if self.buffer is None:
            return None
        self.buffer.seek(0)
        return InMemoryUploadedFile(
            file=self.buffer,
            field_name=self.field_name,
            name=self.file_name,
            content_type=self.content_type,
            size=file_size,
            charset=self.charset,
            content_type_extra=self.content_type_extra,
        )


def install(request) -> SelfieUploadHandler:
    """Make the in-memory handler the request's only upload handler (before the body is parsed)."""
    handler = SelfieUploadHandler(request)
    request.upload_handlers = [handler]
    return handler
