"""Score the faces stage's filters and merges on the painted-faces test set from boxes recorded
once by ``bench/face_detect_sweep.py`` (no detector is run here).

The set-up is the stage's: HOG upsample 1 at score >= 0 (``hog1``) or none, then MTCNN with
P-/R-net thresholds 0.4/0.5 on the image (``mtcnn_p0.4_r0.5``) and on its mirror
(``mtcnn_p0.4_r0.5_flip``), kept at score >= 0.85, the two passes merged one box per face at IoU
0.3, then merged with HOG's boxes as the stage's ``hog+mtcnn`` merges them. Varied here:

- the minimum face height (``FACE_MIN_HEIGHT``): boxes lower than N px in the 1024 px derivative
  dropped (also the box's smaller side, for comparison);
- the mirror merge: the better-scored box kept as it is (``suppress``, the stage before) or the
  mean of the two passes' boxes where both found the face (``fuse``, the stage's now);
- an extra MTCNN pass on the image brightened by gamma 0.6 (``mtcnn_g0.6``, if recorded) only on
  paintings whose mean luminance is under L, its faces added where no other box holds them.

CPU seconds per painting are the raw runs' (one pinned core; a set-up's the sum of the runs it
needs, the gamma pass counted only on the paintings it runs on).

Usage: .venv/bin/python bench/face_detect_filters.py --cache /tmp/face_detect_sweep.json[,more.json]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from face_detect_sweep import load_scored, prf, union  # noqa: E402

from workers.ml.faces import iou  # noqa: E402
from workers.ml.mtcnn import MIRROR_NMS_IOU, fuse, suppress  # noqa: E402

IMAGE, MIRROR, GAMMA = "mtcnn_p0.4_r0.5", "mtcnn_p0.4_r0.5_flip", "mtcnn_g0.6"
THRESHOLD = 0.85
HEIGHTS = (0, 16, 18, 20, 22, 24, 28)
DARK = (50, 70, 100)


def luminance(keys: list) -> dict:
    """Mean Rec. 601 luma of each painting's 1024 px derivative (what the stage would test)."""
    from faces_eval import DATA, derivative

    from workers.ml.face_light import mean_luminance
    from workers.ml.faces import as_array

    folder = DATA / "artworks" / "aic-artwall" / "images"
    return {k: mean_luminance(as_array(derivative((folder / f"{k}.jpg").read_bytes(), 1024))) for k in keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", required=True, help="the sweep's box caches, comma-separated")
    args = parser.parse_args()
    raw, data, truth, plain = load_scored(args.cache)
    keys = sorted(k for k in truth if all(k in raw.get(n, {}) for n in ("hog1", IMAGE, MIRROR)))
    # Boxes are in original pixels; the stage's derivative is the painting fitted in 1024 px.
    scale = {k: max(1.0, max(data["images"][k]["size"]) / 1024) for k in keys}

    def kept(name, key, threshold=THRESHOLD):
        return [b for b in raw[name][key]["boxes"] if b[4] >= threshold]

    def cpu(name, only=None):
        return sum(raw[name][k]["cpu_seconds"] for k in keys if only is None or k in only) / len(keys)

    def mtcnn(key, merge):
        found = sorted([(tuple(b[:4]), b[4], False) for b in kept(IMAGE, key)] +
                       [(tuple(b[:4]), b[4], True) for b in kept(MIRROR, key)], key=lambda f: -f[1])
        if merge == "fuse":
            faces = fuse(found, MIRROR_NMS_IOU)
        else:
            faces = suppress([(box, s) for box, s, _ in found], MIRROR_NMS_IOU)
        return [[*box, s] for box, s in faces]

    rows = []

    def add(label, per, seconds):
        p, r, f = prf(per, truth, set(keys))
        rows.append((label, p, r, f, prf(per, truth, plain & set(keys))[2], sum(map(len, per.values())), seconds))

    def setup(hog, merge, height=0, side=False, dark=None, light=None):
        per = {}
        for k in keys:
            faces = mtcnn(k, merge)
            if dark is not None and light[k] < dark:
                faces += [b for b in kept(GAMMA, k) if all(iou(b[:4], f[:4]) < MIRROR_NMS_IOU for f in faces)]
            boxes = union(kept("hog1", k, 0.0), faces) if hog else faces
            per[k] = [b for b in boxes if (min(b[2], b[3]) if side else b[3]) / scale[k] >= height]
        return per

    base = cpu(IMAGE) + cpu(MIRROR)
    for hog in (True, False):
        prefix, seconds = ("hog1 + " if hog else ""), base + (cpu("hog1") if hog else 0.0)
        for merge in ("suppress", "fuse"):
            for height in HEIGHTS:
                add(f"{prefix}mtcnn + mirror ({merge}), height >= {height}", setup(hog, merge, height), seconds)
        for height in (16, 20, 24, 28):
            add(f"{prefix}mtcnn + mirror (fuse), smaller side >= {height}", setup(hog, "fuse", height, side=True), seconds)
    if GAMMA in raw and all(k in raw[GAMMA] for k in keys):
        light = luminance(keys)
        for hog in (True, False):
            for dark in DARK:
                darker = {k for k in keys if light[k] < dark}
                seconds = base + (cpu("hog1") if hog else 0.0) + cpu(GAMMA, darker)
                add(f"{'hog1 + ' if hog else ''}mtcnn + mirror (fuse), height >= 20, + gamma 0.6 pass where mean luma < {dark}"
                    f" ({len(darker)} paintings)", setup(hog, "fuse", 20, dark=dark, light=light), seconds)
    print(f"{len(keys)} paintings, {sum(len(truth[k]) for k in keys)} faces; MTCNN score >= {THRESHOLD}\n")
    print("| set-up | precision | recall | F1 | F1 without crowd paintings | found | CPU s / painting |")
    print("|---|---|---|---|---|---|---|")
    for label, p, r, f, fp, n, s in rows:
        print(f"| {label} | {p:.3f} | {r:.3f} | {f:.3f} | {fp:.3f} | {n} | {s:.3f} |")


if __name__ == "__main__":
    main()
