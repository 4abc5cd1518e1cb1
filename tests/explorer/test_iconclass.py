"""Iconclass subjects as browsable labels: loaded with their parent links from the shipped subset,
given to artworks through the vocabulary labels mapped to them (counts rolling up the hierarchy),
and shown with their notation on label pages, in the API and in the collection exports."""
import csv
import io
import json

import pytest

from archive import iconclass_rows, label_counts
from archive.models import ArtworkLabel, Collection, Label, LabelDecision
from archive.models.labels import ICONCLASS_GROUP
from explorer import browse
from workers.vocabulary import iconclass_notations, iconclass_subjects

pytestmark = pytest.mark.django_db

MAPPED = ("horse", "dog", "bird")  # fixture labels, given their notations from the shipped mapping


@pytest.fixture(scope="module")
def iconclass(archive, django_db_blocker):
    from workers.labeling.vocabulary import load_iconclass

    notations = iconclass_notations()
    with django_db_blocker.unblock():
        counts = load_iconclass()
        for label in archive["labels"]:
            if label.name in MAPPED:
                Label.objects.filter(pk=label.pk).update(notation=notations[label.name])
        iconclass_rows.derive(archive["model"].pk)
    yield {"counts": counts, "notations": {name: notations[name] for name in MAPPED}}
    with django_db_blocker.unblock():
        Label.objects.filter(group=ICONCLASS_GROUP).delete()
        Label.objects.filter(pk__in=[l.pk for l in archive["labels"]]).update(notation="")
        label_counts.refresh(archive["model"].pk)


def subject(notation: str) -> Label:
    return Label.objects.get(group=ICONCLASS_GROUP, notation=notation)


def chain(label: Label) -> list[str]:
    out = []
    while label is not None:
        out.append(label.notation)
        label = label.parent
    return out


def expected_rows(model) -> set[tuple[int, str]]:
    """(artwork, Iconclass notation) the slow, obvious way: each shown mapped label's subject and
    its ancestors (the fixture's labels have no thresholds, so every row is shown)."""
    decisions = {(d.artwork_id, d.label_id): d.decision for d in LabelDecision.objects.all()}
    shown = set()
    for row in ArtworkLabel.objects.filter(model=model, rank__gt=0).exclude(label__notation="").select_related("label"):
        if decisions.get((row.artwork_id, row.label_id)) != "rejected":
            shown.add((row.artwork_id, row.label))
    for (artwork_id, label_id), decision in decisions.items():
        label = Label.objects.get(pk=label_id)
        if decision in ("added", "accepted") and label.notation and label.group != ICONCLASS_GROUP:
            shown.add((artwork_id, label))
    out = set()
    for artwork_id, label in shown:
        for notation in chain(subject(label.notation)):
            out.add((artwork_id, notation))
    return out


def derived_rows(model) -> set[tuple[int, str]]:
    return set(ArtworkLabel.objects.filter(model=model, label__group=ICONCLASS_GROUP).values_list("artwork_id", "label__notation"))


def assert_counts_exact(model):
    counts = label_counts.counts(model.pk)
    want: dict[str, set] = {}
    for artwork_id, notation in expected_rows(model):
        want.setdefault(notation, set()).add(artwork_id)
    for label in Label.objects.filter(group=ICONCLASS_GROUP).only("id", "notation"):
        assert counts.get(label.pk, 0) == len(want.get(label.notation, ())), label.notation


def test_subjects_load_with_their_hierarchy(archive, iconclass):
    assert iconclass["counts"]["created"] == len(iconclass_subjects()) > 2000
    assert chain(subject("11H(JOHN THE BAPTIST)")) == ["11H(JOHN THE BAPTIST)", "11H", "11", "1"]
    john = subject("11H(JOHN THE BAPTIST)")
    assert john.name == "11H(JOHN THE BAPTIST) John the Baptist" and john.slug == "iconclass-11h-john-the-baptist"
    assert john.iconclass_uri == "https://iconclass.org/11H(JOHN%20THE%20BAPTIST)"
    assert subject("1").parent is None
    # A second load changes nothing; Iconclass subjects are never embedded for CLIP scoring.
    from workers.labeling.vocabulary import load_iconclass

    again = load_iconclass()
    assert again["created"] == again["updated"] == again["parents"] == 0
    from archive.models import LabelEmbedding
    from workers.labeling.text import ensure_label_embeddings

    ensure_label_embeddings(archive["model"])  # what the label job's first batch does
    assert not LabelEmbedding.objects.filter(label__group=ICONCLASS_GROUP).exists()


def test_artworks_get_the_mapped_subjects_and_their_ancestors(archive, iconclass):
    model = archive["model"]
    rows = derived_rows(model)
    assert rows and rows == expected_rows(model)
    # Counts roll up: "25F" (animals) holds each artwork shown under bird (25F3) once.
    bird = Label.objects.get(slug="bird")
    birds = set(ArtworkLabel.objects.filter(model=model, label=bird).values_list("artwork_id", flat=True))
    assert birds
    assert label_counts.counts(model.pk)[subject("25F").pk] == len(birds)
    assert label_counts.counts(model.pk)[subject("2").pk] == len(birds)  # nothing else mapped under Nature
    assert_counts_exact(model)
    # The derived rows sit outside the top-k (rank 0) with the best score of the labels behind them.
    row = ArtworkLabel.objects.filter(model=model, label=subject("25F3")).first()
    assert row.rank == 0
    assert row.score == ArtworkLabel.objects.get(model=model, label=bird, artwork_id=row.artwork_id).score


def test_decisions_and_label_batches_keep_them_exact(archive, iconclass, curator):
    from workers.labeling import label_artworks

    model, artworks = archive["model"], archive["artworks"]
    bird, dog = Label.objects.get(slug="bird"), Label.objects.get(slug="dog")
    with_bird = ArtworkLabel.objects.filter(model=model, label=bird).values_list("artwork_id", flat=True).first()
    browse.decide(artworks[0].__class__.objects.get(pk=with_bird), bird, "rejected", curator)
    assert (with_bird, "25F3") not in derived_rows(model)
    without_dog = next(a for a in artworks if not ArtworkLabel.objects.filter(model=model, label=dog, artwork=a).exists())
    browse.decide(without_dog, dog, "added", curator)
    assert (without_dog.pk, dog.notation) in derived_rows(model)
    assert ArtworkLabel.objects.get(model=model, artwork=without_dog, label=subject(dog.notation)).score == 1.0
    assert derived_rows(model) == expected_rows(model)
    assert_counts_exact(model)
    # The real label stage rewrites a batch's top-k and, in the same transaction, its subjects.
    label_artworks([a.pk for a in artworks[:30]], model, k=3)
    assert derived_rows(model) == expected_rows(model)
    assert_counts_exact(model)


def test_label_pages_show_notation_link_chain_and_children(client, archive, iconclass):
    bird_subject = subject("25F3")
    page = client.get(f"/labels/{bird_subject.slug}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'href="https://iconclass.org/25F3"' in html
    assert f'href="/labels/{subject("25F").slug}/"' in html and f'href="/labels/{subject("2").slug}/"' in html
    assert 'href="/labels/bird/"' in html  # the vocabulary label mapped here
    assert bird_subject.children.exists()
    child = bird_subject.children.order_by("notation").first()
    assert f'href="/labels/{child.slug}/"' in html
    # The label's artworks are listed (derived rows), as on any label page.
    model = archive["model"]
    shown = ArtworkLabel.objects.filter(model=model, label=bird_subject).order_by("-score").values_list("artwork_id", flat=True)[0]
    assert f'href="/artworks/{shown}/"' in html
    broad = client.get(f"/labels/{subject('2').slug}/").content.decode()
    assert f'href="/labels/{subject("25").slug}/"' in broad  # a narrower subject
    vocab = client.get("/labels/bird/").content.decode()
    assert 'href="https://iconclass.org/25F3"' in vocab and f'href="/labels/{bird_subject.slug}/"' in vocab
    listing = client.get("/labels/", {"group": ICONCLASS_GROUP}).content.decode()
    assert bird_subject.name in listing


def test_api_and_artwork_pages_carry_notations(client, archive, iconclass):
    data = client.get("/api/v1/labels/bird/").json()
    assert data["notation"] == "25F3" and data["iconclass_uri"] == "https://iconclass.org/25F3"
    sub = client.get(f"/api/v1/labels/{subject('25F3').slug}/").json()
    assert sub["group"] == ICONCLASS_GROUP and sub["parent"] == subject("25F").slug and sub["count"] > 0
    found = client.get("/api/v1/labels/", {"notation": "25F3"}).json()
    assert {r["slug"] for r in found["results"]} == {"bird", subject("25F3").slug}
    model = archive["model"]
    artwork_id = ArtworkLabel.objects.filter(model=model, label__slug="bird").values_list("artwork_id", flat=True).first()
    labels = client.get(f"/api/v1/artworks/{artwork_id}/").json()["labels"]
    by_slug = {l["slug"]: l for l in labels}
    assert by_slug["bird"]["notation"] == "25F3"
    assert by_slug[subject("25F").slug]["iconclass_uri"] == "https://iconclass.org/25F"
    html = client.get(f"/artworks/{artwork_id}/").content.decode()
    assert 'href="https://iconclass.org/25F3"' in html


def test_collection_exports_carry_notations(client, archive, iconclass, curator):
    from explorer import collecting

    model = archive["model"]
    artwork_id = ArtworkLabel.objects.filter(model=model, label__slug="bird").values_list("artwork_id", flat=True).first()
    collection = collecting.create_collection("Birds", curator, [artwork_id], is_public=True)
    try:
        data = json.loads(client.get(f"/collections/{collection.slug}/export.json").content)
        record = data["artworks"][0]
        assert {"25F3", "25F", "25", "2"} <= set(record["iconclass"])
        assert {l["notation"] for l in record["labels"] if l["slug"] == "bird"} == {"25F3"}
        rows = list(csv.DictReader(io.StringIO(client.get(f"/collections/{collection.slug}/export.csv").content.decode())))
        assert "25F3" in rows[0]["iconclass"].split("; ") and "bird" in rows[0]["labels"].split("; ")
    finally:
        Collection.objects.filter(pk=collection.pk).delete()


def test_refresh_command_derives_again_and_reset_clears(archive, iconclass):
    from django.core.management import call_command

    from workers.labeling.store import delete_rows

    model = archive["model"]
    iconclass_rows.clear(model.pk)
    assert not derived_rows(model)
    call_command("refresh_label_counts", stdout=io.StringIO())
    assert derived_rows(model) == expected_rows(model) != set()
    assert_counts_exact(model)
    delete_rows(model.pk)  # the label stage's reset takes the derived rows with the top-k
    assert not derived_rows(model)
    assert label_counts.counts(model.pk).get(subject("2").pk, 0) == 0


def test_manifest_label_annotations_carry_the_iconclass_identifier(client, archive, iconclass):
    from explorer.iiif import check

    model = archive["model"]
    artwork_id = ArtworkLabel.objects.filter(model=model, label__slug="bird").values_list("artwork_id", flat=True).first()
    response = client.get(f"/iiif/artwork/{artwork_id}/manifest.json")
    assert response.status_code == 200
    manifest = json.loads(response.content)
    assert check.problems(manifest) == []
    items = manifest["items"][0]["annotations"][0]["items"]
    by_name = {}
    for annotation in items:
        bodies = annotation["body"] if isinstance(annotation["body"], list) else [annotation["body"]]
        by_name[bodies[0]["value"]] = bodies
    bird = by_name["bird"]
    assert bird[1]["id"] == "https://iconclass.org/25F3" and bird[1]["purpose"] == "classifying"
    assert bird[1]["label"] == {"none": ["25F3"]}
    animals = by_name[subject("25F").name]
    assert animals[1]["id"] == "https://iconclass.org/25F"
    unmapped = [bodies for name, bodies in by_name.items() if name in ("portrait", "landscape", "ship", "flower")]
    assert all(len(bodies) == 1 for bodies in unmapped)  # no notation in this fixture: the name alone


def test_search_label_filter_takes_an_iconclass_subject(archive, iconclass):
    from explorer import search as search_mod
    from explorer.search import Filters

    model = archive["model"]
    animals = subject("25F")
    bird = Label.objects.get(slug="bird")
    got = set(Filters(label=animals.slug).apply(search_mod.base_queryset(), model).values_list("id", flat=True))
    assert got == set(ArtworkLabel.objects.filter(model=model, label=bird).values_list("artwork_id", flat=True)) != set()
