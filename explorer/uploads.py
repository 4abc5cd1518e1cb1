"""One guard for every endpoint that accepts an image: limits enforced before spooling and before
decoding.

- Request size: :class:`UploadGuardMiddleware` (before the CSRF middleware, which parses the
  body) refuses a body whose declared length is over ``UPLOAD_MAX_BYTES`` (plus room for the
  multipart envelope) with a 413 before anything is read, and installs :class:`LimitedUploadHandler`
  as the only upload handler: files are kept in memory (never spooled to a temporary file) and the
  upload stops as soon as it passes the limit. Views ask :func:`too_large` afterwards.
- Declared pixels and per-request memory: :func:`open_checked` reads only the image header and
  refuses more than ``UPLOAD_MAX_PIXELS`` declared pixels, or a decode that would need more than
  ``UPLOAD_MAX_DECODE_BYTES`` (JPEGs are decoded at reduced size first, so large photos stay cheap).

The doppelganger page and API (:mod:`explorer.doppelganger.uploads`) use the same handler with
their own, smaller byte limit.
"""
from __future__ import annotations

import io
import warnings

from django.conf import settings
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, StopUpload
from django.http import JsonResponse
from django.shortcuts import render
from PIL import Image, UnidentifiedImageError

# Room for the multipart boundaries, headers and the small form fields around the file.
MULTIPART_SLACK = 64 * 1024
# Bytes per pixel of the decoded image, by Pillow mode (other modes: 4).
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "RGB": 3, "YCbCr": 3, "LAB": 3, "HSV": 3, "RGBA": 4, "CMYK": 4, "I;16": 2,
                    "I": 4, "F": 4, "LA": 2, "PA": 2}


class UploadRejected(Exception):
    """The upload cannot be used. ``message`` is for people, ``code`` for API clients."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def max_bytes() -> int:
    return int(getattr(settings, "UPLOAD_MAX_BYTES", 16 * 1024 * 1024))


def max_pixels() -> int:
    return int(getattr(settings, "UPLOAD_MAX_PIXELS", 40_000_000))


def max_decode_bytes() -> int:
    return int(getattr(settings, "UPLOAD_MAX_DECODE_BYTES", 128 * 1024 * 1024))


def declared_length(request) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None


def body_too_large(request, limit: int) -> bool:
    length = declared_length(request)
    return length is None or length > limit + MULTIPART_SLACK


class LimitedUploadHandler(FileUploadHandler):
    """Keeps uploaded files in memory and stops the upload once they pass ``limit`` bytes in all."""

    def __init__(self, request=None, limit: int | None = None, fields: tuple[str, ...] | None = None):
        super().__init__(request)
        self.limit = max_bytes() if limit is None else limit
        self.fields = fields
        self.too_large = False
        self.total = 0
        self.buffer: io.BytesIO | None = None

    def new_file(self, field_name, *args, **kwargs):
        if self.fields is not None and field_name not in self.fields:
            raise SkipFile()
        super().new_file(field_name, *args, **kwargs)
        self.buffer = io.BytesIO()

    def receive_data_chunk(self, raw_data, start):
        self.total += len(raw_data)
        if self.total > self.limit:
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
            file=self.buffer, field_name=self.field_name, name=self.file_name, content_type=self.content_type,
            size=file_size, charset=self.charset, content_type_extra=self.content_type_extra,
        )


def install(request, limit: int | None = None, fields: tuple[str, ...] | None = None) -> LimitedUploadHandler:
    """Make the limited in-memory handler the request's only upload handler (before the body is parsed)."""
    handler = LimitedUploadHandler(request, limit, fields)
    request.upload_handlers = [handler]
    return handler


def too_large(request) -> bool:
    """Whether an upload of this request was stopped at its limit."""
    handlers = getattr(request, "_upload_handlers", None) or []
    return any(getattr(h, "too_large", False) for h in handlers)


def too_large_message(limit: int | None = None) -> str:
    limit = max_bytes() if limit is None else limit
    return f"That file is too large. Please use one under {max(1, limit // (1024 * 1024))} MB."


class UploadGuardMiddleware:
    """Request size for every upload, before the body is read (see the module's docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        content_type = request.META.get("CONTENT_TYPE", "")
        if request.method in ("POST", "PUT", "PATCH") and content_type.startswith("multipart/"):
            limit = max(max_bytes(), _doppelganger_bytes())
            if body_too_large(request, limit):
                return refusal(request, UploadRejected("too_large", too_large_message(limit), 413))
            install(request, limit)
        return self.get_response(request)


def _doppelganger_bytes() -> int:
    return int(getattr(settings, "DOPPELGANGER_MAX_BYTES", 8 * 1024 * 1024))


def refusal(request, exc: UploadRejected):
    if request.path.startswith("/api/"):
        return JsonResponse({"error": exc.code, "detail": exc.message}, status=exc.status)
    return render(request, "413.html" if exc.status == 413 else "400.html", {"message": exc.message}, status=exc.status)


def open_checked(data: bytes, *, want: int | None = None, formats: tuple[str, ...] | None = None,
                 pixels: int | None = None, decode_bytes: int | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """The uploaded image opened (header only) and checked: declared pixels, then the memory its
    decode needs (after JPEG draft scaling to ``want`` px when given). Returns it, not yet loaded,
    with its declared size; load it after this returns."""
    pixels = max_pixels() if pixels is None else pixels
    decode_bytes = max_decode_bytes() if decode_bytes is None else decode_bytes
    if not data:
        raise UploadRejected("empty", "The file is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=formats)
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UploadRejected("not_an_image", "That file is not an image we can read.", 415) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise UploadRejected("not_an_image", "That image could not be read (it may be damaged or cut short).", 415) from None
    width, height = im.size
    if width <= 0 or height <= 0 or width * height > pixels:
        raise UploadRejected(
            "too_many_pixels",
            f"That image has too many pixels ({width}x{height}). Please use one under {pixels // 1_000_000} megapixels.",
            413,
        )
    if want and im.format in ("JPEG", "MPO") and max(width, height) > want:
        im.draft("RGB", (want, want))  # DCT scaling: decode no larger than needed
    frames = getattr(im, "n_frames", 1) if im.format in ("GIF", "PNG", "WEBP", "TIFF") else 1
    need = im.size[0] * im.size[1] * _BYTES_PER_PIXEL.get(im.mode, 4) * (2 if frames > 1 else 1)
    if need > decode_bytes:
        raise UploadRejected(
            "too_large_to_decode",
            f"That {im.format or ''} image ({width}x{height}) needs too much memory to decode. "
            "Please use a JPEG or a smaller image.".replace("  ", " "),
            413,
        )
    return im, (width, height)
