from django.conf import settings
from django.db import models


class Classifier(models.Model):
    """A label curators teach by example: positive and negative artworks, a linear model trained
    on an embedding model's vectors, applied to the whole archive as the rows of its ``label``
    (group ``trained``), so label pages, filters, the artwork page and the API show it.

    A multi-class classifier (``multiclass``) has two or more named classes instead
    (:class:`ClassifierClass`, e.g. oil / watercolour / print), each its own label; ``label``
    then only names the classifier and is never applied."""

    label = models.OneToOneField("archive.Label", on_delete=models.CASCADE, related_name="classifier")
    target_precision = models.FloatField(default=0.9, help_text="Precision the decision threshold is chosen for (validation part)")
    seed = models.IntegerField(default=0, help_text="Seed of the 80/10/10 split and the cross-validation folds")
    applied_version = models.ForeignKey(
        "archive.ClassifierVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The version whose labels are in the archive",
    )
    multiclass = models.BooleanField(default=False, help_text="Several named classes (ClassifierClass) instead of positive / negative")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["label__name"]

    def __str__(self) -> str:
        return self.label.name


class ClassifierClass(models.Model):
    """One named class of a multi-class classifier, with its own label (group ``trained``): an
    applied version gives each artwork the label of its most probable class when that class's
    probability passes the class's threshold."""

    classifier = models.ForeignKey(Classifier, on_delete=models.CASCADE, related_name="classes")
    label = models.OneToOneField("archive.Label", on_delete=models.CASCADE, related_name="classifier_class")
    position = models.PositiveSmallIntegerField(help_text="Order of the class (its row in a version's weights; key position+1 on the review page)")

    class Meta:
        ordering = ["classifier", "position"]
        constraints = [models.UniqueConstraint(fields=["classifier", "position"], name="classifier_class_position_unique")]

    def __str__(self) -> str:
        return self.label.name


class ClassifierExample(models.Model):
    """One curator example: the artwork shows the label (positive) or does not (negative); for a
    multi-class classifier, the class it belongs to (``klass``; ``positive`` is then null)."""

    classifier = models.ForeignKey(Classifier, on_delete=models.CASCADE, related_name="examples")
    artwork = models.ForeignKey("archive.Artwork", on_delete=models.CASCADE, related_name="+")
    positive = models.BooleanField(null=True, blank=True)
    klass = models.ForeignKey(ClassifierClass, null=True, blank=True, on_delete=models.CASCADE, related_name="examples",
                              verbose_name="class")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["classifier", "artwork"], name="classifier_example_unique"),
            models.CheckConstraint(
                condition=models.Q(positive__isnull=False, klass__isnull=True) | models.Q(positive__isnull=True, klass__isnull=False),
                name="classifier_example_side_or_class",
            ),
        ]


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
    weights = models.JSONField(null=True, blank=True, help_text="Coefficients over the L2-normalised embedding "
                               "(multi-class: one row per class, in class_ids order)")
    intercept = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True, help_text="Probability at or above which the label is shown")
    class_ids = models.JSONField(null=True, blank=True, help_text="Multi-class: the ClassifierClass ids, in the order of the weight rows")
    intercepts = models.JSONField(null=True, blank=True, help_text="Multi-class: one intercept per class")
    thresholds = models.JSONField(null=True, blank=True, help_text="Multi-class: one threshold per class (validation part)")
    metrics = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["classifier", "-number"]
        constraints = [models.UniqueConstraint(fields=["classifier", "number"], name="classifier_version_unique")]
