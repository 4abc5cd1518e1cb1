"""Migration 0028's columns (institution, classification, duplicate) copied onto the embedding rows
that existed before it, in batches of BATCH rows, each batch its own transaction (this migration is
not atomic), so no lock is held on the table for long and an interrupted copy resumes where the next
``migrate`` runs it again: a row already holding its artwork's values is skipped. A row whose values
change is a new row version: with the model's HNSW index in place each copied row is also an index
insertion (4.8 ms a row at 1M artworks on the 2-core development machine: about 80 minutes for a
million rows, docs/database.md), which is also why rows that hold the right values already (works
without an institution and classification) are left alone. Then the b-tree that counts each
institution's works for archive.filter_indexes without reading the embedding rows."""
import sys

from django.db import migrations, models

BATCH = 20_000


COPY_BATCH = """
UPDATE archive_artworkembedding e
   SET institution = a.institution, classification = upper(a.classification), duplicate = a.status = 'duplicate'
  FROM archive_artwork a
 WHERE a.id = e.artwork_id AND e.id > %s AND e.id <= %s
   AND (e.institution, e.classification, e.duplicate) IS DISTINCT FROM (a.institution, upper(a.classification), a.status = 'duplicate')
"""


def copy_columns(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM archive_artworkembedding")
        low, high = cursor.fetchone()
    if low is None:
        return
    start, batches = low - 1, 0
    while start < high:
        with connection.cursor() as cursor:  # autocommit: each batch commits on its own
            cursor.execute(COPY_BATCH, [start, start + BATCH])
        start, batches = start + BATCH, batches + 1
        if batches % 10 == 0 and start < high:  # a large archive takes long: say how far it is
            print(f"  embedding filter columns: ids up to {start:,} of {high:,} copied", file=sys.stderr, flush=True)


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("archive", "0028_embedding_filter_columns")]

    operations = [
        migrations.RunPython(copy_columns, migrations.RunPython.noop),
        migrations.AddIndex("artworkembedding", models.Index(
            fields=["model", "institution"], condition=models.Q(duplicate=False), name="embedding_institution_idx")),
    ]
