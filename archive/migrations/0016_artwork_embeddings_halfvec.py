"""Artwork embeddings stored as halfvec (16-bit floats), HNSW on halfvec_cosine_ops: half the bytes
per vector in the table and in the index. Existing rows are converted in batches while the archive
stays in use (:mod:`archive.halfvec`); the migration runs outside a transaction for the concurrent
index builds."""
import pgvector.django
from django.conf import settings
from django.db import migrations


def forward(apps, schema_editor):
    from archive import halfvec

    batch = int(getattr(settings, "HALFVEC_MIGRATION_BATCH", halfvec.DEFAULT_BATCH))
    halfvec.convert(schema_editor.connection, batch_size=batch, log=lambda m: print(f"  {m}", flush=True))


def backward(apps, schema_editor):
    from archive import halfvec

    halfvec.revert(schema_editor.connection)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("archive", "0015_pgvector_0_8"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(forward, backward, atomic=False)],
            state_operations=[
                migrations.AlterField(
                    model_name="artworkembedding", name="vector", field=pgvector.django.HalfVectorField()
                ),
            ],
        ),
    ]
