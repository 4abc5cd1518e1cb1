from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone


class Job(models.Model):
    """One run of a pipeline stage (import, embed, label, faces, layout), with its progress."""

    class Kind(models.TextChoices):
        IMPORT = "import", "Import"
        EMBED = "embed", "Embed"
        LABEL = "label", "Label"
        SCORE_LABEL = "score_label", "Score a new label"
        FACES = "faces", "Faces"
        LAYOUT = "layout", "Map layout"
        TRAIN_CLASSIFIER = "train_classifier", "Train a classifier"
        APPLY_CLASSIFIER = "apply_classifier", "Apply a classifier"
        PALETTE = "palette", "Colour palettes"
        OCR = "ocr", "Text in images (OCR)"
        NEIGHBOURS = "neighbours", "Nearest-neighbour graph"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        CANCELLED = "cancelled", "Cancelled"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    FINAL_STATES = (State.CANCELLED, State.DONE, State.FAILED)

    kind = models.CharField(max_length=20, choices=Kind.choices, db_index=True)
    params = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED, db_index=True)
    total = models.BigIntegerField(default=0)
    done = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    rate = models.FloatField(default=0.0, help_text="Items per second over the running time")
    # Time spent paused is not running time: it is left out of the rate (and so of the ETA).
    paused_at = models.DateTimeField(null=True, blank=True, help_text="When the current pause began")
    paused_seconds = models.FloatField(default=0.0, help_text="Seconds spent paused before the current pause")
    # Set with the DONE state, cleared once the stage's finish hook (index build, model switch) has
    # run: recovery runs the hook of a job whose worker died in between.
    finish_pending = models.BooleanField(default=False)
    message = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} job #{self.pk} ({self.state})"

    @property
    def is_final(self) -> bool:
        return self.state in self.FINAL_STATES

    @property
    def processed(self) -> int:
        return self.done + self.failed

    @property
    def percent(self) -> float:
        return 100.0 * self.processed / self.total if self.total else 0.0

    @property
    def eta_seconds(self) -> float | None:
        if not self.rate or not self.total or self.is_final:
            return None
        return max(self.total - self.processed, 0) / self.rate

    @property
    def elapsed_seconds(self) -> float:
        return self.running_seconds()

    def running_seconds(self, at=None) -> float:
        """Seconds from the start to ``at`` (default: the end, else now), paused time left out."""
        if not self.started_at:
            return 0.0
        end = at or self.finished_at or timezone.now()
        paused = self.paused_seconds or 0.0
        if self.paused_at is not None and end > self.paused_at:
            paused += (end - self.paused_at).total_seconds()
        return max((end - self.started_at).total_seconds() - paused, 0.0)


class JobBatch(models.Model):
    """A slice of a job's items, leased by one worker at a time. The job's own record of progress:
    a restarted job re-sends exactly the batches that are not done.

    Stages over existing artworks list them in ``item_ids``. An import's items are not artworks
    yet: its batch 0 is the plan (reading the source), and each later batch holds the records it
    imports in ``records`` (cleared once the batch is done), taken from the source's stream at
    ``start`` (``size`` items), so a resumed plan knows how far it got."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="batches")
    seq = models.PositiveIntegerField()
    item_ids = ArrayField(models.BigIntegerField(), default=list)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=255, blank=True)
    records = models.JSONField(null=True, blank=True, help_text="An import batch's records, until it is done")
    start = models.BigIntegerField(default=0, help_text="Position of the first item in the job's source stream")
    size = models.PositiveIntegerField(default=0, help_text="Items in the batch (records of an import)")
    summary = models.JSONField(default=dict, blank=True, help_text="Stage-specific counts of a done batch")
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(
        null=True, blank=True, help_text="When its task last reached the broker (empty: never sent; recovery sends it)"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="job_batch_seq_unique")]
        indexes = [models.Index(fields=["job", "state"], name="job_batch_state_idx")]


class JobError(models.Model):
    """One item that a job could not process, with a readable reason and what is needed to retry."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="errors")
    artwork = models.ForeignKey("archive.Artwork", null=True, blank=True, on_delete=models.SET_NULL)
    item = models.TextField(help_text="The failing item: a path, URL, row number or artwork id")
    reason = models.CharField(max_length=500)
    detail = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True, help_text="What a retry needs to process the item again")
    created_at = models.DateTimeField(auto_now_add=True)
    retried_in = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="retries_of")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.item}: {self.reason}"
