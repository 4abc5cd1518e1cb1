"""What an artwork's catalogue record says beyond its columns: the museum fields importers keep
in ``metadata`` (accession number, department, provenance, ...), where each field came from
(enrichment, see :mod:`archive.importers.enrich`), why a row is a duplicate, and the rest of the
record as it was read. Used by the artwork page and the API."""
from __future__ import annotations

from archive.importers.mapping import as_text
from archive.models import Artwork

# Metadata keys shown as facts on the artwork page and in the API, in this order.
CATALOGUE_FIELDS = [
    ("accession_number", "Accession number"),
    ("department", "Department"),
    ("dimensions", "Dimensions"),
    ("place", "Place"),
    ("inscription", "Inscription"),
    ("provenance", "Provenance"),
    ("description", "Description"),
]
# Bookkeeping kept in metadata that is not part of the record itself.
INTERNAL_KEYS = {"field_sources", "enriched_from", "import_origin", "possible_matches", "canvas_size"}


def catalogue_facts(artwork: Artwork) -> list[dict]:
    metadata = artwork.metadata or {}
    facts = []
    for key, label in CATALOGUE_FIELDS:
        text = as_text(metadata.get(key)).strip()
        if text:
            facts.append({"key": key, "label": label, "text": text})
    return facts


def other_fields(artwork: Artwork) -> list[dict]:
    """Every other field of the record, as readable text (nothing stored is hidden)."""
    shown = {key for key, _ in CATALOGUE_FIELDS} | INTERNAL_KEYS
    out = []
    for key, value in sorted((artwork.metadata or {}).items()):
        if key in shown:
            continue
        text = as_text(value).strip()
        if text:
            out.append({"key": key, "text": text})
    return out


def record_sources(artwork: Artwork) -> dict:
    """Where the record came from: the import that created the row, the records that enriched it
    (rule, fields) and the source of each field they set; why it is a duplicate."""
    metadata = artwork.metadata or {}
    enriched = [
        {k: e.get(k) for k in ("source", "source_id", "item", "matched_by", "fields")}
        for e in metadata.get("enriched_from") or [] if isinstance(e, dict)
    ]
    out = {
        "source": artwork.source, "source_id": artwork.source_id, "imported_from": metadata.get("import_origin", ""),
        "enriched_from": enriched, "field_sources": dict(metadata.get("field_sources") or {}),
        "possible_matches": list(metadata.get("possible_matches") or []),
        "duplicate_of": None,
    }
    if artwork.duplicate_of_id:
        out["duplicate_of"] = {
            "id": artwork.duplicate_of_id,
            "reason": "the same image bytes (sha256) as this earlier artwork; only the original is embedded, labelled and mapped",
        }
    return out
