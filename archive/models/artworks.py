from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models.functions import Upper
from pgvector.django import HnswIndex, VectorField


class Artwork(models.Model):
    """One work in the archive: its catalogue record plus facts about its image.

    ``(source, source_id)`` identifies the record in the source it came from, so re-importing a
    source updates rows instead of duplicating them. Image files are not stored here: derivatives
    live in the public store keyed by ``sha256`` (see :mod:`archive.images`).
    """

    class Status(models.TextChoices):
        OK = "ok", "Image ingested"
        DUPLICATE = "duplicate", "Exact duplicate of another artwork"
        IMAGE_FAILED = "image_failed", "Image could not be ingested"
        NO_IMAGE = "no_image", "Metadata only"

    source = models.CharField(max_length=100)
    source_id = models.CharField(max_length=512)
    title = models.TextField(blank=True)
    creator = models.TextField(blank=True)
    display_date = models.CharField(max_length=255, blank=True)
    year_start = models.IntegerField(null=True, blank=True)
    year_end = models.IntegerField(null=True, blank=True)
    medium = models.TextField(blank=True)
    classification = models.CharField(max_length=255, blank=True, db_index=True)
    institution = models.CharField(max_length=255, blank=True)  # indexed by artwork_institution_years
    rights = models.CharField(max_length=512, blank=True, help_text="Rights statement or licence name")
    rights_url = models.URLField(max_length=1024, blank=True, help_text="Licence / rights statement URL")
    credit_line = models.TextField(blank=True)
    source_url = models.URLField(max_length=1024, blank=True, help_text="The record's page at its source")
    iiif_manifest_url = models.URLField(max_length=1024, blank=True)
    iiif_image_service = models.URLField(max_length=1024, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    original_location = models.TextField(blank=True, help_text="Path or URL of the original image")

    sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    phash = models.BigIntegerField(null=True, blank=True, help_text="64-bit DCT perceptual hash")
    phash_bits = VectorField(dimensions=64, null=True, blank=True, editable=False)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NO_IMAGE, db_index=True)
    image_error = models.TextField(blank=True)
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="duplicates"
    )

    search_document = models.GeneratedField(
        expression=SearchVector("title", "creator", "medium", "classification", "display_date", config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "source_id"], name="artwork_source_unique")]
        indexes = [
            GinIndex(fields=["search_document"], name="artwork_search_gin"),
            HnswIndex(name="artwork_phash_hnsw", fields=["phash_bits"], opclasses=["vector_l2_ops"]),
            models.Index(fields=["creator"], name="artwork_creator_idx"),
            # The search filters: creator by word prefixes (full text on the creator alone, any
            # PostgreSQL: pg_trgm is not part of every install), classification case-insensitively.
            GinIndex(SearchVector("creator", config="simple"), name="artwork_creator_words"),
            models.Index(Upper("classification"), name="artwork_classification_upper"),
            # Year ranges (alone and within an institution): the range on year_start is scanned
            # and year_end checked inside the index, not on the table.
            models.Index(fields=["year_start", "year_end"], name="artwork_years"),
            models.Index(fields=["institution", "year_start", "year_end"], name="artwork_institution_years"),
            # Joins from label rows to artworks check the status (duplicates are not shown) in
            # the index alone.
            models.Index(fields=["id"], include=["status"], name="artwork_id_status"),
            # The IIIF Change Discovery stream's pages (explorer/iiif/activity.py), oldest change first.
            models.Index(fields=["updated_at", "id"], name="artwork_updated"),
        ]
        ordering = ["id"]

    def __str__(self) -> str:
        return self.title or f"{self.source}:{self.source_id}"

    @property
    def has_image(self) -> bool:
        return self.status in (self.Status.OK, self.Status.DUPLICATE) and bool(self.sha256)

    def derivative_url(self, size: int) -> str:
        from archive.images import derivative_url

        return derivative_url(self.sha256, size) if self.has_image else ""

    @property
    def thumbnail_url(self) -> str:
        return self.derivative_url(256)

    @property
    def derivative_url_1024(self) -> str:
        return self.derivative_url(1024)


class NearDuplicate(models.Model):
    """Two artworks whose perceptual hashes are close: flagged for a curator to review."""

    class Review(models.TextChoices):
        PENDING = "pending", "Pending review"
        SAME = "same", "Same work"
        DIFFERENT = "different", "Different works"

    artwork = models.ForeignKey(Artwork, on_delete=models.CASCADE, related_name="near_duplicates")
    other = models.ForeignKey(Artwork, on_delete=models.CASCADE, related_name="+")
    distance = models.PositiveSmallIntegerField(help_text="Hamming distance of the perceptual hashes")
    review = models.CharField(max_length=10, choices=Review.choices, default=Review.PENDING, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["artwork", "other"], name="near_duplicate_pair_unique")]

    def __str__(self) -> str:
        return f"{self.artwork_id} ~ {self.other_id} (distance {self.distance})"
