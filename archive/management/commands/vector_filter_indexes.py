"""Build the partial HNSW index of every common institution (archive.filter_indexes) and those of
the palette signatures per period and classification (archive.palette_indexes)."""
from django.core.management.base import BaseCommand, CommandError

from archive import colour, filter_indexes, palette_indexes
from archive.models import EmbeddingModel


class Command(BaseCommand):
    help = (
        "Build (CONCURRENTLY) a partial HNSW index for every institution holding VECTOR_FILTER_INDEX_MIN to "
        "VECTOR_FILTER_INDEX_MAX_SHARE of a model's artwork embeddings, and drop those of institutions outside that "
        "range. Idempotent; embed jobs run it when they end. Without --model, then the palette signatures' indexes per "
        "period of years and classification (PALETTE_FILTER_INDEXES; palette jobs run that part when they end)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--model", help="embedding model key (default: every model with an HNSW index)")

    def handle(self, *args, **options):
        models = EmbeddingModel.objects.order_by("pk")
        if options["model"]:
            models = models.filter(key=options["model"])
            if not models.exists():
                raise CommandError(f"no embedding model {options['model']!r}")
        for model in models:
            self.stdout.write(f"model {model.key} (id {model.pk}, {model.dim}-d)")
            outcome = filter_indexes.ensure(model.pk, model.dim, progress=lambda line: self.stdout.write("  " + line))
            self.stdout.write(
                f"  {len(outcome.built)} built, {len(outcome.kept)} kept, {len(outcome.dropped)} dropped"
            )
        if options["model"]:
            return
        self.stdout.write(f"palettes {colour.METHOD}")
        outcome = palette_indexes.ensure(colour.METHOD, progress=lambda line: self.stdout.write("  " + line))
        self.stdout.write(f"  {len(outcome.built)} built, {len(outcome.kept)} kept, {len(outcome.dropped)} dropped")
