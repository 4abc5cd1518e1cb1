from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("archive", "0012_layout_job_batches")]
    operations = [
        migrations.AddField(
            model_name="jobbatch",
            name="sent_at",
            field=models.DateTimeField(
                blank=True, null=True,
                help_text="When its task last reached the broker (empty: never sent; recovery sends it)",
            ),
        ),
    ]
