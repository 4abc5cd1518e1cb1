"""Near-copy verification for search by image: does the query show (part of) a candidate, as a
crop, mirror, recolouring, rotation or rescan? Geometric verification with local features: ORB
keypoints (OpenCV; rotation-invariant; an image pyramid for scale) matched with the ratio test,
then a similarity transform (rotation, scale, translation) fitted with RANSAC. Two brightness
maps are matched: luminance (survives greyscale, sepia, colour casts) and HSV value, the
brightest channel (unchanged by hue rotations, which change luminance). A copy has many matches that agree on one transform; unrelated
paintings, however alike in layout or colour, have a handful. The query's mirror is matched too.

The score is the number of RANSAC inliers; ``COPY_THRESHOLD`` inliers flag a copy. It is
independent of the embedding model, so copies are found and badged even with the untrained
test model. Candidate features are computed once per image (from its 512 px derivative) and
kept in the private store under ``copy-features/`` keyed by sha256, and in a per-process cache;
``bench/copies.py`` measures recall, false flags and latency on the shared images.
"""
from __future__ import annotations

import io
import threading
from collections import OrderedDict

import cv2
import numpy as np
from PIL import Image, ImageOps

SIDE = 512  # long side the images are matched at (the candidates' derivative size)
CANDIDATE_FEATURES = 1000  # a crop shows part of the candidate: it needs keypoints everywhere
QUERY_FEATURES = 500
RATIO = 0.8  # Lowe's ratio test
REPROJECTION = 4.0  # RANSAC inlier distance in pixels at SIDE
MIN_SCALE, MAX_SCALE = 0.25, 4.0  # query-to-candidate scale of a plausible copy (both at SIDE)
MIN_SPREAD = 0.01  # the inliers' box on the candidate covers at least this share of SIDE x SIDE
COPY_THRESHOLD = 10  # distinct RANSAC inliers; unrelated works reach 5 at most in bench/copies.py
# A cheap first look: the query's PREFILTER_FEATURES strongest keypoints against the candidate.
# Generated copies (crops to 30 % included) give at least 10 ratio-test matches; about 8 % of
# unrelated lookalikes reach PREFILTER_MATCHES and get the full check (bench/copies.py).
PREFILTER_FEATURES = 128
PREFILTER_MATCHES = 7
CACHE_SIZE = 4096

Features = tuple[np.ndarray, np.ndarray | None]  # (keypoint positions N x 2 float32, descriptors N x 32 uint8)
CHANNELS = ("grey", "value")

_cache: OrderedDict[str, dict[str, Features]] = OrderedDict()
_lock = threading.Lock()
_matcher = cv2.BFMatcher(cv2.NORM_HAMMING)


def _maps(image: Image.Image) -> dict[str, np.ndarray]:
    rgb = image.convert("RGB")
    scale = SIDE / max(rgb.size)
    if abs(scale - 1.0) > 0.01:
        rgb = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))), Image.Resampling.BILINEAR)
    return {"grey": np.asarray(ImageOps.grayscale(rgb)), "value": np.asarray(rgb).max(axis=2)}


def _detect(array: np.ndarray, count: int) -> Features:
    """ORB keypoints and descriptors, strongest (highest response) first."""
    keypoints, descriptors = cv2.ORB_create(nfeatures=count).detectAndCompute(np.ascontiguousarray(array), None)
    order = np.argsort([-k.response for k in keypoints], kind="stable")
    points = np.float32([keypoints[i].pt for i in order]).reshape(-1, 2)
    return points, descriptors[order] if descriptors is not None else None


def features(image: Image.Image, count: int = CANDIDATE_FEATURES) -> dict[str, Features]:
    """Features of each brightness map of an image."""
    return {channel: _detect(array, count) for channel, array in _maps(image).items()}


def query_features(image: Image.Image) -> dict[str, tuple[Features, Features]]:
    """The query's features and its mirror's, per brightness map."""
    plain, mirrored = features(image, QUERY_FEATURES), features(ImageOps.mirror(image), QUERY_FEATURES)
    return {channel: (plain[channel], mirrored[channel]) for channel in CHANNELS}


def _good_matches(query_descriptors: np.ndarray, candidate_descriptors: np.ndarray) -> list:
    pairs = _matcher.knnMatch(query_descriptors, candidate_descriptors, k=2)
    return [m[0] for m in pairs if len(m) == 2 and m[0].distance < RATIO * m[1].distance]


def promising(query: dict[str, tuple[Features, Features]], candidate: dict[str, Features]) -> bool:
    """Whether the strongest query keypoints (or its mirror's) find enough matches on the candidate
    to be worth the full check; a quarter of its cost, and most lookalikes stop here."""
    for channel in CHANNELS:
        cd = candidate[channel][1]
        if cd is None or len(cd) < 4:
            continue
        for _, qd in query[channel]:
            if qd is not None and len(_good_matches(qd[:PREFILTER_FEATURES], cd)) >= PREFILTER_MATCHES:
                return True
    return False


def inliers(query: Features, candidate: Features) -> int:
    (qp, qd), (cp, cd) = query, candidate
    if qd is None or cd is None or len(qp) < 4 or len(cp) < 4:
        return 0
    good = _good_matches(qd, cd)
    if len(good) < 4:
        return 0
    src = qp[[g.queryIdx for g in good]]
    dst = cp[[g.trainIdx for g in good]]
    transform, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION)
    if transform is None or mask is None:
        return 0
    # A copy maps the query at a plausible scale (a crop to 30% of the area is ~0.55) ...
    scale = float(np.sqrt(abs(np.linalg.det(transform[:, :2]))))
    if not MIN_SCALE <= scale <= MAX_SCALE:
        return 0
    keep = mask.ravel().astype(bool)
    # ... onto distinct keypoints spread over an area: repeated patterns and clusters match many
    # query points onto a few candidate points in one corner.
    distinct = len({round(x) + 10_000 * round(y) for x, y in dst[keep]})
    span = np.ptp(dst[keep], axis=0) if keep.any() else np.zeros(2)
    if span[0] * span[1] < MIN_SPREAD * SIDE * SIDE:
        return 0
    return min(int(keep.sum()), distinct)


def verify(query: dict[str, tuple[Features, Features]], candidate: dict[str, Features]) -> int:
    """RANSAC inliers of the query (or its mirror) against a candidate, on the brightness map that
    matches best (the first one that verifies a copy ends the check); 0 when the first look finds
    too few matches to be a copy."""
    if not promising(query, candidate):
        return 0
    best = 0
    for channel in CHANNELS:
        plain, mirrored = query[channel]
        best = max(best, inliers(plain, candidate[channel]), inliers(mirrored, candidate[channel]))
        if best >= COPY_THRESHOLD:
            break
    return best


def copy_score(query: Image.Image, candidate: Image.Image) -> int:
    """Inliers of ``query`` against ``candidate`` (both images; search uses the cached features)."""
    return verify(query_features(query), features(candidate))


# --- candidate features, cached ---------------------------------------------------------------------

def _name(sha256: str) -> str:
    return f"copy-features/{sha256[:2]}/{sha256}.npz"


def candidate_features(sha256: str) -> dict[str, Features]:
    """Features of an artwork's image: from the process cache, the private store, or computed from
    its 512 px derivative (and stored). Raises OSError when the derivative cannot be read."""
    with _lock:
        found = _cache.get(sha256)
        if found is not None:
            _cache.move_to_end(sha256)
            return found
    from archive import storage
    from archive.images import load_derivative

    store = storage.private()
    name = _name(sha256)
    result: dict[str, Features] | None = None
    try:
        with np.load(io.BytesIO(storage.read(store, name))) as data:
            result = {
                c: (data[f"{c}_points"], data[f"{c}_descriptors"] if data[f"{c}_descriptors"].size else None) for c in CHANNELS
            }
    except (OSError, ValueError, KeyError):
        result = None
    if result is None:
        result = features(load_derivative(sha256, SIDE))
        buffer = io.BytesIO()
        arrays = {}
        for channel, (points, descriptors) in result.items():
            arrays[f"{channel}_points"] = points
            arrays[f"{channel}_descriptors"] = descriptors if descriptors is not None else np.zeros((0, 32), np.uint8)
        np.savez(buffer, **arrays)
        try:
            storage.put(store, name, buffer.getvalue())
        except OSError:
            pass  # a read-only store: computed again next time
    with _lock:
        _cache[sha256] = result
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return result
