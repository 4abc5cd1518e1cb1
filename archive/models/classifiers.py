from django.conf import settings
from django.db import models


class Classifier(models.Model):
    """A label curators teach by example: positive and negative artworks, a linear model trained
    on an embedding model's vectors, applied to the whole archive as the rows of its ``label``
    (group ``trained``), so label pages, filters, the artwork page and the API show it."""

    label = models.OneToOneField("archive.Label", on_delete=models.CASCADE, related_name="classifier")
    target_precision = models.FloatField(default=0.9, help_text="Precision the decision threshold is chosen for (validation part)")
    seed = models.IntegerField(default=0, help_text="Seed of the 80/10/10 split and the cross-validation folds")
    applied_version = models.ForeignKey(
        "archive.ClassifierVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The version whose labels are in the archive",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["label__name"]

    def __str__(self) -> str:
        return self.label.name


class ClassifierExample(models.Model):
    """One curator example: the artwork shows the label (positive) or does not (negative)."""

    classifier = models.ForeignKey(Classifier, on_delete=models.CASCADE, related_name="examples")
    artwork = models.ForeignKey("archive.Artwork", on_delete=models.CASCADE, related_name="+")
    positive = models.BooleanField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["classifier", "artwork"], name="classifier_example_unique")]


class ClassifierVersion(models.Model):
    """One training run of a classifier under one embedding model: its weights, the threshold
    chosen on the validation part and the figures on the test part. Versions are kept, so a
    curator can apply an older one again (roll back)."""

    class State(models.TextChoices):
        TRAINING = "training", "Training"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    classifier = models.ForeignKey(Classifier, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    model = models.ForeignKey("archive.EmbeddingModel", on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=10, choices=State.choices, default=State.TRAINING)
    message = models.TextField(blank=True)
    job = models.ForeignKey("archive.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    seed = models.IntegerField(default=0)
    target_precision = models.FloatField(default=0.9)
    weights = models.JSONField(null=True, blank=True, help_text="Coefficients over the L2-normalised embedding")
    intercept = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True, help_text="Probability at or above which the label is shown")
    metrics = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["classifier", "-number"]
        constraints = [models.UniqueConstraint(fields=["classifier", "number"], name="classifier_version_unique")]
