"""Face detection, 5-point landmarks, aligned chips and 128-d embeddings behind a small interface.

The one backend today is dlib's ResNet face recogniser (``dlib-resnet-v1``) with the real model
files shipped by the ``face_recognition_models`` package: the HOG frontal-face detector (built
into dlib), the CNN detector ``mmod_human_face_detector.dat``, MTCNN (facenet-pytorch) or HOG and
MTCNN together (``hog+mtcnn``); MTCNN alone is the stage's default, the 5-point shape
predictor and ``dlib_face_recognition_resnet_model_v1.dat``. Distances between descriptors are
Euclidean; dlib's same-person threshold is 0.6.

``face_recognition_models/__init__.py`` imports ``pkg_resources`` (setuptools), which modern
environments may lack, so the package is never imported here: its ``models/`` folder is found via
``importlib.util.find_spec(...).submodule_search_locations``, which locates a package without
running its ``__init__``. ``FACE_MODELS_DIR`` (setting or environment) overrides the location.

Backends are registered by model id (:func:`register`; ``FACE_MODEL`` picks the one the stage
and the doppelganger page use) and loaded lazily, once per process, through :func:`get_backend`.
Every backend's vectors are stored in ``Face.vector`` beside their model id; only ``FACE_DIM``-wide
backends are accepted (see :func:`register`).
"""
from __future__ import annotations

import importlib.util
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

MODEL_ID = "dlib-resnet-v1"  # the default face model (FACE_MODEL)
DIM = 128
# The width of every stored face vector: the faces' HNSW indexes, the API and the docs promise
# 128-d vectors, so a backend of another width is refused at registration.
FACE_DIM = 128
# dlib's documented same-person threshold on the Euclidean distance of two descriptors.
MATCH_THRESHOLD = 0.6
DETECTORS = ("hog", "cnn", "mtcnn", "hog+mtcnn")
# hog+mtcnn: an MTCNN box overlapping a HOG box this much (IoU) is the same face; HOG's box is kept.
MERGE_IOU = 0.3

# Detection settings chosen by measurement on the AIC paintings (see docs/faces.md).
DEFAULT_DETECTOR = "mtcnn"  # MTCNN on the image and its mirror (workers/ml/mtcnn.py); hog+mtcnn adds HOG first
DEFAULT_DERIVATIVE_SIZE = 1024
DEFAULT_UPSAMPLE = 1
# Faces lower than this (px, in the image searched: the stage's derivative) are not kept
# (FACE_MIN_HEIGHT). The 150 px chip the descriptor is computed on would be an upscaled blur of
# a few pixels, useless for the doppelganger match; it is also MTCNN's smallest face searched
# (mtcnn.DEFAULT_MIN_FACE), whose box regression still returns smaller boxes, and the painted-faces
# test set's own lower bound for a face ("about 20 px high or more").
DEFAULT_MIN_HEIGHT = 20

MODEL_FILES = {
    "landmarks": "shape_predictor_5_face_landmarks.dat",
    "recognition": "dlib_face_recognition_resnet_model_v1.dat",
    "cnn": "mmod_human_face_detector.dat",
}


class FaceModelsMissing(RuntimeError):
    """The dlib model files are not on this machine; the message says how to provide them."""


def setting(name: str, default):
    """A Django setting, else the environment variable of the same name, else ``default``."""
    try:
        from django.conf import settings

        if settings.configured and hasattr(settings, name):
            return getattr(settings, name)
    except ImportError:  # pragma: no cover - Django is always installed here
        pass
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    if isinstance(default, bool):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return type(default)(value) if isinstance(default, (int, float)) else value


def face_model() -> str:
    """The face model the stage stores and the doppelganger page matches against (``FACE_MODEL``)."""
    return str(setting("FACE_MODEL", MODEL_ID))


def face_settings() -> dict:
    """The configured detection settings of the stage: detector, derivative size and upsampling."""
    return {
        "detector": str(setting("FACE_DETECTOR", DEFAULT_DETECTOR)),
        "size": int(setting("FACE_DERIVATIVE_SIZE", DEFAULT_DERIVATIVE_SIZE)),
        "upsample": int(setting("FACE_UPSAMPLE", DEFAULT_UPSAMPLE)),
    }


def min_height() -> int:
    """The lowest face kept, in pixels of the image searched (``FACE_MIN_HEIGHT``; 0 keeps all)."""
    value = int(setting("FACE_MIN_HEIGHT", DEFAULT_MIN_HEIGHT))
    if value < 0:
        raise ValueError(f"FACE_MIN_HEIGHT must be 0 or more, got {value!r}")
    return value


def mtcnn_settings() -> dict:
    """MTCNN's configured final score threshold (``FACE_MTCNN_THRESHOLD``), mirror pass
    (``FACE_MTCNN_MIRROR``: search the mirror image too) and its three stages' thresholds
    (``FACE_MTCNN_STAGE_THRESHOLDS``), used by ``mtcnn`` and ``hog+mtcnn``."""
    from .mtcnn import DEFAULT_MIRROR, DEFAULT_THRESHOLD, STAGE_THRESHOLDS

    threshold = float(setting("FACE_MTCNN_THRESHOLD", DEFAULT_THRESHOLD))
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"FACE_MTCNN_THRESHOLD must be between 0 and 1, got {threshold!r}")
    mirror = setting("FACE_MTCNN_MIRROR", DEFAULT_MIRROR)
    if isinstance(mirror, str):
        mirror = mirror.strip().lower() in {"1", "true", "yes", "on"}
    stages = setting("FACE_MTCNN_STAGE_THRESHOLDS", STAGE_THRESHOLDS)
    if isinstance(stages, str):
        stages = [part for part in stages.split(",") if part.strip()]
    try:
        stages = tuple(float(t) for t in stages)
    except (TypeError, ValueError):
        raise ValueError(f"FACE_MTCNN_STAGE_THRESHOLDS must be three numbers, got {stages!r}") from None
    if len(stages) != 3 or not all(0.0 < t < 1.0 for t in stages):
        raise ValueError(f"FACE_MTCNN_STAGE_THRESHOLDS must be three numbers between 0 and 1, got {stages!r}")
    return {"threshold": threshold, "mirror": bool(mirror), "stage_thresholds": stages}


def models_dir() -> Path:
    """The folder holding the ``.dat`` model files, found without importing face_recognition_models."""
    configured = setting("FACE_MODELS_DIR", "")
    if configured:
        path = Path(configured)
    else:
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            raise FaceModelsMissing(
                "the face_recognition_models package is not installed; run "
                "`.venv/bin/pip install face_recognition_models==0.3.0` or set FACE_MODELS_DIR to a folder "
                f"holding {', '.join(MODEL_FILES.values())}"
            )
        path = Path(list(spec.submodule_search_locations)[0]) / "models"
    missing = [name for name in MODEL_FILES.values() if not (path / name).is_file()]
    if missing:
        raise FaceModelsMissing(f"face model files missing from {path}: {', '.join(missing)}")
    return path


@dataclass(frozen=True)
class Detection:
    """One face in an image: ``box`` is (x, y, w, h) in that image's pixels, ``landmarks`` the 5
    dlib points (eye corners and nose) as (x, y), ``score`` the detector's confidence."""

    box: tuple[int, int, int, int]
    score: float
    landmarks: tuple[tuple[float, float], ...] = field(default_factory=tuple)

    @property
    def area(self) -> int:
        return self.box[2] * self.box[3]

    def scaled(self, factor: float) -> "Detection":
        """The same detection in an image ``factor`` times larger (e.g. derivative -> original)."""
        x, y, w, h = self.box
        return Detection(
            box=(round(x * factor), round(y * factor), round(w * factor), round(h * factor)),
            score=self.score,
            landmarks=tuple((px * factor, py * factor) for px, py in self.landmarks),
        )


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def similarity_percent(distance: float) -> int:
    """A distance shown to people as a percentage: 100% at distance 0, 50% at dlib's same-person
    threshold 0.6, 0% at 1.2 and beyond (linear; documented in docs/faces.md)."""
    return int(round(100 * min(1.0, max(0.0, 1.0 - distance / (2 * MATCH_THRESHOLD)))))


def as_array(image) -> np.ndarray:
    """An RGB image (Pillow or array) as a contiguous uint8 HxWx3 array, as dlib wants it."""
    arr = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected an 8-bit RGB image, got array of shape {arr.shape} and dtype {arr.dtype}")
    return np.ascontiguousarray(arr)


class FaceBackend:
    """What the pipeline and the doppelganger page need from a face model."""

    model_id: str
    dim: int
    detector: str  # what a FaceScan records: the detector and upsampling this backend runs
    upsample: int

    def detect(self, image, *, upsample: int | None = None) -> list[Detection]:
        raise NotImplementedError

    def embed(self, image, detections: Sequence[Detection]) -> np.ndarray:
        """One ``dim``-wide descriptor per detection, shape (n, dim), float32."""
        raise NotImplementedError

    def chips(self, image, detections: Sequence[Detection], *, size: int = 160, padding: float = 0.4) -> list[np.ndarray]:
        """Aligned (eyes level) face crops, ``size`` px square, for display."""
        raise NotImplementedError


class DlibFaceBackend(FaceBackend):
    """dlib: HOG, CNN (MMOD) or MTCNN (facenet-pytorch) detection, 5-point landmarks, ResNet descriptors on aligned 150px chips."""

    dim = DIM

    def __init__(self, detector: str = DEFAULT_DETECTOR, upsample: int = DEFAULT_UPSAMPLE, model_path: Path | None = None,
                 *, model_id: str = MODEL_ID, mtcnn_threshold: float | None = None, mtcnn_mirror: bool | None = None,
                 mtcnn_stage_thresholds: tuple | None = None, min_face_height: int | None = None):
        import dlib

        self.model_id = model_id
        if detector not in DETECTORS:
            raise ValueError(f"unknown face detector {detector!r}; choose one of {', '.join(DETECTORS)}")
        path = model_path or models_dir()
        self._dlib = dlib
        self.detector = detector
        self.upsample = int(upsample)
        # Faces lower than this are dropped from every detector's boxes (FACE_MIN_HEIGHT unless given).
        self.min_height = min_height() if min_face_height is None else int(min_face_height)
        self._hog = dlib.get_frontal_face_detector() if detector in ("hog", "hog+mtcnn") else None
        self._cnn = dlib.cnn_face_detection_model_v1(str(path / MODEL_FILES["cnn"])) if detector == "cnn" else None
        # MTCNN (facenet-pytorch, workers/ml/mtcnn.py) finds the boxes; dlib's landmarks and
        # descriptor work on them as on its own. It has no upsampling (it searches faces down to
        # 20 px through its own image pyramid): ``upsample`` is HOG's alone in hog+mtcnn, and
        # recorded but not used with mtcnn alone. Its score threshold, mirror pass and stage
        # thresholds are the FACE_MTCNN_* settings unless given.
        self._mtcnn = None
        if detector in ("mtcnn", "hog+mtcnn"):
            from .mtcnn import MtcnnDetector

            conf = mtcnn_settings()
            self._mtcnn = MtcnnDetector(threshold=conf["threshold"] if mtcnn_threshold is None else float(mtcnn_threshold),
                                        mirror=conf["mirror"] if mtcnn_mirror is None else bool(mtcnn_mirror),
                                        stage_thresholds=conf["stage_thresholds"] if mtcnn_stage_thresholds is None
                                        else tuple(mtcnn_stage_thresholds))
        self._landmarks = dlib.shape_predictor(str(path / MODEL_FILES["landmarks"]))
        self._recogniser = dlib.face_recognition_model_v1(str(path / MODEL_FILES["recognition"]))
        # The same network and weights through PyTorch (workers/ml/dlib_resnet.py): the same
        # descriptors at ~1/7 of the CPU of this dlib build's own loops. FACE_EMBEDDER=dlib keeps dlib's.
        self._net = None
        if str(setting("FACE_EMBEDDER", "torch")) == "torch":
            from .dlib_resnet import DlibResNet

            self._net = DlibResNet(path / MODEL_FILES["recognition"])
        # dlib objects are not documented as thread-safe; threaded web servers share one backend.
        self._lock = threading.Lock()

    def detect(self, image, *, upsample: int | None = None) -> list[Detection]:
        arr = as_array(image)
        height, width = arr.shape[:2]
        times = self.upsample if upsample is None else int(upsample)
        with self._lock:
            found = []
            if self._hog is not None:
                rects, scores, _ = self._hog.run(arr, times, 0.0)
                found = list(zip(rects, scores))
            if self._mtcnn is not None:
                # With HOG as well: HOG's boxes first (its scores are SVM margins, MTCNN's
                # probabilities), then MTCNN's faces that no HOG box already holds.
                held = [(r.left(), r.top(), r.width(), r.height()) for r, _ in found]
                for box, score in self._mtcnn(arr):
                    if all(iou(box, other) < MERGE_IOU for other in held):
                        x, y, w, h = box
                        found.append((self._dlib.rectangle(x, y, x + w - 1, y + h - 1), score))
            if self._cnn is not None:
                found = [(d.rect, d.confidence) for d in self._cnn(arr, times)]
            detections = []
            for rect, score in found:
                left, top = max(0, rect.left()), max(0, rect.top())
                right, bottom = min(width, rect.right() + 1), min(height, rect.bottom() + 1)
                if right - left < 2 or bottom - top < max(2, self.min_height):
                    continue
                shape = self._landmarks(arr, rect)
                points = tuple((float(p.x), float(p.y)) for p in shape.parts())
                detections.append(Detection((left, top, right - left, bottom - top), float(score), points))
        detections.sort(key=lambda d: (-d.area, d.box))
        return detections

    def locate(self, image, boxes: Sequence[Sequence[int]]) -> list[Detection]:
        """Detections for faces whose (x, y, w, h) boxes are already known (e.g. drawn by hand):
        the 5 landmarks found inside each box, so they can be embedded like detected faces."""
        arr = as_array(image)
        out = []
        with self._lock:
            for x, y, w, h in boxes:
                rect = self._dlib.rectangle(int(x), int(y), int(x + w - 1), int(y + h - 1))
                shape = self._landmarks(arr, rect)
                points = tuple((float(p.x), float(p.y)) for p in shape.parts())
                out.append(Detection((int(x), int(y), int(w), int(h)), 1.0, points))
        return out

    def _shapes(self, detections: Sequence[Detection]):
        dlib = self._dlib
        shapes = dlib.full_object_detections()
        for det in detections:
            if len(det.landmarks) != 5:
                raise ValueError("each detection needs its 5 landmarks (from detect) to be embedded")
            x, y, w, h = det.box
            rect = dlib.rectangle(int(x), int(y), int(x + w - 1), int(y + h - 1))
            points = dlib.points()
            for px, py in det.landmarks:
                points.append(dlib.point(int(round(px)), int(round(py))))
            shapes.append(dlib.full_object_detection(rect, points))
        return shapes

    def embed(self, image, detections: Sequence[Detection]) -> np.ndarray:
        if not detections:
            return np.zeros((0, self.dim), dtype=np.float32)
        arr = as_array(image)
        with self._lock:
            if self._net is None:
                descriptors = self._recogniser.compute_face_descriptor(arr, self._shapes(detections))
                return np.asarray([np.asarray(d) for d in descriptors], dtype=np.float32).reshape(len(detections), self.dim)
            # The chips dlib's compute_face_descriptor cuts (150 px, padding 0.25), then the network.
            chips = self._dlib.get_face_chips(arr, self._shapes(detections), size=150, padding=0.25)
        return self._net(np.stack([np.asarray(c) for c in chips])).reshape(len(detections), self.dim)

    def chips(self, image, detections: Sequence[Detection], *, size: int = 160, padding: float = 0.4) -> list[np.ndarray]:
        if not detections:
            return []
        arr = as_array(image)
        with self._lock:
            return [np.asarray(c) for c in self._dlib.get_face_chips(arr, self._shapes(detections), size=size, padding=padding)]


class FaceModelUnknown(ValueError):
    """No backend is registered under that model id, or it cannot store its vectors."""


@dataclass(frozen=True)
class Registered:
    model_id: str
    dim: int
    factory: Callable[..., FaceBackend]  # factory(detector=..., upsample=...) -> FaceBackend


_registry: dict[str, Registered] = {}
_cache: dict[tuple, FaceBackend] = {}
_cache_lock = threading.Lock()


def register(model_id: str, factory: Callable[..., FaceBackend], *, dim: int, replace: bool = False) -> None:
    """Make a face backend available as ``model_id`` (what ``FACE_MODEL`` and a job's ``model`` name).

    ``factory(detector=..., upsample=...)`` builds the backend; it is called once per process per
    detector and upsampling. ``dim`` is the width of its vectors: only ``FACE_DIM`` is accepted,
    since every model's vectors are stored, indexed and served as 128-d."""
    if not model_id or len(model_id) > 100:
        raise FaceModelUnknown(f"a face model id must be 1 to 100 characters, got {model_id!r}")
    if int(dim) != FACE_DIM:
        raise FaceModelUnknown(
            f"face model {model_id!r} makes {dim}-d vectors, but face vectors are stored and indexed as {FACE_DIM}-d "
            f"(Face.vector, its HNSW index and the API); it cannot be registered"
        )
    with _cache_lock:
        if model_id in _registry and not replace:
            raise FaceModelUnknown(f"face model {model_id!r} is already registered")
        _registry[model_id] = Registered(model_id, int(dim), factory)
        for key in [k for k in _cache if k[0] == model_id]:
            del _cache[key]


def unregister(model_id: str) -> None:
    """Forget a registered model and its loaded backends (the default model cannot be removed)."""
    if model_id == MODEL_ID:
        raise FaceModelUnknown(f"the default face model {MODEL_ID!r} cannot be unregistered")
    with _cache_lock:
        _registry.pop(model_id, None)
        for key in [k for k in _cache if k[0] == model_id]:
            del _cache[key]


def registered() -> list[str]:
    return sorted(_registry)


def model_dim(model_id: str) -> int:
    """The width of a registered model's vectors (without loading it)."""
    return _lookup(model_id).dim


def _lookup(model_id: str) -> Registered:
    try:
        return _registry[model_id]
    except KeyError:
        raise FaceModelUnknown(f"unknown face model {model_id!r}; registered: {', '.join(registered())}") from None


def get_backend(model_id: str | None = None, *, detector: str | None = None, upsample: int | None = None) -> FaceBackend:
    """The face backend for ``model_id`` (default ``FACE_MODEL``), loaded once per process per
    detector, upsampling and model folder; ``detector`` and ``upsample`` default to the stage's
    settings (``FACE_DETECTOR``, ``FACE_UPSAMPLE``)."""
    entry = _lookup(model_id or face_model())
    conf = face_settings()
    detector = detector or conf["detector"]
    # MTCNN's settings only where it runs: a malformed FACE_MTCNN_* leaves HOG (the doppelganger's) alone.
    key = (entry.model_id, detector, conf["upsample"] if upsample is None else int(upsample),
           str(setting("FACE_MODELS_DIR", "")), tuple(sorted(mtcnn_settings().items())) if "mtcnn" in detector else (),
           min_height())
    with _cache_lock:
        backend = _cache.get(key)
        if backend is None:
            backend = entry.factory(detector=key[1], upsample=key[2])
            if backend.model_id != entry.model_id or backend.dim != entry.dim:
                raise FaceModelUnknown(
                    f"the backend registered as {entry.model_id!r} ({entry.dim}-d) built one that says "
                    f"{backend.model_id!r} ({backend.dim}-d); refusing to store its vectors"
                )
            _cache[key] = backend
    return backend


register(MODEL_ID, DlibFaceBackend, dim=DIM)


def l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(math.sqrt(float(np.sum((np.asarray(a, np.float32) - np.asarray(b, np.float32)) ** 2))))


@dataclass
class Analysis:
    """Faces found in one image: detections and crops in the working image's pixels, their vectors."""

    image: object  # the working (possibly downscaled) Pillow image
    scale: float  # working-image pixels -> input-image pixels
    detections: list[Detection]
    vectors: np.ndarray


def analyse(backend: FaceBackend, image, *, max_side: int | None = None, upsample: int | None = None,
            retry_upsample: int | None = None, embed: bool = True) -> Analysis:
    """Downscale ``image`` (Pillow, RGB) to at most ``max_side`` px, detect, and embed every face
    (``embed=False``: leave ``vectors`` empty, e.g. to embed only the face a visitor picks).

    With ``retry_upsample``, an image where nothing is found is searched again at that upsampling
    (small faces in a large photo cost the extra time only when needed)."""
    work = image.convert("RGB") if image.mode != "RGB" else image
    scale = 1.0
    if max_side and max(work.size) > max_side:
        work = work.copy()
        work.thumbnail((max_side, max_side))
        scale = image.size[0] / work.size[0]
    arr = as_array(work)
    detections = backend.detect(arr, upsample=upsample)
    if not detections and retry_upsample is not None and retry_upsample != upsample:
        detections = backend.detect(arr, upsample=retry_upsample)
    vectors = backend.embed(arr, detections) if embed else np.zeros((0, backend.dim), dtype=np.float32)
    return Analysis(work, scale, detections, vectors)
