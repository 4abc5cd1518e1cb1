"""The zero-shot label vocabulary: about six thousand labels in plain groups, with prompt templates.

The data lives beside this module: ``labels.csv`` (name, group, source, prompt, description; rebuilt
by ``python -m workers.vocabulary.build TATE_JSONL_GZ``) and ``templates.json`` (prompt template
ensembles per group). This module only reads them; it imports nothing heavy.

    from workers.vocabulary import load_labels, templates_for, prompts_for
    labels = load_labels()
    prompts_for(labels[0])   # ["a painting of ...", ...]
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from django.utils.text import slugify as _django_slugify

HERE = Path(__file__).resolve().parent
LABELS_CSV = HERE / "labels.csv"
TEMPLATES_JSON = HERE / "templates.json"
ICONCLASS_MAP_CSV = HERE / "iconclass_map.csv"  # label name -> Iconclass notation (iconclass_map.py)
ICONCLASS_SUBJECTS_CSV = HERE / "iconclass_subjects.csv"  # the mapped notations and their ancestors

# The groups the vocabulary promises to have (others may be added; every group has templates).
REQUIRED_GROUPS = (
    "objects", "animals", "plants", "people", "places", "architecture", "genres", "iconography",
    "techniques", "materials", "moods", "styles", "periods", "colours", "clothing", "activities",
)
SLUG_MAX_LENGTH = 255  # archive.Label.slug


@dataclass(frozen=True)
class VocabularyLabel:
    name: str
    slug: str
    group: str
    source: str
    prompt: str = ""
    description: str = ""
    notation: str = ""  # Iconclass notation the label is mapped to (iconclass_map.csv), or ""

    @property
    def text(self) -> str:
        """What goes into a template's ``{}``: the prompt where there is one, else the name."""
        return self.prompt or self.name


def normalise_name(name: str) -> str:
    """Two names are the same label when they are equal after folding case and whitespace."""
    return " ".join(name.split()).casefold()


def slugify(name: str, taken: set[str] | None = None) -> str:
    """A URL slug for ``name`` (accents folded to ASCII); unique within ``taken``, which it updates.

    ``slugify("Saint George and the Dragon")`` -> ``"saint-george-and-the-dragon"``; a second
    "crane (bird)"-like clash gets ``-2``, ``-3`` ... Names that fold to nothing get ``label``.
    """
    base = _django_slugify(name)[:SLUG_MAX_LENGTH].strip("-") or "label"
    if taken is None:
        return base
    slug, number = base, 2
    while slug in taken:
        suffix = f"-{number}"
        slug = base[: SLUG_MAX_LENGTH - len(suffix)] + suffix
        number += 1
    taken.add(slug)
    return slug


def read_labels(path: Path | str) -> list[VocabularyLabel]:
    """Read a vocabulary CSV; raise ValueError naming the line of a missing name/group or a duplicate."""
    labels: list[VocabularyLabel] = []
    seen: dict[str, int] = {}
    taken: set[str] = set()
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"name", "group", "source"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            name = " ".join((row.get("name") or "").split())
            group = (row.get("group") or "").strip()
            if not name or not group:
                raise ValueError(f"{path}:{line}: a label needs a name and a group")
            key = normalise_name(name)
            if key in seen:
                raise ValueError(f"{path}:{line}: duplicate label {name!r} (first on line {seen[key]})")
            seen[key] = line
            labels.append(VocabularyLabel(
                name=name,
                slug=slugify(name, taken),
                group=group,
                source=(row.get("source") or "").strip(),
                prompt=(row.get("prompt") or "").strip(),
                description=(row.get("description") or "").strip(),
            ))
    return labels


@lru_cache(maxsize=1)
def _default_labels() -> tuple[VocabularyLabel, ...]:
    notations = iconclass_notations()
    return tuple(
        replace(label, notation=notations[label.name]) if label.name in notations else label
        for label in read_labels(LABELS_CSV)
    )


@dataclass(frozen=True)
class IconclassSubject:
    notation: str
    parent: str  # "" for a root (0-9)
    text: str

    @property
    def slug(self) -> str:
        return iconclass_slug(self.notation)

    @property
    def name(self) -> str:
        """``11H(JOHN THE BAPTIST) John the Baptist``: the notation and its text's first clause."""
        words = self.text.split(";")[0].strip()
        if len(words) > 160:
            words = words[:159].rstrip() + "\u2026"
        return f"{self.notation} {words}".strip()


def iconclass_slug(notation: str) -> str:
    """``iconclass-11h-john-the-baptist`` for ``11H(JOHN THE BAPTIST)`` (unique: the build checks)."""
    return "iconclass-" + slugify(notation.replace("(", " ").replace(")", " ").replace("+", " plus "))


def iconclass_notations(path: Path | str = ICONCLASS_MAP_CSV) -> dict[str, str]:
    """``{label name: Iconclass notation}`` as shipped (empty without the file)."""
    path = Path(path)
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["name"]: row["notation"] for row in csv.DictReader(handle) if row.get("notation")}


def iconclass_subjects(path: Path | str = ICONCLASS_SUBJECTS_CSV) -> list[IconclassSubject]:
    """The Iconclass subjects the archive browses, parents before children."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [IconclassSubject(r["notation"], r["parent"], r["text"]) for r in csv.DictReader(handle)]
    depth: dict[str, int] = {}
    parents = {r.notation: r.parent for r in rows}
    def level(n: str) -> int:
        if n not in depth:
            p = parents.get(n, "")
            depth[n] = 0 if not p or p not in parents else level(p) + 1
        return depth[n]
    return sorted(rows, key=lambda r: (level(r.notation), r.notation))


def load_labels(path: Path | str | None = None) -> list[VocabularyLabel]:
    """All vocabulary labels, in CSV order (by group, then name). Cached for the shipped CSV."""
    if path is None:
        return list(_default_labels())
    return read_labels(path)


def groups(labels: Iterable[VocabularyLabel] | None = None) -> list[str]:
    """The distinct groups, sorted."""
    return sorted({label.group for label in (labels if labels is not None else _default_labels())})


@lru_cache(maxsize=1)
def _templates() -> dict[str, tuple[str, ...]]:
    data = json.loads(TEMPLATES_JSON.read_text(encoding="utf-8"))
    return {group: tuple(items) for group, items in data.items() if not group.startswith("_")}


def templates_for(group: str) -> list[str]:
    """The prompt template ensemble for a group (``default`` for a group without its own)."""
    templates = _templates()
    return list(templates.get(group) or templates["default"])


def prompts_for(label: VocabularyLabel) -> list[str]:
    """The filled-in prompts of a label: each of its group's templates with the label's text."""
    return [template.replace("{}", label.text) for template in templates_for(label.group)]
