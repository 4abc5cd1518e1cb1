"""The Iconclass side of the vocabulary: the reader of the CC0 data, the shipped mapping of labels to
notations and the browsable subset of the hierarchy, checked against the real Iconclass files."""
from __future__ import annotations

import csv

import pytest

from workers import vocabulary
from workers.vocabulary import iconclass_map, iconclass_notations, iconclass_slug, iconclass_subjects, load_labels
from workers.vocabulary.iconclass import read_iconclass, uri


@pytest.fixture(scope="module")
def ic(shared_data):
    folder = shared_data / "vocabularies" / "iconclass"
    if not (folder / "notations.txt").is_file():
        pytest.skip(f"real data not available: {folder} has no notations.txt")
    return read_iconclass(folder)


def test_reader_keeps_the_hierarchy_without_placeholders(ic):
    # 11H(...) ("male saints by name") is a placeholder: John the Baptist hangs under 11H itself.
    assert ic.chain("11H(JOHN THE BAPTIST)") == ["11H(JOHN THE BAPTIST)", "11H", "11", "1"]
    assert ic.chain("25F23(LION)") == ["25F23(LION)", "25F23", "25F2", "25F", "25", "2"]
    assert not any(n.endswith("(...)") for n in ic.parents)
    assert [n for n, p in ic.parents.items() if p is None] == [str(d) for d in range(10)]
    assert ic.text("11H") == "saints"
    assert "John the Baptist (St.)" in ic.keywords["11H(JOHN THE BAPTIST)"]
    assert len(ic.parents) > 40_000 - 1_500  # ~40k base notations less the placeholders


def test_reader_names_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="notations.txt"):
        read_iconclass(tmp_path)


def test_every_shipped_notation_exists_in_iconclass(ic):
    mapped = iconclass_notations()
    assert len(mapped) > 1000
    unknown = {name: n for name, n in mapped.items() if n not in ic}
    assert not unknown
    names = {label.name for label in load_labels()}
    assert set(mapped) <= names  # every mapped name is a vocabulary label
    subjects = {s.notation: s for s in iconclass_subjects()}
    for notation in mapped.values():  # each mapped notation is browsable with its whole chain
        for step in ic.chain(notation):
            assert step in subjects
            assert subjects[step].parent == (ic.parents[step] or "")
            assert subjects[step].text == ic.text(step)


def test_shipped_files_are_what_the_build_makes(ic, shared_data):
    rows, subjects = iconclass_map.build(ic)
    assert iconclass_map.to_csv(rows, iconclass_map.MAP_COLUMNS) == iconclass_map.MAP_CSV.read_text(encoding="utf-8")
    assert iconclass_map.to_csv(subjects, iconclass_map.SUBJECT_COLUMNS) == iconclass_map.SUBJECTS_CSV.read_text(encoding="utf-8")
    assert iconclass_map.main([str(shared_data / "vocabularies" / "iconclass"), "--check"]) == 0


def test_known_matches_and_the_method_rules(ic):
    index = iconclass_map.Index(ic)
    assert index.match("Saint John the Baptist", "iconography") == ("11H(JOHN THE BAPTIST)", "text", 0.9)
    assert index.match("lion", "animals")[0] == "25F23(LION)"
    # A keyword that is only an attribute of a notation (lamb of John the Baptist) is not a match for it.
    assert index.match("lamb", "animals")[0] != "11H(JOHN THE BAPTIST)"
    # The disambiguated "crane (machine)" does not fall back on the bird.
    found = index.match("crane (machine)", "objects")
    assert found is None or not found[0].startswith("25F")
    # Outside the group's branches nothing matches: "ermine" the fur is not the animal 25F23(ERMINE).
    found = index.match("ermine", "clothing")
    assert found is None or found[0].startswith("41D")
    assert iconclass_map.normalise("John the Baptist (St.)") == iconclass_map.normalise("Saint John the Baptist")


def test_exceptions_override_and_must_name_real_notations(ic):
    labels = [vocabulary.VocabularyLabel("lion", "lion", "animals", "test"),
              vocabulary.VocabularyLabel("portrait", "portrait", "genres", "test")]
    rows, subjects = iconclass_map.build(ic, labels, {"lion": "", "portrait": "61B"})
    assert [(r["name"], r["notation"], r["match"]) for r in rows] == [("portrait", "61B", "exception")]
    assert [s["notation"] for s in subjects] == ["6", "61", "61B"]
    with pytest.raises(ValueError, match="no such Iconclass notation"):
        iconclass_map.build(ic, labels, {"lion": "25X99(NOTHING)"})


def test_subject_slugs_are_unique_and_stable():
    subjects = iconclass_subjects()
    slugs = [s.slug for s in subjects]
    assert len(slugs) == len(set(slugs))
    assert iconclass_slug("11H(JOHN THE BAPTIST)") == "iconclass-11h-john-the-baptist"
    by = {s.notation: s for s in subjects}
    assert by["11H(JOHN THE BAPTIST)"].name == "11H(JOHN THE BAPTIST) John the Baptist"
    # parents come before their children, so a loader can link them in one pass
    position = {s.notation: i for i, s in enumerate(subjects)}
    assert all(position[s.parent] < position[s.notation] for s in subjects if s.parent)


def test_uri():
    assert uri("11H(JOHN THE BAPTIST)") == "https://iconclass.org/11H(JOHN%20THE%20BAPTIST)"


def test_review_sample_is_recorded_and_matches_the_mapping():
    """The judged sample is the automatic method's (seed 19); where a judgement found a wrong
    mapping an exception now overrides it. docs/labels.md reports the precision computed here."""
    with open(iconclass_map.REVIEW_CSV, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 100 and len({r["name"] for r in rows}) == 100
    assert {r["judgement"] for r in rows} <= {"correct", "wrong", "too broad", "too narrow"}
    mapped, exceptions = iconclass_notations(), iconclass_map.read_exceptions()
    for r in rows:
        if r["name"] in exceptions:
            assert mapped.get(r["name"], "") == exceptions[r["name"]]
        else:
            assert mapped[r["name"]] == r["notation"]
            assert r["judgement"] == "correct", f"{r['name']}: judged {r['judgement']} but has no exception"
    assert round(iconclass_map.precision(rows)["all"], 2) == 0.87
