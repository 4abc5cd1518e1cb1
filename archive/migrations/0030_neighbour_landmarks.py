"""Each stored neighbour list gets the work's distances along the graph to the model's landmark
works (workers/landmarks.py): the path's estimate of what is left to its goal."""
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("archive", "0029_embedding_filter_columns_copy")]

    operations = [
        migrations.AddField(
            model_name="artworkneighbours",
            name="landmarks",
            field=models.BinaryField(blank=True, help_text="distances along the graph to the landmark works (float32)", null=True),
        ),
    ]
