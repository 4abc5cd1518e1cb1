"""Museum open-access metadata (CSV, TSV, JSON, JSON Lines, each optionally .gz) through a mapping."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator

from . import enrich
from . import mapping as mappings
from . import readers
from .base import Record, RecordError, Source
from .policy import SourcePolicy


# Content types of metadata files, for URLs whose name says nothing (…/export?format=csv).
CONTENT_TYPES = {
    "text/csv": ".csv", "application/csv": ".csv", "text/tab-separated-values": ".tsv",
    "application/json": ".json", "text/json": ".json", "application/ld+json": ".json",
    "application/x-ndjson": ".jsonl", "application/ndjson": ".jsonl", "application/jsonl": ".jsonl",
    "application/x-jsonlines": ".jsonl", "application/jsonlines": ".jsonl",
}
GZIP_MAGIC = b"\x1f\x8b"


IMPORTS_DIR = "imports"


def download(url: str) -> Path:
    """Fetch a remote metadata file into ``imports/`` of the private store (kept, so a retry can
    read it again; never served, see :mod:`archive.storage`). Returns a local path to read it from.

    The body is streamed as the server meant it (a gzip or deflate Content-Encoding is decoded on
    the way), up to MAX_METADATA_BYTES, through the guarded client (:mod:`archive.fetch`: address
    checks, redirects, time cap); a failed or oversized download leaves nothing behind. The format
    comes from the URL's name, else from the Content-Type."""
    from django.conf import settings

    from archive import fetch, storage

    store = storage.private()
    limit = int(getattr(settings, "MAX_METADATA_BYTES", 20_000_000_000))
    name = url.rstrip("/").rsplit("/", 1)[-1].split("?")[0] or "download"
    head = bytearray()

    def body(response):
        # decoded: gzip transfer encoding is undone here
        for chunk in fetch.iter_body(response, max_bytes=limit, what="metadata downloads", limit_name="MAX_METADATA_BYTES"):
            if len(head) < 2:
                head.extend(chunk[: 2 - len(head)])
            yield chunk

    with fetch.open_url(url) as response:
        if response.status_code != 200:
            raise ValueError(f"HTTP {response.status_code} for {url}")
        name = _name_with_format(name, response.headers.get("Content-Type", ""), url)
        prefix = f"{IMPORTS_DIR}/{hashlib.sha1(url.encode()).hexdigest()[:12]}_"
        partial = f"{prefix}{name}.partial"
        storage.save_stream(store, partial, body(response), overwrite=True)
    if name.lower().endswith(".gz") and bytes(head) != GZIP_MAGIC:
        name = name[:-3]  # the server compressed the transfer of a .gz name, and requests undid it
    target = f"{prefix}{name}"
    storage.copy(store, partial, store, target, overwrite=True)
    storage.delete(store, partial)
    return storage.local_copy(store, target)


def _name_with_format(name: str, content_type: str, url: str) -> str:
    try:
        readers.format_of(Path(name))
        return name
    except ValueError:
        pass
    kind = content_type.split(";")[0].strip().lower()
    if kind in CONTENT_TYPES:
        return f"{name}{CONTENT_TYPES[kind]}"
    raise ValueError(
        f"cannot tell the format of {url}: its name has no .csv, .tsv, .json, .jsonl or .ndjson extension and its "
        f"Content-Type is {kind or 'missing'!r}"
    )


class MetadataSource(Source):
    kind = "metadata"

    def __init__(
        self,
        location: str,
        *,
        mapping: str | None = None,
        with_images: bool = False,
        encoding: str = "utf-8",
        source: str | None = None,
        image_base: str | None = None,
        overwrite_other: bool = False,
        origin: str | None = None,
        on_match: str = "enrich",
        root: str | None = None,
    ):
        self.location = str(location)
        if self.location.startswith(("http://", "https://")):
            self.path = download(self.location)
            self.policy = SourcePolicy()  # a fetched file may reference only http(s) images
        else:
            self.path = Path(self.location).resolve()
            # Local images may lie in the file's folder, or in the folder an operator imported it from.
            self.policy = SourcePolicy.for_root(Path(root).resolve() if root else self.path.parent)
        self.root = str(root) if root else None
        self.fmt = readers.format_of(self.path)
        self.with_images = with_images
        self.encoding = encoding
        self.source = source
        # Image paths in the mapping are relative to the metadata file's folder unless told otherwise.
        self.image_base = Path(image_base) if image_base else self.path.parent
        self.mapping = mappings.load(mapping) if mapping else self._detect()
        self.overwrite_other = bool(overwrite_other)
        if on_match not in enrich.POLICIES:
            raise ValueError(f"on_match must be one of {', '.join(enrich.POLICIES)}, not {on_match!r}")
        self.on_match = on_match
        # The file a row came from (a folder of collection files is one origin: a work listed in two
        # of them is one record); another origin updates the row only with overwrite_other.
        self.origin = origin or (self.location if self.location.startswith(("http://", "https://")) else str(self.path))

    @property
    def source_name(self) -> str:
        """Artwork.source of this file's records: --source-name, else the mapping's source; a
        mapping for any file (generic) makes each file its own source ("metadata:objects.csv"),
        so two files with the same record ids never overwrite each other."""
        if self.source:
            return self.source
        if self.mapping.source_per_file:
            name = self.location.rstrip("/").rsplit("/", 1)[-1].split("?")[0] or self.path.name
            return f"{self.mapping.source}:{name}"[:100]
        return self.mapping.source

    def params(self) -> dict:
        return {
            "location": self.location,
            "mapping": self.mapping.path if self.mapping.path and not self.mapping.path.startswith(str(mappings.MAPPINGS_DIR)) else self.mapping.name,
            "with_images": self.with_images,
            "encoding": self.encoding,
            "source": self.source,
            "image_base": str(self.image_base),
            "overwrite_other": self.overwrite_other or None,
            "origin": self.origin,
            "on_match": self.on_match,
            **({"root": self.root} if self.root else {}),
        }

    def describe(self) -> str:
        return f"{self.path.name} with mapping {self.mapping.name!r}"

    def _raw(self) -> Iterator:
        if self.fmt in ("csv", "tsv"):
            return readers.iter_csv(self.path, encoding=self.encoding, delimiter="\t" if self.fmt == "tsv" else ",")
        if self.fmt == "jsonl":
            return readers.iter_jsonl(self.path)
        return iter(())

    def _detect(self) -> mappings.Mapping:
        sample = None
        if self.fmt == "json":
            try:
                document = readers.load_json(self.path)
            except ValueError:
                return mappings.load("generic")  # the file is unreadable: records() reports why
            found = mappings.detect_for_document(document)
            if found:
                return found
            try:
                rows = readers.records_in(document, ["data", "records", "items", "artworks", "objects"])
                sample = next((r for r in rows if isinstance(r, dict)), None)
            except ValueError:
                return mappings.load("generic")
        else:
            for item in self._raw():
                if isinstance(item, readers.Problem):
                    if item.position is None:
                        return mappings.load("generic")
                    continue
                sample = item[1]
                break
        if sample is None:
            return mappings.load("generic")
        found = mappings.detect_for_record(sample)
        if found is None:
            raise mappings.MappingError(
                f"cannot tell which mapping fits {self.path.name} (its fields: {', '.join(list(sample)[:15])}); "
                f"pass --mapping NAME (available: {', '.join(mappings.available())}) or a path to a mapping .json"
            )
        return found

    def sample(self) -> dict | None:
        """The first raw record of the file (for drafting a mapping), or None."""
        if self.fmt == "json":
            try:
                rows = readers.records_in(readers.load_json(self.path), self.mapping.records or ["data", "records", "items", "artworks", "objects"])
            except ValueError:
                return None
            return next((r for r in rows if isinstance(r, dict)), None)
        for item in self._raw():
            if not isinstance(item, readers.Problem):
                return item[1]
        return None

    def count(self) -> int | None:
        keys = self.mapping.records or ["data", "records", "items", "artworks", "objects"]
        return readers.count_rows(self.path, self.fmt, keys)

    def records(self, positions: set[int] | None = None) -> Iterator[Record | RecordError]:
        document = None
        if self.fmt == "json":
            keys = self.mapping.records or ["data", "records", "items", "artworks", "objects"]
            try:
                document = readers.load_json(self.path)
                rows = readers.records_in(document, keys)
            except ValueError as exc:
                yield RecordError(str(self.path), str(exc), payload=self.reread_payload(None))
                return
            raw = (
                (i, r) if isinstance(r, dict) else readers.Problem(i, f"record {i}", f"expected a JSON object, found {type(r).__name__}")
                for i, r in enumerate(rows, start=1)
            )
        else:
            raw = self._raw()
        name = self.path.name
        mapping = None
        for item in raw:
            if isinstance(item, readers.Problem):
                if positions is not None and item.position not in positions and item.position is not None:
                    continue
                yield RecordError(f"{name} {item.where}", item.reason, payload=self.reread_payload(item.position))
                continue
            position, row = item
            if positions is not None and position not in positions:
                continue
            where = f"{name} {'row' if self.fmt in ('csv', 'tsv') else 'line' if self.fmt == 'jsonl' else 'record'} {position}"
            if mapping is None:
                # CSV rows all have the header's columns: drop the mapping's alternatives that cannot match.
                mapping = mappings.prune(self.mapping, set(row)) if self.fmt in ("csv", "tsv") else self.mapping
            try:
                source, source_id, fields, images = mappings.apply(
                    mapping, row, base_dir=self.image_base, with_images=self.with_images, document=document, source=self.source_name
                )
            except mappings.RecordProblem as exc:
                yield RecordError(where, str(exc), payload=self.reread_payload(position))
                continue
            yield Record(source=source, source_id=source_id, fields=fields, images=images, has_metadata=True, item=where,
                         position=position, roots=self.policy.root_list(), origin=self.origin,
                         overwrite_other=self.overwrite_other, on_match=self.on_match)


class MultiSource(Source):
    """Several metadata files imported as one job (e.g. the eight collection.json files of a folder)."""

    kind = "multi"

    def __init__(self, parts: list[dict] | None = None, *, sources: list[Source] | None = None):
        from . import source_from_params

        self.parts = sources if sources is not None else [source_from_params(p["importer"], p["params"]) for p in parts or []]

    def params(self) -> dict:
        return {"parts": [{"importer": s.kind, "params": s.params()} for s in self.parts]}

    def describe(self) -> str:
        if not self.parts:
            return "nothing"
        first = self.parts[0].describe()
        return first if len(self.parts) == 1 else f"{len(self.parts)} files: {first}, ..."

    def count(self) -> int | None:
        counts = [s.count() for s in self.parts]
        return None if any(c is None for c in counts) else sum(counts)

    def records(self, positions=None):
        for part in self.parts:
            yield from part.records()
