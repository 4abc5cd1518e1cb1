"""The path between two artworks: a short sequence of works that moves from one to the other in
small visual steps, found on the nearest-neighbour graph of the active model's embeddings.

The graph: two works are linked when one is among the other's NEIGHBOURS nearest under the model
(the symmetric kNN graph). It is read from the **stored graph** (the neighbours stage's
``ArtworkNeighbours`` rows, :mod:`archive.neighbour_graph`): one query per round of the search
gives the rows of the works being expanded and the rows that list them, with each neighbour's
distance to the two ends. A work that has no row yet (embedded since its graph job ran) falls back
to the online look-up in the model's HNSW index (:func:`archive.vectors.neighbours_of`, as before
the graph was stored). A step between works at chord distance ``d`` (of the unit vectors) costs
``d + d^2 / r``, ``r`` the typical neighbour distance near the two ends, so two short steps are
cheaper than one long one and the steps come out even.

The search runs from both ends at once (bidirectional best-first: each side expands the works
with the lowest cost so far plus a weight times their estimated distance to the other end, BATCH
works per side per query, GUIDED_BATCH with the landmark estimate), and stops EXTRA_ROUNDS rounds
after the two sides first meet, keeping the cheapest meeting. It finds a short path, not always the shortest. No work appears twice;
every step links two nearest neighbours.

The estimate: where the stored rows carry **landmark distances** (distances along the graph to a
few landmark works, :mod:`workers.landmarks`), ``max_l |D_l(work) - D_l(goal)|`` (LANDMARK_WEIGHT),
and one statement per round reads the edges with the landmark distances of the works they reach.
Without them (never computed, or an end too new to have any and no neighbour that has) the
straight-line distance between the embeddings (HEURISTIC_WEIGHT), which says little once works are
unrelated, so the search expands far more works (docs/perf/discovery.md).
"""
from __future__ import annotations

import heapq
import itertools
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from archive import neighbour_graph, vectors
from archive.models import EmbeddingModel
from workers.neighbours import K as STORED_NEIGHBOURS
from workers.neighbours import two_phase

from .models_state import display_artworks
from .similar import artwork_vector

NEIGHBOURS = STORED_NEIGHBOURS  # K of the graph (the stored lists' length; the online fallback reads as many)
MAX_EXPANSIONS = 4000  # works whose neighbours are read, both sides together, at most
MAX_ONLINE = 800  # of those, works without a stored row (each an HNSW scan), at most
MAX_WORKS = 24  # a path longer than this is refused (the works are too far apart on the graph)
HEURISTIC_WEIGHT = 2.0  # on the straight-line estimate; > 1: fewer look-ups for a slightly costlier path
LANDMARK_WEIGHT = 16.0  # on the landmark estimate (tighter along the graph: more weight, far fewer look-ups; docs/perf/discovery.md)
BATCH = 16  # works expanded per side per query (straight-line estimate: a wide ball, fewer rounds)
GUIDED_BATCH = 8  # the same with the landmark estimate (at 100k: 82 works expanded median against 130 with 16, CPU p95 49 against 72 ms)
EXTRA_ROUNDS = 1  # rounds after the sides first meet, for a cheaper meeting


class NoPath(ValueError):
    """No path could be found (message is shown to the user)."""


@dataclass
class Path:
    ids: list[int]
    similarities: list[float]  # cosine similarity of each step (len(ids) - 1)
    expansions: int = 0
    online: int = 0  # of those, works without a stored row, whose neighbours came from the HNSW index
    queries: int = 0  # rounds of the search (one stored-graph query each)
    guided: bool = False  # the estimate came from the stored landmark distances


def _chord(cosine_distance: float) -> float:
    return math.sqrt(max(0.0, 2.0 * float(cosine_distance)))


class _Side:
    """One direction of the search: costs so far, the step each work was reached by, the frontier."""

    def __init__(self, root: int, goal_index: int, weight: float = HEURISTIC_WEIGHT):
        self.weight = weight
        self.g = {root: 0.0}
        self.parent: dict[int, tuple[int, float]] = {}  # work -> (previous work on this side, cosine distance)
        self.depth = {root: 1}
        self.closed: set[int] = set()
        self.goal_index = goal_index  # which target distance estimates what is left
        self.tie = itertools.count()
        self.frontier = [(0.0, next(self.tie), root)]

    def pop(self, count: int) -> list[int]:
        out = []
        while self.frontier and len(out) < count:
            _, _, node = heapq.heappop(self.frontier)
            if node not in self.closed:
                self.closed.add(node)
                out.append(node)
        return out

    def relax(self, node: int, other: int, cosine_distance: float, left: float, cost, max_works: int) -> bool:
        """Reach ``other`` from ``node`` if that is cheaper; True when it was."""
        if other in self.closed or self.depth[node] + 1 > max_works:
            return False
        g = self.g[node] + cost(_chord(cosine_distance))
        if g < self.g.get(other, float("inf")):
            self.g[other], self.parent[other], self.depth[other] = g, (node, cosine_distance), self.depth[node] + 1
            heapq.heappush(self.frontier, (g + self.weight * left, next(self.tie), other))
            return True
        return False

    def chain(self, node: int) -> list[tuple[int, float | None]]:
        """From ``node`` back to this side's root: (work, cosine distance of the step to the next one)."""
        out = [(node, None)]
        while node in self.parent:
            node, d = self.parent[node]
            out.append((node, d))
        return out


def find_path(start: int, end: int, model: EmbeddingModel | None, *, k: int = NEIGHBOURS,
              max_expansions: int = MAX_EXPANSIONS, max_works: int = MAX_WORKS, stored: bool = True,
              landmarks: bool = True) -> Path:
    """A short path from ``start`` to ``end`` (artwork ids) under ``model``; NoPath says why not.
    ``stored=False`` ignores the stored graph (every look-up online: the search before it existed);
    ``landmarks=False`` ignores the landmark distances (the straight-line estimate)."""
    if model is None:
        raise NoPath("paths need an active image model")
    if start == end:
        raise NoPath("pick two different artworks")
    ends = {}
    for end_id in (start, end):
        vec = artwork_vector(end_id, model)
        if vec is None:
            raise NoPath(f"artwork {end_id} has no embedding under {model.key} (not embedded yet, or no image)")
        ends[end_id] = vec / (np.linalg.norm(vec) or 1.0)
    apart = _chord(1.0 - float(ends[start] @ ends[end]))
    targets = [vectors.to_literal(ends[start]), vectors.to_literal(ends[end])]  # formatted once, sent each round
    marks = _end_landmarks(model.pk, start, end) if stored and landmarks else None
    if marks is not None:
        apart = max(apart, float(_estimate(marks[0][None, :], marks[1])[0]))
    left = {start: (0.0, apart), end: (apart, 0.0)}  # each work's estimated distance to the two ends, as looked up
    weight = HEURISTIC_WEIGHT if marks is None else LANDMARK_WEIGHT
    batch_size = BATCH if marks is None else GUIDED_BATCH
    forward, backward = _Side(start, goal_index=1, weight=weight), _Side(end, goal_index=0, weight=weight)
    typical = None
    best, meeting, rounds_after, expansions, online, queries = float("inf"), None, 0, 0, 0, 0

    def cost(d: float) -> float:
        return d + d * d / typical

    while forward.frontier or backward.frontier:
        ahead, behind = forward.pop(batch_size), backward.pop(batch_size)
        if not ahead and not behind:
            break
        batch = sorted(set(ahead) | set(behind))  # a work both sides reached is read once
        if expansions + len(batch) > max_expansions or online > MAX_ONLINE:
            break
        expansions += len(batch)
        if marks is None:
            adjacency, missing = _adjacency(model, batch, targets, k, left, stored)
        else:
            adjacency, missing = _guided_adjacency(model, batch, targets, k, left, marks)
        online += len(missing)
        queries += 1
        if typical is None:
            near = [_chord(d) for node in (start, end) for _, d, _, _ in adjacency.get(node, [])]
            typical = float(np.median(near)) if near else 1.0
            typical = typical or 1e-3
        touched = set(batch)  # a meeting's cost changes only where a side's cost did
        for side, nodes in ((forward, ahead), (backward, behind)):
            for node in nodes:
                for other, d, to_start, to_end in adjacency.get(node, []):
                    if side.relax(node, other, d, to_end if side is forward else to_start, cost, max_works):
                        touched.add(other)
        for node in touched:
            if node not in forward.g or node not in backward.g:
                continue
            total = forward.g[node] + backward.g[node]
            if total < best and forward.depth[node] + backward.depth[node] - 1 <= max_works:
                best, meeting = total, node
        if meeting is not None:
            rounds_after += 1
            if rounds_after > EXTRA_ROUNDS:
                break
    if meeting is None:
        if expansions + 2 * batch_size > max_expansions or online > MAX_ONLINE:
            raise NoPath(f"no path found after reading the neighbours of {expansions} works: "
                         "these works are far apart on the similarity graph")
        raise NoPath(f"no path of at most {max_works} works links these two artworks on the similarity graph")
    head = list(reversed(forward.chain(meeting)))  # start .. meeting, distance of each step to the next
    back = backward.chain(meeting)  # meeting .. end, each with the distance of the step *before* it
    tail = [(node, nxt) for (node, _), (_, nxt) in zip(back, back[1:])] + [(back[-1][0], None)]
    walk = _without_loops(head[:-1] + tail)
    return Path(ids=[n for n, _ in walk], similarities=[1.0 - d for _, d in walk[:-1]], expansions=expansions,
                online=online, queries=queries, guided=marks is not None)


def _estimate(found: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """Each row of ``found`` (landmark distances of works): the landmark lower bound of its
    distance along the graph to the work with distances ``goal`` (max over the landmarks of the
    difference; a landmark reaching neither counts 0, one reaching only one of them: inf)."""
    with np.errstate(invalid="ignore"):
        diff = np.abs(found - goal[None, :])
    return np.where(np.isnan(diff), 0.0, diff).max(axis=1)


def _end_landmarks(model_id: int, start: int, end: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The two ends' landmark distances: stored, or for an end whose row has none (written after
    the landmarks were computed, or with another number of them) estimated through the works next
    to it (the nearest way through one of them). None when either end has neither: the search then
    goes by straight lines."""
    found = neighbour_graph.landmarks_of(model_id, [start, end])
    if len(found) == 2 and len(found[start]) == len(found[end]):
        return found[start], found[end]
    edges: dict[int, dict[int, float]] = {start: {}, end: {}}
    for node, other, d, _ in neighbour_graph.edges(model_id, [start, end]):
        edges[node][other] = d
    near = neighbour_graph.landmarks_of(model_id, sorted(set(edges[start]) | set(edges[end])))
    counts = Counter(len(v) for v in [*found.values(), *near.values()])
    if not counts:
        return None
    want = counts.most_common(1)[0][0]  # the count of the latest computation, which wrote every row
    found = {node: v for node, v in found.items() if len(v) == want}
    for node in (start, end):
        if node in found:
            continue
        through = [near[o] + _chord(d) for o, d in edges[node].items() if o in near and len(near[o]) == want]
        if not through:
            return None
        found[node] = np.min(through, axis=0).astype(np.float32)
    return found[start], found[end]


def _guided_adjacency(model: EmbeddingModel, batch: list[int], targets: list[str], k: int, left: dict,
                      marks: tuple[np.ndarray, np.ndarray]):
    """As :func:`_adjacency`, in one statement per round (:func:`archive.neighbour_graph.edges_with_landmarks`):
    ``left`` gets each newly reached work's landmark estimates to the two ends (a work whose row
    has no landmark distances yet takes the estimate of a work that reached it, 0 only when none
    has one; deleted works are left out)."""
    found: dict[int, list[tuple[int, float]]] = {}
    stored: set[int] = set()
    fresh: dict[int, np.ndarray | None] = {}
    for source, other, d, listed, alive, landmarks in neighbour_graph.edges_with_landmarks(model.pk, batch, known=list(left)):
        found.setdefault(source, []).append((other, d))
        if listed:
            stored.add(source)
        if alive:
            fresh[other] = landmarks if landmarks is not None and len(landmarks) == len(marks[1]) else None  # another count: none
        elif alive is False:
            left.setdefault(other, None)  # deleted: known, never reached
    missing = [node for node in batch if node not in stored]
    if missing:  # works without a row of their own: their k nearest from the HNSW index
        for other, _, _ in _online_edges(model, missing, targets, k, found):
            if other not in left and other not in fresh:
                fresh[other] = None
        late = [o for o, m in fresh.items() if m is None]
        fresh.update({o: m for o, m in neighbour_graph.landmarks_of(model.pk, late).items() if len(m) == len(marks[1])})
    have = [o for o, m in fresh.items() if m is not None]
    if have:
        stack = np.stack([fresh[o] for o in have])
        for other, to_start, to_end in zip(have, _estimate(stack, marks[0]).tolist(), _estimate(stack, marks[1]).tolist()):
            left[other] = (to_start, to_end)
    # A work whose row has no landmark distances yet (written after them) gets the estimate of a
    # work reaching it: a step to it is neither favoured (an estimate of 0 would be, under the
    # weight: at 100k with a fifth of the rows bare, 1,378 works expanded at p95 against 210) nor lost.
    bare = {other for other, m in fresh.items() if m is None and other not in left}
    for node, edges in found.items():
        for other, d in edges:  # nearest first
            if other in bare and left.get(node) is not None and other not in left:
                left[other] = left[node]
    for other in bare:
        left.setdefault(other, (0.0, 0.0))
    adjacency = {node: [(other, d, *left[other]) for other, d in edges if left.get(other) is not None]
                 for node, edges in found.items()}
    return adjacency, missing


def _adjacency(model: EmbeddingModel, batch: list[int], targets: list[str], k: int, left: dict, use_graph: bool = True):
    """Each work of ``batch``: its edges ``(other, cosine distance, chord to start, chord to end)``
    on the stored graph (both directions); works without a row of their own get their ``k`` nearest
    from the HNSW index beside the rows that list them. ``left`` caches each work's chords to the
    two ends (only works not seen before are looked up). Returns (adjacency, the works looked up
    online)."""
    found: dict[int, list[tuple[int, float]]] = {}
    stored: set[int] = set()  # works with a row of their own
    for source, other, d, listed in (neighbour_graph.edges(model.pk, batch) if use_graph else []):
        found.setdefault(source, []).append((other, d))
        if listed:
            stored.add(source)
    missing = [node for node in batch if node not in stored]
    if missing:
        for other, to_start, to_end in _online_edges(model, missing, targets, k, found):
            left.setdefault(other, (_chord(to_start), _chord(to_end)))
    new = {other for edges in found.values() for other, _ in edges if other not in left}
    for other, (to_start, to_end) in neighbour_graph.target_distances(model.pk, sorted(new), targets, dim=model.dim).items():
        left[other] = (_chord(to_start), _chord(to_end))
    adjacency = {node: [(other, d, *left[other]) for other, d in edges if other in left]  # deleted works drop out
                 for node, edges in found.items()}
    return adjacency, missing


def _online_edges(model: EmbeddingModel, missing: list[int], targets: list[str], k: int, found: dict):
    """The ``k`` nearest of each work of ``missing`` (works without a row of their own) from the
    model's HNSW index, added to ``found`` beside the rows that list them; yields each added
    neighbour with its cosine distances to the two ends."""
    known = {node: {other for other, _ in found.get(node, ())} for node in missing}
    rows = vectors.neighbours_of(vectors.ARTWORK_EMBEDDINGS, model.pk, missing, dim=model.dim, limit=k + 1,
                                 key="artwork_id", ef_search=max(40, 4 * k), targets=targets,
                                 candidates=two_phase(model.pk))
    for source, other, d, to_start, to_end in rows:
        source, other = int(source), int(other)
        if other != source and other not in known[source]:
            known[source].add(other)
            found.setdefault(source, []).append((other, float(d)))
            yield other, to_start, to_end


def _without_loops(steps: list[tuple[int, float | None]]) -> list[tuple[int, float | None]]:
    """The walk ``[(work, cosine distance to the next), ...]`` with any loop cut out (a work reached
    by both sides before they met): each kept step is still a step of the walk."""
    out: list[tuple[int, float | None]] = []
    at: dict[int, int] = {}
    for node, d in steps:
        if node in at:
            i = at[node]
            for dropped, _ in out[i + 1:]:
                del at[dropped]
            out = out[: i + 1]
            out[i] = (node, d)
        else:
            at[node] = len(out)
            out.append((node, d))
    return out


def path_artworks(path: Path) -> list:
    """The path's artworks in order (display columns only)."""
    found = display_artworks(path.ids)
    return [found[a] for a in path.ids if a in found]
