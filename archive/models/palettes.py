from django.db import models
from pgvector.django import VectorField


class ArtworkPalette(models.Model):
    """An artwork's dominant colours (CIELAB, with the share of the image each covers), computed
    by the palette stage from its derivative by one method (:data:`archive.colour.METHOD`), and
    the palette's search signature (:func:`archive.colour.signature`), searched through a partial
    HNSW index per method (:mod:`archive.vectors`)."""

    artwork = models.ForeignKey("archive.Artwork", on_delete=models.CASCADE, related_name="palettes")
    method = models.CharField(max_length=40)
    colours = models.JSONField(default=list, help_text='[{"lab": [L, a, b], "hex": "#rrggbb", "share": 0.4}, ...], largest first')
    vector = VectorField(editable=False, help_text="Search signature: the palette over the colour codebook, unit length")
    derivative_size = models.PositiveIntegerField(default=256)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["artwork", "method"], name="palette_artwork_method_unique")]

    def __str__(self) -> str:
        return f"Palette of {self.artwork_id} ({self.method}): {' '.join(c['hex'] for c in self.colours)}"
