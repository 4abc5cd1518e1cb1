"""The artworks of a stage's batch that have an image to work on: the others (deleted since the
batch was written, or without an image) are recorded as item errors, so every stage words and
records them the same way."""
from __future__ import annotations

from collections.abc import Iterator

from archive.models import Artwork
from workers.jobs import BatchResult, ItemError


def with_images(ids: list[int], result: BatchResult, purpose: str) -> Iterator[Artwork]:
    """The batch's artworks that have an image, in the batch's order; ``purpose`` completes the
    error of one without ("no image to <purpose>")."""
    artworks = Artwork.objects.in_bulk(ids)
    for artwork_id in ids:
        artwork = artworks.get(artwork_id)
        if artwork is None:
            result.errors.append(ItemError(artwork_id, "artwork no longer exists"))
        elif not artwork.has_image:
            result.errors.append(ItemError(artwork_id, f"no image to {purpose} (status {artwork.status})"))
        else:
            yield artwork
