"""Top-k label scoring of artwork embeddings: pure array code, no database.

Scores are cosine similarities (embeddings and label vectors are L2-normalised, so a matrix
product). Artworks arrive as a stream of ``(ids, matrix)`` chunks; each chunk is multiplied with
the whole label matrix in pieces of at most ``max_rows`` rows, so memory is bounded by
``max_rows x n_labels`` however large the archive (an N x L matrix never exists).

The top-k selection uses ``torch.topk`` (multi-threaded; about 10x faster than
``numpy.argpartition`` + a sort of the k winners on 4,500 labels, see docs/perf/label.md);
:func:`top_k_numpy` is the numpy reference and gives the same result.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

DEFAULT_MAX_ROWS = 4096


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def top_k_numpy(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of each row's k largest scores, best first (numpy argpartition)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(scores, scores.shape[1] - k, axis=1)[:, -k:]
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


def top_k_torch(scores, k: int) -> tuple[np.ndarray, np.ndarray]:
    import torch

    if isinstance(scores, np.ndarray):
        scores = torch.from_numpy(scores)
    vals, idx = torch.topk(scores, min(k, scores.shape[1]), dim=1, largest=True, sorted=True)
    return idx.numpy(), vals.numpy()


class LabelScorer:
    """Scores embedding chunks against a fixed label matrix (rows: label vectors)."""

    def __init__(self, label_matrix: np.ndarray, k: int, *, max_rows: int = DEFAULT_MAX_ROWS, method: str = "torch"):
        if label_matrix.ndim != 2 or label_matrix.shape[0] == 0:
            raise ValueError("the label matrix is empty: no label has a text embedding for this model")
        if method not in ("torch", "numpy"):
            raise ValueError(f"unknown top-k method {method!r}")
        self.k = min(int(k), label_matrix.shape[0])
        self.dim = label_matrix.shape[1]
        self.max_rows = max(1, int(max_rows))
        self.method = method
        labels_t = np.ascontiguousarray(normalise_rows(label_matrix).T)
        if method == "torch":
            import torch

            self._labels_t = torch.from_numpy(labels_t)
        else:
            self._labels_t = labels_t

    def score(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(label_index[n, k], score[n, k])`` for up to ``max_rows`` rows."""
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        if embeddings.shape[1] != self.dim:
            raise ValueError(f"embeddings have {embeddings.shape[1]} dimensions, the labels {self.dim}")
        if self.method == "torch":
            import torch

            return top_k_torch(torch.from_numpy(embeddings) @ self._labels_t, self.k)
        return top_k_numpy(embeddings @ self._labels_t, self.k)

    def score_chunks(self, chunks: Iterable[tuple[np.ndarray, np.ndarray]]) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """For each ``(ids, embeddings)`` chunk (split into pieces of ``max_rows``), yield
        ``(ids, label_index[n, k], score[n, k])`` with each row's labels best first."""
        for ids, embeddings in chunks:
            ids = np.asarray(ids)
            for start in range(0, len(ids), self.max_rows):
                stop = start + self.max_rows
                idx, vals = self.score(embeddings[start:stop])
                yield ids[start:stop], idx, vals


def rows_for(ids: np.ndarray, label_ids: np.ndarray, idx: np.ndarray, vals: np.ndarray) -> dict[str, np.ndarray]:
    """The ArtworkLabel columns (artwork_id, label_id, score, rank) of one scored chunk."""
    n, k = idx.shape
    return {
        "artwork_id": np.repeat(np.asarray(ids, dtype=np.int64), k),
        "label_id": np.asarray(label_ids, dtype=np.int64)[idx].ravel(),
        "score": vals.astype(np.float64, copy=False).ravel(),
        "rank": np.tile(np.arange(1, k + 1, dtype=np.int16), n),
    }
