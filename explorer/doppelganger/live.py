"""The live mirror: one small camera frame in, the face box and the nearest painted faces out.

The page's and the kiosk's script send a frame several times a second (at most one in flight):
either the whole camera picture downscaled to about 320 px, or, once a face has been found, only
the region around it (the face at about 110 px). Both are just a small JPEG to this module: it is
decoded in memory (refused over ``DOPPELGANGER_LIVE_MAX_BYTES`` or ``LIVE_MAX_PIXELS``), searched
with the page's detector without upsampling (a small frame: ~11 ms of CPU at 320x240), the largest
face is embedded (dlib's ResNet through PyTorch, ``workers.ml.dlib_resnet``: ~17 ms of CPU, where
dlib's own code took ~100 ms) and looked up in the faces' HNSW index
(``service.nearest_per_artwork``, ~10 ms at 100k faces). One backend per process
(``workers.ml.faces.get_backend`` caches it), so no request loads a model.

Privacy as for the snapshot (``service``): the frame's bytes live in the request only; nothing is
written to disk, the database, the cache (only the rate-limit counter) or the logs, and the answer
carries no image, only the box and the matches.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from PIL import Image

from archive import storage
from workers.ml.faces import setting, similarity_percent

from . import service

LIVE_MAX_SIDE = 640  # frames are small; a larger one is decoded (JPEG: DCT-scaled) down to this
LIVE_MAX_PIXELS = 4_000_000  # declared pixels over this are refused before decoding
LIVE_MATCHES = 4  # matches per frame: the held best and three runners-up
LIVE_UPSAMPLE = 0


def max_frame_bytes() -> int:
    """Largest frame accepted (setting or environment DOPPELGANGER_LIVE_MAX_BYTES; default 256 KB)."""
    return int(setting("DOPPELGANGER_LIVE_MAX_BYTES", 256 * 1024))


@dataclass
class FrameTimes:
    decode_ms: float = 0.0
    detect_ms: float = 0.0
    embed_ms: float = 0.0
    knn_ms: float = 0.0


def decode_frame(data: bytes) -> Image.Image:
    from explorer import uploads as guard

    if not data:
        raise service.SelfieRejected("empty", "The frame is empty.")
    if len(data) > max_frame_bytes():
        raise service.SelfieRejected("too_large", f"A live frame must be under {max_frame_bytes() // 1024} KB.", 413)
    try:
        im, _ = guard.open_checked(data, want=LIVE_MAX_SIDE, formats=service.PHOTO_FORMATS, pixels=LIVE_MAX_PIXELS)
        im.load()
    except guard.UploadRejected as exc:
        raise service.SelfieRejected(exc.code, exc.message.replace("That image", "That frame"), exc.status) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise service.SelfieRejected("not_an_image", "That frame could not be read.", 415) from None
    if im.mode != "RGB":
        im = im.convert("RGB")
    if max(im.size) > LIVE_MAX_SIDE:
        im.thumbnail((LIVE_MAX_SIDE, LIVE_MAX_SIDE))
    return im


def frame_lookup(data: bytes, *, limit: int = LIVE_MATCHES, times: FrameTimes | None = None) -> dict:
    """The JSON answer for one frame: ``{"width", "height", "face": {"box", "score"} | None,
    "matches": [...]}``; the box is in the frame's own pixels (the script maps it back)."""
    from archive.models import Artwork

    times = times if times is not None else FrameTimes()
    t0 = time.perf_counter()
    frame = decode_frame(data)
    t1 = time.perf_counter()
    backend = service.query_backend()
    detections = backend.detect(frame, upsample=LIVE_UPSAMPLE)
    t2 = time.perf_counter()
    times.decode_ms, times.detect_ms = (t1 - t0) * 1000, (t2 - t1) * 1000
    answer = {"width": frame.size[0], "height": frame.size[1], "face": None, "matches": []}
    if not detections:
        return answer
    face = detections[0]  # largest first
    answer["face"] = {"box": list(face.box), "score": round(face.score, 3)}
    vector = backend.embed(frame, [face])[0]
    t3 = time.perf_counter()
    best = service.nearest_per_artwork(vector, limit=limit, model=backend.model_id)
    artworks = Artwork.objects.only("id", "title", "creator", "display_date", "sha256", "status").in_bulk(list(best))
    t4 = time.perf_counter()
    times.embed_ms, times.knn_ms = (t3 - t2) * 1000, (t4 - t3) * 1000
    from django.urls import reverse

    for artwork_id, (face_id, distance, crop, _box) in best.items():
        artwork = artworks.get(artwork_id)
        if artwork is None:
            continue
        answer["matches"].append({
            "face_id": face_id,
            "distance": round(distance, 4),
            "similarity": similarity_percent(distance),
            "crop_url": storage.url(storage.public(), crop) if crop else artwork.thumbnail_url,
            "image_url": artwork.thumbnail_url,
            "artwork": {"id": artwork_id, "title": artwork.title or "Untitled", "creator": artwork.creator,
                        "date": artwork.display_date, "url": reverse("explorer:artwork", args=[artwork_id])},
        })
    return answer
