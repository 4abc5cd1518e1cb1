"""Colour in a perceptual space: sRGB <-> CIELAB (D65), palettes and their search signatures.

A palette is a few dominant colours of an image with the share of its pixels each covers, in
CIELAB, where a distance of ~2.3 is a just-noticeable difference and distances mean the same
everywhere (unlike RGB). To search palettes through one index, each palette becomes a fixed
*signature*: its colours spread over a codebook of SIGNATURE_DIM reference colours (the 6-level
sRGB cube in CIELAB) with a Gaussian kernel of width SIGMA, weighted by share, unit length. The
cosine of two signatures is then a smooth palette similarity (close colours match partly, not
only identical ones), and a query of one to three colours with their amounts is a palette too.
"""
from __future__ import annotations

import numpy as np

from archive import vectors

# The signature's method: stored with every palette row (as a model id is for embeddings), so a
# change to the codebook or kernel makes new rows beside the old ones, never mixed with them.
METHOD = "lab-k5-cube6-s14"
PALETTE_SIZE = 5
# Where palette signatures live: one partial HNSW index per method (archive.vectors).
PALETTES = vectors.VectorSpace(table="archive_artworkpalette", model_column="method")
SIGMA = 14.0  # Lab units: about the spacing of neighbouring codebook colours

_WHITE = np.array([0.95047, 1.0, 1.08883])  # D65
_M = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]])
_M_INV = np.linalg.inv(_M)
_EPS, _KAPPA = 216 / 24389, 24389 / 27


def rgb_to_lab(rgb) -> np.ndarray:
    """sRGB (uint8 0-255 or float 0-1, shape (..., 3)) to CIELAB (D65)."""
    arr = np.asarray(rgb, dtype=np.float64)
    if np.asarray(rgb).dtype == np.uint8 or arr.max(initial=0) > 1.0:
        arr = arr / 255.0
    linear = np.where(arr <= 0.04045, arr / 12.92, ((arr + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _M.T / _WHITE
    f = np.where(xyz > _EPS, np.cbrt(xyz), (_KAPPA * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def lab_to_rgb(lab) -> np.ndarray:
    """CIELAB to sRGB uint8 (clipped into the gamut)."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], axis=-1)
    xyz = np.where(f**3 > _EPS, f**3, (116 * f - 16) / _KAPPA) * _WHITE
    linear = np.clip(xyz @ _M_INV.T, 0, 1)
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.clip(np.round(srgb * 255), 0, 255).astype(np.uint8)


def to_hex(rgb) -> str:
    r, g, b = (int(v) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def parse_hex(text: str) -> tuple[int, int, int]:
    """'#a1b2c3', 'a1b2c3' or '#abc' as (r, g, b); ValueError with a readable message otherwise."""
    value = str(text).strip().lstrip("#")
    if len(value) == 3:
        value = "".join(ch * 2 for ch in value)
    if len(value) != 6 or any(ch not in "0123456789abcdefABCDEF" for ch in value):
        raise ValueError(f"{text!r} is not a colour: give it as #rrggbb")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def delta_e(a, b) -> np.ndarray:
    """CIE76 colour difference (Euclidean distance in CIELAB)."""
    return np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64), axis=-1)


def _codebook() -> np.ndarray:
    levels = np.linspace(0, 255, 6)
    cube = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    return rgb_to_lab(cube / 255.0)


CODEBOOK = _codebook()
SIGNATURE_DIM = len(CODEBOOK)  # 216


def signature(labs, shares) -> np.ndarray:
    """The unit-length search signature (float32, SIGNATURE_DIM) of colours with their shares."""
    labs = np.asarray(labs, dtype=np.float64).reshape(-1, 3)
    shares = np.asarray(shares, dtype=np.float64).ravel()
    if len(labs) == 0 or len(labs) != len(shares) or (shares < 0).any() or shares.sum() <= 0:
        raise ValueError("a signature needs colours with non-negative shares that sum above zero")
    d2 = ((labs[:, None, :] - CODEBOOK[None, :, :]) ** 2).sum(-1)
    spread = np.exp(-d2 / (2 * SIGMA**2))
    spread /= spread.sum(axis=1, keepdims=True) + 1e-12  # each colour spreads exactly its share
    vec = (shares[:, None] * spread).sum(0)
    return (vec / np.linalg.norm(vec)).astype(np.float32)


def palette(pixels_rgb, *, k: int = PALETTE_SIZE, seed: int = 0) -> list[dict]:
    """The ``k`` dominant colours of an image's pixels ((n, 3) uint8 sRGB), largest share first:
    ``[{"lab": [L, a, b], "hex": "#rrggbb", "share": 0.41}, ...]`` (k-means in CIELAB; fewer
    colours for an image with fewer distinct ones)."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    pixels = np.asarray(pixels_rgb, dtype=np.uint8).reshape(-1, 3)
    if len(pixels) == 0:
        raise ValueError("an image without pixels has no palette")
    labs = rgb_to_lab(pixels)
    distinct = len(np.unique(pixels, axis=0))
    k = max(1, min(k, distinct))
    # One thread: a few thousand pixels are done in ~30 ms; BLAS/OpenMP threads only contend
    # (10-25 times slower on a busy 2-core machine), and the workers run batches in parallel anyway.
    with threadpool_limits(1):
        km = KMeans(n_clusters=k, n_init=2, random_state=seed, max_iter=100).fit(labs)
    counts = np.bincount(km.labels_, minlength=k).astype(np.float64)
    out = []
    for i in np.argsort(-counts):
        if counts[i] == 0:
            continue
        centre = km.cluster_centers_[i]
        out.append({"lab": [round(float(v), 2) for v in centre], "hex": to_hex(lab_to_rgb(centre)),
                    "share": round(float(counts[i] / counts.sum()), 4)})
    return out


def palette_signature(colours: list[dict]) -> np.ndarray:
    return signature([c["lab"] for c in colours], [c["share"] for c in colours])
