"""A folder of per-object records: one JSON or XML file per object, the way many museums publish
their open-access dumps (``objects/1234.json``, ``lido/1234.xml``), read as metadata.

Files are walked in name order (sub-folders too; hidden files skipped). A JSON file holds one
record (an object) or several (a list, or an object with a ``records``/``data``/``items``/... list);
an XML file is one record (its root element), or several when the root holds only repeated
elements of one name (``<objects><object>…</object>…</objects>``). XML becomes JSON the usual
way: child elements are keys (namespaces dropped), repeated ones lists, attributes ``@name``, text
beside children ``#text``. The mapping is detected from the first record (else "generic"); a
one-record file without an id field takes its file name (without extension) as its id. The
records' source is the mapping's, or for the generic mapping "metadata:<folder name>".
"""
from __future__ import annotations

import dataclasses
import gzip
import os
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any, Iterator

from . import enrich
from . import mapping as mappings
from . import readers
from .base import Record, RecordError, Source
from .policy import SourcePolicy

RECORD_SUFFIXES = (".json", ".xml", ".json.gz", ".xml.gz")
LIST_KEYS = ["records", "data", "items", "objects", "artworks", "results"]


def is_record_file(name: str) -> bool:
    return name.lower().endswith(RECORD_SUFFIXES) and not name.startswith(".")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else str(tag)


def element_value(element) -> Any:
    """An XML element as JSON: text, or an object of its attributes and children."""
    out: dict[str, Any] = {f"@{_local(k)}": v for k, v in element.attrib.items()}
    children = [c for c in element if isinstance(c.tag, str)]
    for child in children:
        key, value = _local(child.tag), element_value(child)
        if key in out:
            if not isinstance(out[key], list) or key not in _repeated(children):
                out[key] = [out[key]]
            out[key].append(value)
        else:
            out[key] = [value] if key in _repeated(children) else value
    text = (element.text or "").strip()
    if not out:
        return text
    if text:
        out["#text"] = text
    return out


def _repeated(children) -> set[str]:
    seen, twice = set(), set()
    for child in children:
        key = _local(child.tag)
        (twice if key in seen else seen).add(key)
    return twice


def read_xml(path: Path) -> list[dict]:
    data = _read_bytes(path)
    if b"<!ENTITY" in data:
        raise ValueError("XML with entity declarations is not read (they can expand without limit)")
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise ValueError(f"not valid XML: {exc}") from None
    children = [c for c in root if isinstance(c.tag, str)]
    if len(children) > 1 and len({_local(c.tag) for c in children}) == 1 and not root.attrib and len(list(children[0])):
        return [v for v in (element_value(c) for c in children) if isinstance(v, dict)]
    value = element_value(root)
    return [value] if isinstance(value, dict) else []


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as handle:
        data = handle.read()
    return gzip.decompress(data) if path.name.lower().endswith(".gz") else data


def read_records(path: Path) -> list:
    """The records in one file (objects, or other values the caller reports); raises ValueError."""
    if path.name.lower().endswith((".xml", ".xml.gz")):
        return read_xml(path)
    document = readers.load_json(path)
    if isinstance(document, dict) and not any(isinstance(document.get(k), list) for k in LIST_KEYS):
        return [document]
    return readers.records_in(document, LIST_KEYS)


class RecordsFolderSource(Source):
    kind = "records"

    def __init__(
        self, location: str, *, mapping: str | None = None, source: str | None = None, with_images: bool = False,
        overwrite_other: bool = False, on_match: str = "enrich",
    ):
        self.root = Path(location).resolve()
        self.source = source
        self.with_images = with_images
        self.overwrite_other = bool(overwrite_other)
        if on_match not in enrich.POLICIES:
            raise ValueError(f"on_match must be one of {', '.join(enrich.POLICIES)}, not {on_match!r}")
        self.on_match = on_match
        self.policy = SourcePolicy.for_root(self.root)
        self.mapping = mappings.load(mapping) if mapping else self._detect()

    def params(self) -> dict:
        builtin = self.mapping.path.startswith(str(mappings.MAPPINGS_DIR))
        return {
            "location": str(self.root), "mapping": self.mapping.name if builtin else self.mapping.path,
            "source": self.source, "with_images": self.with_images, "overwrite_other": self.overwrite_other or None,
            "on_match": self.on_match,
        }

    def describe(self) -> str:
        return f"folder of records {self.root} with mapping {self.mapping.name!r}"

    @property
    def source_name(self) -> str:
        if self.source:
            return self.source
        if self.mapping.source_per_file:
            return f"{self.mapping.source}:{self.root.name}"[:100]
        return self.mapping.source

    def files(self) -> Iterator[Path]:
        for folder, dirs, names in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                if is_record_file(name):
                    yield Path(folder) / name

    def count(self) -> int | None:
        return sum(1 for _ in self.files())

    def sample(self) -> dict | None:
        for path in self.files():
            try:
                rows = read_records(path)
            except (ValueError, OSError, EOFError):
                continue
            found = next((r for r in rows if isinstance(r, dict)), None)
            if found is not None:
                return found
        return None

    def _detect(self) -> mappings.Mapping:
        for path in self.files():
            try:
                rows = read_records(path)
            except (ValueError, OSError):
                continue
            sample = next((r for r in rows if isinstance(r, dict)), None)
            if sample is not None:
                return mappings.detect_for_record(sample) or mappings.load("generic")
        return mappings.load("generic")

    def records(self, positions: set[int] | None = None) -> Iterator[Record | RecordError]:
        source = self.source_name
        for position, path in enumerate(self.files(), start=1):
            if positions is not None and position not in positions:
                continue
            where = path.relative_to(self.root).as_posix()
            try:
                rows = read_records(path)
            except (ValueError, OSError, EOFError) as exc:
                yield RecordError(str(path), f"{where}: {exc}", payload=self.reread_payload(position))
                continue
            if not rows:
                yield RecordError(str(path), f"{where}: holds no record", payload=self.reread_payload(position))
                continue
            mapping = self.mapping
            if len(rows) == 1:
                # A file per object is usually named by its id.
                stem = path.name.split(".")[0]
                mapping = dataclasses.replace(self.mapping, id={"first": [self.mapping.id, {"value": stem}]})
            for index, row in enumerate(rows, start=1):
                item = where if len(rows) == 1 else f"{where} record {index}"
                try:
                    record_source, source_id, fields, images = mappings.apply(
                        mapping, row, base_dir=path.parent, with_images=self.with_images, source=source
                    )
                except mappings.RecordProblem as exc:
                    yield RecordError(item, str(exc), payload=self.reread_payload(position))
                    continue
                yield Record(
                    source=record_source, source_id=source_id, fields=fields, images=images, has_metadata=True, item=item,
                    position=position, roots=self.policy.root_list(), origin=str(self.root),
                    overwrite_other=self.overwrite_other, on_match=self.on_match,
                )


def holds_only_records(folder: Path, image_extensions: set[str]) -> bool:
    """True when a folder (and its sub-folders) has record files and no image file."""
    found = False
    for _, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if Path(name).suffix.lower() in image_extensions:
                return False
            found = found or is_record_file(name)
    return found
