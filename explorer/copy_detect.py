"""Near-copy verification for search by image: is the query a crop, mirror or recolouring of a
candidate? Normalised cross-correlation of small brightness thumbnails (luminance, and HSV value
for hue-rotated copies), over a few crop scales, every position, and the mirrored query. Cheap (tens of candidates, ~20 px templates) and
independent of the embedding model, so copies are found even when the model's features are weak
(the untrained test model) and are flagged as copies when they are."""
from __future__ import annotations

import numpy as np
from scipy.signal import correlate
from PIL import Image, ImageOps

TEMPLATE = 24  # query long side in pixels
SCALES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)  # fraction of the candidate the query may show
COPY_THRESHOLD = 0.8


def _gray(im: Image.Image, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(ImageOps.grayscale(im).resize(size, Image.Resampling.BILINEAR), dtype=np.float32)


def _value(im: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """HSV value (the brightest channel): unchanged when the hues are rotated, where luminance
    changes (a red turned green gets brighter)."""
    rgb = np.asarray(im.convert("RGB").resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
    return rgb.max(axis=2)


# Brightness maps compared: luminance survives greyscale, sepia and colour casts; value survives
# hue rotations.
VIEWS = (_gray, _value)


def _template(im: Image.Image, view=_gray) -> np.ndarray:
    w, h = im.size
    scale = TEMPLATE / max(w, h)
    return view(im, (max(4, round(w * scale)), max(4, round(h * scale))))


def _normalise(a: np.ndarray) -> np.ndarray:
    a = a - a.mean()
    return a / (np.linalg.norm(a) + 1e-6)


def _window_sums(a: np.ndarray, th: int, tw: int) -> np.ndarray:
    c = np.pad(a, ((1, 0), (1, 0))).cumsum(axis=0).cumsum(axis=1)
    return c[th:, tw:] - c[:-th, tw:] - c[th:, :-tw] + c[:-th, :-tw]


def _best_ncc(template: np.ndarray, target: np.ndarray) -> float:
    """Max normalised cross-correlation of ``template`` over every window of ``target``."""
    th, tw = template.shape
    if target.shape[0] < th or target.shape[1] < tw:
        return -1.0
    t = _normalise(template)  # zero mean, unit norm: sum(t * window) ignores the window's mean
    numerator = correlate(target, t, mode="valid", method="fft")
    n = th * tw
    s1 = _window_sums(target.astype(np.float64), th, tw)
    s2 = _window_sums(target.astype(np.float64) ** 2, th, tw)
    norms = np.sqrt(np.maximum(s2 - s1 * s1 / n, 0.0)) + 1e-3
    return float(np.max(numerator / norms))


def copy_score(query: Image.Image, candidate: Image.Image) -> float:
    """Best NCC of the query (or its mirror) against any window of the candidate at any scale,
    on luminance and on HSV value (whichever matches better)."""
    best = -1.0
    for view in VIEWS:
        template = _template(query, view)
        mirrored = template[:, ::-1]
        th, tw = template.shape
        cw, ch = candidate.size
        for s in SCALES:
            # The query shows a fraction s of the candidate along its long side.
            if tw >= th:
                width = round(tw / s)
                size = (width, max(th, round(width * ch / cw)))
            else:
                height = round(th / s)
                size = (max(tw, round(height * cw / ch)), height)
            target = view(candidate, size)
            best = max(best, _best_ncc(template, target), _best_ncc(mirrored, target))
    return best
