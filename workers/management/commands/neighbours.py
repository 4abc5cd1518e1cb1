from workers.management.commands._stage import StageCommand


class Command(StageCommand):
    help = "Write each embedded artwork's nearest neighbours (the stored kNN graph of the path; docs/discovery.md)."
    kind = "neighbours"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--model", help="embedding model key (default: the active model)")

    def params(self, options) -> dict:
        return {"model": options["model"]} if options.get("model") else {}
