from django.db import models
from pgvector.django import VectorField


class ArtworkPalette(models.Model):
    """An artwork's dominant colours (CIELAB, with the share of the image each covers), computed
    by the palette stage from its derivative by one method (:data:`archive.colour.METHOD`), and
    the palette's search signature (:func:`archive.colour.signature`), searched through a partial
    HNSW index per method (:mod:`archive.vectors`).

    The row also carries a copy of the artwork's filter columns (years, classification,
    institution, whether it is a duplicate) so that a colour search within those filters checks
    them on the row the index scan reads, with no look-up per candidate. PostgreSQL triggers keep
    the copy (migration 0025): a palette row takes them from its artwork when inserted, and an
    update of those artwork columns is written through to its palette rows."""

    artwork = models.ForeignKey("archive.Artwork", on_delete=models.CASCADE, related_name="palettes")
    method = models.CharField(max_length=40)
    colours = models.JSONField(default=list, help_text='[{"lab": [L, a, b], "hex": "#rrggbb", "share": 0.4}, ...], largest first')
    vector = VectorField(editable=False, help_text="Search signature: the palette over the colour codebook, unit length")
    derivative_size = models.PositiveIntegerField(default=256)
    computed_at = models.DateTimeField(auto_now=True)
    # Copies of the artwork's columns, written by triggers (never by the application).
    year_start = models.IntegerField(null=True, editable=False)
    year_end = models.IntegerField(null=True, editable=False)
    classification = models.CharField(max_length=255, blank=True, default="", editable=False,
                                      help_text="the artwork's classification in upper case (the filter is case-insensitive)")
    institution = models.CharField(max_length=255, blank=True, default="", editable=False)
    duplicate = models.BooleanField(default=False, editable=False, help_text="the artwork is an exact duplicate (hidden from search)")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["artwork", "method"], name="palette_artwork_method_unique")]
        # The exact ranking of a small filtered set reads its rows through these (the vector is on
        # the row, so no second look-up), and through the GiST index on the years as a range
        # (palette_years_range, made by migration 0026: an expression Django does not model here),
        # and where the server has btree_gist through GiST indexes on the classification or the
        # institution with that range (migration 0031: both filters read from one index).
        indexes = [
            models.Index(fields=["method", "classification", "year_start"], name="palette_method_class_years"),
            models.Index(fields=["method", "institution", "year_start"], name="palette_method_inst_years"),
        ]

    def __str__(self) -> str:
        return f"Palette of {self.artwork_id} ({self.method}): {' '.join(c['hex'] for c in self.colours)}"
