"""The zero-shot label vocabulary: its shipped data, its loader and its build script."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from workers import vocabulary
from workers.vocabulary import (
    REQUIRED_GROUPS,
    VocabularyLabel,
    load_labels,
    normalise_name,
    prompts_for,
    read_labels,
    slugify,
    templates_for,
)
from workers.vocabulary import build

VOCABULARY_DIR = Path(vocabulary.__file__).resolve().parent


@pytest.fixture(scope="module")
def labels() -> list[VocabularyLabel]:
    return load_labels()


def test_vocabulary_has_at_least_4000_labels(labels):
    assert len(labels) >= 4000


def test_every_required_group_is_present_with_real_content(labels):
    counts = {}
    for label in labels:
        counts[label.group] = counts.get(label.group, 0) + 1
    for group in REQUIRED_GROUPS:
        assert counts.get(group, 0) >= 40, f"group {group!r} has only {counts.get(group, 0)} labels"


def test_names_and_slugs_are_unique(labels):
    names = [normalise_name(label.name) for label in labels]
    slugs = [label.slug for label in labels]
    assert len(set(names)) == len(names)
    assert len(set(slugs)) == len(slugs)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug) for slug in slugs)
    # Slugs follow from names alone (no "-2" suffixes), so they stay stable as the vocabulary grows.
    assert [label.slug for label in labels if label.slug != slugify(label.name)] == []


def test_names_are_tidy(labels):
    for label in labels:
        assert label.name == " ".join(label.name.split()), label.name
        assert "non-specific" not in label.name and "/" not in label.name, label.name
        assert ", " not in label.name, f"inverted Tate form left in {label.name!r}"
        assert label.source, f"{label.name!r} has no source"


def test_names_are_lower_case_except_proper_nouns(labels):
    # Activities, moods, colours and materials are plain words; a capital there is a tidying slip.
    plain = [l.name for l in labels if l.group in ("moods", "activities", "techniques") and l.name[:1].isupper()]
    allowed = {"Japanese tea ceremony", "Polaroid photograph"}
    assert set(plain) <= allowed, plain


def test_known_terms_land_in_their_groups(labels):
    by_name = {label.name: label for label in labels}
    expected = {
        "Annunciation": "iconography", "Saint George and the Dragon": "iconography",
        "Judgement of Paris": "iconography", "Crucifixion": "iconography", "vanitas": "genres",
        "still life": "genres", "veduta": "genres", "portrait": "genres", "Baroque": "styles",
        "Impressionism": "styles", "ukiyo-e": "styles", "Art Nouveau": "styles", "Ming dynasty": "periods",
        "Edo period": "periods", "18th century": "periods", "engraving": "techniques", "etching": "techniques",
        "fresco": "techniques", "impasto": "techniques", "oil on canvas": "materials", "bronze": "materials",
        "porcelain": "materials", "calm": "moods", "melancholy": "moods", "stormy": "moods", "joyful": "moods",
        "saint": "people", "shepherd": "people", "soldier": "people", "nun": "people", "child": "people",
        "harbour": "places", "battlefield": "places", "dancing": "activities", "reading": "activities",
        "hunting": "activities", "old man": "people", "crane (bird)": "animals", "crane (machine)": "objects",
        "orange (colour)": "colours", "orange": "food",
    }
    for name, group in expected.items():
        assert name in by_name, f"{name!r} missing"
        assert by_name[name].group == group, f"{name!r} is in {by_name[name].group}, expected {group}"
    # Tate's inverted names are tidied and ambiguous words are disambiguated by a prompt.
    assert "man, old" not in by_name
    assert by_name["crane (bird)"].prompt == "a crane, the bird"


def test_sources_say_where_terms_come_from(labels):
    sources = {part for label in labels for part in label.source.split("; ")}
    assert build.TATE_SOURCE in sources
    assert build.IMAGENET_SOURCE in sources
    assert build.COCO_SOURCE in sources
    assert any(source.startswith("curated: ") for source in sources)
    tate = [label for label in labels if label.source.startswith(build.TATE_SOURCE)]
    assert len(tate) > 1500
    assert all(label.description.startswith("Tate subject ") for label in tate)


def test_every_group_has_a_template_ensemble(labels):
    raw = json.loads((VOCABULARY_DIR / "templates.json").read_text(encoding="utf-8"))
    for group in {label.group for label in labels} | {"default"}:
        assert group in raw, f"no templates for group {group!r}"
        templates = templates_for(group)
        assert 5 <= len(templates) <= 10, group
        assert all(template.count("{}") == 1 for template in templates), group
    assert "a painting in the style of {}." in templates_for("styles")
    assert "an artwork from the {}." in templates_for("periods")
    assert "a {} painting." in templates_for("moods")
    assert templates_for("a group nobody made") == templates_for("default")


def test_prompts_use_the_prompt_where_there_is_one(labels):
    by_name = {label.name: label for label in labels}
    assert "a painting in the style of Baroque." in prompts_for(by_name["Baroque"])
    crane = prompts_for(by_name["crane (bird)"])
    assert crane[0] == templates_for("animals")[0].replace("{}", "a crane, the bird")
    assert all("(bird)" not in prompt for prompt in crane)


def test_slugify_folds_accents_and_keeps_slugs_unique():
    taken: set[str] = set()
    assert slugify("Saint George and the Dragon", taken) == "saint-george-and-the-dragon"
    assert slugify("Château Gaillard", taken) == "chateau-gaillard"
    assert slugify("crane (bird)", taken) == "crane-bird"
    assert slugify("Crane (bird)", taken) == "crane-bird-2"
    assert slugify("crane bird", taken) == "crane-bird-3"
    assert slugify("???", taken) == "label"
    assert slugify("x" * 400, taken) == "x" * 255
    assert slugify("x" * 400, taken) == "x" * 253 + "-2"


def test_reading_a_csv_with_a_duplicate_names_the_line(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("name,group,source,prompt,description\nswan,animals,test,,\nSwan ,animals,test,,\n")
    with pytest.raises(ValueError, match=r"labels.csv:3: duplicate label 'Swan'"):
        read_labels(path)
    path.write_text("name,group,source,prompt,description\n,animals,test,,\n")
    with pytest.raises(ValueError, match="needs a name and a group"):
        read_labels(path)


def test_curated_lists_name_their_reference():
    for path in sorted((VOCABULARY_DIR / "curated").glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        assert re.search(r"^# source: curated: .+", text, re.M), f"{path.name} has no '# source: curated:' line"


def test_build_refuses_two_names_with_one_slug():
    vocab = build.Vocabulary()
    vocab.add("fleur de lis", "plants", "test")
    vocab.add("fleur-de-lis", "symbols", "test")
    with pytest.raises(ValueError, match="share the slug 'fleur-de-lis'"):
        vocab.rows()


def test_curated_lists_parse_into_their_groups(tmp_path):
    folder = tmp_path / "curated"
    folder.mkdir()
    (folder / "moods.txt").write_text("# source: curated: test list\nserene\nwistful | gently wistful\n")
    vocab = build.Vocabulary()
    build.add_curated(vocab, folder)
    rows = vocab.rows()
    assert [(r["name"], r["group"], r["source"], r["prompt"]) for r in rows] == [
        ("serene", "moods", "curated: test list", ""),
        ("wistful", "moods", "curated: test list", "gently wistful"),
    ]


def test_tate_names_are_tidied_by_rule():
    category = build.TateCategory("nature", "trees", "plants", 1, "tree")
    assert build.tidy_tate_name("oak", category, set()) == ["oak tree"]
    assert build.tidy_tate_name("branch", category, set()) == ["branch"]
    people = build.TateCategory("people", "adults", "people", 1, "")
    assert build.tidy_tate_name("woman, old", people, set()) == ["old woman"]
    assert build.tidy_tate_name("figure - non-specific", people, set()) == ["figure"]
    work = build.TateCategory("work and occupations", "domestic", "people", 1, "split")
    assert build.tidy_tate_name("waiter / waitress", work, set()) == ["waiter", "waitress"]
    objects = build.TateCategory("objects", "fine arts and music", "objects", 1, "")
    assert build.tidy_tate_name("instrument, lute", objects, set()) == ["lute"]
    assert build.tidy_tate_name("Warhol, Andy, print, 'Mao'", objects, set()) == []
    interiors = build.TateCategory("interiors", "religious", "interiors", 1, "interior")
    assert build.tidy_tate_name("church", interiors, {"church"}) == ["church interior"]


def test_build_on_the_real_tate_file_reproduces_the_committed_csv(tate_dir):
    tate_file = tate_dir / "artworks.jsonl.gz"
    if not tate_file.exists():
        pytest.skip(f"real data not available: {tate_file} is missing")
    vocab = build.build(tate_file)
    rebuilt = build.to_csv(vocab.rows())
    committed = (VOCABULARY_DIR / "labels.csv").read_text(encoding="utf-8")
    assert rebuilt == committed, "labels.csv is stale: run python -m workers.vocabulary.build " + str(tate_file)
    assert len(list(csv.DictReader(rebuilt.splitlines()))) == len(load_labels())


def test_the_documented_group_counts_match_the_csv(labels):
    doc = (VOCABULARY_DIR.parents[1] / "docs" / "vocabulary.md").read_text(encoding="utf-8")
    table = doc.split("## Groups", 1)[1].split("\n\n", 2)[1]
    documented = {m[1]: int(m[2]) for m in re.finditer(r"^\| (\w+) \| (\d+) \|", table, re.M)}
    actual: dict[str, int] = {}
    for label in labels:
        actual[label.group] = actual.get(label.group, 0) + 1
    assert documented == actual, "docs/vocabulary.md group table is out of date"


@pytest.mark.django_db
def test_every_label_fits_the_archive_label_table(labels):
    from archive.models import Label

    Label.objects.bulk_create(
        Label(name=l.name, slug=l.slug, group=l.group, source=l.source, prompt=l.prompt, description=l.description)
        for l in labels
    )
    assert Label.objects.count() == len(labels)
    assert Label.objects.filter(group="iconography", name="Annunciation").exists()
