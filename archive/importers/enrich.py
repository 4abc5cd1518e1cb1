"""Metadata for artworks already in the archive: scans first, catalogue later.

A metadata record *matches* an existing artwork of another source by this rule:

1. **image bytes**: its image has the same sha256 as an artwork in the archive (the original of
   a set of exact duplicates);
2. **file name**, only for a record whose image cannot be read or that names none: the file name
   of its image (``scans/0042.jpg`` -> ``0042.jpg``), or its id followed by an image extension
   (``0042`` -> ``0042.jpg``, ``0042.tif``, ...), equals the file name of exactly one artwork
   imported from a folder as a plain file. Two or more such artworks: no match (it is ambiguous),
   and the record's own row lists them in ``metadata.possible_matches``.

What happens to a matched record is the import's ``on_match`` policy:

- ``enrich`` (the default): the record's non-empty catalogue fields are written onto the existing
  artwork; its metadata is merged in; ``metadata.field_sources`` says which record each field came
  from and ``metadata.enriched_from`` lists the records with the rule that matched, the fields
  they set and the values they replaced. No second artwork is created. A record from another
  file than the one that enriched the artwork before is refused unless overwriting was asked for;
- ``separate``: the record becomes its own artwork (an exact duplicate of the image it shares);
- ``skip``: the record is not written (counted as skipped).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from archive.models import Artwork

from .base import META_FIELDS, Record, artwork_values

POLICIES = ("enrich", "separate", "skip")
DEFAULT_POLICY = "enrich"
# File name extensions tried for an id (the folder importer's image extensions, in both cases).
ID_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".gif", ".jp2", ".bmp")
_LIVE = (Artwork.Status.OK, Artwork.Status.DUPLICATE)


@dataclass(frozen=True)
class Match:
    artwork_id: int
    rule: str  # "image bytes" or "file name"


def same_origin(a: str, b: str) -> bool:
    """One file, or a file and the folder of collection files it lies in (imported either way)."""
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def file_names(record: Record) -> set[str]:
    names = {PurePosixPath(location.split("?")[0]).name for location in record.images}
    names |= {f"{record.source_id}{ext}" for ext in ID_EXTENSIONS}
    names |= {f"{record.source_id}{ext.upper()}" for ext in ID_EXTENSIONS}
    return {n for n in names if n}


def find_matches(by_sha: dict[tuple[str, str], tuple[Record, str]], by_name: dict[tuple[str, str], Record]) -> tuple[dict, dict]:
    """({key: Match}, {key: [ambiguous artwork ids]}) for records with a read image (``by_sha``:
    key -> (record, sha256)) and records without one (``by_name``)."""
    matches: dict[tuple[str, str], Match] = {}
    ambiguous: dict[tuple[str, str], list[int]] = {}
    if by_sha:
        rows = Artwork.objects.filter(sha256__in={sha for _, sha in by_sha.values()}, status__in=_LIVE).values_list(
            "id", "sha256", "source", "status"
        )
        by_hash: dict[str, list[tuple]] = {}
        for row in rows:
            by_hash.setdefault(row[1], []).append(row)
        for key, (record, sha) in by_sha.items():
            others = [r for r in by_hash.get(sha, []) if r[2] != record.source]
            if others:
                # The original of the exact duplicates (status ok, earliest) is the one described.
                best = min(others, key=lambda r: (r[3] != Artwork.Status.OK, r[0]))
                matches[key] = Match(best[0], "image bytes")
    if by_name:
        wanted = {key: file_names(record) for key, record in by_name.items()}
        all_names = set().union(*wanted.values())
        owners: dict[str, list[tuple[int, str]]] = {}
        rows = (
            Artwork.objects.filter(metadata__file_name__in=sorted(all_names))
            .exclude(metadata__has_key="import_origin")
            .values_list("id", "source", "metadata__file_name")
        )
        for aid, source, name in rows:
            owners.setdefault(name, []).append((aid, source))
        for key, record in by_name.items():
            ids = sorted({aid for name in wanted[key] for aid, source in owners.get(name, []) if source != record.source})
            if len(ids) == 1:
                matches[key] = Match(ids[0], "file name")
            elif ids:
                ambiguous[key] = ids
    return matches, ambiguous


class Refused(Exception):
    """Another file enriched this artwork before; ``str()`` says which."""


def enrich(artwork_id: int, record: Record, rule: str, now) -> None:
    """Write the record's catalogue onto the artwork, with the provenance of each field."""
    art = Artwork.objects.select_for_update().get(pk=artwork_id)
    metadata = dict(art.metadata or {})
    history = [dict(e) for e in metadata.get("enriched_from") or [] if isinstance(e, dict)]
    mine = next((e for e in history if (e.get("source"), e.get("source_id")) == (record.source, record.source_id)), None)
    if not record.overwrite_other and record.origin:
        other = next((e for e in history if e is not mine and e.get("origin") and not same_origin(e["origin"], record.origin)), None)
        if other is not None:
            raise Refused(
                f"artwork #{artwork_id} was described by {other['source']}:{other['source_id']} from {other['origin']}; this record "
                f"from {record.origin} would overwrite it. Pass --overwrite-other-files to update it, or --on-match separate"
            )
    values = artwork_values(record)
    changes, replaced, fields = {}, {}, []
    for name in META_FIELDS:
        if name == "metadata":
            continue
        new = values.get(name)
        if new in (None, ""):
            continue
        fields.append(name)
        old = getattr(art, name)
        if new != old:
            changes[name] = new
            if old not in (None, ""):
                replaced[name] = old
    incoming = {k: v for k, v in values["metadata"].items() if k != "import_origin"}
    metadata.update(incoming)
    sources = dict(metadata.get("field_sources") or {})
    label = f"{record.source}:{record.source_id}"
    for name in fields + sorted(incoming):
        sources[name] = label
    metadata["field_sources"] = sources
    entry = {
        "source": record.source, "source_id": record.source_id, "item": record.item, "origin": record.origin,
        "matched_by": rule, "fields": fields,
        "replaced": {**((mine or {}).get("replaced") or {}), **replaced},
    }
    if mine is not None:
        history[history.index(mine)] = entry
    else:
        history.append(entry)
    metadata["enriched_from"] = history
    Artwork.objects.filter(pk=artwork_id).update(**changes, metadata=metadata, updated_at=now)
