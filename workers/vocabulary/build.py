"""Regenerate ``workers/vocabulary/labels.csv`` from its sources.

    .venv/bin/python -m workers.vocabulary.build ../shared/data/metadata/tate/artworks.jsonl.gz
    .venv/bin/python -m workers.vocabulary.build TATE.jsonl.gz --check     # exit 1 if the CSV is stale
    .venv/bin/python -m workers.vocabulary.build TATE.jsonl.gz --report    # list merges and skipped terms

Sources, in order of precedence (the first source to name a label decides its group, prompt and
description; later sources naming the same label are appended to its ``source``):

1. ``curated/<group>.txt``: hand-written art terms, one per line ``name | prompt | description``;
   a ``# source: ...`` line names the reference followed by the lines after it.
2. The Tate collection's subject tree (``subjects`` in each record of artworks.jsonl.gz): leaves of
   the categories listed in ``mappings/tate_categories.tsv``, tidied by the rules below and by
   ``mappings/tate_renames.tsv``.
3. ImageNet-1k class names as shipped in open_clip, with ``mappings/imagenet.tsv`` overrides.
4. COCO 2017 category names from torchvision's detection weights metadata (``mappings/coco.tsv``).
5. Kinetics-400 action names from torchvision's video weights metadata, minus
   ``mappings/kinetics_exclude.txt``.
"""
from __future__ import annotations

import argparse
import collections
import csv
import gzip
import io
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from workers.vocabulary import slugify

HERE = Path(__file__).resolve().parent
CURATED = HERE / "curated"
MAPPINGS = HERE / "mappings"
LABELS_CSV = HERE / "labels.csv"
COLUMNS = ("name", "group", "source", "prompt", "description")
MAX_SOURCE_LENGTH = 255  # archive.Label.source

TATE_SOURCE = "Tate collection subjects"
IMAGENET_SOURCE = "ImageNet-1k (open_clip)"
COCO_SOURCE = "COCO 2017 (torchvision)"
KINETICS_SOURCE = "Kinetics-400 (torchvision)"

# Tate names of the form "head, qualifier".
HEAD_DROP = {  # "instrument, piano" -> "piano"
    "instrument", "fruit", "vegetable", "drink", "dog", "gun", "hat", "politician", "artist",
    "poultry", "book", "magazine", "newspaper",
}
QUALIFIER_FIRST = {  # "man, old" -> "old man"
    "man", "woman", "light", "aircraft", "sculpture", "townscape", "window", "print", "fire",
    "heater", "constellation",
}
VESSEL_KINDS = {"boat", "ship"}  # "boat, sailing" -> "sailing boat" but "boat, gondola" -> "gondola"
VESSEL_QUALIFIERS = {"sailing", "rowing", "fishing", "steam"}
NOT_TREES = {
    "tree", "branch", "trunk", "blossom", "root", "stump", "bark", "sapling", "fig leaf", "vine leaf",
    "pine needle",
}


def normalise(name: str) -> str:
    """The key under which two names count as the same label: case and whitespace folded."""
    return " ".join(name.split()).casefold()


@dataclass
class Entry:
    name: str
    group: str
    sources: list[str]
    prompt: str = ""
    description: str = ""


@dataclass
class Vocabulary:
    entries: dict[str, Entry] = field(default_factory=dict)
    merges: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def add(self, name: str, group: str, source: str, prompt: str = "", description: str = "") -> None:
        name = " ".join(name.split())
        if not name:
            return
        key = normalise(name)
        entry = self.entries.get(key)
        if entry is None:
            self.entries[key] = Entry(name, group, [source], prompt, description)
            return
        if entry.group != group:
            self.merges.append(f"{name!r} [{group}, {source}] merged into [{entry.group}, {entry.sources[0]}]")
        if source not in entry.sources:
            entry.sources.append(source)
        entry.prompt = entry.prompt or prompt
        entry.description = entry.description or description

    def rows(self) -> list[dict[str, str]]:
        too_long = [e.name for e in self.entries.values() if len("; ".join(e.sources)) > MAX_SOURCE_LENGTH]
        if too_long:
            raise ValueError(f"source lists longer than {MAX_SOURCE_LENGTH} characters: {too_long[:5]}")
        # Slugs must follow from the name alone, so that a label keeps its slug (and its Label row)
        # whatever else is added to the vocabulary: two names with one slug is a build error.
        by_slug: dict[str, str] = {}
        for entry in self.entries.values():
            slug = slugify(entry.name)
            if slug in by_slug:
                raise ValueError(f"{entry.name!r} and {by_slug[slug]!r} share the slug {slug!r}: rename one")
            by_slug[slug] = entry.name
        ordered = sorted(self.entries.values(), key=lambda e: (e.group, normalise(e.name), e.name))
        return [
            {"name": e.name, "group": e.group, "source": "; ".join(e.sources), "prompt": e.prompt,
             "description": e.description}
            for e in ordered
        ]


def _tsv(path: Path) -> list[list[str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        rows.append([cell.strip() for cell in line.split("\t")])
    return rows


# --- 1. curated lists -------------------------------------------------------------------------

def add_curated(vocab: Vocabulary, folder: Path = CURATED) -> None:
    for path in sorted(folder.glob("*.txt")):
        group = path.stem
        source = f"curated: {group}"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            stripped = line.strip()
            if stripped.lower().startswith("# source:"):
                source = stripped.split(":", 1)[1].strip()
                continue
            if not stripped or stripped.startswith("#"):
                continue
            parts = [p.strip() for p in stripped.split("|")]
            if len(parts) > 3:
                raise ValueError(f"{path.name}:{number}: more than three '|' separated fields")
            name, prompt, description = (parts + ["", ""])[:3]
            vocab.add(name, group, source, prompt, description)


# --- 2. Tate subjects ------------------------------------------------------------------------

def harvest_tate(path: Path) -> collections.Counter:
    """Count (top, mid, leaf) subject names over all records."""
    counts: collections.Counter = collections.Counter()
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            subjects = json.loads(line).get("subjects") or {}
            for top in subjects.get("children") or []:
                for mid in top.get("children") or []:
                    for leaf in mid.get("children") or []:
                        counts[(top["name"], mid["name"], leaf["name"])] += 1
    return counts


@dataclass(frozen=True)
class TateCategory:
    top: str
    mid: str
    group: str
    min_count: int
    rule: str


def tate_categories(path: Path = MAPPINGS / "tate_categories.tsv") -> list[TateCategory]:
    categories = []
    for row in _tsv(path):
        top, mid, group, min_count, *rest = row
        categories.append(TateCategory(top, mid, group, int(min_count), rest[0] if rest else ""))
    return categories


def tate_renames(path: Path = MAPPINGS / "tate_renames.tsv") -> dict[tuple[str, str], tuple[str, str, str]]:
    renames = {}
    for row in _tsv(path):
        mid, leaf, name, *rest = row + ["", ""]
        renames[(mid, leaf)] = (name, rest[0], rest[1])
    return renames


def tidy_tate_name(leaf: str, category: TateCategory, architecture_names: set[str]) -> list[str]:
    """Turn a Tate subject name into label names ([] to drop), following the category's rule."""
    name = re.sub(r"\s*-\s*non[- ]specific$", "", leaf).strip()
    if re.search(r"\bchapter\b", name) or re.search(r"'[A-Z]", name):
        return []  # Bible chapter references and quoted titles of named works
    if "/" in name:
        alternatives = [a.strip() for a in name.split("/") if a.strip()]
        names = alternatives if category.rule == "split" else alternatives[:1]
    else:
        names = [name]
    tidied = []
    for name in names:
        if ", " in name:
            head, qualifier = name.split(", ", 1)
            if head in HEAD_DROP:
                name = qualifier
            elif head in QUALIFIER_FIRST:
                name = f"{qualifier} {head}"
            elif head in VESSEL_KINDS:
                name = f"{qualifier} {head}" if qualifier in VESSEL_QUALIFIERS else qualifier
            elif head == "historical":
                name = f"{qualifier} costume"
            elif head == "flag":
                name = f"flag of {qualifier}"
            else:
                continue  # unknown comma form: needs an explicit rename
        if name.startswith("St "):
            name = "Saint " + name[3:]
        if category.rule == "tree" and name not in NOT_TREES:
            name = f"{name} tree"
        elif category.rule == "architecture-style":
            name = f"{name} architecture"
        elif category.rule == "interior" and normalise(name) in architecture_names:
            name = f"{name} interior"
        elif category.rule == "animals":
            name = f"animals {name}"
        tidied.append(name)
    return tidied


def add_tate(vocab: Vocabulary, tate_path: Path) -> None:
    counts = harvest_tate(tate_path)
    categories = tate_categories()
    renames = tate_renames()
    listed = {(c.top, c.mid) for c in categories}
    by_mid: dict[tuple[str, str], list[tuple[int, str]]] = collections.defaultdict(list)
    for (top, mid, leaf), count in counts.items():
        by_mid[(top, mid)].append((count, leaf))
    architecture_names = {normalise(leaf) for (top, _m, leaf) in counts if top == "architecture"}
    for (top, mid) in sorted(by_mid):
        if (top, mid) not in listed:
            vocab.skipped.append(f"Tate category not used: {top} > {mid} ({len(by_mid[(top, mid)])} terms)")
    for category in categories:
        leaves = sorted(by_mid.get((category.top, category.mid), []), key=lambda cl: (-cl[0], cl[1]))
        for count, leaf in leaves:
            if count < category.min_count:
                continue
            rename = (renames.get((f"{category.top} > {category.mid}", leaf)) or renames.get((category.mid, leaf))
                      or renames.get(("*", leaf)))
            group, prompt = category.group, ""
            if rename:
                new_name, new_group, prompt = rename
                if new_name == "-":
                    continue
                names = [n.strip() for n in new_name.split(";")]
                group = new_group or group
            else:
                names = tidy_tate_name(leaf, category, architecture_names)
                if not names:
                    vocab.skipped.append(f"Tate term dropped: {category.mid} > {leaf}")
            description = f"Tate subject {category.top} > {category.mid} > {leaf} ({count} works)"
            for name in names:
                vocab.add(name, group, TATE_SOURCE, prompt, description)


# --- 3-5. class lists shipped with open_clip and torchvision ------------------------------------

# Capitalised words in the ImageNet names that are proper nouns (places, people, brands); every other
# capitalised word ("Beagle", "Terrier") is lower-cased so that names follow the vocabulary's casing.
IMAGENET_PROPER = set("""
Afghan African Airedale Alaskan Alpine American Angora Appenzeller Arctic Asian Australian Band-Aid Bay
Bedlington Bernard Bernese Border Boston Bouvier Brittany CD CRT Cairn Cardigan Carolina Charles Chesapeake
Chihuahua Chin Christmas Clumber Crock Dalmatian Dandie Dane Dinmont Dobermann Dungeness Dutch Egyptian
English Entlebucher European Flandres French Geoffroy's German Gila Gordon Granny Great Greater Groenendael
Highland Ibizan Indian Irish Italian Japanese Kerry King Komodo Labrador Lakeland Leonberger Lhasa Malinois
Maltese Mau Mexican Newfoundland Nile Norfolk Norwegian Norwich Old Pekingese Pembroke Persian Petri
Pickelhaube Polaroid Pomeranian Pot Pyrenees Rhodesian Rottweiler Saharan Saint Samoyed Scottish Sealyham
Shetland Shih Siamese Siberian Smith Staffordshire Sussex Swiss T-shirt Tibetan Tzu Weimaraner Welsh West
Windsor Yorkshire iPod
""".split())


def imagenet_case(name: str) -> str:
    return " ".join(w if w in IMAGENET_PROPER or not w[:1].isupper() else w.lower() for w in name.split())


def add_imagenet(vocab: Vocabulary) -> None:
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    overrides = {int(row[0]): (row + ["", "", ""])[1:4] for row in _tsv(MAPPINGS / "imagenet.tsv")}
    for index, classname in enumerate(IMAGENET_CLASSNAMES):
        name, group, prompt = overrides.get(index, ("", "", ""))
        if name == "-":
            continue
        name = name or imagenet_case(classname.split(" / ")[0])  # "swim trunks / shorts" -> "swim trunks"
        group = group or ("animals" if index < 398 else "objects")
        vocab.add(name, group, IMAGENET_SOURCE, prompt, f"ImageNet-1k class {index}: {classname}")


def add_coco(vocab: Vocabulary) -> None:
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights

    overrides = {row[0]: (row + ["", "", ""])[1:4] for row in _tsv(MAPPINGS / "coco.tsv")}
    for category in FasterRCNN_ResNet50_FPN_Weights.DEFAULT.meta["categories"]:
        if category in ("__background__", "N/A"):
            continue
        name, group, prompt = overrides.get(category, ("", "", ""))
        if name == "-":
            continue
        vocab.add(name or category, group or "objects", COCO_SOURCE, prompt, f"COCO category: {category}")


def add_kinetics(vocab: Vocabulary) -> None:
    from torchvision.models.video import R3D_18_Weights

    excluded = {row[0] for row in _tsv(MAPPINGS / "kinetics_exclude.txt")}
    for action in R3D_18_Weights.DEFAULT.meta["categories"]:
        if action in excluded:
            continue
        vocab.add(action, "activities", KINETICS_SOURCE, "", "")


# --- assembly ----------------------------------------------------------------------------------

def build(tate_path: Path | str) -> Vocabulary:
    vocab = Vocabulary()
    add_curated(vocab)
    add_tate(vocab, Path(tate_path))
    add_imagenet(vocab)
    add_coco(vocab)
    add_kinetics(vocab)
    return vocab


def to_csv(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tate", help="path to the Tate artworks.jsonl.gz")
    parser.add_argument("--out", default=str(LABELS_CSV), help="where to write the CSV (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if --out differs")
    parser.add_argument("--report", action="store_true", help="print merges across groups and dropped terms")
    args = parser.parse_args(argv)

    vocab = build(args.tate)
    text = to_csv(vocab.rows())
    if args.report:
        for line in vocab.merges + vocab.skipped:
            print(line)
    counts = collections.Counter(entry.group for entry in vocab.entries.values())
    print(f"{len(vocab.entries)} labels: " + ", ".join(f"{g} {n}" for g, n in sorted(counts.items())),
          file=sys.stderr)
    out = Path(args.out)
    if args.check:
        current = out.read_text(encoding="utf-8") if out.exists() else ""
        if current != text:
            print(f"{out} is stale: rerun without --check", file=sys.stderr)
            return 1
        print(f"{out} is up to date", file=sys.stderr)
        return 0
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
