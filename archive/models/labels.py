from django.conf import settings
from django.db import models
from pgvector.django import VectorField

# The group of the labels curators teach by example (archive.models.classifiers.Classifier): their
# rows are written by the classifier (rank 0, score a probability), never by the vocabulary's stages.
TRAINED_GROUP = "trained"
# The group of the Iconclass subjects (workers/vocabulary/iconclass_subjects.csv): browsable labels
# with parent links, never scored by CLIP; their rows are derived from the labels mapped to them
# (archive.iconclass_rows, rank 0, the best score of the labels that put them there).
ICONCLASS_GROUP = "iconclass"


class Label(models.Model):
    """A browsable label from the vocabulary, or one a curator created from a text prompt."""

    name = models.CharField(max_length=255)
    slug = models.SlugField(max_length=255, unique=True)
    group = models.CharField(max_length=50, db_index=True, help_text="Vocabulary group, e.g. animals, styles")
    prompt = models.TextField(blank=True, help_text="Text used instead of the name when scoring")
    description = models.TextField(blank=True)
    source = models.CharField(max_length=255, blank=True, help_text="Where the term comes from")
    threshold = models.FloatField(
        null=True, blank=True, help_text="Score at or above which the label is shown (cosine units of the active model)"
    )
    published = models.BooleanField(default=True, db_index=True)
    notation = models.CharField(
        max_length=255, blank=True, db_index=True,
        help_text="Iconclass notation: an Iconclass subject's own, or the one a vocabulary label is mapped to",
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children",
        help_text="Broader Iconclass subject (labels of the iconclass group)",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def iconclass_uri(self) -> str:
        """``https://iconclass.org/<notation>``, or "" without a notation."""
        if not self.notation:
            return ""
        from urllib.parse import quote

        return "https://iconclass.org/" + quote(self.notation, safe="()")


class LabelEmbedding(models.Model):
    """Cached text embedding of a label's prompt ensemble, per model."""

    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="embeddings")
    model = models.ForeignKey("archive.EmbeddingModel", on_delete=models.CASCADE, related_name="label_embeddings")
    vector = VectorField()
    prompts_fingerprint = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # This label's cosine-score distribution over the archive under this model (a sample, or every
    # artwork for labels scored on demand): used for the calibrated score (z-score) and the
    # default display threshold when neither the label nor the settings fix one.
    score_mean = models.FloatField(null=True, blank=True)
    score_std = models.FloatField(null=True, blank=True)
    default_threshold = models.FloatField(null=True, blank=True, help_text="Derived threshold (a high percentile of the scores)")
    stats_count = models.PositiveIntegerField(null=True, blank=True, help_text="Artworks the statistics were computed over")
    # The curator's threshold (Label.threshold) in this model's cosine units, kept when another
    # model becomes active so that switching back restores it exactly.
    threshold = models.FloatField(null=True, blank=True, help_text="Curator threshold under this model")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["label", "model"], name="label_embedding_unique")]


class ArtworkLabel(models.Model):
    """One of an artwork's top-k machine labels under one model."""

    # ~20 rows per artwork (20M for 1M artworks): no single-column FK indexes. Lookups by artwork
    # use the unique index (artwork, model, label), by label the rank index (label, model, -score);
    # "which artworks are labelled under a model" uses the small partial index on rank-1 rows.
    artwork = models.ForeignKey("archive.Artwork", on_delete=models.CASCADE, related_name="labels", db_index=False)
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="artwork_labels", db_index=False)
    model = models.ForeignKey("archive.EmbeddingModel", on_delete=models.CASCADE, related_name="+", db_index=False)
    score = models.FloatField()
    rank = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["artwork", "model", "label"], name="artwork_label_unique"),
        ]
        indexes = [
            # A label's artworks by score (label pages, the label filter, counts), from the index
            # alone: artwork_id is carried in it.
            models.Index(fields=["label", "model", "-score"], include=["artwork"], name="artwork_label_rank_idx"),
            models.Index(fields=["model", "artwork"], condition=models.Q(rank=1), name="artwork_label_top1_idx"),
        ]


class LabelDecision(models.Model):
    """A curator's decision on a label for an artwork. Independent of any model, so it survives
    re-labelling and model changes."""

    class Decision(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"
        ADDED = "added", "Added by a curator"

    artwork = models.ForeignKey("archive.Artwork", on_delete=models.CASCADE, related_name="label_decisions")
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="decisions")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["artwork", "label"], name="label_decision_unique")]
        indexes = [models.Index(fields=["label", "decision"], name="label_decision_idx")]


class LabelCount(models.Model):
    """How many artworks a label is shown on under one model: the number the label browser, the
    home page and the API print next to each label.

    Counting on read would scan every label row (20M at 1M artworks), so the count is stored and
    kept current where rows change (see :mod:`archive.label_counts`): the label stage adjusts it
    for each batch it writes, curator decisions recount their label. ``threshold`` is the
    effective display threshold the count was made with; a row whose threshold no longer matches
    the label's is stale and is recounted by the next label batch or ``refresh_label_counts``.
    """

    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="+", db_index=False)
    model = models.ForeignKey("archive.EmbeddingModel", on_delete=models.CASCADE, related_name="+", db_index=False)
    count = models.IntegerField(default=0)
    threshold = models.FloatField(null=True, blank=True, help_text="Effective threshold the count was made with (none: all rows)")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "label"], name="label_count_unique")]
