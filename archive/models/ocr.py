from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models


class ArtworkText(models.Model):
    """The text read in an artwork's image by one OCR engine (the OCR stage, workers/ocr/).

    One row per artwork and engine, replaced when the stage runs again; an artwork without
    legible text has a row too (empty ``text``), so a "missing" job does not read it again.
    ``words`` holds the kept words with their confidence and box in the pixel coordinates of the
    full image (``Artwork.width`` x ``height``), whatever size was read. ``document`` (the words,
    no stemming: the text may be in any language) is searched through a GIN index; the boxes are
    read only for the artworks shown (highlights, IIIF Content Search)."""

    artwork = models.ForeignKey("archive.Artwork", on_delete=models.CASCADE, related_name="texts")
    engine = models.CharField(max_length=40, help_text='"tesseract"')
    engine_version = models.CharField(max_length=40, blank=True)
    languages = models.CharField(max_length=100, help_text='Tesseract languages, e.g. "eng+deu"')
    text = models.TextField(blank=True, help_text="The kept words in reading order, lines separated by newlines")
    words = models.JSONField(default=list, help_text='[{"text": "Hamelin", "conf": 91.2, "x": 10, "y": 20, "w": 120, "h": 30}, ...]')
    word_count = models.PositiveIntegerField(default=0)
    read_size = models.PositiveIntegerField(default=1024, help_text="Long side in pixels of the image that was read")
    source = models.CharField(max_length=20, default="derivative", help_text='"derivative" (1024 px) or "original"')
    document = models.GeneratedField(
        expression=SearchVector("text", config="simple"), output_field=SearchVectorField(), db_persist=True,
    )
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["artwork", "engine"], name="artwork_text_engine_unique")]
        indexes = [GinIndex(fields=["document"], name="artwork_text_gin")]

    def __str__(self) -> str:
        return f"Text of {self.artwork_id} ({self.engine}): {self.word_count} words"
