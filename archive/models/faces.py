from django.db import models
from pgvector.django import VectorField


class Face(models.Model):
    """A face found in an artwork's image. The box is in original-image pixel coordinates."""

    artwork = models.ForeignKey("archive.Artwork", on_delete=models.CASCADE, related_name="faces")
    model = models.CharField(max_length=100, help_text="Face backend id that made the detection and vector")
    x = models.IntegerField()
    y = models.IntegerField()
    w = models.IntegerField()
    h = models.IntegerField()
    landmarks = models.JSONField(default=list, blank=True)
    score = models.FloatField(default=0.0)
    crop = models.CharField(max_length=255, blank=True, help_text="Crop thumbnail path under MEDIA_ROOT")
    vector = VectorField()
    not_a_face = models.BooleanField(default=False, help_text="Marked by a curator; kept out of matching")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["artwork", "model"], name="face_artwork_model_idx")]

    def __str__(self) -> str:
        return f"Face in {self.artwork_id} at ({self.x},{self.y},{self.w},{self.h})"
