"""Map the vocabulary's labels to Iconclass notations, offline, from the English Iconclass data (CC0).

    .venv/bin/python -m workers.vocabulary.iconclass_map ../shared/data/vocabularies/iconclass
    .venv/bin/python -m workers.vocabulary.iconclass_map ICONCLASS_DIR --check   # exit 1 if stale

Writes two files beside this module (see docs/labels.md, "Iconclass"):

* ``iconclass_map.csv``: ``name,group,notation,match,confidence,iconclass_text``, one row per
  vocabulary label that has a notation;
* ``iconclass_subjects.csv``: ``notation,parent,text``, the mapped notations and all their
  ancestors (the subset of Iconclass the archive can browse), so loading needs no Iconclass files.

Method, first that applies for a label:

1. ``mappings/iconclass_exceptions.tsv`` (label name, notation or ``-`` for none): curated;
2. ``text``: the label, normalised, equals a notation's text, the text's first clause (before
   ``;``), or the name of a bracketed notation (``25F23(LION)`` "beasts of prey ...: lion",
   ``11H(GEORGE)``: "george");
3. ``keyword``: the label equals one of a notation's keywords *and* that keyword is one of the
   comma-separated names at the head of its text (before a ``~`` context, a `` - `` aspect or,
   for a plain notation, a colon; for a bracketed one the name after the colon, whole), so "lamb"
   does not land on John the Baptist, whose attributes list a lamb, nor "horse" on "winged horse";
4. ``plural``: as 2 and 3 with the label's plural (Iconclass often names things in the plural).

Normalising folds case and whitespace, drops quotes, a leading "Saint"/"St." and a trailing
"(St.)"; as a second try a label's disambiguating parenthesis is removed (``crane (bird)`` ->
``crane``), kept only where the Iconclass text also says "bird". A candidate must lie in the
Iconclass branches that suit the label's group (:data:`GROUP_BRANCHES`; groups not listed take any
branch). Among candidates a saint's notation (``11H``) wins for a label named "Saint ...", then a
text without a context (``bell ~ acoustic signalling``, ``attributes of Apollo: lyre``), then the
shortest notation (the main entry, not a variant deeper down), then the shortest text. Groups
whose labels are not subjects (styles, techniques, materials, periods, colours, composition,
moods) are not mapped. ``confidence`` is the method's prior for the match type; the measured
precision comes from the judged sample in ``iconclass_review.csv`` (``--review-sample N`` draws
a new one).
"""
from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from pathlib import Path

from workers.vocabulary import LABELS_CSV, iconclass_slug, read_labels
from workers.vocabulary.iconclass import Iconclass, read_iconclass

HERE = Path(__file__).resolve().parent
MAP_CSV = HERE / "iconclass_map.csv"
SUBJECTS_CSV = HERE / "iconclass_subjects.csv"
EXCEPTIONS_TSV = HERE / "mappings" / "iconclass_exceptions.tsv"
MAP_COLUMNS = ("name", "group", "notation", "match", "confidence", "iconclass_text")
SUBJECT_COLUMNS = ("notation", "parent", "text")

# Label groups that name what a work is made of or looks like, not what it shows: not mapped.
UNMAPPED_GROUPS = {"styles", "techniques", "materials", "periods", "colours", "composition", "moods", "trained"}
# Iconclass branches (notation prefixes) that suit each group; a group not listed accepts any.
GROUP_BRANCHES = {
    "animals": ("25F", "34", "46C13", "47I"),
    "plants": ("25G",),
    "nature": ("2",),
    "places": ("25H", "25I", "4"),
    "architecture": ("25I", "41A", "48C", "4"),
    "interiors": ("41A", "4"),
    "iconography": ("1", "6", "7", "8", "9"),
    "creatures": ("25FF", "9", "1", "3"),
    "people": ("3", "4", "1"),
    "activities": ("3", "4"),
    "clothing": ("41D",),
    "food": ("41C", "25G", "25F"),
    "vehicles": ("46C",),
    "body": ("31A",),
}
CONFIDENCE = {"exception": 1.0, "text": 0.9, "keyword": 0.7, "plural": 0.6}


def normalise(text: str) -> str:
    text = text.casefold().replace("\u2019", "'").replace("'", "").replace('"', "")
    text = re.sub(r"\s*\(st\.?\)\s*$", "", text)
    text = re.sub(r"^(saint|st\.?)\s+", "", text)
    return " ".join(text.split()).strip(" .,:")


def label_forms(name: str) -> list[str]:
    """The normalised forms of a label name tried against Iconclass, best first."""
    plain = normalise(name)
    forms = [plain]
    bare = normalise(re.sub(r"\s*\([^)]*\)\s*$", "", name))
    if bare and bare != plain:
        forms.append(bare)
    return forms


def plural(word: str) -> str:
    if re.search(r"(s|x|z|ch|sh)$", word):
        return word + "es"
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    return word + "s"


def text_forms(notation: str, text: str) -> set[str]:
    first = text.split(";")[0]
    forms = {normalise(text), normalise(first), normalise(re.sub(r"\([^)]*\)", " ", first))}
    if "(" in notation and ":" in first:
        forms.add(normalise(first.rsplit(":", 1)[1]))
    bracket = re.search(r"\(([^()]+)\)$", notation)  # 11H(JOHN THE BAPTIST): "john the baptist"
    if bracket:
        forms.add(normalise(bracket.group(1)))
    return {f for f in forms if f}


def head(notation: str, text: str) -> str:
    """What a text is about: its first clause, before a context (``dome ~ architecture``), an
    aspect (``Perseus - death``) or a list after a colon; bracketed remarks removed."""
    first = text.split(";")[0].split(" ~ ")[0].split(" - ")[0]
    if "(" not in notation:
        first = first.split(":")[0]
    return re.sub(r"\([^)]*\)", " ", first)


def segments(notation: str, text: str) -> set[str]:
    """The comma-separated names in a text's head (``lute, and special forms of lute``); for a
    bracketed notation the name after the colon, whole (not the list of a group's members)."""
    first = text.split(";")[0]
    if "(" in notation and ":" in first:
        return {normalise(re.sub(r"\([^)]*\)", " ", first.rsplit(":", 1)[1]))} - {""}
    return {normalise(re.sub(r"^(and|or)\s+", "", part.strip())) for part in head(notation, text).split(",")} - {""}


def in_context(text: str) -> bool:
    """A text about a thing in a context (``bell ~ acoustic signalling``, ``attributes of Apollo: lyre``)."""
    return " ~ " in text or text.startswith("attributes of")


class Index:
    def __init__(self, ic: Iconclass):
        self.ic = ic
        self.by_text: dict[str, set[str]] = {}
        self.by_keyword: dict[str, set[str]] = {}
        for notation, text in ic.texts.items():
            for form in text_forms(notation, text):
                self.by_text.setdefault(form, set()).add(notation)
        for notation, words in ic.keywords.items():
            parts = segments(notation, ic.text(notation))
            for word in words:
                form = normalise(word)
                if form and form in parts:
                    self.by_keyword.setdefault(form, set()).add(notation)

    def best(self, candidates: set[str], group: str, saint: bool = False) -> tuple[str, bool]:
        branches = GROUP_BRANCHES.get(group)
        def inside(n: str) -> bool:
            return branches is None or n.startswith(branches)
        ranked = sorted(candidates, key=lambda n: (
            not inside(n), saint and not n.startswith("11H"), in_context(self.ic.text(n)), len(n), len(self.ic.text(n)), n))
        return ranked[0], inside(ranked[0])

    def match(self, name: str, group: str) -> tuple[str, str, float] | None:
        """``(notation, match type, confidence)`` or None."""
        forms = label_forms(name)
        qualifier = re.search(r"\(([^)]*)\)\s*$", name)
        attempts = [("text", self.by_text, f) for f in forms] + [("keyword", self.by_keyword, f) for f in forms]
        attempts += [("plural", table, plural(f)) for f in forms for table in (self.by_text, self.by_keyword)]
        for kind, table, form in attempts:
            candidates = table.get(form)
            if qualifier and form != forms[0] and candidates:
                # "crane (machine)" tried as "crane": only where the text says "machine" too
                word = normalise(qualifier.group(1))
                candidates = {n for n in candidates if word in normalise(self.ic.text(n))}
            if not candidates:
                continue
            notation, inside = self.best(candidates, group, saint=bool(re.match(r"(saint|st\.?)\s", name, re.I)))
            if inside:
                return notation, kind, CONFIDENCE[kind]
        return None


def read_exceptions(path: Path = EXCEPTIONS_TSV) -> dict[str, str]:
    """``{label name: notation or ""}`` ("-" in the file: no notation)."""
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if len(cells) < 2:
            raise ValueError(f"{path}: {line!r}: expected 'label name<TAB>notation or -'")
        out[cells[0].strip()] = "" if cells[1].strip() == "-" else cells[1].strip()
    return out


def build(ic: Iconclass, labels=None, exceptions: dict[str, str] | None = None) -> tuple[list[dict], list[dict]]:
    """``(map rows, subject rows)``; raises ValueError for an exception naming an unknown notation."""
    labels = read_labels(LABELS_CSV) if labels is None else labels
    exceptions = read_exceptions() if exceptions is None else exceptions
    for name, notation in exceptions.items():
        if notation and notation not in ic:
            raise ValueError(f"{EXCEPTIONS_TSV.name}: {name!r} -> {notation!r}: no such Iconclass notation")
    index = Index(ic)
    rows = []
    for label in labels:
        if label.group in UNMAPPED_GROUPS:
            continue
        if label.name in exceptions:
            if not exceptions[label.name]:
                continue
            found = (exceptions[label.name], "exception", CONFIDENCE["exception"])
        else:
            found = index.match(label.name, label.group)
        if found is None:
            continue
        notation, kind, confidence = found
        rows.append({"name": label.name, "group": label.group, "notation": notation, "match": kind,
                     "confidence": f"{confidence:.2f}", "iconclass_text": ic.text(notation)})
    subjects: dict[str, str | None] = {}
    for row in rows:
        for notation in ic.chain(row["notation"]):
            subjects[notation] = ic.parents.get(notation)
    subject_rows = [{"notation": n, "parent": subjects[n] or "", "text": ic.text(n)} for n in sorted(subjects)]
    slugs: dict[str, str] = {}
    for notation in subjects:
        slug = iconclass_slug(notation)
        if slug in slugs:
            raise ValueError(f"Iconclass notations {slugs[slug]!r} and {notation!r} give one slug {slug!r}")
        slugs[slug] = notation
    return rows, subject_rows


def to_csv(rows: list[dict], columns) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


REVIEW_CSV = HERE / "iconclass_review.csv"
REVIEW_COLUMNS = ("name", "group", "notation", "match", "iconclass_text", "judgement", "note")
REVIEW_SEED = 19


def review_sample(rows: list[dict], n: int = 100, seed: int = REVIEW_SEED) -> list[dict]:
    """A random sample of mapped labels to judge by eye (fixed seed, so it can be drawn again)."""
    import random

    picked = random.Random(seed).sample(rows, min(n, len(rows)))
    return [{k: r.get(k, "") for k in REVIEW_COLUMNS} | {"judgement": "", "note": ""} for r in picked]


def precision(review: list[dict]) -> dict[str, float]:
    """Share of judged rows that are correct, overall and per match type."""
    out: dict[str, float] = {}
    for kind in ["all"] + sorted({r["match"] for r in review}):
        rows = [r for r in review if kind == "all" or r["match"] == kind]
        out[kind] = sum(r["judgement"] == "correct" for r in rows) / len(rows) if rows else 0.0
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("iconclass", help="the Iconclass data folder (notations.txt, txt/en, kw/en)")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if the shipped files differ")
    parser.add_argument("--review-sample", type=int, metavar="N",
                        help=f"print N mapped labels drawn at random (seed {REVIEW_SEED}) as a CSV to judge; write nothing")
    args = parser.parse_args(argv)
    rows, subjects = build(read_iconclass(args.iconclass))
    if args.review_sample:
        sys.stdout.write(to_csv(review_sample(rows, args.review_sample), REVIEW_COLUMNS))
        return 0
    outputs = {MAP_CSV: to_csv(rows, MAP_COLUMNS), SUBJECTS_CSV: to_csv(subjects, SUBJECT_COLUMNS)}
    labels = read_labels(LABELS_CSV)
    mappable = [label for label in labels if label.group not in UNMAPPED_GROUPS]
    print(f"{len(rows)} of {len(mappable)} subject labels mapped ({len(labels)} labels in {LABELS_CSV.name});"
          f" {len(subjects)} Iconclass subjects", file=sys.stderr)
    if args.check:
        stale = [path.name for path, text in outputs.items() if not path.is_file() or path.read_text(encoding="utf-8") != text]
        if stale:
            print(f"stale: {', '.join(stale)}; rebuild without --check", file=sys.stderr)
            return 1
        return 0
    for path, text in outputs.items():
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
