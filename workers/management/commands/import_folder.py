"""``manage.py import_folder SOURCE``: the import command with the folder importer forced (no auto-detection)."""
import importlib

ImportCommand = importlib.import_module("workers.management.commands.import").Command


class Command(ImportCommand):
    help = "Import artworks with the folder importer (see `import --help` for the options)."
    kind = "folder"
