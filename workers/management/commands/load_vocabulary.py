"""Upsert the label vocabulary (workers/vocabulary) into Label rows.

    manage.py load_vocabulary            # create new labels, refresh names/groups/descriptions/notations;
                                         # also the Iconclass subjects (group iconclass) and their parents
    manage.py load_vocabulary --force    # also reset curator-owned prompt/threshold/published
    manage.py load_vocabulary --embed [--model KEY]
        # also embed the published labels' prompt ensembles now (cached per model; committed in
        # batches, so an interrupted run keeps its work), instead of in the first label job
"""
from django.core.management.base import BaseCommand

from archive import iconclass_rows
from workers.labeling.vocabulary import load_iconclass, load_vocabulary


class Command(BaseCommand):
    help = "Create or update Label rows from the vocabulary, keeping curators' prompt/threshold/published edits."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="Also overwrite prompt, threshold and published of existing labels"
        )
        parser.add_argument("--embed", action="store_true", help="Also compute the label text embeddings for the model")
        parser.add_argument("--model", help="model key for --embed (default: the active model, else the configured one)")

    def handle(self, *args, force=False, embed=False, model=None, **options):
        progress = options.get("verbosity", 1) > 0
        counts = load_vocabulary(force=force, progress=progress)
        self.stdout.write(
            self.style.SUCCESS(
                "labels: {created} created, {updated} updated, {unchanged} unchanged, "
                "{skipped} curator-created left alone".format(**counts)
            )
        )
        subjects = load_iconclass(progress=progress)
        self.stdout.write(self.style.SUCCESS(
            "Iconclass subjects: {created} created, {updated} updated, {unchanged} unchanged, {parents} parent links set".format(**subjects)
        ))
        models = iconclass_rows.labelled_models()
        if models:  # artworks labelled before: their Iconclass subjects follow the mapping now
            rows = sum(iconclass_rows.derive(m) or 0 for m in models)
            self.stdout.write(self.style.SUCCESS(f"Iconclass rows derived: {rows} under {len(models)} model(s)"))
        if embed:
            from workers.labeling.models import model_for_work
            from workers.labeling.text import ensure_label_embeddings

            row = model_for_work(model)
            n = ensure_label_embeddings(row, progress=progress)
            note = " (untrained model: labels are not meaningful)" if row.untrained else ""
            self.stdout.write(self.style.SUCCESS(f"label text embeddings for {row.key}: {n} computed{note}"))
