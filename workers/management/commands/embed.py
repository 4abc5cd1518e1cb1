from workers.management.commands._stage import StageCommand


class Command(StageCommand):
    help = "Embed artwork images with a CLIP model (default: the active model, else CLIP_MODEL/CLIP_PRETRAINED)."
    kind = "embed"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--model", help="model key: ARCH/PRETRAINED (tag or local weights path) or test-tiny")
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--activate-when-complete", dest="activate", action="store_true", default=None,
                           help="make this model the active one once every artwork is embedded and labelled "
                                "(default when no model is active yet)")
        group.add_argument("--no-activate", dest="activate", action="store_false")

    def params(self, options):
        params = {"model": options.get("model")}
        if options.get("activate") is not None:
            params["activate_when_complete"] = options["activate"]
        return params

    def after(self, job, options):
        from archive.models import EmbeddingModel

        model = EmbeddingModel.objects.get(pk=job.params["model_id"])
        note = " (UNTRAINED random weights: similarities and labels are meaningless)" if model.untrained else ""
        self.stdout.write(f"model {model.key}: {model.state}{note}")
