# Substring search on titles and makers: pg_trgm GIN indexes where the server offers pg_trgm
# (archive/substring.py). Without it the migration does nothing and search keeps to whole words.

from django.db import migrations


def forward(apps, schema_editor):
    from archive import substring

    if not substring.create_indexes(schema_editor):
        print("\n  pg_trgm is not available on this PostgreSQL server: substring search on titles and makers is off "
              "(whole-word search still works; see docs/database.md).")


def backward(apps, schema_editor):
    from archive import substring

    substring.drop_indexes(schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('archive', '0019_artwork_palettes'),
    ]

    operations = [migrations.RunPython(forward, backward)]
