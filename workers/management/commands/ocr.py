from workers.management.commands._stage import StageCommand


class Command(StageCommand):
    help = "Read the text in artwork images with Tesseract (words, boxes, confidence; docs/ocr.md)."
    kind = "ocr"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--languages", help='Tesseract languages, e.g. "eng+deu" (default OCR_LANGUAGES)')
        parser.add_argument("--min-confidence", type=float, help="keep words at least this confident, 0-100 (default OCR_MIN_CONFIDENCE)")

    def params(self, options) -> dict:
        params = {}
        if options.get("languages"):
            params["languages"] = options["languages"]
        if options.get("min_confidence") is not None:
            params["min_confidence"] = options["min_confidence"]
        return params
