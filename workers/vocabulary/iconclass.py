"""Read the English Iconclass data (CC0) as published in the iconclass/data repository.

    from workers.vocabulary.iconclass import read_iconclass
    ic = read_iconclass("../shared/data/vocabularies/iconclass")
    ic.text("11H(JOHN THE BAPTIST)")      # "John the Baptist; possible attributes: ..."
    ic.chain("11H(JOHN THE BAPTIST)")     # ["11H(JOHN THE BAPTIST)", "11H", "11", "1"]

``notations.txt`` is the hierarchy: chunks separated by ``$`` lines, ``N`` the notation, ``C`` its
children (further values on ``;`` lines). ``txt/en/*.txt`` holds ``notation|text`` lines and
``kw/en/*.txt`` ``notation|keyword`` lines. The placeholder nodes ``11H(...)`` ("male saints by
name") are not subjects of their own: their children hang under the placeholder's parent, so the
chain of ``11H(JOHN THE BAPTIST)`` is ``11H`` (saints), ``11`` (Christian religion), ``1``.
Only the base system is read: keys (``11k``) and the Shakespeare supplement are left out.

Identifiers resolve as ``https://iconclass.org/<notation>`` (:func:`uri`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

PLACEHOLDER = "(...)"
URI_BASE = "https://iconclass.org/"


def uri(notation: str) -> str:
    """The notation's address on iconclass.org (spaces and brackets percent-encoded)."""
    return URI_BASE + quote(notation, safe="()")


@dataclass
class Iconclass:
    parents: dict[str, str | None] = field(default_factory=dict)  # notation -> parent (None: a root)
    texts: dict[str, str] = field(default_factory=dict)
    keywords: dict[str, list[str]] = field(default_factory=dict)

    def __contains__(self, notation: str) -> bool:
        return notation in self.parents

    def text(self, notation: str) -> str:
        return self.texts.get(notation, "")

    def chain(self, notation: str) -> list[str]:
        """The notation and its ancestors, nearest first, up to the root."""
        out = []
        while notation is not None and notation not in out:
            out.append(notation)
            notation = self.parents.get(notation)
        return out


def _chunks(path: Path):
    chunk: dict[str, list[str]] = {}
    last = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.rstrip("\n")
        if line.strip() == "$":
            if chunk:
                yield chunk
            chunk, last = {}, None
            continue
        if not line.strip():
            continue
        key, _, value = line.partition(" ")
        if key == ";" and last is not None:
            chunk[last].append(value.strip())
        else:
            last = key
            chunk.setdefault(key, []).append(value.strip())
    if chunk:
        yield chunk


def _pairs(folder: Path, skip: tuple[str, ...]):
    for path in sorted(folder.glob("*.txt")):
        if any(word in path.name for word in skip):
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            notation, sep, value = line.partition("|")
            if sep and notation.strip() and value.strip():
                yield notation.strip(), value.strip()


def read_iconclass(folder: Path | str, language: str = "en") -> Iconclass:
    """Read hierarchy, texts and keywords. Raises FileNotFoundError naming a missing file."""
    folder = Path(folder)
    notations = folder / "notations.txt"
    if not notations.is_file():
        raise FileNotFoundError(f"{notations}: not found (the Iconclass data folder has notations.txt, txt/, kw/)")
    raw_parent: dict[str, str] = {}
    seen: list[str] = []
    for chunk in _chunks(notations):
        names = chunk.get("N")
        if not names:
            continue
        seen.append(names[0])
        for child in chunk.get("C", []):
            raw_parent[child] = names[0]
    ic = Iconclass()
    for notation in seen:
        if notation.endswith(PLACEHOLDER):
            continue
        parent = raw_parent.get(notation)
        while parent is not None and parent.endswith(PLACEHOLDER):
            parent = raw_parent.get(parent)
        ic.parents[notation] = parent
    skip = ("keys", "shakespeare", "refs")
    for notation, text in _pairs(folder / "txt" / language, skip):
        if notation in ic.parents:
            ic.texts.setdefault(notation, text)
    for notation, keyword in _pairs(folder / "kw" / language, skip):
        if notation in ic.parents:
            ic.keywords.setdefault(notation, []).append(keyword)
    return ic
