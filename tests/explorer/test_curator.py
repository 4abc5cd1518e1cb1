"""Curator workspace and operators' dashboard: permissions, label decisions, prompt labels,
collections and their exports, job control."""
import csv
import io
import json
import re

import pytest
from django.core.management import call_command
from django.test import Client

from archive.models import ArtworkLabel, Collection, Job, JobError, Label, LabelDecision

pytestmark = pytest.mark.django_db


def test_create_roles_command(db):
    from django.contrib.auth.models import Group, User

    out = io.StringIO()
    call_command("create_roles", stdout=out)
    assert set(Group.objects.values_list("name", flat=True)) >= {"curator", "operator"}
    call_command("create_roles", stdout=out)  # idempotent
    User.objects.create_user("ann", password="x-123456789")
    call_command("create_roles", "--curator", "ann", stdout=out)
    assert User.objects.get(username="ann").groups.filter(name="curator").exists()
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("create_roles", "--operator", "nobody", stdout=out)


def test_anonymous_and_visitor_cannot_write(client, archive, visitor):
    artwork, label = archive["artworks"][0], archive["labels"][0]
    r = client.post(f"/artworks/{artwork.pk}/decide/", {"label": label.pk, "decision": "rejected"})
    assert r.status_code == 302 and "/accounts/login/" in r["Location"]
    assert client.get("/curate/labels/new/").status_code == 302
    assert client.post("/collections/save/", {"title": "x", "artwork": [artwork.pk]}).status_code == 302
    assert client.get("/jobs/").status_code == 302
    client.force_login(visitor)
    assert client.post(f"/artworks/{artwork.pk}/decide/", {"label": label.pk, "decision": "rejected"}).status_code == 403
    assert client.get("/jobs/").status_code == 403
    assert client.get("/curate/labels/new/").status_code == 403
    r = client.get("/jobs/")
    assert b"Not allowed" in r.content
    assert not LabelDecision.objects.exists()


def test_staff_counts_as_both(client, archive):
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_user("boss", password="x-123456789", is_staff=True))
    assert client.get("/jobs/").status_code == 200
    assert client.get("/curate/labels/new/").status_code == 200


def test_curator_rejects_accepts_adds_and_undoes(curator_client, archive, curator):
    from archive.models import ArtworkLabel

    artwork = archive["artworks"][3]
    top = ArtworkLabel.objects.filter(artwork=artwork, model=archive["model"]).order_by("rank").first().label
    page = curator_client.get(f"/artworks/{artwork.pk}/").content.decode()
    assert f'aria-label="Reject {top.name}"' in page and 'id="add-label"' in page
    r = curator_client.post(f"/artworks/{artwork.pk}/decide/", {"label": top.pk, "decision": "rejected"})
    assert r.status_code == 302
    d = LabelDecision.objects.get(artwork=artwork, label=top)
    assert d.decision == "rejected" and d.user == curator
    # The curator still sees it (struck through, with Undo); the public does not.
    assert "rejected" in curator_client.get(f"/artworks/{artwork.pk}/").content.decode()
    public = Client().get(f"/artworks/{artwork.pk}/").content.decode().split('id="labels"')[1].split("</section>")[0]
    assert f"/labels/{top.slug}/" not in public
    curator_client.post(f"/artworks/{artwork.pk}/decide/", {"label": top.pk, "decision": "clear"})
    assert not LabelDecision.objects.filter(artwork=artwork, label=top).exists()
    curator_client.post(f"/artworks/{artwork.pk}/decide/", {"label": top.pk, "decision": "accepted"})
    assert LabelDecision.objects.get(artwork=artwork, label=top).decision == "accepted"
    assert curator_client.post(f"/artworks/{artwork.pk}/decide/", {"label": top.pk, "decision": "bogus"}).status_code == 400
    assert curator_client.post(f"/artworks/{artwork.pk}/decide/", {"label": "abc", "decision": "added"}).status_code == 400
    assert curator_client.post(f"/artworks/{artwork.pk}/decide/", {"label": "999999", "decision": "added"}).status_code == 404
    assert curator_client.get(f"/artworks/{artwork.pk}/decide/").status_code == 405


def test_prompt_label_review_and_publish(curator_client, archive, curator):
    r = curator_client.post("/curate/labels/new/", {"name": "Boats at sea", "prompt": "a sailing boat on the sea", "group": "curated"})
    assert r.status_code == 302
    label = Label.objects.get(name="Boats at sea")
    assert not label.published and label.created_by == curator and label.prompt == "a sailing boat on the sea"
    assert Client().get(f"/labels/{label.slug}/").status_code == 404  # draft: hidden from the public
    review = curator_client.get(r["Location"])
    assert review.status_code == 200
    ids = [int(x) for x in re.findall(r'data-id="(\d+)"', review.content.decode())]
    assert len(ids) >= 20
    excluded = ids[0]
    r = curator_client.post(r["Location"], {"action": "publish", "exclude": [excluded]})
    assert r.status_code == 302 and r["Location"] == f"/labels/{label.slug}/"
    label.refresh_from_db()
    assert label.published
    assert LabelDecision.objects.get(label=label, artwork_id=excluded).decision == "rejected"
    # The request only started the job that scores the label over the archive (on a label worker).
    job = Job.objects.get(kind="score_label", params__label_id=label.pk)
    assert job.state == "queued" and job.total == len(archive["artworks"]) and job.created_by == curator
    assert not ArtworkLabel.objects.filter(label=label).exists()
    page = curator_client.get(r["Location"]).content.decode()
    assert f'href="/jobs/{job.pk}/">Job #{job.pk}</a> scores it over the whole archive' in page
    from workers import jobs

    for batch_id in job.batches.values_list("pk", flat=True):
        jobs.run_batch(batch_id)
    job.refresh_from_db()
    assert job.state == "done" and job.done == len(archive["artworks"]), job.message
    assert ArtworkLabel.objects.filter(label=label, model=archive["model"]).count() == len(archive["artworks"])
    html = Client().get(f"/labels/{label.slug}/").content.decode()
    assert f'href="/artworks/{excluded}/"' not in html
    assert re.findall(r'href="/artworks/(\d+)/"', html)
    assert curator_client.post("/curate/labels/new/", {"name": ""}).status_code == 400


def test_collections_save_export_and_permissions(curator_client, archive, curator):
    ids = [a.pk for a in archive["artworks"][:5]]
    r = curator_client.post("/collections/save/", {"title": "Five works", "artwork": ids, "is_public": "on"})
    assert r.status_code == 302
    collection = Collection.objects.get(title="Five works")
    assert list(collection.items.values_list("artwork_id", flat=True)) == ids
    # From a label page (the biggest label: the test model's weights are random).
    from django.db.models import Count

    from archive.models import ArtworkLabel

    biggest = ArtworkLabel.objects.values("label__slug").annotate(n=Count("id")).order_by("-n").first()
    r = curator_client.post("/collections/save/", {"title": "A whole label", "from_label": biggest["label__slug"]})
    assert r.status_code == 302
    assert Collection.objects.get(title="A whole label").items.count() == biggest["n"]
    # Add to an existing collection (no duplicates).
    curator_client.post("/collections/save/", {"collection": collection.slug, "artwork": ids[:2] + [archive["artworks"][9].pk]})
    assert collection.items.count() == 6
    assert curator_client.post("/collections/save/", {"title": "bad", "artwork": ["1; drop"]}).status_code == 400
    assert curator_client.post("/collections/save/", {"title": "empty"}).status_code == 400

    public = Client()
    page = public.get(f"/collections/{collection.slug}/")
    assert page.status_code == 200 and b"Five works" in page.content
    csv_text = public.get(f"/collections/{collection.slug}/export.csv").content.decode()
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert [int(r["id"]) for r in rows] == ids + [archive["artworks"][9].pk]
    assert rows[0]["title"] == archive["artworks"][0].title
    data = json.loads(public.get(f"/collections/{collection.slug}/export.json").content)
    assert len(data["artworks"]) == 6 and data["title"] == "Five works"
    iiif = json.loads(public.get(f"/collections/{collection.slug}/export.iiif.json").content)
    assert iiif["@context"] == "http://iiif.io/api/presentation/3/context.json"
    assert iiif["type"] == "Collection" and len(iiif["items"]) == 6
    first = iiif["items"][0]
    # Each item refers to the artwork's own manifest, where the importer reads it back.
    assert first["type"] == "Manifest" and first["id"] == f"http://testserver/iiif/artwork/{ids[0]}/manifest.json"
    manifest = json.loads(public.get(first["id"]).content)
    body = manifest["items"][0]["items"][0]["items"][0]["body"]
    assert body["type"] == "Image" and body["service"][0]["id"].startswith("https://www.artic.edu/iiif/2/")
    assert public.get(f"/collections/{collection.slug}/export.xml").status_code == 404
    # Private collections are invisible to others; others cannot edit.
    Collection.objects.filter(pk=collection.pk).update(is_public=False)
    assert public.get(f"/collections/{collection.slug}/").status_code == 404
    assert public.post(f"/collections/{collection.slug}/", {"action": "delete"}).status_code == 404
    r = curator_client.post(f"/collections/{collection.slug}/", {"action": "remove", "artwork": [ids[0]]})
    assert r.status_code == 302 and collection.items.count() == 5


def test_job_dashboard_and_controls(operator_client, archive, operator):
    job = Job.objects.create(kind="embed", state="running", total=100, done=40, failed=2, rate=5.0, created_by=operator)
    JobError.objects.create(job=job, item="artwork 1", reason="image missing", artwork=archive["artworks"][0])
    html = operator_client.get("/jobs/").content.decode()
    assert f'/jobs/{job.pk}/' in html and "jobs.js" in html
    html = operator_client.get(f"/jobs/{job.pk}/").content.decode()
    assert "image missing" in html and 'id="job-bar"' in html and "Retry failed items" in html
    r = operator_client.post(f"/jobs/{job.pk}/pause/")
    assert r.status_code == 302
    job.refresh_from_db()
    assert job.state == "paused"
    operator_client.post(f"/jobs/{job.pk}/cancel/")
    job.refresh_from_db()
    assert job.state == "cancelled"
    r = operator_client.post(f"/jobs/{job.pk}/cancel/", follow=True)
    assert b"already cancelled" in r.content
    r = operator_client.post(f"/jobs/{job.pk}/explode/", follow=True)
    assert b"unknown action" in r.content
    r = operator_client.post("/jobs/", {"kind": "nonsense", "mode": "missing"}, follow=True)
    assert b"unknown job kind" in r.content
    r = operator_client.post("/jobs/", {"kind": "import", "mode": "missing"}, follow=True)
    assert b"needs a source" in r.content


def test_collection_page_is_paginated(curator_client, archive, curator):
    from explorer.collecting import PAGE_SIZE, add_items

    collection = Collection.objects.create(title="Many", slug="many", owner=curator, is_public=True)
    ids = [a.pk for a in archive["artworks"]]
    add_items(collection, ids)
    html = Client().get("/collections/many/").content.decode()
    assert f"{len(ids)} artworks" in html
    first = [int(x) for x in re.findall(r'href="/artworks/(\d+)/"', html)]
    assert first == ids[:PAGE_SIZE] if len(ids) > PAGE_SIZE else first == ids
    for garbage in ("abc", "-1", "999999", "1e9", "\x00"):
        assert Client().get("/collections/many/", {"page": garbage}).status_code == 200
    empty = Collection.objects.create(title="Empty", slug="empty", owner=curator, is_public=True)
    assert "This collection is empty" in Client().get(f"/collections/{empty.slug}/").content.decode()


def test_collection_pages_cover_every_item_once(curator_client, archive, curator, monkeypatch):
    from explorer import collecting

    monkeypatch.setattr(collecting, "PAGE_SIZE", 7)
    collection = Collection.objects.create(title="Paged", slug="paged", owner=curator, is_public=True)
    ids = [a.pk for a in archive["artworks"]][::-1]
    collecting.add_items(collection, ids)
    seen, page = [], 1
    while True:
        html = Client().get("/collections/paged/", {"page": page}).content.decode()
        seen += [int(x) for x in re.findall(r'href="/artworks/(\d+)/"', html)]
        if f"?page={page + 1}" not in html:
            break
        page += 1
    assert seen == ids and page == -(-len(ids) // 7)
