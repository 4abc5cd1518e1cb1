"""The text read in an artwork's image (the OCR stage's :class:`~archive.models.ArtworkText`):
which of its words a query names, with their boxes, for the artwork page's highlights and the
IIIF Content Search service (:mod:`explorer.content_search`)."""
from __future__ import annotations

import re
import unicodedata

from archive.models import Artwork, ArtworkText

ENGINE = "tesseract"
_WORD = re.compile(r"\w+")


def fold(text: str) -> str:
    """Lower case (the words as PostgreSQL's ``simple`` configuration indexes them)."""
    return unicodedata.normalize("NFC", text).lower()


def query_terms(q: str) -> set[str]:
    """The words of a query, folded; websearch operators ("or", a leading "-") are not words to
    highlight."""
    terms = set()
    for token in str(q or "").split():
        if token.startswith("-") or token.lower() == "or":
            continue
        terms.update(fold(part) for part in _WORD.findall(token))
    return terms


def text_of(artwork_id: int) -> ArtworkText | None:
    return ArtworkText.objects.filter(artwork_id=artwork_id, engine=ENGINE).first()


def matching_words(row: ArtworkText | None, q: str) -> list[dict]:
    """The words of ``row`` one of whose parts ("north-east": "north", "east") is a word of ``q``,
    in reading order, each ``{text, conf, x, y, w, h}`` in the full image's pixels."""
    terms = query_terms(q)
    if row is None or not terms:
        return []
    return [w for w in row.words if terms & {fold(part) for part in _WORD.findall(w["text"])}]


def image_size(artwork: Artwork) -> tuple[int, int] | None:
    """The full image's size, the space the boxes are in."""
    return (artwork.width, artwork.height) if artwork.width and artwork.height else None


def highlights(artwork: Artwork, q: str) -> dict | None:
    """What the artwork page draws for a query: the matching boxes as fractions of the image
    (``left``, ``top``, ``width``, ``height`` in percent, for the still image) and in the full
    image's pixels (for the deep-zoom viewer). None when nothing matches."""
    size = image_size(artwork)
    words = matching_words(text_of(artwork.pk), q) if size else []
    if not words:
        return None
    width, height = size
    boxes = [{
        "text": w["text"], "x": w["x"], "y": w["y"], "w": w["w"], "h": w["h"],
        "left": round(100 * w["x"] / width, 3), "top": round(100 * w["y"] / height, 3),
        "width": round(100 * w["w"] / width, 3), "height": round(100 * w["h"] / height, 3),
    } for w in words]
    return {"width": width, "height": height, "boxes": boxes}
