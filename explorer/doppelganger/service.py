"""Find the painted faces nearest to a visitor's face. Plain functions shared by the page and the API.

Privacy: the photo arrives as bytes in memory and leaves as nothing but the answer. It is decoded
here, downscaled, searched for faces and embedded; the visitor's face crop goes back inline as a
``data:`` URL. Nothing is written to disk, the database, the cache or the logs, and EXIF metadata
is ignored except the orientation tag (applied, then dropped with the rest).
"""
from __future__ import annotations

import base64
import io
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from archive import storage, vectors
from workers.ml.faces import Detection, FaceBackend, analyse, face_model, get_backend, model_dim, setting, similarity_percent

# The query path (also what bench/faces_eval.py measures): a selfie's face is large, so a modest
# working size without upsampling finds it quickly; a photo where nothing is found is searched
# once more with 1x upsampling for smaller faces. Its detector is its own setting
# (DOPPELGANGER_DETECTOR, default HOG), so choosing the slow CNN detector for the stage never
# slows down the public page.
QUERY_MAX_SIDE = 800
QUERY_UPSAMPLE = 0
QUERY_RETRY_UPSAMPLE = 1
QUERY_DETECTOR = "hog"
MAX_FACES = 8  # faces offered for choice in one photo (largest first)
MATCHES = 6
OVERFETCH = 8  # nearest faces fetched per match shown, before keeping one face per artwork
EF_SEARCH = 400  # HNSW candidate list; pgvector's default 40 loses many neighbours at 100k faces (docs/perf/doppelganger.md)
# When a few artworks (crowd scenes) hold most of the nearest faces, the fetch is repeated with 4x
# more candidates until enough artworks are found, up to pgvector's largest ef_search.
MAX_CANDIDATES = 1000
# What the page promises. Pillow would otherwise also open EPS (through Ghostscript, which writes
# temporary files), TIFF, PSD and a dozen other formats. Pillow's JPEG opener also opens MPO (a
# JPEG with extra frames, as some cameras write) and returns it as format "MPO".
PHOTO_FORMATS = ("JPEG", "PNG", "WEBP")
CROP_SIZE = 224
PREVIEW_SIDE = 640


def max_upload_bytes() -> int:
    """Largest photo accepted (setting or environment DOPPELGANGER_MAX_BYTES; default 8 MB)."""
    return int(setting("DOPPELGANGER_MAX_BYTES", 8 * 1024 * 1024))


def query_backend() -> FaceBackend:
    """The backend the page and the API use: the stored faces' model (FACE_MODEL) with the query
    path's own detector (DOPPELGANGER_DETECTOR, default HOG), whatever the stage's FACE_DETECTOR is."""
    return get_backend(face_model(), detector=str(setting("DOPPELGANGER_DETECTOR", QUERY_DETECTOR)), upsample=QUERY_UPSAMPLE)


def max_upload_pixels() -> int:
    """Most pixels a photo may declare (setting or environment DOPPELGANGER_MAX_PIXELS; default 40 million)."""
    return int(setting("DOPPELGANGER_MAX_PIXELS", 40_000_000))


class SelfieRejected(Exception):
    """The photo cannot be used. ``message`` is shown to the visitor; ``code`` is for the API."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def too_large_message() -> str:
    return f"That photo is too large. Please use one under {max_upload_bytes() // (1024 * 1024)} MB."


def decode_photo(data: bytes) -> tuple[Image.Image, tuple[int, int]]:
    """Decode an uploaded photo in memory: size and pixel limits, EXIF orientation applied, RGB.

    JPEGs are decoded at reduced scale when large (the working size is all we need). Returns the
    image and the photo's full size (after orientation), in which boxes are reported."""
    if not data:
        raise SelfieRejected("empty", "The file is empty. Please choose a photo.")
    if len(data) > max_upload_bytes():
        raise SelfieRejected("too_large", too_large_message(), status=413)
    from explorer import uploads as guard

    try:
        # The shared upload guard: header only, declared pixels, then the memory the decode needs
        # (JPEGs drafted down to the working size first).
        im, (width, height) = guard.open_checked(data, want=QUERY_MAX_SIDE, formats=PHOTO_FORMATS, pixels=max_upload_pixels())
    except guard.UploadRejected as exc:
        if exc.code == "not_an_image":
            raise SelfieRejected(exc.code, "That file is not a photo we can read. Please use a JPEG, PNG or WebP image.", 415) from None
        raise SelfieRejected("too_many_pixels", exc.message.replace("That image", "That photo"), exc.status) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            previous, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
            try:
                im.load()
            finally:
                ImageFile.LOAD_TRUNCATED_IMAGES = previous
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                width, height = height, width
            im = ImageOps.exif_transpose(im)
    except SelfieRejected:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise SelfieRejected("not_an_image", "That file is not a photo we can read. Please use a JPEG, PNG or WebP image.", 415) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise SelfieRejected("not_an_image", "That photo could not be read (it may be damaged or cut short).", 415) from None
    if im.mode != "RGB":
        if im.mode in ("RGBA", "LA", "PA", "P"):
            rgba = im.convert("RGBA")
            im = Image.new("RGB", rgba.size, (255, 255, 255))
            im.paste(rgba, mask=rgba.getchannel("A"))
        else:
            im = im.convert("RGB")
    return im, (width, height)


def data_url(image: Image.Image | np.ndarray, *, quality: int = 85) -> str:
    im = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@dataclass
class FoundFace:
    index: int
    box: tuple[int, int, int, int]  # in the uploaded photo's pixels (after orientation)
    box_percent: tuple[float, float, float, float]  # left, top, width, height as % of the photo
    score: float


@dataclass
class Match:
    face_id: int
    artwork_id: int
    distance: float
    percent: int
    title: str
    creator: str
    display_date: str
    crop_url: str
    image_url: str
    box: tuple[int, int, int, int]  # in the artwork's original pixels
    box_percent: tuple[float, float, float, float] | None = None  # left, top, width, height as % of the artwork

    @property
    def artwork_url(self) -> str:
        from django.urls import reverse

        return reverse("explorer:artwork", args=[self.artwork_id])


@dataclass
class Lookup:
    width: int
    height: int
    faces: list[FoundFace] = field(default_factory=list)
    chosen: int | None = None
    visitor_crop: str = ""  # data: URL, never stored
    preview: str = ""  # the downscaled photo as a data: URL, for choosing among several faces
    matches: list[Match] = field(default_factory=list)

    @property
    def several(self) -> bool:
        return len(self.faces) > 1


def nearest_artwork_faces(vector: np.ndarray, *, limit: int = MATCHES, model: str | None = None) -> list[Match]:
    """The ``limit`` nearest painted faces of ``model`` (default FACE_MODEL), one per artwork,
    curator-rejected faces excluded. Only faces of that model are compared."""
    from archive.models import Artwork

    model = model or face_model()
    best = nearest_per_artwork(vector, limit=limit, model=model)
    artworks = Artwork.objects.in_bulk(list(best))
    matches = []
    for artwork_id, (face_id, distance, crop, box) in best.items():
        artwork = artworks.get(artwork_id)
        if artwork is None:
            continue
        matches.append(
            Match(
                face_id=face_id,
                artwork_id=artwork_id,
                distance=distance,
                percent=similarity_percent(distance),
                title=artwork.title or "Untitled",
                creator=artwork.creator,
                display_date=artwork.display_date,
                crop_url=storage.url(storage.public(), crop) if crop else artwork.thumbnail_url,
                image_url=artwork.thumbnail_url,
                box=box,
                box_percent=percent_box(box, artwork.width, artwork.height),
            )
        )
    return matches


def percent_box(box, width: int | None, height: int | None) -> tuple[float, float, float, float] | None:
    """A box in an image's pixels as percentages of its size (for CSS overlays), clipped to the image."""
    if not width or not height:
        return None
    x, y, w, h = box
    left, top = max(0.0, 100 * x / width), max(0.0, 100 * y / height)
    return (round(left, 2), round(top, 2), round(min(100 - left, 100 * w / width), 2), round(min(100 - top, 100 * h / height), 2))


def nearest_per_artwork(vector: np.ndarray, *, limit: int, model: str) -> dict[int, tuple]:
    """``{artwork_id: (face_id, distance, crop, box)}`` for the ``limit`` nearest artworks (by their
    nearest face), nearest first. Fetches ``limit * OVERFETCH`` faces, and 4x more each time while
    fewer than ``limit`` artworks are among them, up to ``MAX_CANDIDATES`` faces."""
    k = min(limit * OVERFETCH, MAX_CANDIDATES)
    while True:
        rows = vectors.nearest(
            vectors.FACES,
            model,
            vector,
            dim=model_dim(model),
            metric="l2",
            limit=k,
            where="not_a_face = false",
            ef_search=max(EF_SEARCH, k),
            columns=("artwork_id", "crop", "x", "y", "w", "h"),
        )
        best: dict[int, tuple] = {}
        for face_id, distance, artwork_id, crop, x, y, w, h in rows:
            if artwork_id not in best:
                best[artwork_id] = (face_id, float(distance), crop, (x, y, w, h))
                if len(best) == limit:
                    return best
        if len(rows) < k or k >= MAX_CANDIDATES:  # every face of this model seen, or the bound reached
            return best
        k = min(k * 4, MAX_CANDIDATES)


def lookup(data: bytes, face_index: int | None = None, *, limit: int = MATCHES) -> Lookup:
    """Everything the page and the API show for one uploaded photo."""
    photo, (width, height) = decode_photo(data)
    backend = query_backend()
    found = analyse(backend, photo, max_side=QUERY_MAX_SIDE, upsample=QUERY_UPSAMPLE, retry_upsample=QUERY_RETRY_UPSAMPLE,
                    embed=False)
    detections: list[Detection] = found.detections[:MAX_FACES]
    result = Lookup(width=width, height=height)
    to_photo = found.scale * width / photo.size[0]  # working image -> the uploaded photo's pixels
    for i, det in enumerate(detections):
        x, y, w, h = det.scaled(to_photo).box
        result.faces.append(
            FoundFace(
                index=i,
                box=(x, y, w, h),
                box_percent=tuple(round(v, 2) for v in (100 * x / width, 100 * y / height, 100 * w / width, 100 * h / height)),
                score=round(det.score, 3),
            )
        )
    if not detections:
        raise SelfieRejected(
            "no_face",
            "We could not find a face in that photo. Try a well-lit photo looking at the camera, with your face not too small.",
            422,
        )
    if face_index is not None and not 0 <= face_index < len(detections):
        raise SelfieRejected("bad_face_index", f"There is no face number {face_index + 1} in that photo; it has {len(detections)}.", 400)
    if len(detections) > 1:
        preview = found.image.copy()
        preview.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
        result.preview = data_url(preview, quality=80)
    result.chosen = 0 if face_index is None else face_index  # detections are sorted largest first
    chosen = detections[result.chosen]
    vector = backend.embed(found.image, [chosen])[0]  # only the face being matched
    result.visitor_crop = data_url(backend.chips(found.image, [chosen], size=CROP_SIZE)[0])
    result.matches = nearest_artwork_faces(vector, limit=limit, model=backend.model_id)
    return result
