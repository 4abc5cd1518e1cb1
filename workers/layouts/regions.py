"""Named regions: k-means clusters of the 2-D map at several zoom levels, each named by the labels
most over-represented in it (or, before any labelling, by catalogue metadata, and said so).

Clusters are made on the map's own coordinates, not on the embedding, so a region is one
contiguous patch of the map with its name at its centre, and every point belongs to exactly one
region per level (a new point's region is its nearest centre).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from django.db import connection

LABEL_RANK_MAX = 3  # an artwork's top-3 machine labels count towards its region's name


def level_sizes(n: int) -> list[int]:
    """Cluster counts per zoom level: coarse (overview) then fine."""
    coarse = int(min(12, max(2, n // 20)))
    fine = int(min(60, max(coarse + 1, n // 8)))
    return [min(coarse, n), min(fine, n)]


def cluster_levels(coords: np.ndarray, *, seed: int = 0) -> list[np.ndarray]:
    """K-means centres (k, 2) per level. MiniBatchKMeans above 50k points."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    centres = []
    for k in level_sizes(len(coords)):
        if len(coords) > 50_000:
            km = MiniBatchKMeans(n_clusters=k, random_state=seed, batch_size=4096, n_init=3).fit(coords)
        else:
            km = KMeans(n_clusters=k, random_state=seed, n_init=4).fit(coords)
        centres.append(km.cluster_centers_.astype(np.float32))
    return centres


def assign(coords: np.ndarray, centres: np.ndarray, chunk: int = 100_000) -> np.ndarray:
    """Index of the nearest centre for each point (int32)."""
    out = np.empty(len(coords), dtype=np.int32)
    for start in range(0, len(coords), chunk):
        block = coords[start : start + chunk]
        d = ((block[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
        out[start : start + chunk] = d.argmin(1)
    return out


@dataclass
class RegionName:
    name: str
    top: list[dict] = field(default_factory=list)


def characteristic(pairs_cluster: np.ndarray, pairs_term: np.ndarray, sizes: np.ndarray, n_terms: int, *, top: int = 5) -> list[list[tuple[int, float, float]]]:
    """Per cluster, terms over-represented in it vs the whole map (tf-idf style).

    Score of term t in cluster c: p(t|c) * log(p(t|c) / p(t)) — frequent in the cluster AND
    rarer elsewhere. Returns per cluster [(term, share in cluster, lift)] best first.
    """
    k = len(sizes)
    counts = np.zeros((k, n_terms), dtype=np.float64)
    np.add.at(counts, (pairs_cluster, pairs_term), 1.0)
    total = max(float(sizes.sum()), 1.0)
    p_t = counts.sum(0) / total
    p_tc = counts / np.maximum(sizes[:, None], 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = np.where(p_t > 0, p_tc / p_t, 0.0)
        score = np.where((p_tc > 0) & (lift > 1.0), p_tc * np.log(lift), 0.0)
    score[counts < min(2, int(sizes.min(initial=1)))] = 0.0
    result = []
    for c in range(k):
        order = np.argsort(-score[c])[:top]
        result.append([(int(t), float(p_tc[c, t]), float(lift[c, t])) for t in order if score[c, t] > 0])
    return result


def label_pairs(artwork_ids: np.ndarray, model_id: int | None) -> tuple[np.ndarray, np.ndarray, dict[int, tuple[str, str]]]:
    """(point index, label index) pairs for the artworks' top machine labels, and label id -> (slug, name)."""
    if model_id is None or not len(artwork_ids):
        return np.empty(0, np.int64), np.empty(0, np.int64), {}
    order = np.argsort(artwork_ids, kind="stable")
    sorted_ids = artwork_ids[order]
    rows_a, rows_l = [], []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT artwork_id, label_id FROM archive_artworklabel WHERE model_id = %s AND rank <= %s",
            [model_id, LABEL_RANK_MAX],
        )
        while True:
            rows = cursor.fetchmany(50_000)
            if not rows:
                break
            arr = np.asarray(rows, dtype=np.int64)
            rows_a.append(arr[:, 0])
            rows_l.append(arr[:, 1])
        if not rows_a:
            return np.empty(0, np.int64), np.empty(0, np.int64), {}
        a = np.concatenate(rows_a)
        lab = np.concatenate(rows_l)
        pos = np.searchsorted(sorted_ids, a)
        pos = np.minimum(pos, len(sorted_ids) - 1)
        hit = sorted_ids[pos] == a
        label_ids = np.unique(lab[hit])
        cursor.execute("SELECT id, slug, name FROM archive_label WHERE id = ANY(%s)", [label_ids.tolist()])
        names = {row[0]: (row[1], row[2]) for row in cursor.fetchall()}
    # Artworks may appear several times (face maps): expand to every point of the artwork.
    points = order[pos[hit]]
    terms = np.searchsorted(label_ids, lab[hit])
    if len(np.unique(sorted_ids)) != len(sorted_ids):
        points, terms = _expand_duplicates(artwork_ids, a[hit], terms)
    return points, terms, {int(i): names.get(int(i), (str(i), str(i))) for i in label_ids}


def _expand_duplicates(artwork_ids, pair_artworks, terms):
    by_artwork: dict[int, list[int]] = {}
    for i, a in enumerate(artwork_ids.tolist()):
        by_artwork.setdefault(a, []).append(i)
    pts, tms = [], []
    for a, t in zip(pair_artworks.tolist(), terms.tolist()):
        for i in by_artwork.get(a, []):
            pts.append(i)
            tms.append(t)
    return np.asarray(pts, np.int64), np.asarray(tms, np.int64)


def metadata_terms(artwork_ids: np.ndarray, field_name: str) -> tuple[np.ndarray, list[str]]:
    """Per point, the index of its artwork's ``classification`` or ``creator`` in a vocabulary (-1: empty)."""
    if field_name not in ("classification", "creator"):
        raise ValueError(field_name)
    values: dict[int, str] = {}
    unique_ids = np.unique(artwork_ids)
    with connection.cursor() as cursor:
        for start in range(0, len(unique_ids), 50_000):
            block = unique_ids[start : start + 50_000].tolist()
            cursor.execute(f"SELECT id, {field_name} FROM archive_artwork WHERE id = ANY(%s)", [block])
            values.update({row[0]: (row[1] or "").strip() for row in cursor.fetchall()})
    vocab: dict[str, int] = {}
    out = np.full(len(artwork_ids), -1, dtype=np.int64)
    for i, a in enumerate(artwork_ids.tolist()):
        v = values.get(a, "")
        if v:
            out[i] = vocab.setdefault(v, len(vocab))
    return out, list(vocab)


def name_regions(artwork_ids: np.ndarray, assignments: list[np.ndarray], ks: list[int], model_id: int | None) -> tuple[list[list[RegionName]], str]:
    """Names for every cluster of every level, and where they came from ("labels", "classification",
    "creator" or "none")."""
    points, terms, labels = label_pairs(artwork_ids, model_id)
    source = "labels"
    if len(points):
        label_ids = sorted(labels)
        vocab = [labels[i][1] for i in label_ids]
        slugs = [labels[i][0] for i in label_ids]
    else:
        slugs = None
        for source in ("classification", "creator"):
            per_point, vocab = metadata_terms(artwork_ids, source)
            if len(vocab) > 1:  # one value everywhere names nothing
                points = np.nonzero(per_point >= 0)[0]
                terms = per_point[points]
                break
        else:
            source, vocab = "none", []
    levels = []
    for assignment, k in zip(assignments, ks):
        sizes = np.bincount(assignment, minlength=k).astype(np.float64)
        if len(points):
            best = characteristic(assignment[points].astype(np.int64), terms, sizes, len(vocab))
            if source != "labels":
                best = _fill_most_common(best, assignment[points], terms, sizes)
        else:
            best = [[] for _ in range(k)]
        names = []
        for c in range(k):
            top = [
                {"term": vocab[t], **({"label": slugs[t]} if slugs else {}), "share": round(share, 3), "lift": round(lift, 2)}
                for t, share, lift in best[c]
            ]
            name = " · ".join(item["term"] for item in top[:2]) or f"Region {c + 1}"
            names.append(RegionName(name=name[:255], top=top))
        levels.append(names)
    return levels, source


def _fill_most_common(best, clusters, terms, sizes):
    """Metadata fallback: where nothing is over-represented, use the cluster's most common value."""
    out = []
    for c, items in enumerate(best):
        if items:
            out.append(items)
            continue
        counts = Counter(terms[clusters == c].tolist())
        if counts:
            t, cnt = counts.most_common(1)[0]
            out.append([(t, cnt / max(sizes[c], 1), 1.0)])
        else:
            out.append([])
    return out

