"""Declarative column mappings: how a museum's metadata record becomes an :class:`Record`.

A mapping is a JSON file in ``archive/importers/mappings/`` (or any path given with ``--mapping``)::

    {
      "name": "tate",
      "title": "Tate collection artworks.jsonl(.gz)",
      "source": "tate",                       # Artwork.source for every record
      "records": ["artworks", "data"],        # JSON documents: key(s) holding the list of records
      "detect": {"fields": ["acno", "dateText"], "files": ["artworks.jsonl.gz"]},
      "id": "acno",                           # value spec of the record's id in its source
      "fields": {"title": "title", "creator": {"path": "contributors[].fc", "join": "; "}, ...},
      "metadata": {"subjects": {"path": "subjects", "transform": "tree_leaves"}, ...},
      "image": {"paths": ["images/{id}.jpg"], "urls": ["image_url"], "only_when_asked": false}
    }

A *value spec* is one of:
- ``"a.b[0].c"`` / ``"list[].name"``: a path into the record (``[]`` maps over a list; a key
  with spaces is fine: ``"alt text"``); ``"$doc.key"`` reads the enclosing JSON document;
- ``{"path": ..., "join": "; ", "map": {...}, "default": ..., "transform": "tree_leaves"}``;
- ``{"first": [spec, spec, ...]}``: the first non-empty value;
- ``{"value": constant}``; ``{"template": "https://example.org/{id}"}`` (empty if a part is missing).

``image.paths`` are templates relative to the metadata file's folder (tried first), ``image.urls``
value specs giving URLs; with ``only_when_asked`` the URLs are used only with ``--with-images``.

A text field whose value is an object or a list of objects (``[{"name": "Monet", "role":
"artist"}]``) is stored as their names joined with their roles ("Monet (artist)"), and the
structured value is kept in metadata under the field's name. Every field of the record that the
mapping does not use is kept in the artwork's metadata as it was read, unless the mapping says
``"unmapped": "drop"``. docs/ingest.md explains how to write a mapping, with examples.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"

_TEMPLATE_FIELD = re.compile(r"\{([^{}]+)\}")
_TOKEN = re.compile(r"\[(\d*)\]|\.?([^.\[\]]+)")


class MappingError(Exception):
    """The mapping file itself is wrong (a configuration error, not a bad record)."""


class RecordProblem(Exception):
    """This record cannot be imported with this mapping; ``str()`` is the reason."""


@dataclass
class Mapping:
    name: str
    source: str
    id: Any
    fields: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    image: dict[str, Any] = field(default_factory=dict)
    records: list[str] = field(default_factory=list)
    detect: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    path: str = ""
    source_per_file: bool = False  # each file is its own source: "<source>:<file name>"
    unmapped: str = "keep"  # "keep": the record's unused fields go to metadata; "drop": they do not
    _used: set | None = field(default=None, repr=False, compare=False)

    @property
    def has_images(self) -> bool:
        return bool(self.image.get("paths") or self.image.get("urls"))

    def used_keys(self) -> set[str]:
        """The record's top-level fields this mapping reads (the rest are "unmapped")."""
        if self._used is None:
            used: set[str] = set()
            for spec in [self.id, *self.fields.values(), *self.metadata.values(), *self.image.get("urls", [])]:
                used |= spec_keys(spec)
            for template in self.image.get("paths", []):
                used |= spec_keys(template if isinstance(template, dict) else {"template": template})
            self._used = used
        return self._used


def available() -> list[str]:
    return sorted(p.stem for p in MAPPINGS_DIR.glob("*.json"))


def load(name_or_path: str) -> Mapping:
    path = Path(name_or_path)
    if not (path.suffix == ".json" and path.exists()):
        path = MAPPINGS_DIR / f"{name_or_path}.json"
    if not path.exists():
        raise MappingError(f"unknown mapping {name_or_path!r}; available: {', '.join(available())} (or a path to a .json mapping)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise MappingError(f"mapping {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or "id" not in data or "source" not in data:
        raise MappingError(f"mapping {path} needs at least 'source' and 'id'")
    unmapped = data.get("unmapped", "keep")
    if unmapped not in ("keep", "drop"):
        raise MappingError(f"mapping {path}: 'unmapped' must be \"keep\" or \"drop\", not {unmapped!r}")
    records = data.get("records") or []
    return Mapping(
        name=data.get("name", path.stem),
        source=str(data["source"]),
        id=data["id"],
        fields=data.get("fields", {}),
        metadata=data.get("metadata", {}),
        image=data.get("image", {}),
        records=[records] if isinstance(records, str) else list(records),
        detect=data.get("detect", {}),
        title=data.get("title", ""),
        path=str(path),
        unmapped=unmapped,
        source_per_file=bool(data.get("source_per_file", False)),
    )


def all_mappings() -> list[Mapping]:
    return [load(name) for name in available()]


# --- detection ------------------------------------------------------------------------------------

def detect_for_record(sample: dict, exclude_generic: bool = False) -> Mapping | None:
    """The mapping whose ``detect.fields`` are all present in ``sample`` (most specific first)."""
    best, best_score = None, 0
    for mapping in all_mappings():
        if exclude_generic and mapping.name == "generic":
            continue
        for names in _field_sets(mapping.detect.get("fields")):
            if names and all(n in sample for n in names) and len(names) > best_score:
                best, best_score = mapping, len(names)
    return best


def detect_for_document(document: Any) -> Mapping | None:
    """For a JSON document: a mapping whose ``records`` key holds a list whose first record matches."""
    if isinstance(document, list):
        return detect_for_record(document[0]) if document and isinstance(document[0], dict) else None
    if not isinstance(document, dict):
        return None
    for mapping in all_mappings():
        for key in mapping.records:
            rows = document.get(key)
            if isinstance(rows, list) and rows and isinstance(rows[0], dict):
                found = detect_for_record(rows[0])
                if found is not None and found.name == mapping.name:
                    return mapping
    return None


def _field_sets(value) -> list[list[str]]:
    if not value:
        return []
    if isinstance(value[0], list):
        return value
    return [value]


# --- evaluating value specs -------------------------------------------------------------------------

# Keys that name a structured value ({"name": "Claude Monet", "role": "artist"}) and give its role,
# as museum dumps spell them (Tate's "fc", Cleveland's "description", Linked Art's "_label", ...).
NAME_KEYS = (
    "name", "display_name", "displayName", "fc", "full_name", "fullName", "preferred_name", "label", "_label",
    "title", "description", "value", "@value", "content", "text",
)
ROLE_KEYS = ("role", "roles", "qualifier", "attribution", "role_label", "roleLabel")


def as_text(value: Any) -> str:
    """Readable text of a value: names of objects with their roles, lists joined with "; "."""
    if value is None:
        return ""
    if isinstance(value, dict):
        name = next((value[k] for k in NAME_KEYS if not _empty(value.get(k))), None)
        if name is None:
            return "; ".join(f"{k}: {as_text(v)}" for k, v in value.items() if not _empty(v) and as_text(v))
        name = as_text(name)
        role = next((as_text(value[k]) for k in ROLE_KEYS if not _empty(value.get(k))), "")
        return f"{name} ({role})" if role and not name.lower().endswith(f"({role.lower()})") else name
    if isinstance(value, (list, tuple)):
        return "; ".join(dict.fromkeys(t for t in (as_text(v) for v in value) if t))
    return str(value)


def _structured(value: Any) -> bool:
    return isinstance(value, dict) or (isinstance(value, (list, tuple)) and any(isinstance(v, (dict, list)) for v in value))


def spec_keys(spec: Any) -> set[str]:
    """The record's top-level keys a value spec reads."""
    if isinstance(spec, str):
        if spec.startswith("$"):
            return set()
        head = re.split(r"[.\[]", spec, maxsplit=1)[0]
        return {spec, head}
    if isinstance(spec, list):
        return set().union(*(spec_keys(s) for s in spec)) if spec else set()
    if isinstance(spec, dict):
        out: set[str] = set()
        if "path" in spec:
            out |= spec_keys(spec["path"])
        for option in spec.get("first", []):
            out |= spec_keys(option)
        for name in _TEMPLATE_FIELD.findall(spec.get("template", "")):
            out |= spec_keys(name)
        return out
    return set()

def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def get_path(data: Any, path: str, document: Any = None) -> Any:
    if path.startswith("$doc."):
        data, path = document, path[5:]
    if isinstance(data, dict):
        if path in data:  # plain keys, including ones with dots or spaces
            return data[path]
        if "." not in path and "[" not in path:
            return None
    current: list[Any] = [data]
    mapped = False
    for index, key in _TOKEN.findall(path):
        nxt: list[Any] = []
        for value in current:
            if key:
                if isinstance(value, dict) and key in value:
                    nxt.append(value[key])
            elif index == "":
                mapped = True
                if isinstance(value, list):
                    nxt.extend(value)
            elif isinstance(value, list) and int(index) < len(value):
                nxt.append(value[int(index)])
        current = nxt
    if mapped:
        return [v for v in current if not _empty(v)]
    return current[0] if current else None


def _transform(name: str, value: Any) -> Any:
    if name == "tree_leaves":
        return sorted({leaf for leaf, _ in _tree(value, ())})
    if name == "tree_paths":
        return [" > ".join(path) for _, path in _tree(value, ())]
    if name == "strip":
        return str(value).strip()
    if name == "lower":
        return str(value).lower()
    if name == "bool":
        return str(value).strip().lower() in ("1", "true", "yes", "y")
    raise MappingError(f"unknown transform {name!r}")


def _tree(node: Any, path: tuple, root: bool = True) -> list[tuple[str, tuple]]:
    """Leaves of a {name, children} tree (Tate's subjects), with the names above them (not the root's)."""
    if isinstance(node, list):
        return [leaf for child in node for leaf in _tree(child, path, False)]
    if not isinstance(node, dict):
        return []
    name = node.get("name")
    children = node.get("children") or []
    here = path if root or not name else path + (str(name),)
    if not children or not isinstance(children, list):
        return [(str(name), here)] if name and not root else []
    return [leaf for child in children for leaf in _tree(child, here, False)]


def evaluate(spec: Any, record: dict, document: Any = None) -> Any:
    if spec is None:
        return None
    if isinstance(spec, str):
        return get_path(record, spec, document)
    if isinstance(spec, list):
        return evaluate({"first": spec}, record, document)
    if not isinstance(spec, dict):
        raise MappingError(f"bad value spec {spec!r}")
    if "value" in spec:
        return spec["value"]
    if "first" in spec:
        for option in spec["first"]:
            value = evaluate(option, record, document)
            if not _empty(value):
                return value
        return spec.get("default")
    if "template" in spec:
        parts = {}
        for name in _TEMPLATE_FIELD.findall(spec["template"]):
            value = get_path(record, name, document)
            if _empty(value):
                return spec.get("default")
            parts[name] = value
        return _TEMPLATE_FIELD.sub(lambda m: str(parts[m.group(1)]), spec["template"])
    value = get_path(record, spec["path"], document) if "path" in spec else None
    if not _empty(value) and "transform" in spec:
        value = _transform(spec["transform"], value)
    if not _empty(value) and "map" in spec:
        table = spec["map"]
        if isinstance(value, list):
            value = [table.get(str(v), v) for v in value]
        else:
            value = table.get(str(value).lower() if isinstance(value, bool) else str(value), value)
    if isinstance(value, list) and "join" in spec:
        value = spec["join"].join(str(v) for v in value if not _empty(v))
    if _empty(value):
        return spec.get("default")
    return value


def image_locations(mapping: Mapping, record: dict, *, base_dir: Path | None, with_images: bool, document: Any = None) -> list[str]:
    image = mapping.image
    locations: list[str] = []
    if base_dir is not None:
        for template in image.get("paths", []):
            value = evaluate(template if isinstance(template, dict) else {"template": template}, record, document)
            if _empty(value) or isinstance(value, (dict, list)):
                continue
            if str(value).startswith(("http://", "https://")):
                locations.append(str(value))
                continue
            candidate = Path(str(value))
            locations.append(str(candidate if candidate.is_absolute() else (base_dir / candidate).resolve()))
    if with_images or not image.get("only_when_asked"):
        for spec in image.get("urls", []):
            value = evaluate(spec, record, document)
            if isinstance(value, list):
                locations.extend(str(v) for v in value if not _empty(v))
            elif not _empty(value):
                locations.append(str(value))
    return list(dict.fromkeys(locations))


def apply(mapping: Mapping, record: Any, *, base_dir: Path | None = None, with_images: bool = False, document: Any = None, source: str | None = None):
    """Turn one raw record into ``(source, source_id, fields, image_locations)``; raises RecordProblem."""
    if not isinstance(record, dict):
        raise RecordProblem(f"a record must be an object with named fields, got {type(record).__name__}")
    source_id = evaluate(mapping.id, record, document)
    if _empty(source_id) or (isinstance(source_id, str) and not source_id.strip()):
        raise RecordProblem(f"no value for the id ({_describe(mapping.id)})")
    if isinstance(source_id, (dict, list)):
        raise RecordProblem(f"the id ({_describe(mapping.id)}) is a {type(source_id).__name__}, not a single value")
    source_id = str(source_id).strip()
    if len(source_id) > 512:
        raise RecordProblem(f"the id is {len(source_id)} characters long (at most 512)")
    fields: dict[str, Any] = {}
    structured: dict[str, Any] = {}
    for name, spec in mapping.fields.items():
        value = evaluate(spec, record, document)
        if _structured(value):
            # Names joined with their roles for the column; the objects themselves kept in metadata.
            structured[name] = value
            value = as_text(value)
        if not _empty(value):
            fields[name] = value
    metadata = {}
    for name, spec in mapping.metadata.items():
        value = evaluate(spec, record, document)
        if not _empty(value):
            metadata[name] = value
    for name, value in structured.items():
        metadata.setdefault(name, value)
    if mapping.unmapped == "keep":
        used = mapping.used_keys()
        for key, value in record.items():
            if key not in used and not _empty(value):
                metadata.setdefault(str(key), value)
    fields["metadata"] = metadata
    locations = image_locations(mapping, record, base_dir=base_dir, with_images=with_images, document=document)
    return (source or mapping.source), source_id, fields, locations


def prune(mapping: Mapping, keys: set[str]) -> Mapping:
    """The mapping with ``first`` alternatives that name absent plain keys removed (for sources whose
    records all have the same fields, such as a CSV's columns): same results, much less work."""

    def simplify(spec):
        if isinstance(spec, list):
            spec = {"first": spec}
        if isinstance(spec, dict) and "first" in spec:
            kept = [simplify(o) for o in spec["first"] if not (isinstance(o, str) and _plain(o) and o not in keys)]
            if not kept:
                return {"value": spec.get("default")}
            if len(kept) == 1 and "default" not in spec:
                return kept[0]
            return {**spec, "first": kept}
        if isinstance(spec, str) and _plain(spec) and spec not in keys:
            return {"value": None}
        return spec

    image = dict(mapping.image)
    for part in ("paths", "urls"):
        if part in image:
            image[part] = [_as_spec(simplify(p)) if isinstance(p, (dict, list)) else p for p in image[part]]
    return Mapping(
        name=mapping.name, source=mapping.source, id=mapping.id,
        fields={k: simplify(v) for k, v in mapping.fields.items()},
        metadata={k: simplify(v) for k, v in mapping.metadata.items()},
        image=image, records=mapping.records, detect=mapping.detect, title=mapping.title, path=mapping.path,
        unmapped=mapping.unmapped, source_per_file=mapping.source_per_file, _used=mapping.used_keys(),
    )


def _as_spec(spec):
    """Keep a value spec a dict: in image.paths a bare string is a template, not a field name."""
    return {"path": spec} if isinstance(spec, str) else spec


def _plain(path: str) -> bool:
    return not path.startswith("$") and "." not in path and "[" not in path


def _describe(spec: Any) -> str:
    if isinstance(spec, str):
        return f"field '{spec}'"
    if isinstance(spec, dict) and all(isinstance(o, str) for o in spec.get("first", [None])):
        return "fields " + " / ".join(f"'{o}'" for o in spec["first"])
    if isinstance(spec, dict) and "template" in spec:
        return f"template '{spec['template']}'"
    return json.dumps(spec)[:120]
