"""A checker of IIIF Presentation 3.0 documents against the specification's MUST rules for the
resources the archive writes: Collection, Manifest, Canvas, AnnotationPage, Annotation and their
properties (language maps, metadata, rights, requiredStatement, thumbnail, homepage, seeAlso,
partOf, navDate, services). ``problems(document)`` lists what breaks a rule, each with where (a
JSON path); an empty list is a valid document. (https://iiif.io/api/presentation/3.0/)

No maintained Python validator installs beside the project's packages (iiif-prezi3 pins an older
Pillow), so the rules are written out here, each one of the specification's MUSTs.
"""
from __future__ import annotations

import re
from typing import Any

CONTEXT = "http://iiif.io/api/presentation/3/context.json"
# Creative Commons and RightsStatements.org define their URIs with http (the IIIF validator checks it too).
RIGHTS = re.compile(r"^http://(creativecommons\.org/(licenses|publicdomain)/|rightsstatements\.org/vocab/)\S+/$")
NAV_DATE = re.compile(r"^-?\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
LANGUAGE = re.compile(r"^(none|[a-zA-Z]{2,8}(-[a-zA-Z0-9]{1,8})*)$")
MOTIVATIONS = {"painting", "supplementing", "tagging", "classifying", "commenting", "describing", "identifying",
               "linking", "highlighting", "bookmarking", "editing", "moderating", "questioning", "replying", "assessing"}


class Checker:
    def __init__(self):
        self.found: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.found.append(f"{where}: {message}")

    # --- values ---------------------------------------------------------------------------------
    def uri(self, where: str, value: Any, *, http: bool = True) -> None:
        if not isinstance(value, str) or not value:
            self.fail(where, "must be a string URI")
        elif http and not value.startswith(("http://", "https://")):
            self.fail(where, f"must be an HTTP(S) URI, not {value[:80]!r}")

    def language_map(self, where: str, value: Any) -> None:
        if not isinstance(value, dict) or not value:
            self.fail(where, "must be a language map (a JSON object of language: [strings])")
            return
        for key, strings in value.items():
            if not isinstance(key, str) or not LANGUAGE.match(key):
                self.fail(where, f"language {key!r} must be a BCP 47 code or 'none'")
            if not isinstance(strings, list) or not all(isinstance(s, str) for s in strings):
                self.fail(f"{where}.{key}", "must be a list of strings")

    def resource_refs(self, where: str, value: Any, *, need_label: bool = False) -> None:
        if not isinstance(value, list):
            self.fail(where, "must be a list")
            return
        for i, item in enumerate(value):
            path = f"{where}[{i}]"
            if not isinstance(item, dict):
                self.fail(path, "must be a JSON object")
                continue
            self.uri(f"{path}.id", item.get("id"))
            if not isinstance(item.get("type"), str):
                self.fail(f"{path}.type", "is required")
            if need_label or "label" in item:
                if "label" not in item:
                    self.fail(f"{path}.label", "is required")
                else:
                    self.language_map(f"{path}.label", item["label"])
            self.dimensions(path, item)
            if "service" in item:
                self.services(f"{path}.service", item["service"])

    def services(self, where: str, value: Any) -> None:
        if not isinstance(value, list):
            self.fail(where, "must be a list")
            return
        for i, svc in enumerate(value):
            if not isinstance(svc, dict) or not (svc.get("id") or svc.get("@id")) or not (svc.get("type") or svc.get("@type")):
                self.fail(f"{where}[{i}]", "a service must have id and type (or @id and @type for older services)")

    def dimensions(self, where: str, item: dict) -> None:
        for key in ("width", "height"):
            if key in item and (not isinstance(item[key], int) or isinstance(item[key], bool) or item[key] <= 0):
                self.fail(f"{where}.{key}", "must be a positive integer")

    def descriptive(self, where: str, doc: dict, *, label_required: bool) -> None:
        if "label" in doc:
            self.language_map(f"{where}.label", doc["label"])
        elif label_required:
            self.fail(f"{where}.label", "is required")
        if "summary" in doc:
            self.language_map(f"{where}.summary", doc["summary"])
        if "metadata" in doc:
            metadata = doc["metadata"]
            if not isinstance(metadata, list):
                self.fail(f"{where}.metadata", "must be a list")
            else:
                for i, pair in enumerate(metadata):
                    if not isinstance(pair, dict) or "label" not in pair or "value" not in pair:
                        self.fail(f"{where}.metadata[{i}]", "must have label and value")
                        continue
                    self.language_map(f"{where}.metadata[{i}].label", pair["label"])
                    self.language_map(f"{where}.metadata[{i}].value", pair["value"])
        if "requiredStatement" in doc:
            statement = doc["requiredStatement"]
            if not isinstance(statement, dict) or "label" not in statement or "value" not in statement:
                self.fail(f"{where}.requiredStatement", "must have label and value")
            else:
                self.language_map(f"{where}.requiredStatement.label", statement["label"])
                self.language_map(f"{where}.requiredStatement.value", statement["value"])
        if "rights" in doc:
            rights = doc["rights"]
            if not isinstance(rights, str) or not RIGHTS.match(rights):
                self.fail(f"{where}.rights", f"must be a Creative Commons or RightsStatements.org URI, not {rights!r}")
        if "navDate" in doc and (not isinstance(doc["navDate"], str) or not NAV_DATE.match(doc["navDate"])):
            self.fail(f"{where}.navDate", "must be an xsd:dateTime with a time zone")
        for key in ("thumbnail", "seeAlso", "partOf", "rendering", "service", "provider", "logo"):
            if key in doc:
                if key == "service":
                    self.services(f"{where}.service", doc[key])
                else:
                    self.resource_refs(f"{where}.{key}", doc[key])
        if "homepage" in doc:
            self.resource_refs(f"{where}.homepage", doc["homepage"], need_label=True)

    def base(self, where: str, doc: Any, kind: str, *, label_required: bool) -> bool:
        if not isinstance(doc, dict):
            self.fail(where, f"a {kind} must be a JSON object")
            return False
        self.uri(f"{where}.id", doc.get("id"))
        if doc.get("type") != kind:
            self.fail(f"{where}.type", f"must be {kind!r}, not {doc.get('type')!r}")
        self.descriptive(where, doc, label_required=label_required)
        return True

    # --- resources ------------------------------------------------------------------------------
    def top(self, doc: Any) -> None:
        if not isinstance(doc, dict):
            self.fail("$", "must be a JSON object")
            return
        context = doc.get("@context")
        contexts = context if isinstance(context, list) else [context]
        if CONTEXT not in contexts:
            self.fail("$.@context", f"must include {CONTEXT}")
        elif contexts[-1] != CONTEXT:
            self.fail("$.@context", "the Presentation 3 context must come last (extension contexts before it)")
        kind = doc.get("type")
        if kind == "Manifest":
            self.manifest("$", doc)
        elif kind == "Collection":
            self.collection("$", doc)
        else:
            self.fail("$.type", f"must be Manifest or Collection, not {kind!r}")

    def collection(self, where: str, doc: dict) -> None:
        if not self.base(where, doc, "Collection", label_required=True):
            return
        items = doc.get("items")
        if not isinstance(items, list):
            self.fail(f"{where}.items", "is required, a list of Collections and Manifests")
            return
        for i, item in enumerate(items):
            path = f"{where}.items[{i}]"
            if not isinstance(item, dict) or item.get("type") not in ("Collection", "Manifest"):
                self.fail(path, "must be a Collection or a Manifest")
                continue
            if "items" in item:
                (self.collection if item["type"] == "Collection" else self.manifest)(path, item)
            else:  # a reference: id, type and label
                self.base(path, item, item["type"], label_required=True)

    def manifest(self, where: str, doc: dict) -> None:
        if not self.base(where, doc, "Manifest", label_required=True):
            return
        items = doc.get("items")
        if not isinstance(items, list) or not items:
            self.fail(f"{where}.items", "is required, a list of at least one Canvas")
            return
        for i, canvas in enumerate(items):
            self.canvas(f"{where}.items[{i}]", canvas)

    def canvas(self, where: str, doc: Any) -> None:
        if not self.base(where, doc, "Canvas", label_required=False):
            return
        if "#" in str(doc.get("id", "")):
            self.fail(f"{where}.id", "a Canvas id must not contain a fragment")
        has_size = "width" in doc or "height" in doc
        if has_size and not ("width" in doc and "height" in doc):
            self.fail(where, "width and height must be given together")
        if not has_size and "duration" not in doc:
            self.fail(where, "must have width and height (or a duration)")
        self.dimensions(where, doc)
        for key in ("items", "annotations"):
            if key in doc:
                pages = doc[key]
                if not isinstance(pages, list):
                    self.fail(f"{where}.{key}", "must be a list of AnnotationPages")
                    continue
                for i, page in enumerate(pages):
                    self.annotation_page(f"{where}.{key}[{i}]", page, painting=key == "items", canvas=doc.get("id"))

    def annotation_page(self, where: str, doc: Any, *, painting: bool, canvas: Any) -> None:
        if not self.base(where, doc, "AnnotationPage", label_required=False):
            return
        items = doc.get("items", [])
        if not isinstance(items, list):
            self.fail(f"{where}.items", "must be a list of Annotations")
            return
        for i, annotation in enumerate(items):
            self.annotation(f"{where}.items[{i}]", annotation, painting=painting, canvas=canvas)

    def annotation(self, where: str, doc: Any, *, painting: bool, canvas: Any) -> None:
        if not self.base(where, doc, "Annotation", label_required=False):
            return
        motivation = doc.get("motivation")
        motivations = motivation if isinstance(motivation, list) else [motivation]
        if not motivations or not all(m in MOTIVATIONS for m in motivations):
            self.fail(f"{where}.motivation", f"must be a Presentation 3 or Web Annotation motivation, not {motivation!r}")
        if painting and motivations != ["painting"] and "painting" not in motivations:
            self.fail(f"{where}.motivation", "an annotation in a Canvas's items must be painting")
        target = doc.get("target")
        target_id = target.get("id") if isinstance(target, dict) else target
        if not isinstance(target_id, str) or not target_id:
            self.fail(f"{where}.target", "is required")
        elif isinstance(canvas, str) and not target_id.split("#")[0] == canvas:
            self.fail(f"{where}.target", "must be its Canvas (or a part of it)")
        body = doc.get("body")
        if painting and body is None:
            self.fail(f"{where}.body", "a painting annotation must have a body")
        for i, item in enumerate(body if isinstance(body, list) else [] if body is None else [body]):
            path = f"{where}.body" + (f"[{i}]" if isinstance(body, list) else "")
            if not isinstance(item, dict) or not isinstance(item.get("type"), str):
                self.fail(path, "must be an object with a type")
            elif item["type"] == "TextualBody":
                if not isinstance(item.get("value"), str):
                    self.fail(f"{path}.value", "a TextualBody must have a string value")
            else:
                self.uri(f"{path}.id", item.get("id"))
                self.dimensions(path, item)
                if "service" in item:
                    self.services(f"{path}.service", item["service"])
        if "creator" in doc:
            creators = doc["creator"] if isinstance(doc["creator"], list) else [doc["creator"]]
            for i, agent in enumerate(creators):
                if not isinstance(agent, (dict, str)) or (isinstance(agent, dict) and not agent.get("type")):
                    self.fail(f"{where}.creator[{i}]", "an agent must be a URI or an object with a type")


def problems(document: Any) -> list[str]:
    checker = Checker()
    checker.top(document)
    return checker.found
