"""Open, validate and normalise artwork images; hash them and write their derivatives.

Everything here is plain Python (no database), so importers, workers, tests and benchmarks call the
same functions. Derivatives are JPEG files named by the content's sha256 under ``derivatives/`` of
the public store (:mod:`archive.storage`; by default the folder MEDIA_ROOT): identical content is
stored once, and the ML workers read these files rather than the (possibly huge) originals.
Functions taking ``media_root`` accept a store, a local folder, or None for the public store.
"""
from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import imagehash
import pillow_heif
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from . import storage

# Never let Pillow silently accept a truncated file, and do our own bomb check (see open_image).
ImageFile.LOAD_TRUNCATED_IMAGES = False
Image.MAX_IMAGE_PIXELS = None
# HEIC/HEIF (phone photos) through pillow-heif's Pillow plugin.
pillow_heif.register_heif_opener()

DERIVATIVE_DIR = "derivatives"
JPEG_QUALITY = 85


class ImageRejected(Exception):
    """The input cannot be ingested. ``str(exc)`` is a short reason an operator can act on."""


@dataclass(frozen=True)
class ImageLimits:
    max_pixels: int = 1_000_000_000  # declared size above which a file is a decompression bomb
    max_decode_pixels: int = 300_000_000  # non-JPEG files above this cannot be decoded at reduced size
    max_bytes: int = 1_000_000_000
    http_timeout: float = 30.0

    @classmethod
    def from_settings(cls) -> "ImageLimits":
        from django.conf import settings

        return cls(
            max_pixels=settings.MAX_IMAGE_PIXELS,
            max_decode_pixels=settings.MAX_DECODE_PIXELS,
            max_bytes=settings.MAX_IMAGE_BYTES,
            http_timeout=settings.HTTP_TIMEOUT,
        )


@dataclass(frozen=True)
class IngestedImage:
    sha256: str
    phash: int  # signed 64-bit, fits a PostgreSQL bigint
    width: int  # of the original, after EXIF orientation
    height: int
    format: str
    mode: str
    frames: int

    @property
    def phash_bits(self) -> list[float]:
        return phash_bits(self.phash)


# --- reading ------------------------------------------------------------------------------------

def is_url(location: str) -> bool:
    return urlparse(location).scheme in ("http", "https")


def read_bytes(location: str, limits: ImageLimits) -> bytes:
    """Read a local file or download a URL, refusing empty and oversized content."""
    data = _download(location, limits) if is_url(location) else _read_file(location, limits)
    if not data:
        raise ImageRejected("empty file (0 bytes)")
    return data


_SPECIAL = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
            (stat.S_ISSOCK, "a socket"))


def _not_regular(mode: int, location: str) -> ImageRejected | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return ImageRejected(f"not a file (a directory): {location}")
    kind = next((name for test, name in _SPECIAL if test(mode)), "not a regular file")
    return ImageRejected(f"not a regular file ({kind}): {location}")


def _open_fd(location: str) -> int:
    """Open for reading without ever blocking (a FIFO opened this way returns at once)."""
    return os.open(location, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))


def _read_file(location: str, limits: ImageLimits) -> bytes:
    """The bytes of a regular file. FIFOs, devices and sockets are refused before they are opened
    (reading a FIFO would wait for a writer forever) and checked again on the open file."""
    try:
        rejected = _not_regular(os.stat(location).st_mode, location)
        if rejected:
            raise rejected
        fd = _open_fd(location)
    except FileNotFoundError:
        raise ImageRejected(f"file not found: {location}") from None
    except OSError as exc:
        raise ImageRejected(f"cannot read {location}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        rejected = _not_regular(info.st_mode, location)
        if rejected:
            raise rejected
        if info.st_size > limits.max_bytes:
            raise ImageRejected(f"file is {info.st_size} bytes, over the {limits.max_bytes}-byte limit")
        try:
            data = handle.read()
        except OSError as exc:
            raise ImageRejected(f"cannot read {location}: {exc.strerror or exc}") from None
    if len(data) > limits.max_bytes:  # the file grew after it was checked
        raise ImageRejected(f"file is over the {limits.max_bytes}-byte limit")
    return data


def _download(url: str, limits: ImageLimits) -> bytes:
    """Through the guarded client (:mod:`archive.fetch`): address checks, redirects, size and time caps."""
    from archive import fetch

    try:
        return fetch.fetch_bytes(url, max_bytes=limits.max_bytes, what="image downloads", limit_name="MAX_IMAGE_BYTES",
                                 timeout=limits.http_timeout)
    except fetch.FetchError as exc:
        raise ImageRejected(str(exc)) from None


SVG_REASON = "SVG is a vector format and is not imported: supply a raster image (JPEG, PNG, TIFF, WebP or HEIC)"


def is_svg(data: bytes) -> bool:
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(b"<svg") or (head.startswith((b"<?xml", b"<!doctype svg", b"<!--")) and b"<svg" in head)


# --- decoding -----------------------------------------------------------------------------------

def open_image(data: bytes, limits: ImageLimits, want: int) -> tuple[Image.Image, tuple[int, int], str, int, str]:
    """Decode ``data`` into an RGB image at least ``want`` px on its long side where possible.

    JPEGs are decoded at reduced scale (DCT scaling), so huge scans cost little. Returns the image,
    the original's size after EXIF orientation, its format, its frame count and its Pillow mode.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        if is_svg(data):
            raise ImageRejected(SVG_REASON) from None
        raise ImageRejected("not an image, or an unsupported image format") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"unreadable image header: {exc}") from None

    fmt = im.format or "unknown"
    width, height = im.size
    if width <= 0 or height <= 0:
        raise ImageRejected(f"image has no pixels ({width}x{height})")
    pixels = width * height
    if pixels > limits.max_pixels:
        raise ImageRejected(
            f"decompression bomb: declared {width}x{height} pixels, over the {limits.max_pixels:,}-pixel limit"
        )
    frames = getattr(im, "n_frames", 1)
    mode = im.mode
    if fmt == "JPEG":
        # The smallest DCT scale that keeps the long side >= want (draft needs both sides >= the box).
        long_side = max(width, height)
        if long_side > want:
            im.draft("RGB", (max(1, width * want // long_side), max(1, height * want // long_side)))
    elif pixels > limits.max_decode_pixels:
        raise ImageRejected(
            f"{fmt} image of {width}x{height} pixels is too large to decode "
            f"(limit {limits.max_decode_pixels:,}); supply a JPEG or a smaller master"
        )
    try:
        if frames > 1:
            im.seek(0)
        im.load()
        orientation = im.getexif().get(0x0112, 1)
        im = ImageOps.exif_transpose(im)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        message = str(exc) or exc.__class__.__name__
        if "truncated" in message:
            raise ImageRejected("truncated image file (the data ends early)") from None
        raise ImageRejected(f"corrupt image data: {message}") from None
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return to_rgb(im), (width, height), fmt, frames, mode


def to_rgb(im: Image.Image) -> Image.Image:
    """Normalise any Pillow mode (16-bit, float, CMYK, palette, alpha, bilevel) to 8-bit RGB."""
    if im.mode == "RGB":
        return im
    if im.mode.startswith("I") or im.mode == "F":
        return _deep_to_grey(im).convert("RGB")
    if im.mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return im.convert("RGB")


def _deep_to_grey(im: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float greyscale scaled to 8 bits with Pillow's own point
    operations (C loops, one output image at a time), never a float64 copy of a huge scan.
    16-bit images map their full 0-65535 range; 32-bit and float images their min-max range."""
    if im.mode == "I;16":
        return im.point(lambda v: v * (255 / 65535)).convert("L")
    if im.mode.startswith("I;16"):  # other byte orders: Pillow's point works on I;16 or I only
        im = im.convert("I")
        lo, hi = 0, 65535
    elif im.mode == "F":
        lo, hi = _finite_extrema(im)
    else:
        lo, hi = im.getextrema()
    if hi <= lo:
        return Image.new("L", im.size, 0)
    scale = 255.0 / (hi - lo)
    return im.point(lambda v: v * scale - lo * scale).convert("L")


def _finite_extrema(im: Image.Image) -> tuple[float, float]:
    """Min and max of a float image ignoring NaN and infinities, one row band at a time."""
    lo, hi = np.inf, -np.inf
    rows = max(1, 4_000_000 // max(im.width, 1))
    for top in range(0, im.height, rows):
        band = np.asarray(im.crop((0, top, im.width, min(top + rows, im.height))), dtype=np.float32)
        band = band[np.isfinite(band)]
        if band.size:
            lo, hi = min(lo, float(band.min())), max(hi, float(band.max()))
    return (0.0, 0.0) if lo > hi else (lo, hi)


# --- hashing and derivatives --------------------------------------------------------------------

def phash_int(im: Image.Image) -> int:
    value = int(str(imagehash.phash(im)), 16)
    return value - (1 << 64) if value >= (1 << 63) else value


def phash_bits(value: int) -> list[float]:
    unsigned = value & ((1 << 64) - 1)
    return [float((unsigned >> (63 - i)) & 1) for i in range(64)]


def hamming(a: int, b: int) -> int:
    return ((a ^ b) & ((1 << 64) - 1)).bit_count()


def derivative_relpath(sha256: str, size: int) -> str:
    return f"{DERIVATIVE_DIR}/{sha256[:2]}/{sha256[2:4]}/{sha256}_{size}.jpg"


def derivative_path(sha256: str, size: int, media_root=None) -> Path | None:
    """The local file of a derivative where the store is a local folder (None for other backends;
    readers use :func:`read_derivative` / :func:`load_derivative`)."""
    return storage.local_path(storage.resolve(media_root), derivative_relpath(sha256, size))


def derivative_where(sha256: str, size: int, media_root=None) -> str:
    """Where a derivative is, for messages (its path on a local folder)."""
    return storage.where(storage.resolve(media_root), derivative_relpath(sha256, size))


def derivative_url(sha256: str, size: int) -> str:
    return storage.url(storage.public(), derivative_relpath(sha256, size))


def _jpeg_bytes(im: Image.Image) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def derivatives_exist(sha256: str, sizes: tuple[int, ...], media_root=None) -> bool:
    store = storage.resolve(media_root)
    return all(storage.exists(store, derivative_relpath(sha256, size)) for size in sizes)


def write_derivatives(
    im: Image.Image, sha256: str, sizes: tuple[int, ...], media_root=None, *, original_jpeg: bytes | None = None
) -> Image.Image:
    """Write one JPEG per size (long side, never upscaled), each made from the next larger one.
    Returns the smallest derivative. Files that already exist (same content) are not rewritten.

    ``original_jpeg``: the original file's bytes when it is a plain RGB/greyscale JPEG, upright, no
    larger than the largest size: that derivative is then the original file itself (no re-encoding
    loss, no work), and ``im`` may be decoded at the next size down.
    """
    store = storage.resolve(media_root)
    ordered = sorted(sizes, reverse=True)
    current = im
    for index, size in enumerate(ordered):
        name = derivative_relpath(sha256, size)
        if index == 0 and original_jpeg is not None:
            storage.put(store, name, original_jpeg)
            continue
        if max(current.size) > size:
            current = current.copy()
            # The first resample is from the decoded image (bicubic, antialiased); the next ones are
            # from a derivative about twice as large: a 2x box reduction and a short bicubic step.
            current.thumbnail((size, size), reducing_gap=2.0 if current is im else 1.0)
        if not storage.exists(store, name):  # encode only what is missing
            storage.save(store, name, _jpeg_bytes(current), overwrite=True)
    return current


def _reusable_original(data: bytes, sizes: tuple[int, ...]) -> bool:
    """Whether the original bytes can serve as the largest derivative (see write_derivatives)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return (
                im.format == "JPEG"
                and im.mode in ("RGB", "L")
                and max(im.size) <= max(sizes)
                and getattr(im, "n_frames", 1) == 1
                and im.getexif().get(0x0112, 1) == 1
            )
    except Exception:
        return False


def ingest_bytes(
    data: bytes, sizes: tuple[int, ...], media_root, limits: ImageLimits, *, sha256: str | None = None
) -> IngestedImage:
    """Hash, decode, normalise and write the derivatives of one image's bytes."""
    sha = sha256 or hashlib.sha256(data).hexdigest()
    ordered = sorted(sizes, reverse=True)
    reuse = len(ordered) > 1 and _reusable_original(data, sizes)
    # When the original is the largest derivative, decode only as large as the next one needs
    # (JPEG DCT scaling: a 1024px original decodes straight to 512px).
    want = ordered[1] if reuse else ordered[0]
    im, (width, height), fmt, frames, source_mode = open_image(data, limits, want=want)
    smallest = write_derivatives(im, sha, sizes, media_root, original_jpeg=data if reuse else None)
    return IngestedImage(
        sha256=sha,
        phash=phash_int(smallest),
        width=width,
        height=height,
        format=fmt,
        mode=source_mode,
        frames=frames,
    )


def ingest_location(location: str, sizes: tuple[int, ...], media_root, limits: ImageLimits) -> IngestedImage:
    return ingest_bytes(read_bytes(location, limits), sizes, media_root, limits)


def read_derivative(sha256: str, size: int, media_root=None) -> bytes:
    """A derivative's JPEG bytes (FileNotFoundError when it is missing)."""
    return storage.read(storage.resolve(media_root), derivative_relpath(sha256, size))


def load_derivative(sha256: str, size: int, media_root=None) -> Image.Image:
    """Open a derivative for the ML workers (always RGB)."""
    with storage.open(storage.resolve(media_root), derivative_relpath(sha256, size)) as handle:
        with Image.open(handle) as im:
            return im.convert("RGB")
