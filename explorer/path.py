"""The path between two artworks: a short sequence of works that moves from one to the other in
small visual steps, found on the nearest-neighbour graph of the active model's embeddings.

Each work's neighbours are its K nearest under the model (:func:`archive.vectors.nearest`,
through the model's HNSW index), fetched only for the works the search reaches. The search is
A* from the start: a step from ``u`` to a neighbour ``v`` costs ``d + d^2 / r`` (``d`` the chord
distance between the unit vectors, ``r`` the typical neighbour distance near the two ends), so two
short steps are cheaper than one long one and the steps come out even; the straight-line distance
to the end is the (admissible) estimate of what is left. The last step may also enter the end
from one of *its* nearest neighbours (so a work that is nobody's neighbour can still be reached).
Every step is thus between nearest neighbours, and no work appears twice.
"""
from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

import numpy as np

from archive import vectors
from archive.models import EmbeddingModel

from .models_state import display_artworks
from .similar import artwork_vector

NEIGHBOURS = 10  # K of the graph
MAX_EXPANSIONS = 400  # neighbour look-ups per path, at most
MAX_WORKS = 24  # a path longer than this is refused (the works are too far apart on the graph)
HEURISTIC_WEIGHT = 1.3  # > 1: fewer look-ups, a path at most 30 % costlier than the best


class NoPath(ValueError):
    """No path could be found (message is shown to the user)."""


@dataclass
class Path:
    ids: list[int]
    similarities: list[float]  # cosine similarity of each step (len(ids) - 1)
    expansions: int = 0
    neighbours: dict[int, list[int]] = field(default_factory=dict, repr=False)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v) or 1.0)


class Graph:
    """The K-nearest-neighbour graph of one model, read lazily (one kNN query per work)."""

    def __init__(self, model: EmbeddingModel, k: int = NEIGHBOURS):
        self.model, self.k = model, k
        self.vecs: dict[int, np.ndarray] = {}
        self.adj: dict[int, list[tuple[int, float]]] = {}

    def vector(self, artwork_id: int) -> np.ndarray | None:
        if artwork_id not in self.vecs:
            v = artwork_vector(artwork_id, self.model)
            if v is None:
                return None
            self.vecs[artwork_id] = _unit(v)
        return self.vecs[artwork_id]

    def neighbours(self, artwork_id: int) -> list[tuple[int, float]]:
        """``(artwork_id, chord distance)`` of the K nearest works, nearest first."""
        if artwork_id not in self.adj:
            rows = vectors.nearest(vectors.ARTWORK_EMBEDDINGS, self.model.pk, self.vecs[artwork_id], dim=self.model.dim,
                                   limit=self.k + 1, ef_search=max(40, 4 * self.k), columns=("artwork_id", "vector"))
            out = []
            for _, dist, other, vec in rows:
                other = int(other)
                if other == artwork_id:
                    continue
                self.vecs.setdefault(other, _unit(vectors.from_value(vec)))
                out.append((other, float(np.sqrt(max(0.0, 2.0 * float(dist))))))
            self.adj[artwork_id] = out[: self.k]
        return self.adj[artwork_id]


def find_path(start: int, end: int, model: EmbeddingModel | None, *, k: int = NEIGHBOURS,
              max_expansions: int = MAX_EXPANSIONS, max_works: int = MAX_WORKS) -> Path:
    """The path from ``start`` to ``end`` (artwork ids) under ``model``; NoPath says why not."""
    if model is None:
        raise NoPath("paths need an active image model")
    if start == end:
        raise NoPath("pick two different artworks")
    graph = Graph(model, k)
    for end_id in (start, end):
        if graph.vector(end_id) is None:
            raise NoPath(f"artwork {end_id} has no embedding under {model.key} (not embedded yet, or no image)")
    target = graph.vecs[end]
    # The end can be entered from any of its own nearest neighbours.
    entries = {a: d for a, d in graph.neighbours(end)}
    typical = float(np.median([d for _, d in graph.neighbours(start)] + list(entries.values()))) or 1e-3

    def cost(d: float) -> float:
        return d + d * d / typical

    def estimate(a: int) -> float:
        return HEURISTIC_WEIGHT * float(np.linalg.norm(graph.vecs[a] - target))

    tie = itertools.count()
    best = {start: 0.0}
    came: dict[int, int] = {}
    depth = {start: 1}
    frontier = [(estimate(start), next(tie), start)]
    closed: set[int] = set()
    expansions = 0
    while frontier:
        _, _, node = heapq.heappop(frontier)
        if node == end:
            break
        if node in closed:
            continue
        closed.add(node)
        if expansions >= max_expansions:
            raise NoPath(f"no path found within {max_expansions} steps of the search: these works are far apart on the similarity graph")
        expansions += 1
        steps = list(graph.neighbours(node))
        if node in entries:
            steps.append((end, entries[node]))
        for other, d in steps:
            if other in closed or depth[node] + 1 > max_works:
                continue
            g = best[node] + cost(d)
            if g < best.get(other, float("inf")):
                best[other], came[other], depth[other] = g, node, depth[node] + 1
                heapq.heappush(frontier, (g + (0.0 if other == end else estimate(other)), next(tie), other))
    if end not in came:
        raise NoPath(f"no path of at most {max_works} works links these two artworks on the similarity graph")
    ids = [end]
    while ids[-1] != start:
        ids.append(came[ids[-1]])
    ids.reverse()
    sims = [float(graph.vecs[a] @ graph.vecs[b]) for a, b in zip(ids, ids[1:])]
    return Path(ids=ids, similarities=sims, expansions=expansions, neighbours={a: [b for b, _ in graph.adj.get(a, [])] for a in ids})


def path_artworks(path: Path) -> list:
    """The path's artworks in order (display columns only)."""
    found = display_artworks(path.ids)
    return [found[a] for a in path.ids if a in found]
