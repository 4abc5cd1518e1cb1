"""IIIF Content Search 2.0 over the text read in the images (OCR) and the labels.

Two scopes: one artwork (the service of its manifest, ``/iiif/artwork/<id>/search?q=``) and the whole
archive (the service of the top collection, ``/iiif/search?q=``). The answer is an
AnnotationPage (``@context`` http://iiif.io/api/search/2/context.json) whose ``items`` are
Annotations on the artworks' canvases:

- each word of the image that matches a query word: motivation ``highlighting``, a TextualBody
  with the word, target ``<canvas>#xywh=x,y,w,h`` in the canvas's (the full image's) pixels;
- each label shown on the artwork whose name holds a query word: motivation ``tagging``, a
  TextualBody with the label's name, target the whole canvas (``#xywh=0,0,width,height``).

The ``annotations`` list adds, per word, a ``contextualizing`` annotation with a
TextQuoteSelector (the words before and after it on its line), for result snippets. Parameters
other than ``q``, ``motivation`` and ``page`` are listed in ``ignored``. The archive-wide answer
is paged (ARTWORKS_PER_PAGE artworks per page, ``next``/``prev``, ``partOf`` the collection of
pages); the artwork's fits one page.
"""
from __future__ import annotations

from urllib.parse import urlencode

from archive.models import Artwork, ArtworkText, Label

from . import image_text
from .iiif import ids
from .browse import artwork_labels
from .models_state import active_model
from .search import FTS_MATCH_CAP, Filters, base_queryset, text_query

CONTEXT = "http://iiif.io/api/search/2/context.json"
PROFILE_TYPE = "SearchService2"
SUPPORTED = ("q", "motivation", "page")
MOTIVATIONS = ("highlighting", "tagging")
ARTWORKS_PER_PAGE = 50
MAX_WORDS_PER_ARTWORK = 1000


class Urls:
    """How the answer names things: the ids of the IIIF Presentation resources
    (:mod:`explorer.iiif.ids`) under ``base``, the archive's public address."""

    def __init__(self, base: str):
        self.base = base

    def canvas(self, artwork_id: int) -> str:
        # The canvas of the artwork's IIIF Presentation 3 manifest.
        return ids.canvas(self.base, artwork_id)

    def manifest(self, artwork_id: int) -> str:
        return ids.manifest(self.base, artwork_id)

    def artwork_search(self, artwork_id: int) -> str:
        return ids.search(self.base, artwork_id)

    def archive_search(self) -> str:
        return ids.search(self.base)


def service(base: str, artwork_id: int | None = None) -> dict:
    """The service block a manifest (``artwork_id``) or the top collection lists in ``service``."""
    return {"id": ids.search(base, artwork_id), "type": PROFILE_TYPE}


def _motivations(params) -> set[str]:
    asked = set(str(params.get("motivation") or "").split())
    return (asked & set(MOTIVATIONS)) if asked else set(MOTIVATIONS)


def ignored_params(params) -> list[str]:
    return sorted(k for k in params.keys() if k not in SUPPORTED)


def _word_hits(urls: Urls, artwork: Artwork, row: ArtworkText | None, q: str) -> tuple[list, list]:
    items, context = [], []
    if row is None or image_text.image_size(artwork) is None:
        return items, context
    canvas = urls.canvas(artwork.pk)
    for index, word in enumerate(image_text.matching_words(row, q)[:MAX_WORDS_PER_ARTWORK]):
        anno_id = f"{canvas}/ocr/{word['x']},{word['y']},{word['w']},{word['h']}"
        items.append({
            "id": anno_id,
            "type": "Annotation",
            "motivation": "highlighting",
            "body": {"type": "TextualBody", "value": word["text"], "format": "text/plain"},
            "target": f"{canvas}#xywh={word['x']},{word['y']},{word['w']},{word['h']}",
        })
        prefix, suffix = _around(row.text, word["text"], index)
        context.append({
            "id": f"{anno_id}/context",
            "type": "Annotation",
            "motivation": "contextualizing",
            "target": {"type": "SpecificResource", "source": anno_id, "selector": [
                {"type": "TextQuoteSelector", "prefix": prefix, "exact": word["text"], "suffix": suffix},
            ]},
        })
    return items, context


def _around(text: str, word: str, occurrence: int, chars: int = 40) -> tuple[str, str]:
    """The text before and after a word's occurrence (counted among the matches, approximately
    the same one), on its line."""
    start = -1
    for _ in range(occurrence + 1):
        found = text.find(word, start + 1)
        if found < 0:
            break
        start = found
    if start < 0:
        return "", ""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    line_end = len(text) if line_end < 0 else line_end
    return text[max(line_start, start - chars):start], text[start + len(word):min(line_end, start + len(word) + chars)]


def _label_hit(urls: Urls, artwork: Artwork, label: Label) -> dict:
    canvas = urls.canvas(artwork.pk)
    return {
        "id": f"{canvas}/label/{label.slug}",
        "type": "Annotation",
        "motivation": "tagging",
        "body": {"type": "TextualBody", "value": label.name, "format": "text/plain", "language": "en"},
        "target": f"{canvas}#xywh=0,0,{artwork.width or 0},{artwork.height or 0}",
    }


def _label_matches(label: Label, terms: set[str]) -> bool:
    return bool(terms & image_text.query_terms(label.name))


def _page(self_id: str, items: list, context: list, ignored: list[str]) -> dict:
    page = {"@context": CONTEXT, "id": self_id, "type": "AnnotationPage", "items": items}
    if context:
        page["annotations"] = [{"type": "AnnotationPage", "items": context}]
    if ignored:
        page["ignored"] = ignored
    return page


def artwork_answer(urls: Urls, artwork: Artwork, params, self_id: str) -> dict:
    """The hits within one artwork (one page)."""
    q = str(params.get("q") or "")
    motivations = _motivations(params)
    items, context = [], []
    if q and "highlighting" in motivations:
        items, context = _word_hits(urls, artwork, image_text.text_of(artwork.pk), q)
    if q and "tagging" in motivations and image_text.image_size(artwork):
        model = active_model()
        terms = image_text.query_terms(q)
        for shown in artwork_labels(artwork, model_id=model.pk if model else None):
            if _label_matches(shown.label, terms):
                items.append(_label_hit(urls, artwork, shown.label))
    return _page(self_id, items, context, ignored_params(params))


def archive_answer(urls: Urls, params, page: int) -> dict:
    """The hits across the archive: per page, up to ARTWORKS_PER_PAGE artworks whose image text
    matches and up to ARTWORKS_PER_PAGE showing a matching label, in artwork order."""
    q = str(params.get("q") or "")
    motivations = _motivations(params)
    start, stop = (page - 1) * ARTWORKS_PER_PAGE, page * ARTWORKS_PER_PAGE
    items, context, more = [], [], False
    base = {k: params.get(k) for k in SUPPORTED if params.get(k) and k != "page"}
    if q and "highlighting" in motivations:
        rows = list(
            ArtworkText.objects.filter(document=text_query(q), artwork__in=base_queryset().order_by().values("id"))
            .select_related("artwork").order_by("artwork_id")[start:stop + 1]
        )
        more |= len(rows) > ARTWORKS_PER_PAGE
        for row in rows[:ARTWORKS_PER_PAGE]:
            hits, ctx = _word_hits(urls, row.artwork, row, q)
            items += hits
            context += ctx
    if q and "tagging" in motivations:
        terms = image_text.query_terms(q)
        # Word matches on the names (PostgreSQL's \m \M word boundaries; terms are letters and digits).
        labels = list(Label.objects.filter(published=True, name__iregex=r"\m(" + "|".join(sorted(terms)) + r")\M").order_by("name")[:20]) if terms else []
        model = active_model()
        for label in labels:
            shown = Filters(label=label.slug).apply(base_queryset(), model).order_by("id")[start:stop + 1]
            artworks = list(shown[:FTS_MATCH_CAP])
            more |= len(artworks) > ARTWORKS_PER_PAGE
            items += [_label_hit(urls, a, label) for a in artworks[:ARTWORKS_PER_PAGE] if a.width and a.height]
    answer = _page(urls.archive_search() + "?" + urlencode({**base, "page": page}), items, context, ignored_params(params))
    answer["partOf"] = {"id": urls.archive_search() + "?" + urlencode(base), "type": "AnnotationCollection"}
    if more:
        answer["next"] = {"id": urls.archive_search() + "?" + urlencode({**base, "page": page + 1}), "type": "AnnotationPage"}
    if page > 1:
        answer["prev"] = {"id": urls.archive_search() + "?" + urlencode({**base, "page": page - 1}), "type": "AnnotationPage"}
    return answer
