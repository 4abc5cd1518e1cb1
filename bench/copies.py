"""Copy badges in search by image: recall on true copies, false flags on unrelated works, latency.

On the shared images (aic-artwall paintings and culturecraft crops): a library of every image but
--held-out ones, with the candidate features search uses (``explorer.copy_detect.features`` of the
512 px image, as the derivative). Then:

- **recall**: for --works library images, generated copies: crops down to 30% of the area, mirrors,
  hue rotations, sepia, 90/180/270-degree rotations and JPEG rescans (half size, 2-degree tilt,
  quality 40); a copy counts when it is verified against its original;
- **false flags**: the held-out works (not in the library), as they are and cropped, are queries
  for which every flag is false. Each is checked against the 40 library works nearest by
  perceptual hash (lookalikes, as search adds them; an untrained model gives no meaningful
  embedding neighbours, so these stand in for them). Flagged works rank first, so a query's false
  flags in its top 5 are min(5, flagged); the rate is over 5 results per query;
- **latency**: the copy check of one search (query features, 45 candidates with cached features),
  wall and CPU time, p95 over the queries.

The previous detector (NCC of 24 px brightness thumbnails against 128 px thumbnails, threshold
0.8; ``git show`` of it is loaded from the commit given by --baseline-rev) is measured on the
same queries and candidates, as the baseline.

Usage: .venv/bin/python bench/copies.py [--works 40] [--held-out 40] [--baseline-rev REV]
Ends with: BENCH copies recall=<r> target=0.95 PASS|FAIL, then lines for false flags and p95.
"""
from __future__ import annotations

import argparse
import io
import os
import random
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("MUSEUM_SHARED_DATA", ROOT.parent / "shared" / "data"))
CANDIDATES = 40
TARGET_RECALL, TARGET_FALSE, TARGET_P95_MS = 0.95, 0.01, 500


def load(path: Path, side: int) -> Image.Image:
    with Image.open(path) as im:
        im = im.convert("RGB")
    im.thumbnail((side, side))
    return im


def hue(im: Image.Image, degrees: int) -> Image.Image:
    h, s, v = im.convert("HSV").split()
    h = h.point(lambda x: (x + round(degrees * 256 / 360)) % 256)
    return Image.merge("HSV", (h, s, v)).convert("RGB")


def crop(im: Image.Image, area: float, rng: random.Random) -> Image.Image:
    side = area ** 0.5
    w, h = im.size
    cw, ch = max(8, int(w * side)), max(8, int(h * side))
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    return im.crop((x, y, x + cw, y + ch))


def rescan(im: Image.Image) -> Image.Image:
    buf = io.BytesIO()
    im.resize((im.width // 2, im.height // 2)).rotate(2, resample=Image.Resampling.BILINEAR, fillcolor=(255, 255, 255)).save(buf, "JPEG", quality=40)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def variants(im: Image.Image, rng: random.Random) -> dict[str, Image.Image]:
    return {
        "crop30": crop(im, 0.3, rng), "crop50": crop(im, 0.5, rng), "mirror": ImageOps.mirror(im),
        "hue120": hue(im, 120), "sepia": ImageOps.colorize(ImageOps.grayscale(im), "#2e1a05", "#f5e6c8"),
        "rot90": im.rotate(90, expand=True), "rot180": im.rotate(180), "rot270": im.rotate(270, expand=True),
        "rescan": rescan(im), "mirror-crop50": ImageOps.mirror(crop(im, 0.5, rng)),
    }


def old_detector(rev: str):
    """The previous NCC detector, from git, as a module (None when that revision lacks it)."""
    try:
        source = subprocess.run(["git", "show", f"{rev}:explorer/copy_detect.py"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None
    if "correlate" not in source:
        return None
    module = types.ModuleType("old_copy_detect")
    exec(compile(source, "old_copy_detect.py", "exec"), module.__dict__)
    return module


def phash(im: Image.Image) -> int:
    from archive.images import phash_int

    return phash_int(im)


def distance(a: int, b: int) -> int:
    from archive.images import hamming

    return hamming(a, b)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--works", type=int, default=40, help="library works copies are made of")
    parser.add_argument("--held-out", type=int, default=40, help="works left out of the library (unrelated queries)")
    parser.add_argument("--baseline-rev", default="189e278", help="git revision holding the previous detector")
    args = parser.parse_args()

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "museum.settings")
    django.setup()
    from explorer import copy_detect as cd

    paths = sorted((SHARED / "artworks" / "aic-artwall" / "images").glob("*.jpg")) + sorted(
        (SHARED / "artworks" / "culturecraft" / "images").glob("*.jpg")
    )
    if not paths:
        sys.exit(f"no shared images under {SHARED}")
    rng = random.Random(20)
    order = paths[:]
    rng.shuffle(order)
    held_out, library = order[: args.held_out], order[args.held_out:]
    old = old_detector(args.baseline_rev)

    t, c = time.perf_counter(), time.process_time()
    images = {p: load(p, cd.SIDE) for p in library}
    feats = {p: cd.features(im) for p, im in images.items()}
    hashes = {p: phash(im) for p, im in images.items()}
    thumbs = {p: load(p, 128) for p in library} if old else {}
    per_image = (time.perf_counter() - t) / len(library) * 1000
    print(f"library: {len(library)} images ({len(held_out)} held out); features {per_image:.0f} ms per image "
          f"(wall, with loading; CPU {(time.process_time() - c) / len(library) * 1000:.0f} ms), computed once per image and stored")

    def check(query: Image.Image, candidates: list[Path]) -> tuple[list[int], float, float, list[float]]:
        t0, c0 = time.perf_counter(), time.process_time()
        q = cd.query_features(query)
        scores = [cd.verify(q, feats[p]) for p in candidates]
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        old_scores = [old.copy_score(query, thumbs[p]) for p in candidates] if old else []
        return scores, wall, cpu, old_scores

    # Recall over generated copies, each checked against its original among lookalike candidates.
    hits, old_hits, total, by_kind, old_by_kind, walls, cpus = 0, 0, 0, {}, {}, [], []
    positives: dict[str, list[int]] = {}
    negatives: list[int] = []
    for p in rng.sample(library, min(args.works, len(library))):
        for kind, query in variants(images[p], rng).items():
            query = query.copy()
            query.thumbnail((1024, 1024))
            h = phash(query)
            lookalikes = sorted((x for x in library if x != p), key=lambda x: distance(hashes[x], h))[: CANDIDATES - 1]
            scores, wall, cpu, old_scores = check(query, [p] + lookalikes)
            walls.append(wall)
            cpus.append(cpu)
            ok = scores[0] >= cd.COPY_THRESHOLD
            positives.setdefault(kind, []).append(scores[0])
            hits += ok
            total += 1
            by_kind.setdefault(kind, []).append(ok)
            if old:
                old_ok = old_scores[0] >= old.COPY_THRESHOLD
                old_hits += old_ok
                old_by_kind.setdefault(kind, []).append(old_ok)
    recall = hits / total
    print(f"recall over {total} copies: {recall:.3f}" + (f" (previous detector {old_hits / total:.3f})" if old else ""))
    for kind, oks in by_kind.items():
        print(f"  {kind:<14} {sum(oks)}/{len(oks)}  fewest inliers {min(positives[kind])}"
              + (f"   previous {sum(old_by_kind[kind])}/{len(oks)}" if old else ""))

    # False flags: queries whose work is not in the library.
    false_top5, old_false_top5, queries, flagged_pairs, pairs, max_unrelated = 0, 0, 0, 0, 0, 0
    for p in held_out:
        base = load(p, 1024)
        for query in (base, crop(base, 0.5, rng)):
            h = phash(query)
            candidates = sorted(library, key=lambda x: distance(hashes[x], h))[:CANDIDATES]
            scores, wall, cpu, old_scores = check(query, candidates)
            walls.append(wall)
            cpus.append(cpu)
            flagged = sum(s >= cd.COPY_THRESHOLD for s in scores)
            for x, score in zip(candidates, scores):
                if score >= cd.COPY_THRESHOLD:
                    print(f"  false flag: {p.parent.parent.name}/{p.name} -> {x.parent.parent.name}/{x.name} ({score} inliers)")
            max_unrelated = max(max_unrelated, max(scores))
            negatives.extend(scores)
            flagged_pairs += flagged
            pairs += len(scores)
            false_top5 += min(5, flagged)
            queries += 1
            if old:
                old_false_top5 += min(5, sum(s >= old.COPY_THRESHOLD for s in old_scores))
    false_rate = false_top5 / (5 * queries)
    print(f"false flags: {false_top5} of {5 * queries} top-5 results of {queries} unrelated queries ({false_rate:.2%}); "
          f"{flagged_pairs} of {pairs} checked pairs; most inliers for an unrelated work {max_unrelated} (threshold {cd.COPY_THRESHOLD})"
          + (f"; previous detector {old_false_top5} ({old_false_top5 / (5 * queries):.2%})" if old else ""))

    if negatives:
        print(f"inliers of unrelated pairs: p99 {np.percentile(negatives, 99):.0f}, p99.9 {np.percentile(negatives, 99.9):.0f}, max {max(negatives)}")
    p95 = float(np.percentile(walls, 95)) * 1000
    cpu95 = float(np.percentile(cpus, 95)) * 1000
    print(f"copy check per search ({CANDIDATES} candidates, cached features): p50 {np.percentile(walls, 50) * 1000:.0f} ms, "
          f"p95 {p95:.0f} ms wall, p95 {cpu95:.0f} ms CPU (embedding and kNN not included)")
    print(f"BENCH copies recall={recall:.3f} target={TARGET_RECALL} {'PASS' if recall >= TARGET_RECALL else 'FAIL'}")
    print(f"BENCH copies false_top5={false_rate:.4f} target={TARGET_FALSE} {'PASS' if false_rate <= TARGET_FALSE else 'FAIL'}")
    print(f"BENCH copies check_p95_ms={p95:.0f} target={TARGET_P95_MS} {'PASS' if p95 <= TARGET_P95_MS else 'FAIL'}")


if __name__ == "__main__":
    main()
