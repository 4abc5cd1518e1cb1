"""Fit a 2-D layout (UMAP or openTSNE t-SNE) on reduced vectors; save and load the fitted model.

t-SNE uses openTSNE with FFT-accelerated gradients (FIt-SNE, O(n) per iteration) above a few
thousand points and Barnes-Hut below; its neighbours come from Annoy. UMAP uses umap-learn with
NN-descent. Both are seeded, so a rebuild with the same seed and data reproduces the map.
"""
from __future__ import annotations

import os
import pickle
import tempfile
import warnings
from pathlib import Path

import numpy as np

UMAP_DEFAULTS = {"n_neighbors": 15, "min_dist": 0.1}
TSNE_DEFAULTS = {"perplexity": 30.0, "n_iter": 500, "early_exaggeration_iter": 250}
FFT_ABOVE = 5_000  # points; t-SNE uses FFT-interpolated gradients above, Barnes-Hut (as fast, exact enough) below
SPECTRAL_MAX = 20_000  # points; UMAP starts from a spectral embedding up to this size, from PCA above


def check_params(method: str, params: dict | None) -> None:
    """ValueError naming any parameter ``method`` does not take (a typo would be ignored silently)."""
    known = {"umap": UMAP_DEFAULTS, "tsne": TSNE_DEFAULTS}.get(method)
    if known is None:
        raise ValueError(f"unknown layout method {method!r} (umap or tsne)")
    unknown = sorted(set(params or {}) - set(known))
    if unknown:
        raise ValueError(f"unknown {method} parameter(s) {', '.join(unknown)}: use {', '.join(sorted(known))}")


def effective_params(method: str, n: int, params: dict | None = None) -> dict:
    """The parameters actually used for ``n`` points (small maps need smaller neighbourhoods)."""
    check_params(method, params)
    params = dict(params or {})
    if method == "umap":
        out = {**UMAP_DEFAULTS, **params}
        out["n_neighbors"] = int(max(2, min(out["n_neighbors"], n - 1)))
        return out
    if method == "tsne":
        out = {**TSNE_DEFAULTS, **params}
        out["perplexity"] = float(max(1.0, min(out["perplexity"], (n - 1) / 3.0)))
        out["negative_gradient_method"] = "fft" if n > FFT_ABOVE else "bh"
        return out
    raise ValueError(f"unknown layout method {method!r} (umap or tsne)")


def fit(method: str, Y: np.ndarray, *, seed: int = 0, params: dict | None = None, n_jobs: int | None = None, verbose: bool = False):
    """Fit ``method`` on ``Y``. Returns ``(model, coords float32 (n, 2), params used)``.
    ``verbose``: the library's own progress output (the benchmark's 1M run)."""
    n = len(Y)
    if n < 4:
        raise ValueError(f"a map needs at least 4 points with vectors, found {n}")
    p = effective_params(method, n, params)
    n_jobs = n_jobs or os.cpu_count() or 1
    if method == "umap":
        import umap

        model = umap.UMAP(
            n_components=2,
            n_neighbors=p["n_neighbors"],
            min_dist=p["min_dist"],
            metric="euclidean",
            random_state=seed,
            # Spectral initialisation solves an eigenproblem of the whole kNN graph: fine for small maps,
            # but over half of a 100k-point fit here. Above SPECTRAL_MAX points UMAP starts from PCA.
            init="spectral" if 50 < n <= SPECTRAL_MAX else ("pca" if n > SPECTRAL_MAX else "random"),
            low_memory=True,
            verbose=verbose,
        )
        with warnings.catch_warnings():
            # A seeded UMAP runs single-threaded (reproducible); umap-learn warns about it each fit.
            warnings.filterwarnings("ignore", message="n_jobs value .* overridden", category=UserWarning)
            coords = model.fit_transform(Y)
        return model, np.asarray(coords, dtype=np.float32), p
    from openTSNE import TSNE

    model = TSNE(
        n_components=2,
        perplexity=p["perplexity"],
        n_iter=p["n_iter"],
        early_exaggeration_iter=p["early_exaggeration_iter"],
        metric="euclidean",
        initialization="pca",
        negative_gradient_method=p["negative_gradient_method"],
        neighbors="annoy" if n > 1000 else "exact",
        n_jobs=n_jobs,
        random_state=seed,
        verbose=verbose,
    ).fit(Y)
    return model, np.asarray(model, dtype=np.float32).copy(), p


def transform(method: str, model, Y: np.ndarray) -> np.ndarray:
    """Coordinates for new points in a fitted layout; the fitted points do not move."""
    if method == "umap":
        return np.asarray(model.transform(Y), dtype=np.float32)
    # openTSNE optimises only the new points against the fixed reference embedding.
    return np.asarray(model.transform(Y), dtype=np.float32).copy()


def save_model(path: Path, payload: dict) -> None:
    """Pickle ``payload`` (reducer, model, method, ...) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_model(path: Path) -> dict | None:
    # Only files this job wrote itself are unpickled (never user uploads).
    if not path.exists():
        return None
    with open(path, "rb") as handle:
        return pickle.load(handle)
