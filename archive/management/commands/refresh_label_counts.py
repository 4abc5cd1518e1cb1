"""Recount the stored per-label artwork counts (archive.label_counts)."""
from django.core.management.base import BaseCommand, CommandError

from archive import iconclass_rows, label_counts
from archive.models import EmbeddingModel


class Command(BaseCommand):
    help = (
        "Recount how many artworks each label is shown on, under every model (or --model KEY). The label stage "
        "keeps the counts current; run this after writing label rows by other means or changing LABEL_THRESHOLD."
    )

    def add_arguments(self, parser):
        parser.add_argument("--model", help="embedding model key (default: every model with label rows)")
        parser.add_argument("--stale", action="store_true", help="only labels whose count is missing or was made with another threshold")

    def handle(self, *args, **options):
        # The Iconclass rows follow the current thresholds and decisions of the labels mapped to them.
        if not options["stale"]:
            wanted = None
            if options["model"]:
                wanted = EmbeddingModel.objects.filter(key=options["model"]).values_list("pk", flat=True).first()
            for model_id in iconclass_rows.labelled_models():
                if wanted is None or model_id == wanted:
                    iconclass_rows.derive(model_id)
        if options["model"]:
            model = EmbeddingModel.objects.filter(key=options["model"]).first()
            if model is None:
                raise CommandError(f"no embedding model {options['model']!r}")
            n = label_counts.refresh_stale(model.pk) if options["stale"] else label_counts.refresh(model.pk)
        elif options["stale"]:
            n = sum(label_counts.refresh_stale(m) for m in EmbeddingModel.objects.values_list("pk", flat=True))
        else:
            n = label_counts.refresh_all()
        self.stdout.write(f"recounted {n} label counts")
