from django.db import models
from pgvector.django import HalfVectorField


class EmbeddingModel(models.Model):
    """A registered image/text embedding model. Every vector row records the model that made it.

    The vector column of :class:`ArtworkEmbedding` has no fixed dimension so that models of any
    width share one table; :mod:`archive.vectors` keeps one partial HNSW index per model.
    """

    class State(models.TextChoices):
        EMBEDDING = "embedding", "Embedding (not yet complete)"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    key = models.CharField(max_length=255, unique=True, help_text="Registry id, e.g. ViT-B-32/laion2b_s34b_b79k")
    arch = models.CharField(max_length=100, help_text="open_clip model name")
    pretrained = models.CharField(max_length=1024, blank=True, help_text="Pretrained tag or weights path")
    dim = models.PositiveIntegerField()
    preprocess_fingerprint = models.CharField(max_length=64, blank=True)
    preprocess = models.JSONField(default=dict, blank=True, help_text="Image preprocessing the embeddings were made with")
    untrained = models.BooleanField(default=False, help_text="Random weights: results are not meaningful")
    weights_sha256 = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the weights file the model was loaded from")
    weights_source = models.CharField(
        max_length=1024, blank=True, help_text="Where the weights came from: hub:REPO/FILE@COMMIT, or file"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.EMBEDDING)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["state"], condition=models.Q(state="active"), name="one_active_embedding_model")
        ]

    def __str__(self) -> str:
        return self.key + (" (untrained)" if self.untrained else "")


class ArtworkEmbedding(models.Model):
    artwork = models.ForeignKey("archive.Artwork", on_delete=models.CASCADE, related_name="embeddings")
    model = models.ForeignKey(EmbeddingModel, on_delete=models.CASCADE, related_name="embeddings")
    # 16-bit floats: half the bytes of a float32 vector; recall@10 against float32 in tests/archive/test_halfvec.py
    vector = HalfVectorField()
    created_at = models.DateTimeField(auto_now_add=True)
    # The artwork's institution, classification and duplicate flag, kept by triggers (migration
    # 0028, copied onto older rows by 0029): partial HNSW indexes per common institution
    # (archive.filter_indexes) can only name this table's columns, and a search within these filters checks them on the row it reads anyway.
    institution = models.CharField(max_length=255, blank=True, default="", editable=False)
    classification = models.CharField(
        max_length=255, blank=True, default="", editable=False,
        help_text="the artwork's classification in upper case (the filter is case-insensitive)")
    duplicate = models.BooleanField(default=False, editable=False, help_text="the artwork is an exact duplicate (hidden from search)")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["artwork", "model"], name="artwork_embedding_unique")]
        indexes = [
            models.Index(fields=["model", "artwork"], name="artwork_embedding_model_idx"),
            # Each institution's works under a model, counted from the index alone (archive.filter_indexes.wanted).
            models.Index(fields=["model", "institution"], condition=models.Q(duplicate=False), name="embedding_institution_idx"),
        ]
