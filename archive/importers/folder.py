"""A folder tree of image files, with optional sidecar metadata (CSV or JSON keyed by file name).

Each image file is one artwork: ``source`` is "folder" and ``source_id`` the imported folder's
name and the file's path inside it (``images/2019/portrait.jpg`` for ``/mnt/archive/images``), or,
with ``--source-name NAME``, source NAME and the path inside the folder. Ids do not depend on where
the folder is mounted: importing it again, moved or remounted, updates the same rows. A sidecar
row is matched to a file by its relative path, its file name or its file name without extension;
its columns are read through a mapping (default "generic": title, creator/artist, date, medium,
...) and the remaining columns kept in metadata.

Only regular files are read (a FIFO or device named like an image is an error, never a wait), and
a file or folder whose name is not valid UTF-8 is an error naming it (its name cannot be stored).
"""
from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Iterator

from archive import images, storable

from . import mapping as mappings
from . import readers
from .base import Record, RecordError, Source
from .policy import Refused, SourcePolicy

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".gif", ".webp", ".bmp", ".jp2", ".j2k", ".heic", ".heif"}
# Image files that are not imported, each reported as an error with the reason (never skipped silently).
REFUSED_EXTENSIONS = {".svg": images.SVG_REASON, ".svgz": images.SVG_REASON}
SIDECAR_NAMES = ("metadata.csv", "metadata.json", "metadata.jsonl", "sidecar.csv", "sidecar.json")
KEY_COLUMNS = ("file", "filename", "file_name", "image", "image_path", "path", "name", "index")


class FolderSource(Source):
    kind = "folder"

    def __init__(
        self, location: str, *, sidecar: str | None = None, source: str | None = None, mapping: str | None = None,
        root: str | None = None, include: list[str] | None = None, exclude: list[str] | None = None,
    ):
        self.root = Path(location).resolve()
        # Glob patterns on the path inside the folder ("crops/*") or, without a "/", on the file name ("*_crop.jpg").
        self.include = [p for p in _patterns(include)]
        self.exclude = [p for p in _patterns(exclude)]
        # Ids with --source-name are relative to the folder first imported, also when a retry
        # re-reads only one of its subfolders.
        self.id_root = Path(root).resolve() if root else self.root
        self.source = source
        self.mapping_name = mapping or "generic"
        mappings.load(self.mapping_name)  # fail now, with the list of mappings, if the name is wrong
        # Files are read only inside the folder first imported (symlinks resolved; see policy).
        self.policy = SourcePolicy.for_root(self.id_root)
        self.sidecar_path = Path(sidecar).resolve() if sidecar else self._find_sidecar()
        self._sidecar: dict[str, dict] | None = None
        self.sidecar_problem = ""

    def params(self) -> dict:
        return {
            "location": str(self.root),
            "sidecar": str(self.sidecar_path) if self.sidecar_path else None,
            "source": self.source,
            "mapping": self.mapping_name,
            "root": str(self.id_root) if self.id_root != self.root else None,
            "include": self.include or None,
            "exclude": self.exclude or None,
        }

    def describe(self) -> str:
        extra = f" with sidecar {self.sidecar_path.name}" if self.sidecar_path else ""
        return f"folder {self.root}{extra}"

    def _find_sidecar(self) -> Path | None:
        for name in SIDECAR_NAMES:
            if (self.root / name).is_file():
                return self.root / name
        return None

    # --- sidecar ---------------------------------------------------------------------------------

    def sidecar(self) -> dict[str, dict]:
        if self._sidecar is None:
            self._sidecar = {}
            if self.sidecar_path:
                self._load_sidecar(self.sidecar_path)
        return self._sidecar

    def _load_sidecar(self, path: Path) -> None:
        if path.parent == self.root:  # found in the folder (not given with --sidecar): a link must stay inside
            try:
                self.policy.check(str(path))
            except Refused as exc:
                self.sidecar_problem = f"sidecar {path.name}: {exc}"
                return
        fmt = readers.format_of(path)
        rows: list[dict] = []
        if fmt == "json":
            try:
                document = readers.load_json(path)
            except ValueError as exc:
                self.sidecar_problem = f"sidecar {path.name}: {exc}"
                return
            if isinstance(document, dict) and all(isinstance(v, dict) for v in document.values()):
                for key, row in document.items():
                    self._sidecar[str(key)] = row
                return
            try:
                rows = [r for r in readers.records_in(document, ["records", "items", "files", "data"]) if isinstance(r, dict)]
            except ValueError as exc:
                self.sidecar_problem = f"sidecar {path.name}: {exc}"
                return
        else:
            iterator = readers.iter_csv(path) if fmt in ("csv", "tsv") else readers.iter_jsonl(path)
            problems = []
            for item in iterator:
                if isinstance(item, readers.Problem):
                    problems.append(f"{item.where}: {item.reason}")
                else:
                    rows.append(item[1])
            if problems:
                self.sidecar_problem = f"sidecar {path.name}: {len(problems)} unreadable rows, first: {problems[0]}"
        for row in rows:
            key = next((str(row[k]) for k in KEY_COLUMNS if row.get(k) not in (None, "")), None)
            if key is not None:
                self._sidecar[key] = row

    def _sidecar_row(self, path: Path) -> dict | None:
        table = self.sidecar()
        if not table:
            return None
        rel = path.relative_to(self.root).as_posix()
        for key in (rel, path.name, path.stem):
            if key in table:
                return table[key]
        return None

    # --- walking ---------------------------------------------------------------------------------

    def _folder_payload(self, folder: Path) -> dict:
        """Re-read one folder (a retry), keeping ids relative to the folder first imported."""
        return {
            "kind": "reread", "importer": "folder", "position": None,
            "params": {**self.params(), "location": str(folder), "root": str(self.id_root)},
        }

    def _walk(self) -> Iterator[Path | RecordError]:
        stack = [self.root]
        while stack:
            folder = stack.pop()
            try:
                with os.scandir(folder) as entries:
                    items = sorted(entries, key=lambda e: e.name)
            except OSError as exc:
                yield RecordError(str(folder), f"cannot read this folder: {exc.strerror or exc}", payload=self._folder_payload(folder))
                continue
            subfolders = []
            for entry in items:
                if entry.name.startswith("."):
                    continue
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    is_dir = False
                suffix = Path(entry.name).suffix.lower()
                if not is_dir and suffix in REFUSED_EXTENSIONS and not storable.has_surrogates(entry.name):
                    yield RecordError(entry.path, REFUSED_EXTENSIONS[suffix], payload=self._folder_payload(folder))
                    continue
                if not is_dir and suffix not in IMAGE_EXTENSIONS:
                    continue
                if storable.has_surrogates(entry.name):
                    what = "folder" if is_dir else "file"
                    yield RecordError(
                        storable.text(entry.path),
                        f"the {what} name is not valid UTF-8 text, so it cannot be recorded"
                        + ("; the images in it are not imported" if is_dir else "")
                        + f": rename the {what} (e.g. with convmv) and retry",
                        payload=self._folder_payload(folder),
                    )
                    continue
                if is_dir:
                    subfolders.append(Path(entry.path))
                elif self._wanted(Path(entry.path)):
                    yield Path(entry.path)
            stack.extend(reversed(subfolders))

    def _wanted(self, path: Path) -> bool:
        if not (self.include or self.exclude):
            return True
        inside = path.relative_to(self.id_root).as_posix()
        if self.include and not any(_matches(inside, p) for p in self.include):
            return False
        return not any(_matches(inside, p) for p in self.exclude)

    def count(self) -> int | None:
        return sum(1 for _ in self._walk())

    def _source_id(self, path: Path) -> tuple[str, str]:
        inside = path.relative_to(self.id_root).as_posix()
        if self.source:
            return self.source, inside
        return "folder", f"{self.id_root.name or 'folder'}/{inside}"

    def records(self, positions: set[int] | None = None) -> Iterator[Record | RecordError]:
        if self.sidecar_path:
            self.sidecar()
            if self.sidecar_problem:
                # The files are still imported (without the rows that could not be read); a retry
                # re-imports the folder once the sidecar is fixed.
                yield RecordError(str(self.sidecar_path), self.sidecar_problem, payload=self.reread_payload(None))
        mapping = mappings.load(self.mapping_name) if self.sidecar_path else None
        for item in self._walk():
            if isinstance(item, RecordError):
                yield item
                continue
            path = item
            source, source_id = self._source_id(path)
            fields: dict = {"title": path.stem, "metadata": {"file_name": path.name}}
            row = self._sidecar_row(path) if mapping else None
            if row is not None:
                fields = self._fields_from(mapping, row, path)
            yield Record(
                source=source, source_id=source_id[:512], fields=fields, images=[str(path)],
                has_metadata=row is not None, item=str(path), roots=self.policy.root_list(),
            )

    def _fields_from(self, mapping: mappings.Mapping, row: dict, path: Path) -> dict:
        fields: dict = {}
        used = set()
        for name, spec in mapping.fields.items():
            value = mappings.evaluate(spec, row)
            if value not in (None, "", [], {}) and not isinstance(value, dict):
                fields[name] = value
            used.update(_names(spec))
        metadata = {"file_name": path.name}
        for name, spec in mapping.metadata.items():
            value = mappings.evaluate(spec, row)
            if value not in (None, "", [], {}):
                metadata[name] = value
            used.update(_names(spec))
        for key, value in row.items():
            if key not in used and key not in KEY_COLUMNS and value not in (None, ""):
                metadata.setdefault(str(key), value)
        fields.setdefault("title", path.stem)
        fields["metadata"] = metadata
        return fields


def _names(spec) -> set[str]:
    if isinstance(spec, str):
        return {spec}
    if isinstance(spec, list):
        return set().union(*(_names(s) for s in spec)) if spec else set()
    if isinstance(spec, dict):
        out = set()
        if "path" in spec:
            out.add(spec["path"])
        for option in spec.get("first", []):
            out |= _names(option)
        return out
    return set()


def _patterns(value) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [str(p).strip() for p in value if str(p).strip()]


def _matches(inside: str, pattern: str) -> bool:
    """``pattern`` with a "/" is matched against the path inside the folder (``*`` crosses folders),
    without one against the file name; matching ignores case."""
    target = inside if "/" in pattern else inside.rsplit("/", 1)[-1]
    return fnmatch.fnmatchcase(target.lower(), pattern.lower())
