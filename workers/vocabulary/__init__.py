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
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from django.utils.text import slugify as _django_slugify

HERE = Path(__file__).resolve().parent
LABELS_CSV = HERE / "labels.csv"
TEMPLATES_JSON = HERE / "templates.json"

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
    return tuple(read_labels(LABELS_CSV))


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
