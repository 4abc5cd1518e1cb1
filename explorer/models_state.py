"""Which embedding model the explorer reads, and whether its results are meaningful."""
from __future__ import annotations

from archive.models import EmbeddingModel


def active_model() -> EmbeddingModel | None:
    """The active embedding model; pages show nothing model-derived without one."""
    return EmbeddingModel.objects.filter(state=EmbeddingModel.State.ACTIVE).first()


def untrained_notice(model: EmbeddingModel | None) -> str:
    if model is not None and model.untrained:
        return (
            f"Results on this page come from the model {model.key}, which has untrained (random) weights: "
            "similarities and labels are not meaningful."
        )
    return ""


# Columns a page never shows: the full-text vector, raw metadata, hash bits (large or useless).
HIDDEN_COLUMNS = ("search_document", "metadata", "phash_bits")


def display_artworks(ids) -> dict:
    """``{id: Artwork}`` for ids, without the columns pages never show."""
    from archive.models import Artwork

    return Artwork.objects.defer(*HIDDEN_COLUMNS).in_bulk(list(ids))
