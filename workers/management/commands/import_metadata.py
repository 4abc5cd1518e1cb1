"""``manage.py import_metadata SOURCE``: the import command with the metadata importer forced (no auto-detection)."""
import importlib

ImportCommand = importlib.import_module("workers.management.commands.import").Command


class Command(ImportCommand):
    help = "Import artworks with the metadata importer (see `import --help` for the options)."
    kind = "metadata"
