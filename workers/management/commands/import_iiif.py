"""``manage.py import_iiif SOURCE``: the import command with the iiif importer forced (no auto-detection)."""
import importlib

ImportCommand = importlib.import_module("workers.management.commands.import").Command


class Command(ImportCommand):
    help = "Import artworks with the iiif importer (see `import --help` for the options)."
    kind = "iiif"
