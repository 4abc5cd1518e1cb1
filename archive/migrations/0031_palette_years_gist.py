# The palette rows' classification and institution each with the years as a range, in one GiST
# index (btree_gist, where the server offers it): a colour search within a classification or an
# institution and a window of years reads just the rows passing both (print 1700-1710 at 1M:
# 3,226 rows, exact ranking 8 ms) instead of a bitmap AND of the years' index with every row of
# the classification (200,000 entries, 39-66 ms). Built CONCURRENTLY: writes go on meanwhile.
# Without btree_gist the migration says so and the search reads through the years' index alone.

from django.db import migrations

YEARS = "int4range(LEAST(year_start, COALESCE(year_end, year_start)), GREATEST(year_start, COALESCE(year_end, year_start)), '[]')"
INDEXES = {"palette_class_years_range": "classification", "palette_inst_years_range": "institution"}


def forward(apps, schema_editor):
    from archive import extensions

    if not extensions.ensure(schema_editor.connection, "btree_gist"):
        print("\n  btree_gist is not available on this PostgreSQL server: colour search within a classification or "
              "an institution and years reads through the years' index alone (see docs/database.md).")
        return
    with schema_editor.connection.cursor() as cursor:
        for name, column in INDEXES.items():
            cursor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON archive_artworkpalette USING gist ({column}, {YEARS})")


def backward(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for name in INDEXES:
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("archive", "0030_neighbour_landmarks")]

    operations = [migrations.RunPython(forward, backward)]
