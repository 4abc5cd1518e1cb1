"""Score the faces stage's possible HOG + MTCNN set-ups on the painted-faces test set from boxes
recorded once by ``bench/face_detect_sweep.py`` (no detector is run here).

Each set-up is HOG upsample 1 at score >= 0 (the stage's HOG) or none, then MTCNN boxes kept at a
final score threshold from one of the sweep's raw runs, named as they were recorded while the
stage's MTCNN had P-/R-net thresholds 0.5/0.6: that MTCNN (``mtcnn``), with P-/R-net
thresholds 0.4/0.5 (``mtcnn_p0.4_r0.5``, the stage's since), with smallest face 14 px (``mtcnn_m14``), with pyramid
factor 0.8 (``mtcnn_f0.8``); ``+mirror`` adds the run on the mirror image (``..._flip``), both passes'
boxes thresholded and merged by greedy NMS at IoU 0.3 as ``workers/ml/mtcnn.py`` merges them;
``m14 where crowded`` runs the stage's MTCNN, and again at smallest face 14 px (its boxes replacing
the first pass's) only on a painting where the first pass found at least N faces, so that cost is
paid only there. HOG's and MTCNN's boxes are merged as the stage's ``hog+mtcnn`` merges them. CPU
seconds per painting are the raw runs' (one pinned core), a set-up's the sum of the runs it needs.

Usage: .venv/bin/python bench/face_detect_combos.py --cache /tmp/a.json,/tmp/b.json [--budget 1.0]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from face_detect_sweep import load_scored, prf, union  # noqa: E402

from workers.ml.mtcnn import MIRROR_NMS_IOU, suppress  # noqa: E402

THRESHOLDS = (0.85, 0.9, 0.93, 0.95)
CROWD_TRIGGERS = (2, 3, 4, 6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", required=True, help="the sweep's box caches, comma-separated")
    parser.add_argument("--budget", type=float, default=1.0)
    args = parser.parse_args()
    raw, data, truth, plain = load_scored(args.cache)
    keys = sorted(k for k in truth if all(k in raw.get(n, {}) for n in ("hog1", "mtcnn")))

    def kept(name, key, t):
        return [b for b in raw[name][key]["boxes"] if b[4] >= t]

    def cpu(name, only=None):
        return sum(raw[name][k]["cpu_seconds"] for k in keys if only is None or k in only) / len(keys)

    def mtcnn(base, mirror, t):
        if not mirror:
            return {k: kept(base, k, t) for k in keys}, cpu(base)
        flip = base + "_flip"
        per = {}
        for k in keys:
            found = sorted(((tuple(b[:4]), b[4]) for b in kept(base, k, t) + kept(flip, k, t)), key=lambda f: -f[1])
            per[k] = [[*box, s] for box, s in suppress(found, MIRROR_NMS_IOU)]
        return per, cpu(base) + cpu(flip)

    rows = []

    def add(label, per, seconds):
        p, r, f = prf(per, truth, set(keys))
        rows.append((label, p, r, f, prf(per, truth, plain & set(keys))[2], seconds))

    for t in THRESHOLDS:
        for base in ("mtcnn", "mtcnn_p0.4_r0.5", "mtcnn_m14", "mtcnn_f0.8"):
            for mirror in (False, True):
                if mirror and base + "_flip" not in raw:
                    continue
                per, seconds = mtcnn(base, mirror, t)
                name = base + (" + mirror" if mirror else "")
                add(f"{name} >= {t}", per, seconds)
                add(f"hog1 + {name} >= {t}", {k: union(kept("hog1", k, 0.0), per[k]) for k in keys}, seconds + cpu("hog1"))
        for n in CROWD_TRIGGERS:
            crowded = {k for k in keys if len(kept("mtcnn", k, t)) >= n}
            per = {k: kept("mtcnn_m14" if k in crowded else "mtcnn", k, t) for k in keys}
            seconds = cpu("mtcnn") + cpu("mtcnn_m14", crowded)
            add(f"hog1 + mtcnn >= {t}, m14 where it found >= {n} ({len(crowded)} paintings)",
                {k: union(kept("hog1", k, 0.0), per[k]) for k in keys}, seconds + cpu("hog1"))
    add("hog1 >= 0", {k: kept("hog1", k, 0.0) for k in keys}, cpu("hog1"))
    if "hog2" in raw and all(k in raw["hog2"] for k in keys):
        add("hog2 >= 0", {k: kept("hog2", k, 0.0) for k in keys}, cpu("hog2"))
        for t in (0.9, 0.93):
            add(f"hog2 + mtcnn >= {t}", {k: union(kept("hog2", k, 0.0), kept("mtcnn", k, t)) for k in keys}, cpu("hog2") + cpu("mtcnn"))
    print(f"{len(keys)} paintings, {sum(len(truth[k]) for k in keys)} faces\n")
    print("| set-up | precision | recall | F1 | F1 without crowd paintings | CPU s / painting |")
    print("|---|---|---|---|---|---|")
    for label, p, r, f, fp, s in rows:
        print(f"| {label} | {p:.3f} | {r:.3f} | {f:.3f} | {fp:.3f} | {s:.3f} |")
    within = [row for row in rows if row[5] <= args.budget]
    best = max(within, key=lambda row: row[3])
    print(f"\nbest F1 within {args.budget} CPU s/painting: {best[0]} (F1 {best[3]:.3f}, {best[5]:.3f} CPU s)")


if __name__ == "__main__":
    main()
