"""The k nearest neighbours of every vector of a large synthetic set, approximately, by
nearest-neighbour descent (``pynndescent``, installed with umap-learn): the benchmarks' shortcut
for the stored kNN graph at a million works, where brute force over every pair costs CPU-hours on
two cores (``bench/discovery.py --graph descent``). Like the neighbours stage's HNSW look-ups it is
approximate; :func:`recall` measures it against brute force on a sample, printed beside the figures.
"""
from __future__ import annotations

import numpy as np


def descent_lists(unit: np.ndarray, k: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``unit`` (unit vectors, float32): ``k`` other rows nearest by cosine, nearest
    first, as (ids, cosine distances), each ``(len(unit), k)``."""
    import pynndescent

    index = pynndescent.NNDescent(unit, n_neighbors=k + 4, metric="dot", random_state=seed, n_jobs=-1,
                                  low_memory=True, verbose=True)
    found, _ = index.neighbor_graph
    ids = np.empty((len(unit), k), dtype=np.int64)
    for i, row in enumerate(found):
        ids[i] = row[(row != i) & (row >= 0)][:k]  # itself (listed first) left out
    dists = np.empty((len(unit), k), dtype=np.float32)
    for start in range(0, len(unit), 20_000):  # a block's gathered neighbours: 20,000 x k x 512 floats
        block = slice(start, start + 20_000)
        dists[block] = np.maximum(0.0, 1.0 - np.einsum("ij,ikj->ik", unit[block], unit[ids[block]]))
    order = np.argsort(dists, axis=1, kind="stable")
    return np.take_along_axis(ids, order, 1), np.take_along_axis(dists, order, 1)


def recall(unit: np.ndarray, ids: np.ndarray, sample: int = 200, seed: int = 1) -> float:
    """Share of the true ``k`` nearest (brute force) that ``ids`` lists, over ``sample`` random rows."""
    import torch

    k = ids.shape[1]
    rows = np.random.default_rng(seed).choice(len(unit), min(sample, len(unit)), replace=False)
    sims = torch.from_numpy(unit[rows]) @ torch.from_numpy(unit).T
    sims[torch.arange(len(rows)), torch.from_numpy(rows)] = -2.0
    truth = torch.topk(sims, k, dim=1).indices.numpy()
    return float(np.mean([len(set(t) & set(ids[r])) / k for t, r in zip(truth, rows)]))
