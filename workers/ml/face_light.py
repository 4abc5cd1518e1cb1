"""Lighting of an RGB image for a face detector: its mean luminance, and a copy with local
contrast raised (CLAHE on the lightness channel) or brightened by a gamma, so faces in shadow and
on dark grounds reach the detector with the contrast it was trained on."""
from __future__ import annotations

import numpy as np


def mean_luminance(arr: np.ndarray) -> float:
    """Mean Rec. 601 luma (0-255) of an RGB uint8 array."""
    a = arr.astype(np.float32)
    return float((0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]).mean())


def equalise(arr: np.ndarray, clip: float = 2.0, tiles: int = 8) -> np.ndarray:
    """CLAHE (contrast-limited adaptive histogram equalisation) on the L channel of CIE Lab; hue kept."""
    import cv2

    lab = cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2LAB)
    lab[..., 0] = cv2.createCLAHE(clipLimit=float(clip), tileGridSize=(int(tiles), int(tiles))).apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def brighten(arr: np.ndarray, gamma: float = 0.6) -> np.ndarray:
    """Each channel raised to ``gamma`` (< 1 brightens the shadows, keeps white white)."""
    table = np.clip(255.0 * (np.arange(256) / 255.0) ** float(gamma) + 0.5, 0, 255).astype(np.uint8)
    return table[arr]
