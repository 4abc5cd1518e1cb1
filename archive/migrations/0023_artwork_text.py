# Text read in images per artwork (the OCR stage, workers/ocr/): words with boxes, searched through a GIN index.

import django.contrib.postgres.indexes
import django.contrib.postgres.search
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('archive', '0022_label_iconclass_notation_and_parent'),
    ]

    operations = [
        migrations.AlterField(
            model_name='job',
            name='kind',
            field=models.CharField(choices=[('import', 'Import'), ('embed', 'Embed'), ('label', 'Label'), ('score_label', 'Score a new label'), ('faces', 'Faces'), ('layout', 'Map layout'), ('train_classifier', 'Train a classifier'), ('apply_classifier', 'Apply a classifier'), ('palette', 'Colour palettes'), ('ocr', 'Text in images (OCR)')], db_index=True, max_length=20),
        ),
        migrations.CreateModel(
            name='ArtworkText',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('engine', models.CharField(help_text='"tesseract"', max_length=40)),
                ('engine_version', models.CharField(blank=True, max_length=40)),
                ('languages', models.CharField(help_text='Tesseract languages, e.g. "eng+deu"', max_length=100)),
                ('text', models.TextField(blank=True, help_text='The kept words in reading order, lines separated by newlines')),
                ('words', models.JSONField(default=list, help_text='[{"text": "Hamelin", "conf": 91.2, "x": 10, "y": 20, "w": 120, "h": 30}, ...]')),
                ('word_count', models.PositiveIntegerField(default=0)),
                ('read_size', models.PositiveIntegerField(default=1024, help_text='Long side in pixels of the image that was read')),
                ('source', models.CharField(default='derivative', help_text='"derivative" (1024 px) or "original"', max_length=20)),
                ('document', models.GeneratedField(db_persist=True, expression=django.contrib.postgres.search.SearchVector('text', config='simple'), output_field=django.contrib.postgres.search.SearchVectorField())),
                ('computed_at', models.DateTimeField(auto_now=True)),
                ('artwork', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='texts', to='archive.artwork')),
            ],
            options={
                'indexes': [django.contrib.postgres.indexes.GinIndex(fields=['document'], name='artwork_text_gin')],
                'constraints': [models.UniqueConstraint(fields=('artwork', 'engine'), name='artwork_text_engine_unique')],
            },
        ),
    ]
