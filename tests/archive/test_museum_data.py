"""Real museum data in without loss or surprise: nested records, per-file sources, no silent overwrite."""
from __future__ import annotations

import json
import re

import pytest

from archive.importers import mapping as mappings
from archive.models import Artwork, JobError

from .conftest import run_import, write_jpeg

pytestmark = pytest.mark.django_db

# Records shaped like the open-access dumps of three museums (fields as they publish them).
MET = {
    "objectID": 436535, "accessionNumber": "1993.132", "isPublicDomain": True, "primaryImage": "",
    "department": "European Paintings", "objectName": "Painting", "title": "Wheat Field with Cypresses",
    "artistDisplayName": "Vincent van Gogh", "artistRole": "Artist", "artistNationality": "Dutch",
    "objectDate": "1889", "objectBeginDate": 1889, "objectEndDate": 1889, "medium": "Oil on canvas",
    "dimensions": "28 7/8 x 36 3/4 in. (73.2 x 93.4 cm)",
    "creditLine": "Purchase, The Annenberg Foundation Gift, 1993",
    "objectURL": "https://www.metmuseum.org/art/collection/search/436535",
    "tags": [{"term": "Landscapes", "AAT_URL": "http://vocab.getty.edu/page/aat/300132294"}],
}
CLEVELAND = {
    "id": 135382, "accession_number": "1916.1044", "title": "The Jetty at Le Havre",
    "creation_date": "1868", "creation_date_earliest": "1868-01-01", "creation_date_latest": "1870-12-31",
    "creators": [
        {"id": 1, "description": "Claude Monet (French, 1840-1926)", "role": "artist"},
        {"id": 2, "description": "Durand-Ruel", "role": "dealer"},
    ],
    "technique": "oil on canvas", "department": "European Painting and Sculpture", "type": "Painting",
    "credit_line": "Bequest of Mrs. Henry White Cannon", "share_license_status": "CC0",
    "url": "https://clevelandart.org/art/1916.1044",
    "provenance": [{"description": "Durand-Ruel, Paris", "date": "1872"}, {"description": "Mrs. Henry White Cannon", "date": "1916"}],
    "fun_fact": None, "wall_description": "Monet painted the jetty in a storm.",
}
RIJKS = {
    "objectNumber": "SK-C-5", "title": "The Night Watch", "principalOrFirstMaker": "Rembrandt van Rijn",
    "longTitle": "The Night Watch, Rembrandt van Rijn, 1642",
    "dating": {"presentingDate": "1642", "yearEarly": 1642, "yearLate": 1642},
    "productionPlaces": ["Amsterdam"],
}


def test_nested_museum_records_keep_names_roles_dates_and_every_field(tmp_path):
    path = tmp_path / "dump.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (MET, CLEVELAND, RIJKS)) + "\n")
    job, stats, errors = run_import(path)
    assert errors == [] and stats.done == 3
    source = "metadata:dump.jsonl"

    met = Artwork.objects.get(source=source, source_id="436535")
    assert (met.title, met.creator, met.year_start, met.year_end) == ("Wheat Field with Cypresses", "Vincent van Gogh", 1889, 1889)
    assert met.credit_line.startswith("Purchase") and met.source_url.endswith("/436535")
    assert met.metadata["accession_number"] == "1993.132" and met.metadata["department"] == "European Paintings"
    # Fields no mapping names are kept as published, not dropped.
    assert met.metadata["artistNationality"] == "Dutch" and met.metadata["tags"][0]["term"] == "Landscapes"
    assert met.metadata["isPublicDomain"] is True

    cle = Artwork.objects.get(source=source, source_id="135382")
    # A list of objects: names joined with their roles, never a Python repr; the objects kept in metadata.
    assert cle.creator == "Claude Monet (French, 1840-1926) (artist); Durand-Ruel (dealer)"
    assert "{" not in cle.creator and cle.metadata["creator"][1]["role"] == "dealer"
    # ISO dates for the year range.
    assert (cle.display_date, cle.year_start, cle.year_end) == ("1868", 1868, 1870)
    assert cle.metadata["provenance"][0]["description"] == "Durand-Ruel, Paris"
    assert cle.metadata["wall_description"] == "Monet painted the jetty in a storm." and "fun_fact" not in cle.metadata
    assert cle.rights == "CC0" and cle.credit_line == "Bequest of Mrs. Henry White Cannon"

    rijks = Artwork.objects.get(source=source, source_id="SK-C-5")
    assert (rijks.creator, rijks.display_date, rijks.year_start) == ("Rembrandt van Rijn", "1642", 1642)
    assert rijks.metadata["longTitle"].startswith("The Night Watch") and rijks.metadata["productionPlaces"] == ["Amsterdam"]


def test_image_urls_are_found_in_nested_records():
    generic = mappings.load("generic")
    url = "https://openaccess-cdn.clevelandart.org/1916.1044/1916.1044_web.jpg"
    assert mappings.apply(generic, {**CLEVELAND, "images": {"web": {"url": url}}})[3] == [url]
    assert mappings.apply(generic, {**RIJKS, "webImage": {"url": "https://example.org/nw.jpg"}})[3] == ["https://example.org/nw.jpg"]
    assert mappings.apply(generic, {**MET, "primaryImage": "https://images.metmuseum.org/x.jpg"})[3] == ["https://images.metmuseum.org/x.jpg"]


def test_year_fields_that_give_no_year_fall_back_to_the_display_date(tmp_path):
    path = tmp_path / "dates.csv"
    path.write_text(
        "id,title,date,year_start,year_end\n"
        "1,Range,1883-1885,1883-01-01,1885-12-31\n"
        "2,Interval,,1650-01-01/1655-12-31,\n"
        "3,Words,c. 1740,unknown,\n"
    )
    run_import(path)
    years = {a.source_id: (a.year_start, a.year_end) for a in Artwork.objects.filter(source="metadata:dates.csv")}
    assert years == {"1": (1883, 1885), "2": (1650, 1655), "3": (1740, 1740)}


def test_unmapped_fields_can_be_dropped_by_the_mapping(tmp_path):
    spec = tmp_path / "lean.json"
    spec.write_text(json.dumps({"name": "lean", "source": "lean", "id": "id", "fields": {"title": "title"}, "unmapped": "drop"}))
    path = tmp_path / "lean.csv"
    path.write_text("id,title,extra\n1,A,kept?\n")
    run_import(path, mapping=str(spec))
    assert Artwork.objects.get(source="lean", source_id="1").metadata == {"import_origin": str(path.resolve())}
    with pytest.raises(mappings.MappingError, match="unmapped"):
        spec.write_text(json.dumps({"source": "x", "id": "id", "unmapped": "sometimes"}))
        mappings.load(str(spec))


def test_two_generic_files_with_the_same_ids_are_two_sources(tmp_path):
    first, second = tmp_path / "paintings.csv", tmp_path / "prints.csv"
    first.write_text("id,title\n1,A painting\n2,Another painting\n")
    second.write_text("id,title\n1,A print\n")
    _, stats1, _ = run_import(first)
    _, stats2, _ = run_import(second)
    assert (stats1.created, stats2.created, stats2.updated) == (2, 1, 0)
    titles = {(a.source, a.source_id): a.title for a in Artwork.objects.all()}
    assert titles == {
        ("metadata:paintings.csv", "1"): "A painting", ("metadata:paintings.csv", "2"): "Another painting",
        ("metadata:prints.csv", "1"): "A print",
    }
    # Re-running an import is idempotent and says what changed: nothing new.
    _, again, errors = run_import(first)
    assert errors == [] and (again.created, again.updated) == (0, 2) and Artwork.objects.count() == 3


def test_a_file_never_silently_overwrites_what_another_file_imported(tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("id,title\n1,From A\n2,Only in A\n")
    second.write_text("id,title\n1,From B\n3,Only in B\n")
    run_import(first, source_name="collection")
    job, stats, errors = run_import(second, source_name="collection")
    assert Artwork.objects.get(source="collection", source_id="1").title == "From A"
    assert Artwork.objects.get(source="collection", source_id="3").title == "Only in B"
    assert stats.created == 1 and stats.updated == 0 and len(errors) == 1
    assert "was imported from" in errors[0].reason and str(first.resolve()) in errors[0].reason
    assert "--overwrite-other-files" in errors[0].reason and errors[0].artwork_id is not None

    # Asked for explicitly, it updates (and the row now says where it came from).
    _, stats, errors = run_import(second, source_name="collection", overwrite_other=True)
    work = Artwork.objects.get(source="collection", source_id="1")
    assert errors == [] and work.title == "From B" and work.metadata["import_origin"] == str(second.resolve())
    assert JobError.objects.count() == 1  # only the first refusal


def test_the_generic_source_name_comes_from_the_file_name_of_a_url(http_dir):
    folder, base = http_dir
    (folder / "objects.csv").write_text("id,title\n7,Remote\n")
    run_import(f"{base}/objects.csv")
    work = Artwork.objects.get(source_id="7")
    assert work.source == "metadata:objects.csv" and work.metadata["import_origin"] == f"{base}/objects.csv"


# --- metadata after images: enrich -----------------------------------------------------------------

def _scans(tmp_path, n=3):
    """A folder of scans named by inventory number, and the same bytes elsewhere (the catalogue's copies)."""
    scans = tmp_path / "scans"
    for i in range(n):
        write_jpeg(scans / f"INV-{i}.jpg", seed=100 + i)
    return scans


def test_metadata_after_images_enriches_the_scanned_artworks(tmp_path):
    scans = _scans(tmp_path)
    run_import(scans)
    ids = {a.metadata["file_name"]: a.pk for a in Artwork.objects.filter(source="folder")}
    assert len(ids) == 3 and Artwork.objects.get(pk=ids["INV-0.jpg"]).title == "INV-0"
    copies = tmp_path / "catalogue" / "images"
    for name in ids:
        copies.mkdir(parents=True, exist_ok=True)
        (copies / f"copy-{name}").write_bytes((scans / name).read_bytes())
    catalogue = tmp_path / "catalogue" / "catalogue.csv"
    catalogue.write_text(
        "id,title,artist,date,file,credit_line\n"
        "A1,The Harbour,Jane Painter,1883-01-01,images/copy-INV-0.jpg,Gift of the artist\n"
        "A2,The Hill,John Etcher,c. 1900,images/copy-INV-1.jpg,\n"
    )
    job, stats, errors = run_import(catalogue)
    assert errors == [] and (stats.enriched, stats.created, stats.duplicates) == (2, 0, 0)
    assert "2 enriched existing artworks" in job.message
    assert Artwork.objects.count() == 3  # nothing hidden behind a duplicate
    work = Artwork.objects.get(pk=ids["INV-0.jpg"])
    assert (work.title, work.creator, work.year_start, work.credit_line) == ("The Harbour", "Jane Painter", 1883, "Gift of the artist")
    assert work.status == "ok" and work.source == "folder"  # still the scan's row, with its image
    sources = work.metadata["field_sources"]
    assert sources["title"] == sources["creator"] == "metadata:catalogue.csv:A1"
    (entry,) = work.metadata["enriched_from"]
    assert entry["matched_by"] == "image bytes" and entry["item"] == "catalogue.csv row 1"
    assert entry["replaced"] == {"title": "INV-0"} and "creator" in entry["fields"]
    untouched = Artwork.objects.get(pk=ids["INV-2.jpg"])
    assert untouched.title == "INV-2" and "enriched_from" not in untouched.metadata

    # Running it again changes nothing and says so.
    snapshot = {a.pk: (a.title, a.creator, a.metadata) for a in Artwork.objects.all()}
    _, again, errors = run_import(catalogue)
    assert errors == [] and (again.enriched, again.created) == (2, 0)
    assert {a.pk: (a.title, a.creator, a.metadata) for a in Artwork.objects.all()} == snapshot


def test_catalogue_without_images_matches_by_file_name(tmp_path):
    scans = _scans(tmp_path)
    run_import(scans)
    catalogue = tmp_path / "catalogue.json"
    catalogue.write_text(json.dumps([
        {"id": "INV-0", "title": "By its id"},
        {"id": "X9", "title": "By its file column", "file": "elsewhere/INV-1.jpg"},
        {"id": "NEW", "title": "Describes no scan"},
    ]))
    job, stats, errors = run_import(catalogue)
    assert (stats.enriched, stats.created) == (2, 1)
    by_file = {a.metadata.get("file_name"): a for a in Artwork.objects.filter(source="folder")}
    assert by_file["INV-0.jpg"].title == "By its id" and by_file["INV-1.jpg"].title == "By its file column"
    assert by_file["INV-0.jpg"].metadata["enriched_from"][0]["matched_by"] == "file name"
    assert Artwork.objects.get(source="metadata:catalogue.json", source_id="NEW").title == "Describes no scan"
    # The named file could not be read, but the scan it names has the image: no error for it.
    assert errors == []


def test_an_ambiguous_file_name_is_kept_separate_with_its_candidates(tmp_path):
    write_jpeg(tmp_path / "one" / "7.jpg", seed=1)
    write_jpeg(tmp_path / "two" / "7.jpg", seed=2)
    run_import(tmp_path / "one")
    run_import(tmp_path / "two")
    catalogue = tmp_path / "c.csv"
    catalogue.write_text("id,title\n7,Which one?\n")
    _, stats, _ = run_import(catalogue)
    row = Artwork.objects.get(source="metadata:c.csv", source_id="7")
    assert stats.enriched == 0 and len(row.metadata["possible_matches"]) == 2
    assert set(Artwork.objects.filter(source="folder").values_list("title", flat=True)) == {"7"}


def test_on_match_separate_and_skip(tmp_path):
    scans = _scans(tmp_path, n=1)
    run_import(scans)
    catalogue = tmp_path / "c.csv"
    catalogue.write_text(f"id,title,file\nA1,Catalogued,{scans / 'INV-0.jpg'}\n")
    _, stats, _ = run_import(catalogue, on_match="skip")
    assert stats.skipped == 1 and Artwork.objects.count() == 1 and Artwork.objects.get().title == "INV-0"
    _, stats, _ = run_import(catalogue, on_match="separate")
    row = Artwork.objects.get(source="metadata:c.csv")
    assert stats.created == 1 and row.status == "duplicate" and row.duplicate_of.source == "folder"


def test_a_second_catalogue_does_not_silently_overwrite_the_first(tmp_path):
    scans = _scans(tmp_path, n=1)
    run_import(scans)
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text("id,title\nINV-0,First title\n")
    second.write_text("id,title\nINV-0,Second title\n")
    run_import(first)
    _, stats, errors = run_import(second)
    assert Artwork.objects.get().title == "First title" and stats.enriched == 0
    assert len(errors) == 1 and "would overwrite it" in errors[0].reason and str(first.resolve()) in errors[0].reason
    _, stats, errors = run_import(second, overwrite_other=True)
    work = Artwork.objects.get()
    assert errors == [] and work.title == "Second title"
    assert [e["source"] for e in work.metadata["enriched_from"]] == ["metadata:first.csv", "metadata:second.csv"]
    assert work.metadata["field_sources"]["title"] == "metadata:second.csv:INV-0"


def test_real_scans_first_catalogue_later(culturecraft_dir, tmp_path):
    """The curator's workflow on real data: culturecraft's images as a plain folder, then its metadata.csv."""
    images = tmp_path / "scans"
    images.mkdir()
    for i in range(6):
        (images / f"{i}.jpg").write_bytes((culturecraft_dir / "images" / f"{i}.jpg").read_bytes())
    _, scanned, errors = run_import(images)
    assert errors == [] and scanned.created == 6
    job, stats, errors = run_import(culturecraft_dir / "metadata.csv", limit=6)
    assert errors == [] and stats.enriched == 6 and stats.created == 0
    work = Artwork.objects.get(source="folder", source_id="scans/0.jpg")
    assert work.title == "Cystoseira granulata" and work.creator == "Anna Atkins" and work.year_start == 1843
    assert work.metadata["enriched_from"][0]["source"] == "culturecraft"
    assert not Artwork.objects.filter(status="duplicate").exists()


# --- folders of per-object records; no silent empty imports ------------------------------------------

def test_a_folder_of_per_object_tate_json_files_is_imported_as_metadata(tate_dir, tmp_path):
    """Tate's records split one JSON file per object, as museums publish folder dumps."""
    import gzip

    dump = tmp_path / "tate-objects"
    with gzip.open(tate_dir / "artworks.jsonl.gz", "rt", encoding="utf-8") as lines:
        for i, line in zip(range(300), lines):
            record = json.loads(line)
            folder = dump / record["acno"][:2]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{record['acno']}.json").write_text(line)
    from archive.importers import open_source
    from archive.importers.records_folder import RecordsFolderSource

    source = open_source(str(dump))
    assert isinstance(source, RecordsFolderSource) and source.mapping.name == "tate" and source.count() == 300
    job, stats, errors = run_import(dump)
    assert errors == [] and stats.done == 300 and job.state == "done"
    first = Artwork.objects.get(source="tate", source_id="A00001")
    assert first.creator == "Robert Blake" and first.metadata["subjects"]
    assert "warning: none of the 300 records names an image" in job.message
    # Idempotent: the same folder again changes nothing and creates nothing.
    _, again, errors = run_import(dump)
    assert errors == [] and (again.created, again.updated) == (0, 300)


def test_a_folder_of_xml_records_with_ids_from_file_names(tmp_path):
    dump = tmp_path / "lido"
    dump.mkdir()
    (dump / "obj-1.xml").write_text(
        '<?xml version="1.0"?><object xmlns="http://example.org/ns" status="public">'
        "<title>Harbour at dusk</title>"
        "<creator><name>Jane Painter</name><role>painter</role></creator>"
        "<creator><name>Joe Framer</name><role>framer</role></creator>"
        "<date>1883-01-01/1885-12-31</date><inventory>I-1</inventory></object>"
    )
    (dump / "obj-2.json").write_text(json.dumps({"title": "A JSON one", "creator": "Someone"}))
    (dump / "broken.xml").write_text("<object><title>no end")
    (dump / "bomb.xml").write_text('<!DOCTYPE x [<!ENTITY a "aaaa">]><object><title>&a;</title></object>')
    job, stats, errors = run_import(dump)
    source = "metadata:lido"
    xml = Artwork.objects.get(source=source, source_id="obj-1")
    assert (xml.title, xml.creator, xml.year_start, xml.year_end) == ("Harbour at dusk", "Jane Painter (painter); Joe Framer (framer)", 1883, 1885)
    assert xml.metadata["inventory"] == "I-1" and xml.metadata["@status"] == "public"
    assert Artwork.objects.get(source=source, source_id="obj-2").title == "A JSON one"
    reasons = sorted(e.reason for e in errors)
    assert len(reasons) == 2 and "not valid XML" in reasons[1] and "entity declarations" in reasons[0]


def test_an_import_that_finds_nothing_fails_and_says_so(tmp_path):
    empty = tmp_path / "nothing"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    job, stats, errors = run_import(empty)
    assert job.state == "failed" and "found nothing to import" in job.message


def test_metadata_without_images_or_titles_ends_with_a_warning(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("id,heading,picture_ref\n1,Something,p1\n2,Else,p2\n")
    job, stats, errors = run_import(path)
    assert job.state == "done" and stats.done == 2
    assert "warning: none of the 2 records names an image" in job.message
    assert "warning: none of the 2 records has a title" in job.message
    # Nothing was lost: the unrecognised columns are kept.
    assert Artwork.objects.get(source="metadata:odd.csv", source_id="1").metadata["heading"] == "Something"


def test_folder_include_and_exclude_patterns(tmp_path):
    from django.core.management import call_command

    art = tmp_path / "art"
    write_jpeg(art / "a.jpg", seed=1)
    write_jpeg(art / "b.JPG", seed=2)
    write_jpeg(art / "a_detail.jpg", seed=3)
    write_jpeg(art / "crops" / "a-1.jpg", seed=4)
    write_jpeg(art / "sub" / "c.png", seed=5)
    run_import(art, exclude=["crops/*", "*_detail.jpg"])
    assert sorted(Artwork.objects.values_list("source_id", flat=True)) == ["art/a.jpg", "art/b.JPG", "art/sub/c.png"]
    Artwork.objects.all().delete()
    call_command("import", str(art), "--include", "*.jpg", "--exclude", "*_detail.*", verbosity=0)
    assert sorted(Artwork.objects.values_list("source_id", flat=True)) == ["art/a.jpg", "art/b.JPG", "art/crops/a-1.jpg"]


# --- preview and drafted mappings -----------------------------------------------------------------

def test_preview_shows_records_actions_and_field_shares_and_writes_nothing(tmp_path, capsys):
    from django.core.management import call_command

    from archive.models import Job

    scans = _scans(tmp_path, n=2)
    run_import(scans)
    catalogue = tmp_path / "catalogue.csv"
    catalogue.write_text(
        "id,title,artist,date,file,accession\n"
        f"A1,The Harbour,Jane Doe,1883,scans/INV-0.jpg,X.1\n"
        "INV-1,The Hill,,c. 1900,,X.2\n"
        "B7,Not scanned,John Roe,,,X.3\n"
        "B8,,John Roe,,,X.4\n"
    )
    before = (Artwork.objects.count(), Job.objects.count(), sorted(Artwork.objects.values_list("title", flat=True)))
    call_command("import", str(catalogue), "--preview", "3")
    out = capsys.readouterr().out
    assert (Artwork.objects.count(), Job.objects.count(), sorted(Artwork.objects.values_list("title", flat=True))) == before
    assert "nothing is written" in out and "mapping 'generic'" in out
    assert "[1] catalogue.csv row 1 -> metadata:catalogue.csv:A1: enrich #" in out and "matched by image bytes" in out
    assert "matched by file name" in out and "[3] catalogue.csv row 3 -> metadata:catalogue.csv:B7: new" in out
    assert "[4]" not in out and "title: The Harbour" in out and '"accession": "X.1"' in out
    # Shares over every record read (4 here), not only those shown.
    assert re.search(r"title\s+75\.0%", out) and re.search(r"creator\s+75\.0%", out) and re.search(r"image\s+25\.0%", out)
    assert re.search(r"metadata\.accession\s+100\.0%", out) and "Would: enrich 2, new 2" in out


def test_a_mapping_drafted_from_the_columns_imports_the_file(tmp_path, capsys):
    from django.core.management import call_command

    path = tmp_path / "met.jsonl"
    path.write_text(json.dumps({**MET, "primaryImage": ""}) + "\n" + json.dumps({**MET, "objectID": 2, "title": "Second"}) + "\n")
    target = tmp_path / "met-draft.json"
    call_command("import", str(path), "--draft-mapping", str(target))
    draft = json.loads(target.read_text())
    assert draft["id"] == "objectID" and draft["fields"]["title"] == "title" and draft["fields"]["creator"] == "artistDisplayName"
    assert draft["metadata"]["artistNationality"] == "artistNationality" and "title" not in draft["metadata"]
    assert Artwork.objects.count() == 0
    run_import(path, mapping=str(target))
    work = Artwork.objects.get(source="met-draft", source_id="2")
    assert work.title == "Second" and work.creator == "Vincent van Gogh" and work.metadata["artistNationality"] == "Dutch"
