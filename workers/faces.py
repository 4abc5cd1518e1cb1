"""The faces stage: find, align and embed the faces in each artwork's image (``Job.Kind.FACES``).

For one batch of artwork ids, :func:`process` reads each artwork's derivative (default 1024 px,
chosen by measurement, see docs/faces.md), detects faces with 5-point landmarks, computes their
128-d dlib descriptors, writes an aligned crop per face under ``faces/`` of the public store
(:mod:`archive.storage`) and replaces that artwork's Face rows for the model. Boxes and landmarks
are stored in original-image pixels.

Curators' "not a face" marks survive re-runs: a new detection overlapping (IoU >= 0.5) a face a
curator rejected is stored rejected again, and rejected rows that no new detection overlaps are
kept (they match nothing, and remember the decision if a later run finds the box again).
"""
from __future__ import annotations

import io
import logging

from django.conf import settings
from django.db import DatabaseError, transaction
from PIL import Image

from archive import storage, vectors
from archive.images import derivative_relpath
from archive.models import Artwork, Face
from archive.storage import StoreUnavailable
from archive.models.faces import FaceScan
from workers.ml.faces import face_model, face_settings, get_backend, iou, model_dim
from workers.batch_items import with_images
from workers.jobs import BatchResult, ItemError, Stage

log = logging.getLogger(__name__)

FACE_DIR = "faces"
CROP_SIZE = 224
CROP_QUALITY = 88
REJECT_IOU = 0.5
# A better-connected HNSW graph than pgvector's default 64 (recall measured in docs/perf/doppelganger.md).
EF_CONSTRUCTION = 128


def prepare(params: dict) -> dict:
    """Fill in the model and detection settings, check the model files load, and make the index."""
    conf = face_settings()
    resolved = {
        "model": params.get("model") or face_model(),
        "detector": params.get("detector") or conf["detector"],
        "size": int(params.get("size") or conf["size"]),
        "upsample": int(conf["upsample"] if params.get("upsample") in (None, "") else params["upsample"]),
    }
    resolved = {**params, **resolved}
    if resolved["size"] not in settings.DERIVATIVE_SIZES:
        raise ValueError(f"face detection size {resolved['size']} is not a derivative size {settings.DERIVATIVE_SIZES}")
    get_backend(resolved["model"], detector=resolved["detector"], upsample=resolved["upsample"])
    ensure_index(resolved["model"])
    return resolved


def ensure_index(model: str | None = None) -> None:
    """Make the model's partial HNSW index unless the catalogue already has it.

    The look-up in ``pg_class`` takes no lock; ``CREATE INDEX IF NOT EXISTS`` would take a SHARE
    lock on the faces table (blocking every other worker's writes) even when the index exists."""
    model = model or face_model()
    if vectors.index_exists(vectors.FACES, model):
        return
    try:
        with transaction.atomic():
            vectors.ensure_hnsw_index(vectors.FACES, model, model_dim(model), metric="l2", ef_construction=EF_CONSTRUCTION)
    except DatabaseError as exc:  # two workers creating it at once: the other one won
        log.info("face index for %s is being created by another worker (%s)", model, exc)


def candidates(params: dict):
    """Artworks with an ingested image (exact duplicates share their original's image and faces)."""
    return Artwork.objects.filter(status=Artwork.Status.OK).exclude(sha256="").values_list("pk", flat=True)


def completed(params: dict):
    """Artworks this model has already searched, with or without faces found."""
    return FaceScan.objects.filter(model=params.get("model") or face_model()).values_list("artwork_id", flat=True)


def reset(params: dict) -> None:
    """Forget this model's faces (curator-rejected rows are kept, so their marks re-apply)."""
    model = params.get("model") or face_model()
    faces = Face.objects.filter(model=model, not_a_face=False)
    crops = list(faces.exclude(crop="").values_list("crop", flat=True))
    faces.delete()
    FaceScan.objects.filter(model=model).delete()
    _unlink(crops)


def crop_relpath(sha256: str, model: str, box: tuple[int, int, int, int]) -> str:
    slug = model.replace("/", "_")
    x, y, w, h = box
    return f"{FACE_DIR}/{sha256[:2]}/{sha256[2:4]}/{sha256}_{slug}_{x}_{y}_{w}_{h}.jpg"


def _jpeg(array) -> bytes:
    """A crop's JPEG bytes, made before the transaction; :func:`_publish` writes them."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=CROP_QUALITY)
    return buffer.getvalue()


def _unlink(relpaths) -> None:
    store = storage.public()
    for rel in relpaths:
        storage.delete(store, rel)


def _store(artwork: Artwork, params: dict, backend, originals, descriptors, staged: list[tuple[bytes, str]]) -> tuple[int, set[str]]:
    """Replace the artwork's Face rows (keeping curators' rejections) and its FaceScan in one
    transaction; the staged crops are written as its last step. Returns the row count and the
    crops of the rows it replaced."""
    model = params["model"]
    created: list[str] = []
    try:
        with transaction.atomic():
            existing = list(Face.objects.select_for_update().filter(artwork=artwork, model=model))
            rejected = [f for f in existing if f.not_a_face]
            matched_rejects = set()
            rows = []
            for det, vector, (_, final) in zip(originals, descriptors, staged):
                hit = next((f for f in rejected if iou(det.box, (f.x, f.y, f.w, f.h)) >= REJECT_IOU), None)
                if hit is not None:
                    matched_rejects.add(hit.pk)
                x, y, w, h = det.box
                landmarks = [[round(px, 1), round(py, 1)] for px, py in det.landmarks]
                rows.append(Face(artwork=artwork, model=model, x=x, y=y, w=w, h=h, landmarks=landmarks, score=det.score,
                                 crop=final, vector=vector.tolist(), not_a_face=hit is not None))
            stale = [f for f in existing if not f.not_a_face or f.pk in matched_rejects]
            Face.objects.filter(pk__in=[f.pk for f in stale]).delete()
            Face.objects.bulk_create(rows)
            FaceScan.objects.update_or_create(
                artwork=artwork,
                model=model,
                defaults={"detector": backend.detector, "derivative_size": params["size"], "upsample": backend.upsample,
                          "faces": len(rows)},
            )
            created = _publish(staged)
    except BaseException:
        _unlink(created)  # written, but the commit failed
        raise
    kept = {f.crop for f in existing if f not in stale} | {row.crop for row in rows}
    return len(rows), {f.crop for f in stale if f.crop} - kept


def _publish(staged: list[tuple[bytes, str]]) -> list[str]:
    """Write the crops under their names (each atomically) and return those that did not exist
    before; if one fails, those are removed again (a crop that existed before shows the same box of
    the same image, so it stays)."""
    store = storage.public()
    created = []
    try:
        for data, name in staged:
            existed = storage.exists(store, name)
            storage.save(store, name, data, overwrite=True)
            if not existed:
                created.append(name)
    except BaseException:
        _unlink(created)
        raise
    return created


def process_artwork(artwork: Artwork, params: dict) -> int:
    """Detect, embed and store one artwork's faces; returns how many were found.

    Crops are encoded first and written only inside the database transaction, so a failure (a
    database error, a crop that cannot be written) leaves neither rows nor files."""
    model, size = params["model"], params["size"]
    store, name = storage.public(), derivative_relpath(artwork.sha256, size)
    try:
        with storage.open(store, name) as handle, Image.open(handle) as im:
            image = im.convert("RGB")
    except FileNotFoundError:
        raise FileNotFoundError(f"derivative {size}px missing: {storage.where(store, name)}") from None
    backend = get_backend(model, detector=params["detector"], upsample=params["upsample"])
    detections = backend.detect(image)
    descriptors = backend.embed(image, detections)
    if descriptors.shape != (len(detections), backend.dim):
        raise ValueError(f"face model {model} returned vectors of shape {descriptors.shape}, expected ({len(detections)}, {backend.dim})")
    chips = backend.chips(image, detections, size=CROP_SIZE)
    # Derivatives are never upscaled, so a small original's "1024" derivative is the original's size.
    factor = (artwork.width / image.size[0]) if artwork.width else 1.0
    originals = [det.scaled(factor) for det in detections]

    staged = [(_jpeg(chip), crop_relpath(artwork.sha256, model, det.box)) for det, chip in zip(originals, chips)]
    count, unused = _store(artwork, params, backend, originals, descriptors, staged)
    _unlink(unused)
    return count


def process(ids: list[int], params: dict) -> BatchResult:
    params = params if all(k in params for k in ("model", "detector", "size", "upsample")) else prepare(params)
    ensure_index(params["model"])
    result = BatchResult()
    for artwork in with_images(ids, result, "search for faces"):
        artwork_id = artwork.pk
        try:
            process_artwork(artwork, params)
        except StoreUnavailable:
            raise  # the store is away, not the image: the batch is retried, nothing is failed
        except FileNotFoundError as exc:
            result.errors.append(ItemError(artwork_id, "image derivative missing; re-import the artwork", str(exc)))
        except (OSError, ValueError, RuntimeError) as exc:
            result.errors.append(ItemError(artwork_id, f"face detection failed: {exc.__class__.__name__}", str(exc)))
        else:
            result.done.append(artwork_id)
    return result


STAGE = Stage(
    kind="faces",
    queue="faces",
    description="Find faces",
    batch_size=64,  # ~50 s of detection (HOG at upsample 1 and MTCNN) per task on one core; fewer messages and batch rows per million
    candidates=candidates,
    completed=completed,
    reset=reset,
    process=process,
    prepare=prepare,
)
