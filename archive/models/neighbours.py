from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models


class ArtworkNeighbours(models.Model):
    """An artwork's nearest neighbours under one embedding model: the stored kNN graph that the
    path between two artworks runs on (written by the neighbours stage, ``workers/neighbours.py``).

    One row per (artwork, model): the ids of its K nearest other artworks, nearest first, and
    their cosine distances. Rows are read by the b-tree of the unique constraint (out-edges) and,
    for the reverse edges that keep a newly embedded work reachable, by the GIN index on
    ``neighbours`` (``neighbours && ARRAY[...]``: the rows listing any of a set of works).

    ``landmarks``: the work's distances along the graph to the model's landmark works (float32,
    little-endian, one per landmark; :mod:`workers.landmarks`), the path's estimate of how far a
    work is from its goal; empty until the landmarks are computed after the row was written."""

    artwork = models.ForeignKey("archive.Artwork", on_delete=models.CASCADE, related_name="+")
    model = models.ForeignKey("archive.EmbeddingModel", on_delete=models.CASCADE, related_name="+", db_index=False)  # led by the unique (model, artwork)
    neighbours = ArrayField(models.BigIntegerField(), help_text="ids of the nearest artworks, nearest first")
    distances = ArrayField(models.FloatField(), help_text="cosine distance to each of neighbours")
    landmarks = models.BinaryField(null=True, blank=True, help_text="distances along the graph to the landmark works (float32)")
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "artwork"], name="artwork_neighbours_unique")]
        indexes = [GinIndex(fields=["neighbours"], name="artwork_neighbours_listed")]

    def __str__(self) -> str:
        return f"Neighbours of {self.artwork_id} under model {self.model_id}: {len(self.neighbours)}"
