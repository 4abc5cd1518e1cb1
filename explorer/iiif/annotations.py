"""An artwork's labels as a Web Annotation page on its Canvas.

Each label shown on the artwork page is one Annotation with motivation ``tagging`` and a
``TextualBody`` holding the label's name. A machine label says so: its ``creator`` is the
embedding model as an agent of type ``Software`` (its registry key, and ``untrained`` when its
weights are random), and it carries the score (``score``, a term of the project's extension
context ``/iiif/context.json``). A label a curator added or confirmed has no Software creator;
``"curated": true`` says a person decided it. A label with an Iconclass notation (docs/labels.md)
has a second body, ``{"id": "https://iconclass.org/<notation>", "purpose": "classifying", ...}``.
"""
from __future__ import annotations

from archive.models import Artwork


def context(base: str) -> dict:
    """The extension context (served at /iiif/context.json): the terms annotations use beyond
    Presentation 3 and the Web Annotation model."""
    return {"@context": {
        "archive": f"{base}/iiif/terms#",
        "score": {"@id": "archive:score", "@type": "http://www.w3.org/2001/XMLSchema#double"},
        "untrained": {"@id": "archive:untrained", "@type": "http://www.w3.org/2001/XMLSchema#boolean"},
        "curated": {"@id": "archive:curated", "@type": "http://www.w3.org/2001/XMLSchema#boolean"},
        "rank": {"@id": "archive:rank", "@type": "http://www.w3.org/2001/XMLSchema#integer"},
    }}


def software(model, base: str) -> dict:
    name = model.key + (" (untrained: random weights, labels not meaningful)" if model.untrained else "")
    return {"id": f"{base}/iiif/model/{model.pk}", "type": "Software", "label": {"none": [name]}, "untrained": bool(model.untrained)}


def iconclass_body(label) -> dict:
    """The label's Iconclass subject as a second body: the notation's page on iconclass.org
    (``purpose`` classifying), so a reader gets the controlled identifier beside the name."""
    return {"id": label.iconclass_uri, "type": "Text", "format": "text/html", "language": "en",
            "label": {"none": [label.notation]}, "purpose": "classifying"}


def label_page(artwork: Artwork, base: str, canvas_id: str, model) -> dict | None:
    """The AnnotationPage of the artwork's shown labels (None when it has none)."""
    from explorer import browse

    shown = browse.artwork_labels(artwork, model_id=model.pk if model else None)
    if not shown:
        return None
    items = []
    for rank, entry in enumerate(shown, start=1):
        annotation = {
            "id": f"{canvas_id}/annotation/label-{entry.label.slug}", "type": "Annotation", "motivation": "tagging",
            "label": {"en": [entry.label.name]},
            "body": {"type": "TextualBody", "value": entry.label.name, "language": "en", "format": "text/plain",
                     "purpose": "tagging"},
            "target": canvas_id,
        }
        if entry.label.notation:
            annotation["body"] = [annotation["body"], iconclass_body(entry.label)]
        if entry.decision in ("added", "accepted"):
            annotation["curated"] = True
        if entry.score is not None and model is not None and entry.decision != "added":
            annotation["creator"] = software(model, base)
            annotation["score"] = round(float(entry.score), 6)
            annotation["rank"] = rank
        items.append(annotation)
    return {"id": f"{canvas_id}/page/labels", "type": "AnnotationPage", "label": {"en": ["Labels"]}, "items": items}
