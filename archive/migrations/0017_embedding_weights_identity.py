from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("archive", "0016_artwork_embeddings_halfvec")]

    operations = [
        migrations.AddField(
            model_name="embeddingmodel",
            name="weights_sha256",
            field=models.CharField(blank=True, help_text="SHA-256 of the weights file the model was loaded from", max_length=64),
        ),
        migrations.AddField(
            model_name="embeddingmodel",
            name="weights_source",
            field=models.CharField(
                blank=True, help_text="Where the weights came from: hub:REPO/FILE@COMMIT, or file", max_length=1024
            ),
        ),
    ]
