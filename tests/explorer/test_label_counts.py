"""Stored per-label counts (archive.label_counts) stay equal to what the label pages list, through
the label stage's own writes, curator decisions, threshold changes and resets; and the pages that
show counts read the stored table, never the label rows."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from archive import label_counts
from archive.models import ArtworkLabel, Label, LabelCount, LabelDecision
from explorer import browse

pytestmark = pytest.mark.django_db


def expected_counts(model) -> dict[int, int]:
    """Counted the slow, obvious way: every label's shown artworks, from the rows themselves."""
    thresholds = label_counts.effective_thresholds(model.pk)
    decisions = {(d.artwork_id, d.label_id): d.decision for d in LabelDecision.objects.all()}
    out = {label_id: 0 for label_id in thresholds}
    for row in ArtworkLabel.objects.filter(model=model):
        threshold = thresholds[row.label_id]
        if (row.artwork_id, row.label_id) not in decisions and (threshold is None or row.score >= threshold):
            out[row.label_id] += 1
    for (_, label_id), decision in decisions.items():
        if decision in ("added", "accepted"):
            out[label_id] += 1
    return out


def stored(model) -> dict[int, int]:
    counts = label_counts.counts(model.pk)
    return {label_id: counts.get(label_id, 0) for label_id in label_counts.effective_thresholds(model.pk)}


def test_label_stage_batches_keep_counts_exact(archive, curator):
    from workers.labeling import label_artworks

    model, artworks = archive["model"], archive["artworks"]
    assert stored(model) == expected_counts(model)
    # A curator decision first, so the batches must leave decided pairs out of the machine count.
    top = ArtworkLabel.objects.filter(artwork=artworks[3], model=model).order_by("rank").first()
    browse.decide(artworks[3], top.label, "rejected", curator)
    # The real label stage relabels two batches (its top-k replaces the fixture's rows: k differs).
    label_artworks([a.pk for a in artworks[:25]], model, k=3)
    assert stored(model) == expected_counts(model)
    label_artworks([a.pk for a in artworks[20:]], model, k=7)
    assert stored(model) == expected_counts(model)
    assert ArtworkLabel.objects.filter(model=model, artwork=artworks[0]).count() == 3


def test_threshold_change_is_recounted_by_the_next_batch(archive):
    from workers.labeling import label_artworks

    model, artworks = archive["model"], archive["artworks"]
    label = archive["labels"][0]
    scores = sorted(ArtworkLabel.objects.filter(model=model, label=label).values_list("score", flat=True))
    assert len(scores) >= 4
    Label.objects.filter(pk=label.pk).update(threshold=scores[len(scores) // 2])
    # Until something recounts it the stored row says which threshold it was made with ...
    assert LabelCount.objects.get(model=model, label=label).threshold is None
    # ... and the label page does not trust it: it counts now.
    fresh = Label.objects.get(pk=label.pk)
    assert browse.label_count(fresh, model.pk) == expected_counts(model)[label.pk] < len(scores)
    # The next batch of the label stage (any artworks) recounts the stale label first.
    label_artworks([artworks[0].pk], model, k=5)
    assert stored(model) == expected_counts(model)
    assert LabelCount.objects.get(model=model, label=label).threshold == scores[len(scores) // 2]


def test_decisions_recount_their_label(archive, curator):
    model, artworks, labels = archive["model"], archive["artworks"], archive["labels"]
    row = ArtworkLabel.objects.filter(model=model, artwork=artworks[5]).order_by("rank").first()
    missing = Label.objects.filter(pk__in=[l.pk for l in labels]).exclude(
        pk__in=ArtworkLabel.objects.filter(artwork=artworks[5], model=model).values("label_id")).first()
    before = stored(model)
    browse.decide(artworks[5], row.label, "rejected", curator)
    assert stored(model)[row.label_id] == before[row.label_id] - 1
    browse.decide(artworks[5], missing, "added", curator)
    assert stored(model)[missing.pk] == before[missing.pk] + 1
    browse.decide(artworks[5], row.label, "accepted", curator)
    browse.decide(artworks[5], missing, "clear", curator)
    assert stored(model) == expected_counts(model) == before


def test_reset_leaves_curated_counts_and_refresh_command(archive, curator):
    from django.core.management import call_command

    from workers.labeling.store import delete_rows

    model, artworks, labels = archive["model"], archive["artworks"], archive["labels"]
    browse.decide(artworks[1], labels[4], "added", curator)
    delete_rows(model.pk)  # the label stage's reset
    assert stored(model) == expected_counts(model)
    assert stored(model)[labels[4].pk] == 1 and sum(stored(model).values()) == 1
    LabelCount.objects.filter(model=model).update(count=999)
    call_command("refresh_label_counts", "--model", model.key, stdout=open("/dev/null", "w"))
    assert stored(model) == expected_counts(model)


def test_count_pages_read_no_label_rows(client, archive):
    for url in ("/", "/labels/", "/api/v1/labels/", "/api/v1/stats/", f"/labels/{archive['labels'][0].slug}/?partial=1"):
        client.get(url)  # warm caches that are not the point here
    for url in ("/", "/labels/", "/api/v1/labels/?limit=100", "/api/v1/stats/"):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        scans = [q["sql"] for q in queries.captured_queries if "archive_artworklabel" in q["sql"]]
        assert not scans, (url, scans)
    # The label page's headline count is the stored one while its threshold is current.
    label = archive["labels"][0]
    with CaptureQueriesContext(connection) as queries:
        html = client.get(f"/labels/{label.slug}/").content.decode()
    assert f"{LabelCount.objects.get(label=label).count} artwork" in html
    assert not [q for q in queries.captured_queries if "count(*)" in q["sql"].lower() and "archive_artworklabel" in q["sql"]]
