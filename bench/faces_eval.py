"""Face pipeline quality on real data.

1. Identification and verification on the real face photos (``faces/photos-deepface``, 13 people;
   ``faces/photos-faceapi`` 150px crops as a second set): every photo goes through the same query
   path as the doppelganger page (downscale, HOG detect, largest face, dlib descriptor).
   - top-1 identification, leave-one-out: each photo's nearest other photo is the same person;
   - verification TAR at FAR = 0.1% over all pairs (threshold = the 0.1% quantile of impostor
     distances), and TAR/FAR at dlib's fixed threshold 0.6.
2. Detection on the real artwork images, per set: ``artworks/aic-artwall`` (267 paintings, 843 px)
   and ``artworks/culturecraft`` (320 detail crops of prints, photographs, objects, 1024 px):
   faces found, images with a face, share of the "Portrait ..." titles with a face, and seconds
   per image, for each derivative size (512/1024) and upsampling (0/1), from derivatives made
   exactly as ingest makes them.

3. Identity in paintings: every face of the hand-checked test set ``bench/data/painted_faces.json``
   embedded from its own box; of those whose sitter is named in more than one painting, the share
   whose nearest painted face from another painting is the same sitter.

Usage: .venv/bin/python bench/faces_eval.py [--configs 512:0,512:1,1024:0,1024:1] [--limit N] [--sets aic-artwall,culturecraft]
Ends with: BENCH faces_eval top1=<value> target=0.95 PASS|FAIL
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "museum.settings")
DATA = Path(os.environ.get("MUSEUM_SHARED_DATA", ROOT.parent / "shared" / "data"))

TARGET_TOP1 = 0.95


def setup() -> None:
    import django

    django.setup()


def embed_photos(paths: list[Path], *, max_side: int, upsample: int, retry: int | None):
    """Largest face's descriptor per photo (None where no face is found), decoded exactly as the
    doppelganger page decodes an upload."""
    from explorer.doppelganger.service import decode_photo, query_backend
    from workers.ml.faces import analyse

    backend = query_backend()  # the page's detector (DOPPELGANGER_DETECTOR), not the stage's
    vectors, seconds = [], []
    for path in paths:
        data = path.read_bytes()
        start = time.perf_counter()
        photo, _ = decode_photo(data)
        result = analyse(backend, photo, max_side=max_side, upsample=upsample, retry_upsample=retry)
        seconds.append(time.perf_counter() - start)
        vectors.append(result.vectors[0] if len(result.detections) else None)
    return vectors, seconds


def identity_metrics(vectors: list, people: list[str]) -> dict:
    found = [i for i, v in enumerate(vectors) if v is not None]
    n = len(vectors)
    if len(found) < 2:
        return {"photos": n, "detected": len(found), "top1": 0.0}
    mat = np.stack([vectors[i] for i in found])
    who = [people[i] for i in found]
    dist = np.sqrt(((mat[:, None, :] - mat[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(dist, np.inf)
    correct = sum(1 for row, person in enumerate(who) if who[int(np.argmin(dist[row]))] == person)
    average_precisions = []
    for row, person in enumerate(who):
        order = np.argsort(dist[row])[: len(found) - 1]  # every other photo, nearest first
        relevant = np.array([who[j] == person for j in order])
        if relevant.any():
            hits = np.cumsum(relevant)
            average_precisions.append(float(np.mean((hits / np.arange(1, len(order) + 1))[relevant])))
    iu = np.triu_indices(len(found), k=1)
    same = np.array([who[a] == who[b] for a, b in zip(*iu)])
    pair_dist = dist[iu]
    genuine, impostor = pair_dist[same], pair_dist[~same]
    # Threshold with FAR = 0.1%: at most 0.1% of impostor pairs at or below it.
    allowed = int(np.floor(0.001 * len(impostor)))
    sorted_imp = np.sort(impostor)
    threshold = float(sorted_imp[allowed] - 1e-6) if allowed < len(sorted_imp) else float("inf")
    return {
        "photos": n,
        "detected": len(found),
        # A photo without a detected face counts as a miss (it cannot be identified).
        "top1": correct / n,
        "top1_detected": correct / len(found),
        # Same-person retrieval: mean average precision of each photo's ranking of all the others.
        "map": float(np.mean(average_precisions)) if average_precisions else 0.0,
        "genuine_pairs": int(len(genuine)),
        "impostor_pairs": int(len(impostor)),
        "far_0.1pct_threshold": round(threshold, 4),
        "tar_at_far_0.1pct": float(np.mean(genuine <= threshold)) if len(genuine) else 0.0,
        "tar_at_0.6": float(np.mean(genuine <= 0.6)) if len(genuine) else 0.0,
        "far_at_0.6": float(np.mean(impostor <= 0.6)) if len(impostor) else 0.0,
        "genuine_median": float(np.median(genuine)) if len(genuine) else 0.0,
        "impostor_median": float(np.median(impostor)) if len(impostor) else 0.0,
    }


def deepface_set() -> tuple[list[Path], list[str]]:
    folder = DATA / "faces" / "photos-deepface"
    with open(folder / "identities.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [folder / r["file"] for r in rows], [r["person"] for r in rows]


def faceapi_set() -> tuple[list[Path], list[str]]:
    folder = DATA / "faces" / "photos-faceapi"
    paths = sorted(p for p in folder.glob("*/*.png"))
    return paths, [p.parent.name for p in paths]


def aic_artworks(limit: int | None) -> list[tuple[Path, str]]:
    folder = DATA / "artworks" / "aic-artwall"
    items = {}
    for coll in sorted((folder / "collections").glob("*/collection.json")):
        for art in json.loads(coll.read_text())["artworks"]:
            path = folder / "images" / f"{art['id']}.jpg"
            if path.exists():
                items[str(art["id"])] = (path, art["title"])
    out = [items[k] for k in sorted(items)]
    return out[:limit] if limit else out


def culturecraft_artworks(limit: int | None) -> list[tuple[Path, str]]:
    folder = DATA / "artworks" / "culturecraft"
    with open(folder / "metadata.csv", newline="") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda r: int(r["index"]))
    out = [(folder / "images" / f"{r['index']}.jpg", r["title"]) for r in rows if (folder / "images" / f"{r['index']}.jpg").exists()]
    return out[:limit] if limit else out


ARTWORK_SETS = {"aic-artwall": aic_artworks, "culturecraft": culturecraft_artworks}


def derivative(data: bytes, size: int):
    """The derivative ingest would write for ``size`` (decode, thumbnail, JPEG q85), in memory."""
    from PIL import Image

    from archive.images import JPEG_QUALITY, ImageLimits, open_image

    im, *_ = open_image(data, ImageLimits(), want=size)
    if max(im.size) > size:
        im = im.copy()
        im.thumbnail((size, size))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=JPEG_QUALITY)
    buf.seek(0)
    with Image.open(buf) as out:
        return out.convert("RGB")


def detection_sweep(artworks, configs, label: str = "") -> list[dict]:
    from tqdm import tqdm

    from workers.ml.faces import as_array, get_backend

    backend = get_backend(detector="hog")
    raw = [(path.read_bytes(), title) for path, title in artworks]
    rows = []
    for size, upsample in configs:
        faces = with_face = portraits = portraits_found = 0
        seconds = 0.0
        for data, title in tqdm(raw, desc=f"{label} size={size} upsample={upsample}", leave=False):
            arr = as_array(derivative(data, size))
            start = time.perf_counter()
            found = backend.detect(arr, upsample=upsample)
            seconds += time.perf_counter() - start
            faces += len(found)
            with_face += bool(found)
            if "portrait" in title.lower():
                portraits += 1
                portraits_found += bool(found)
        rows.append(
            {
                "size": size,
                "upsample": upsample,
                "images": len(raw),
                "faces": faces,
                "images_with_face": with_face,
                "portraits": portraits,
                "portraits_with_face": portraits_found,
                "seconds_per_image": seconds / max(1, len(raw)),
            }
        )
    return rows


def painted_identity(limit: int | None = None) -> dict:
    """Painted sitters: every face of the hand-checked test set (``bench/data/painted_faces.json``)
    is embedded from its own box (landmarks found in the box, the same descriptor as the stage),
    so identity quality is measured apart from detection. Of the faces whose sitter is named in
    more than one painting ("sitters"), the share whose nearest face from another painting shows
    the same sitter; every other painted face of the set is in the search too."""
    from PIL import Image

    from workers.ml.faces import get_backend

    truth = json.loads((ROOT / "bench" / "data" / "painted_faces.json").read_text())["images"]
    named = {}
    for key, entry in truth.items():
        for sitter in entry.get("sitters", []):
            named.setdefault(sitter["name"], []).append((key, sitter["face"]))
    wanted = {name: uses for name, uses in named.items() if len({k for k, _ in uses}) > 1}
    backend = get_backend()
    folder = DATA / "artworks" / "aic-artwall" / "images"
    keys = sorted(truth)[:limit] if limit else sorted(truth)
    keys = sorted(set(keys) | {k for uses in wanted.values() for k, _ in uses})
    label = {(k, i): name for name, uses in wanted.items() for k, i in uses}
    owners, names, vecs = [], [], []
    for key in keys:
        if not truth[key]["faces"]:
            continue
        with Image.open(folder / f"{key}.jpg") as im:
            image = im.convert("RGB")
        found = backend.locate(image, truth[key]["faces"])
        for i, vec in enumerate(backend.embed(image, found)):
            owners.append(key)
            names.append(label.get((key, i)))
            vecs.append(vec)
    mat = np.stack(vecs)
    owners_arr = np.array(owners)
    queries = [i for i, name in enumerate(names) if name]
    correct, distances = 0, []
    for i in queries:
        dist = np.sqrt(((mat - mat[i]) ** 2).sum(-1))
        dist[owners_arr == owners[i]] = np.inf
        j = int(np.argmin(dist))
        correct += names[j] == names[i]
        same = [int(k) for k in np.flatnonzero(np.array(names, dtype=object) == names[i]) if owners[k] != owners[i]]
        distances.append(min(float(dist[k]) for k in same))
    return {
        "paintings": len(keys),
        "painted_faces": len(owners),
        "sitters_in_several_paintings": sorted(wanted),
        "sitter_faces": len(queries),
        "nearest_is_same_sitter": int(correct),
        "share": correct / len(queries) if queries else 0.0,
        "same_sitter_distance_median": float(np.median(distances)) if distances else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="512:0,512:1,1024:0,1024:1", help="derivative size:upsample pairs for the detection sweep")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images of each set (sorted by id)")
    parser.add_argument("--sets", default=",".join(ARTWORK_SETS), help="artwork sets for the detection sweep")
    parser.add_argument("--skip-detection", action="store_true")
    parser.add_argument("--skip-painted", action="store_true", help="skip the painted-sitter retrieval")
    args = parser.parse_args()
    setup()
    from explorer.doppelganger.service import QUERY_MAX_SIDE, QUERY_RETRY_UPSAMPLE, QUERY_UPSAMPLE

    print(f"query path: max side {QUERY_MAX_SIDE}px, HOG upsample {QUERY_UPSAMPLE} (retry {QUERY_RETRY_UPSAMPLE} when none)")
    results = {}
    for name, (paths, people) in {"photos-deepface": deepface_set(), "photos-faceapi": faceapi_set()}.items():
        vectors, seconds = embed_photos(paths, max_side=QUERY_MAX_SIDE, upsample=QUERY_UPSAMPLE, retry=QUERY_RETRY_UPSAMPLE)
        metrics = identity_metrics(vectors, people)
        metrics["people"] = len(set(people))
        metrics["seconds_per_photo"] = float(np.mean(seconds))
        results[name] = metrics
        print(f"\n{name}: {len(set(people))} people, {metrics['photos']} photos, {metrics['detected']} with a face")
        for key, value in metrics.items():
            if key not in ("photos", "detected", "people"):
                print(f"  {key:24s} {value:.4f}" if isinstance(value, float) else f"  {key:24s} {value}")

    if not args.skip_detection:
        configs = [tuple(int(x) for x in item.split(":")) for item in args.configs.split(",") if item]
        for name in [n for n in args.sets.split(",") if n]:
            rows = detection_sweep(ARTWORK_SETS[name](args.limit), configs, name)
            print(f"\nDetection on {name} ({rows[0]['images'] if rows else 0} images, HOG):")
            print(f"  {'size':>5} {'upsample':>8} {'faces':>6} {'imgs w/ face':>12} {'portraits w/ face':>18} {'s/image':>8}")
            for r in rows:
                print(
                    f"  {r['size']:>5} {r['upsample']:>8} {r['faces']:>6} {r['images_with_face']:>6}/{r['images']:<5}"
                    f" {r['portraits_with_face']:>10}/{r['portraits']:<7} {r['seconds_per_image']:>8.3f}"
                )

    if not args.skip_painted:
        painted = painted_identity(args.limit)
        print(f"\nPainted sitters (test-set boxes; {painted['painted_faces']} painted faces of {painted['paintings']} paintings searched):")
        print(f"  sitters named in more than one painting: {', '.join(painted['sitters_in_several_paintings'])}")
        print(f"  their faces {painted['sitter_faces']}; nearest face from another painting is the same sitter:"
              f" {painted['nearest_is_same_sitter']} ({painted['share']:.3f}); median distance to the same sitter"
              f" elsewhere {painted['same_sitter_distance_median']:.3f}")

    top1 = results["photos-deepface"]["top1"]
    print(f"BENCH faces_eval top1={top1:.3f} target={TARGET_TOP1} {'PASS' if top1 >= TARGET_TOP1 else 'FAIL'}")


if __name__ == "__main__":
    main()
