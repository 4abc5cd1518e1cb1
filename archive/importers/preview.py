"""What an import would do, before anything is written (``import SOURCE --preview``), and a
mapping drafted from a file's columns (``import SOURCE --draft-mapping out.json``).

The preview reads the first records of the source and shows each as it would be stored (the
cleaned catalogue fields, the images it names), what would happen to it (a new artwork, an
update of its own row, the enrichment of an existing artwork with the rule that matched, or a
refusal because another file imported it), and, over the first ``sample`` records, the share of
records with each field filled. Local images are hashed (not decoded) to find matches by image
bytes; image URLs are not fetched.
"""
from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from archive.models import Artwork

from . import enrich
from . import mapping as mappings
from .base import META_FIELDS, Record, RecordError, Source, artwork_values


@dataclass
class Preview:
    describe: str
    mapping: str = ""
    source: str = ""
    examples: list[dict] = field(default_factory=list)  # {"item", "key", "values", "images", "action"}
    errors: list[str] = field(default_factory=list)
    sampled: int = 0
    filled: dict[str, int] = field(default_factory=dict)  # field -> records with it filled
    actions: dict[str, int] = field(default_factory=dict)  # "new", "update", "enrich", ... over the sample

    def shares(self) -> dict[str, float]:
        return {name: (count / self.sampled if self.sampled else 0.0) for name, count in self.filled.items()}


def _sha_of(record: Record) -> str | None:
    for location in record.images:
        if location.startswith(("http://", "https://")):
            continue
        path = Path(location[7:] if location.startswith("file://") else location)
        if path.is_file():
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            return digest.hexdigest()
    return None


def _actions(records: list[Record]) -> list[str]:
    keys = [(r.source, r.source_id) for r in records]
    existing: dict[tuple[str, str], tuple[int, str | None]] = {}
    for source in {k[0] for k in keys}:
        ids = [k[1] for k in keys if k[0] == source]
        for aid, sid, origin in Artwork.objects.filter(source=source, source_id__in=ids).values_list("id", "source_id", "metadata__import_origin"):
            existing[(source, sid)] = (aid, origin)
    by_sha, by_name, shas = {}, {}, {}
    for record, key in zip(records, keys):
        if key in existing or record.on_match not in ("enrich", "skip"):
            continue
        sha = _sha_of(record)
        if sha:
            by_sha[key] = (record, sha)
            shas[key] = sha
        else:
            by_name[key] = record
    matches, ambiguous = enrich.find_matches(by_sha, by_name) if (by_sha or by_name) else ({}, {})
    out = []
    for record, key in zip(records, keys):
        if key in existing:
            aid, origin = existing[key]
            if record.origin and origin and not enrich.same_origin(origin, record.origin) and not record.overwrite_other:
                out.append(f"refused: #{aid} was imported from {origin} (pass --overwrite-other-files)")
            else:
                out.append(f"update #{aid}")
        elif key in matches:
            verb = "skip (describes" if record.on_match == "skip" else "enrich"
            match = matches[key]
            out.append(f"{verb} #{match.artwork_id}, matched by {match.rule}" + (")" if record.on_match == "skip" else ""))
        elif key in ambiguous:
            out.append(f"new (file name matches {len(ambiguous[key])} artworks: {', '.join(f'#{i}' for i in ambiguous[key][:5])})")
        else:
            out.append("new")
    return out


def preview(source: Source, *, show: int = 5, sample: int = 1000) -> Preview:
    result = Preview(describe=source.describe())
    mapping = getattr(source, "mapping", None)
    result.mapping = mapping.name if isinstance(mapping, mappings.Mapping) else ""
    records: list[Record] = []
    for item in itertools.islice(source.records(), max(show, sample)):
        if isinstance(item, RecordError):
            if len(result.errors) < 10:
                result.errors.append(f"{item.item}: {item.reason}")
            continue
        records.append(item)
    result.sampled = len(records)
    if records:
        result.source = records[0].source
    names = [n for n in META_FIELDS if n != "metadata"] + ["image"]
    result.filled = {name: 0 for name in names}
    metadata_keys: dict[str, int] = {}
    for record in records:
        values = artwork_values(record)
        for name in names[:-1]:
            if values.get(name) not in (None, ""):
                result.filled[name] += 1
        result.filled["image"] += bool(record.images)
        for key in values["metadata"]:
            if key != "import_origin":
                metadata_keys[key] = metadata_keys.get(key, 0) + 1
    for key, count in sorted(metadata_keys.items(), key=lambda kv: -kv[1]):
        result.filled[f"metadata.{key}"] = count
    actions = _actions(records)
    for action in actions:
        kind = action.split(" ", 1)[0].rstrip(":")
        result.actions[kind] = result.actions.get(kind, 0) + 1
    for record, action in zip(records[:show], actions):
        values = artwork_values(record)
        result.examples.append({
            "item": record.label, "key": f"{record.source}:{record.source_id}", "action": action, "images": record.images,
            "values": {k: v for k, v in values.items() if v not in (None, "", {}) and k != "metadata"},
            "metadata": {k: v for k, v in values["metadata"].items() if k != "import_origin"},
        })
    return result


def draft_mapping(sample: dict, *, name: str, source: str) -> dict:
    """A mapping for records shaped like ``sample``: each column the generic mapping would read is
    mapped to its field, image columns to ``image``, and every other column to metadata under its
    own name. A starting point to edit (docs/ingest.md explains each part)."""
    generic = mappings.load("generic")
    keys = list(sample)

    def first_present(spec) -> str | None:
        options = spec.get("first", []) if isinstance(spec, dict) else [spec]
        for option in options:
            if isinstance(option, str) and option in sample and not mappings._empty(sample[option]):
                return option
            if isinstance(option, str) and ("." in option or "[" in option) and not mappings._empty(mappings.get_path(sample, option)):
                return option
        return None

    used: set[str] = set()
    id_key = first_present(generic.id) or (keys[0] if keys else "id")
    used |= mappings.spec_keys(id_key)
    fields = {}
    for target, spec in generic.fields.items():
        key = first_present(spec)
        if key and not (mappings.spec_keys(key) & used - {key}):
            fields[target] = key
            used |= mappings.spec_keys(key)
    image: dict = {}
    path_key = first_present(generic.image["paths"][0])
    url_key = first_present(generic.image["urls"][0])
    if path_key:
        image["paths"] = [f"{{{path_key}}}"]
        used |= mappings.spec_keys(path_key)
    if url_key and url_key != path_key:
        image["urls"] = [url_key]
        used |= mappings.spec_keys(url_key)
    metadata = {key: key for key in keys if key not in used}
    return {
        "name": name, "title": f"Drafted from the columns of {name}; edit and pass with --mapping", "source": source,
        "detect": {"fields": [id_key]}, "id": id_key, "fields": fields, "metadata": metadata, "image": image,
        "unmapped": "keep",
    }
