from workers.management.commands._stage import StageCommand


class Command(StageCommand):
    help = "Score the label vocabulary against artwork embeddings (top-k labels per artwork)."
    kind = "label"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--model", help="embedding model key (default: the active model)")

    def params(self, options):
        return {"model": options.get("model")}
