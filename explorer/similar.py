"""Visually similar artworks: kNN over the active model's embeddings (archive.vectors.nearest)."""
from __future__ import annotations

import numpy as np
from django.conf import settings
from django.db import connection

from archive import vectors
from archive.models import Artwork, EmbeddingModel

from .models_state import display_artworks

# HNSW candidate list size; bench/browse.py measures the recall this buys (target >= 0.95 @ 10).
EF_SEARCH = getattr(settings, "EXPLORER_EF_SEARCH", 64)


def artwork_vector(artwork_id: int, model: EmbeddingModel) -> np.ndarray | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT vector::text FROM archive_artworkembedding WHERE artwork_id = %s AND model_id = %s",
            [artwork_id, model.pk],
        )
        row = cursor.fetchone()
    return vectors.from_value(row[0]) if row else None


def nearest_artworks(
    model: EmbeddingModel, query: np.ndarray, *, limit: int = 12, exclude: set[int] = frozenset(), ef_search: int | None = None
) -> list[tuple[int, float]]:
    """``(artwork_id, similarity)`` of the nearest artworks to ``query`` (cosine similarity)."""
    rows = vectors.nearest(
        vectors.ARTWORK_EMBEDDINGS,
        model.pk,
        query,
        dim=model.dim,
        limit=limit + len(exclude),
        ef_search=max(ef_search or EF_SEARCH, limit + len(exclude)),
        columns=("artwork_id",),
    )
    out = [(int(r[2]), 1.0 - float(r[1])) for r in rows if int(r[2]) not in exclude]
    return out[:limit]


def similar_to(artwork: Artwork, model: EmbeddingModel | None, *, limit: int = 12) -> list[tuple[Artwork, float]]:
    """Artworks that look like ``artwork`` under ``model`` (empty if it has no embedding)."""
    if model is None:
        return []
    query = artwork_vector(artwork.pk, model)
    if query is None:
        return []
    hits = nearest_artworks(model, query, limit=limit, exclude={artwork.pk})
    found = display_artworks(a for a, _ in hits)
    return [(found[a], s) for a, s in hits if a in found]
