"""Face vectors stored as halfvec (16-bit floats), HNSW on halfvec_l2_ops (the faces' metric):
257 fewer bytes per face in the table and about a third less index (bench/face_vectors.py,
docs/perf/face_vectors.md) at the same recall. Existing rows are converted in batches while the
archive stays in use (:mod:`archive.halfvec`, the same steps as the artwork embeddings'); the
migration runs outside a transaction for the concurrent index builds."""
import pgvector.django
from django.conf import settings
from django.db import migrations


def forward(apps, schema_editor):
    from archive import halfvec

    batch = int(getattr(settings, "HALFVEC_MIGRATION_BATCH", halfvec.DEFAULT_BATCH))
    halfvec.convert(schema_editor.connection, table=halfvec.FACES_TABLE, batch_size=batch,
                    log=lambda m: print(f"  {m}", flush=True))


def backward(apps, schema_editor):
    from archive import halfvec

    halfvec.revert(schema_editor.connection, table=halfvec.FACES_TABLE)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("archive", "0026_palette_filter_columns"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(forward, backward, atomic=False)],
            state_operations=[
                migrations.AlterField(model_name="face", name="vector", field=pgvector.django.HalfVectorField()),
            ],
        ),
    ]
