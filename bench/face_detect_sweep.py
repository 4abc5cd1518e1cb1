"""Score thresholds and HOG+MTCNN unions on the painted-faces test set without re-running detectors.

Each raw detector runs once per painting on the 1024 px derivative (as ``bench/face_detect.py``
does, one core) and keeps every box down to a low score: dlib's HOG at upsampling 0/1/2 with
``adjust_threshold`` -1 (``hog0``/``hog1``/``hog2``), MTCNN (facenet-pytorch, faces down to 20 px,
the stage's stage thresholds, so third-stage scores from 0.5; ``mtcnn``), and MTCNN with other
options (``mtcnn_m14_f0.8_p0.4_r0.5_o0.5_mirror``: smallest face, pyramid factor, stage thresholds,
mirror pass; see ``mtcnn_options``; what a name does not set is the stage's own, so ``mtcnn``
recorded before the stage thresholds became 0.4/0.5/0.5 is ``mtcnn_p0.5_r0.6`` now). Boxes are cached in
``--cache`` (default ``/tmp/face_detect_sweep.json``); then precision/recall/F1 are printed for
HOG at several score thresholds, MTCNN at several, and their union the way the stage's
``hog+mtcnn`` merges it (HOG's boxes, then MTCNN's that overlap none of them at IoU >= 0.3). CPU
seconds are the detector call's on one thread; a union costs the sum of its parts.

Usage: .venv/bin/python bench/face_detect_sweep.py [--limit N] [--raw hog1,mtcnn,mtcnn_m14] [--cached-only] [--no-unions]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from common import log  # noqa: E402
from face_detect import match, one_core_setup  # noqa: E402
from faces_eval import derivative  # noqa: E402

from workers.ml.faces import MERGE_IOU, iou  # noqa: E402

HOG_THRESHOLDS = (0.0, -0.1, -0.2, -0.3, -0.5)
MTCNN_THRESHOLDS = (0.8, 0.85, 0.9, 0.93, 0.95, 0.98)


def raw_detector(name: str):
    """RGB array -> [(x, y, w, h, score)], every box down to the low score."""
    if name.startswith("hog"):
        import dlib

        hog, upsample = dlib.get_frontal_face_detector(), int(name[3:])

        def detect(arr):
            rects, scores, _ = hog.run(arr, upsample, -1.0)
            return [(r.left(), r.top(), r.width(), r.height(), float(s)) for r, s in zip(rects, scores)]

        return detect
    if name == "mtcnn" or name.startswith("mtcnn_"):
        from workers.ml.mtcnn import MtcnnDetector

        options = mtcnn_options(name)
        flip = options.pop("flip")
        light = options.pop("light")
        mtcnn = MtcnnDetector(threshold=min(0.5, options["stage_thresholds"][2]), **options)

        def detect(arr):
            if light is not None:
                arr = light(arr)
            if not flip:
                return [(*box, score) for box, score in mtcnn(arr)]
            width = arr.shape[1]
            return [(width - x - w, y, w, h, score) for (x, y, w, h), score in mtcnn(np.ascontiguousarray(arr[:, ::-1]))]

        return detect
    raise SystemExit(f"unknown raw detector {name!r}")


def mtcnn_options(name: str) -> dict:
    """MTCNN's options from a raw detector's name: ``mtcnn`` is the stage's set-up;
    ``mtcnn_m16_f0.8_p0.4_r0.5_o0.5_mirror`` sets the smallest face (``m``, px), the pyramid
    factor (``f``), the P-/R-/O-net stage thresholds (``p``/``r``/``o``; the third stage's is
    also the lowest score recorded), the mirror pass beside the image's (``mirror``) or the
    mirror image alone, boxes mapped back (``flip``: to be merged with another run's boxes at
    scoring time), the image's contrast raised first (``clahe``: ``face_light.equalise``) or
    its gamma (``g0.6``: ``face_light.brighten``; the time to do so is in the CPU seconds); what
    is not named stays the stage's."""
    from workers.ml import mtcnn

    from workers.ml import face_light

    options = {"min_face": mtcnn.DEFAULT_MIN_FACE, "factor": mtcnn.DEFAULT_FACTOR, "mirror": False, "flip": False, "light": None}
    stages = list(mtcnn.STAGE_THRESHOLDS)
    for part in (name.split("_")[1:]):
        key, value = part[:1], part[1:]
        if part in ("mirror", "flip"):
            options[part] = True
        elif part == "clahe":
            options["light"] = face_light.equalise
        elif key == "g":
            options["light"] = lambda arr, gamma=float(value): face_light.brighten(arr, gamma)
        elif key == "m":
            options["min_face"] = int(value)
        elif key == "f":
            options["factor"] = float(value)
        elif key in "pro" and value:
            stages["pro".index(key)] = float(value)
        else:
            raise SystemExit(f"unknown MTCNN option {part!r} in {name!r}")
    options["stage_thresholds"] = tuple(stages)
    return options


def union(hog_boxes: list, mtcnn_boxes: list) -> list:
    """The stage's hog+mtcnn merge; HOG's boxes rank first when matched."""
    out = [(*b[:4], 10.0 + b[4]) for b in hog_boxes]
    for b in mtcnn_boxes:
        if all(iou(b[:4], h[:4]) < MERGE_IOU for h in hog_boxes):
            out.append(tuple(b))
    return out


def prf(per_image: dict, truth: dict, keys=None) -> tuple:
    tp = found = expected = 0
    for key, boxes in per_image.items():
        if keys is not None and key not in keys:
            continue
        tp += match(boxes, truth[key])
        found += len(boxes)
        expected += len(truth[key])
    p = tp / found if found else 0.0
    r = tp / expected if expected else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def load_scored(cache: str) -> tuple[dict, dict, dict, set]:
    """The sweep's recorded boxes from ``cache`` (paths, comma-separated; later files win) and the
    test set: (raw boxes by set-up, the set's data, faces per painting, paintings not marked crowd)."""
    import json
    from pathlib import Path

    from face_detect import load_truth

    raw = {}
    for path in cache.split(","):
        raw.update(json.loads(Path(path).read_text()))
    data = load_truth()
    truth = {k: v["faces"] for k, v in data["images"].items()}
    plain = {k for k, v in data["images"].items() if not v.get("crowd")}
    return raw, data, truth, plain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--raw", default="hog1,mtcnn", help="raw detectors to run: hog0, hog1, hog2, mtcnn")
    parser.add_argument("--cache", default="/tmp/face_detect_sweep.json")
    parser.add_argument("--cached-only", action="store_true", help="run nothing; score what the cache holds")
    parser.add_argument("--no-unions", dest="unions", action="store_false", help="no HOG + MTCNN rows")
    args = parser.parse_args()
    data, truth, plain, folder = one_core_setup()
    from workers.ml.faces import as_array
    keys = [k for k in sorted(truth) if (folder / f"{k}.jpg").exists()][: args.limit]
    cache_path = Path(args.cache)
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    if args.cached_only and not cache:
        raise SystemExit(f"no boxes recorded in {cache_path}: run once without --cached-only")
    names = [n for n in args.raw.split(",") if n]
    for name in names:
        done = cache.setdefault(name, {})
        todo = [] if args.cached_only else [k for k in keys if k not in done]
        detect = raw_detector(name) if todo else None
        for n, key in enumerate(todo):
            image = derivative((folder / f"{key}.jpg").read_bytes(), 1024)
            factor = data["images"][key]["size"][0] / image.size[0]
            arr = as_array(image)
            cpu = time.process_time()
            found = detect(arr)
            done[key] = {"boxes": [[x * factor, y * factor, w * factor, h * factor, s] for x, y, w, h, s in found],
                         "cpu_seconds": time.process_time() - cpu}
            if (n + 1) % 20 == 0:
                log(f"{name}: {n + 1}/{len(todo)}")
                cache_path.write_text(json.dumps(cache))
        cache_path.write_text(json.dumps(cache))
    keys = [k for k in keys if all(k in cache.get(n, {}) for n in names)]
    log(f"{len(keys)} paintings, {sum(len(truth[k]) for k in keys)} faces; load average {open('/proc/loadavg').read().split()[:3]}")

    def boxes(name, key, threshold):
        return [b for b in cache[name][key]["boxes"] if b[4] >= threshold]

    def cpu(name):
        return float(np.mean([cache[name][k]["cpu_seconds"] for k in keys]))

    print("\n| detector | precision | recall | F1 | F1 without crowd paintings | CPU s / painting |")
    print("|---|---|---|---|---|---|")

    def row(label, per, seconds):
        p, r, f = prf(per, truth)
        print(f"| {label} | {p:.3f} | {r:.3f} | {f:.3f} | {prf(per, truth, plain)[2]:.3f} | {seconds:.3f} |")

    hogs = [n for n in names if n.startswith("hog")]
    for name in hogs:
        for t in HOG_THRESHOLDS:
            row(f"{name} score >= {t}", {k: boxes(name, k, t) for k in keys}, cpu(name))
    for mt_name in [n for n in names if n.startswith("mtcnn")]:
        for t in MTCNN_THRESHOLDS:
            row(f"{mt_name} score >= {t}", {k: boxes(mt_name, k, t) for k in keys}, cpu(mt_name))
        for name in hogs if args.unions else []:
            for ht in HOG_THRESHOLDS[:1]:
                for mt in MTCNN_THRESHOLDS:
                    row(f"{name} >= {ht} + {mt_name} >= {mt}", {k: union(boxes(name, k, ht), boxes(mt_name, k, mt)) for k in keys},
                        cpu(name) + cpu(mt_name))


if __name__ == "__main__":
    main()
