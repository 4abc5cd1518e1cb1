from django.db import models
from pgvector.django import HalfVectorField


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
    crop = models.CharField(max_length=255, blank=True, help_text="Crop thumbnail, a name in the public store")
    vector = HalfVectorField()  # 128-d, 16-bit floats (migration 0025, docs/faces.md)
    not_a_face = models.BooleanField(default=False, help_text="Marked by a curator; kept out of matching")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["artwork", "model"], name="face_artwork_model_idx")]

    def __str__(self) -> str:
        return f"Face in {self.artwork_id} at ({self.x},{self.y},{self.w},{self.h})"

    @property
    def box_percent(self) -> dict[str, float]:
        """The box as percentages of the artwork image (for CSS overlays at any display size)."""
        width, height = self.artwork.width or 1, self.artwork.height or 1
        return {
            "left": round(100 * self.x / width, 2),
            "top": round(100 * self.y / height, 2),
            "width": round(100 * self.w / width, 2),
            "height": round(100 * self.h / height, 2),
        }

    @property
    def crop_url(self) -> str:
        from archive import storage

        return storage.url(storage.public(), self.crop) if self.crop else ""


class FaceScan(models.Model):
    """That an artwork's image was searched for faces by one face model, with which settings and how
    many faces were found. Lets a "missing" run skip artworks without faces, which have no Face rows."""

    artwork = models.ForeignKey("archive.Artwork", on_delete=models.CASCADE, related_name="face_scans")
    model = models.CharField(max_length=100)
    detector = models.CharField(max_length=20, default="hog")
    derivative_size = models.PositiveIntegerField(default=1024)
    upsample = models.PositiveSmallIntegerField(default=0)
    faces = models.PositiveIntegerField(default=0)
    scanned_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["artwork", "model"], name="face_scan_artwork_model_unique")]

    def __str__(self) -> str:
        return f"Face scan of {self.artwork_id} by {self.model}: {self.faces} faces"
