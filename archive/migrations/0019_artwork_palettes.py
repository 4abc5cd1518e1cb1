# Colour palettes per artwork (the palette stage, workers/palettes.py).

import django.db.models.deletion
import pgvector.django.vector
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('archive', '0018_classifiers'),
    ]

    operations = [
        migrations.AlterField(
            model_name='job',
            name='kind',
            field=models.CharField(choices=[('import', 'Import'), ('embed', 'Embed'), ('label', 'Label'), ('score_label', 'Score a new label'), ('faces', 'Faces'), ('layout', 'Map layout'), ('train_classifier', 'Train a classifier'), ('apply_classifier', 'Apply a classifier'), ('palette', 'Colour palettes')], db_index=True, max_length=20),
        ),
        migrations.CreateModel(
            name='ArtworkPalette',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('method', models.CharField(max_length=40)),
                ('colours', models.JSONField(default=list, help_text='[{"lab": [L, a, b], "hex": "#rrggbb", "share": 0.4}, ...], largest first')),
                ('vector', pgvector.django.vector.VectorField(editable=False, help_text='Search signature: the palette over the colour codebook, unit length')),
                ('derivative_size', models.PositiveIntegerField(default=256)),
                ('computed_at', models.DateTimeField(auto_now=True)),
                ('artwork', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='palettes', to='archive.artwork')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('artwork', 'method'), name='palette_artwork_method_unique')],
            },
        ),
    ]
