"""Upsert the label vocabulary (workers/vocabulary) into Label rows.

    manage.py load_vocabulary            # create new labels, refresh names/groups/descriptions
    manage.py load_vocabulary --force    # also reset curator-owned prompt/threshold/published
"""
from django.core.management.base import BaseCommand

from workers.labeling.vocabulary import load_vocabulary


class Command(BaseCommand):
    help = "Create or update Label rows from the vocabulary, keeping curators' prompt/threshold/published edits."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="Also overwrite prompt, threshold and published of existing labels"
        )

    def handle(self, *args, force=False, **options):
        counts = load_vocabulary(force=force, progress=options.get("verbosity", 1) > 0)
        self.stdout.write(
            self.style.SUCCESS(
                "labels: {created} created, {updated} updated, {unchanged} unchanged, "
                "{skipped} curator-created left alone".format(**counts)
            )
        )
