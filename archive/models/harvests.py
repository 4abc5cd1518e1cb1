from django.db import models


class HarvestState(models.Model):
    """Where the incremental harvest of one IIIF Change Discovery stream stands: the time of the
    newest activity the last harvest read, so that the next one reads the stream back only that
    far and fetches only the manifests that changed since (:mod:`workers.ingest.harvest`)."""

    stream_url = models.URLField(max_length=1024, unique=True, help_text="The stream's OrderedCollection (URL or path)")
    source = models.CharField(max_length=100, default="iiif", help_text="Artwork.source of the harvested works")
    last_end_time = models.DateTimeField(null=True, blank=True, help_text="endTime of the newest activity read so far")
    # Ids of the activities at last_end_time: the next harvest skips them (activities of the same
    # second that it has not read are still read).
    boundary_ids = models.JSONField(default=list, blank=True, help_text="Activities at last_end_time already read")
    harvested_at = models.DateTimeField(null=True, blank=True, help_text="When the last harvest ran")
    last_job = models.ForeignKey("archive.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_counts = models.JSONField(default=dict, blank=True, help_text="What the last harvest read, fetched and withdrew")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.stream_url} (up to {self.last_end_time})"
