"""pgvector >= 0.8: bring the extension up to the server's version, or stop with the version needed.

A database made by the previous embedded server (pgvector 0.6.2) and restored into the new one gets
the server's version at restore; a database on an external server whose pgvector binaries were
upgraded gets ``ALTER EXTENSION vector UPDATE`` here."""
from django.db import migrations


def update_pgvector(apps, schema_editor):
    from archive import pgvector_version

    connection = schema_editor.connection
    installed, available = pgvector_version.versions(connection)
    if installed and available and pgvector_version.parse(installed) < pgvector_version.parse(available):
        with connection.cursor() as cursor:
            cursor.execute("ALTER EXTENSION vector UPDATE")
        installed, available = pgvector_version.versions(connection)
    reason = pgvector_version.problem(installed, available)
    if reason:
        raise RuntimeError(reason)


class Migration(migrations.Migration):

    dependencies = [
        ("archive", "0014_face_crop_help_text"),
    ]

    operations = [migrations.RunPython(update_pgvector, migrations.RunPython.noop)]
