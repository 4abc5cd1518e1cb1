from django.db import models


class Layout(models.Model):
    """A 2-D map of artworks (or painted faces) placed by visual similarity."""

    class Method(models.TextChoices):
        UMAP = "umap", "UMAP"
        TSNE = "tsne", "t-SNE"

    class State(models.TextChoices):
        BUILDING = "building", "Building"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=255)
    slug = models.SlugField(max_length=255, unique=True)
    method = models.CharField(max_length=10, choices=Method.choices)
    model = models.ForeignKey("archive.EmbeddingModel", null=True, blank=True, on_delete=models.SET_NULL)
    subset = models.JSONField(default=dict, blank=True, help_text='e.g. {"label": "horse"} or {"faces": true}')
    params = models.JSONField(default=dict, blank=True)
    seed = models.IntegerField(default=0)
    state = models.CharField(max_length=10, choices=State.choices, default=State.BUILDING)
    point_count = models.PositiveIntegerField(default=0)
    export_version = models.PositiveIntegerField(default=0)
    is_default = models.BooleanField(default=False)
    job = models.ForeignKey("archive.Job", null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    built_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class LayoutPoint(models.Model):
    layout = models.ForeignKey(Layout, on_delete=models.CASCADE, related_name="points")
    artwork = models.ForeignKey("archive.Artwork", on_delete=models.CASCADE, related_name="layout_points")
    face = models.ForeignKey("archive.Face", null=True, blank=True, on_delete=models.CASCADE)
    x = models.FloatField()
    y = models.FloatField()
    cluster = models.IntegerField(null=True, blank=True)
    placed_incrementally = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["layout", "artwork"], name="layout_point_artwork_idx")]


class Region(models.Model):
    """A named cluster of a layout at one zoom level."""

    layout = models.ForeignKey(Layout, on_delete=models.CASCADE, related_name="regions")
    level = models.PositiveSmallIntegerField(default=0)
    cluster = models.IntegerField()
    name = models.CharField(max_length=255)
    x = models.FloatField()
    y = models.FloatField()
    size = models.PositiveIntegerField(default=0)
    top_labels = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["layout", "level", "cluster"], name="region_unique")]
