"""Layout jobs became a one-batch stage of the job kernel: give every unfinished layout job made by
an earlier version its batch row (pending), so that recovery sends it like any other kind."""
from django.db import migrations


def add_batches(apps, schema_editor):
    Job = apps.get_model("archive", "Job")
    JobBatch = apps.get_model("archive", "JobBatch")
    unfinished = Job.objects.filter(kind="layout", state__in=["queued", "running", "paused"]).exclude(batches__isnull=False)
    JobBatch.objects.bulk_create([JobBatch(job_id=pk, seq=0) for pk in unfinished.values_list("pk", flat=True)])


class Migration(migrations.Migration):
    dependencies = [("archive", "0011_vectors_inline")]
    operations = [migrations.RunPython(add_batches, migrations.RunPython.noop)]
