"""Move the files an older version kept in the public media folder to the stores they belong in
(see archive/storage_upgrade.py and docs/architecture.md "Upgrading"). Safe to run again."""
from django.core.management.base import BaseCommand

from archive.storage_upgrade import upgrade


class Command(BaseCommand):
    help = "Move fetched metadata files and fitted map models out of the public media store (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Say what would move, move nothing")

    def handle(self, *args, dry_run=False, **options):
        report = upgrade(dry_run=dry_run)
        for line in report.lines():
            self.stdout.write(("(dry run, nothing moved) " if dry_run else "") + line)
