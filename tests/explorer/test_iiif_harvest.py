"""Incremental harvest of a IIIF Change Discovery 1.0 stream, served from a local folder with
real manifests (real aic-artwall artworks exported by the archive): the first harvest imports what
the stream lists, the next fetches only the manifests changed since, applies a delete as a
withdrawal that keeps the work and its curator data, and one with nothing new fetches nothing."""
from __future__ import annotations

import functools
import http.server
import json
import threading
from datetime import datetime, timezone

import pytest
from django.test import Client

from archive.importers import changes
from archive.models import Artwork, Collection, HarvestState, Job
from explorer import collecting
from tests.archive.conftest import run_import, settings_for_tests
from tests.explorer.test_iiif_roundtrip import save
from workers.ingest.harvest import harvest

pytestmark = pytest.mark.django_db

T1, T2, T3 = "2026-11-01T10:00:00Z", "2026-11-02T10:00:00Z", "2026-11-03T10:00:00Z"


class _Logging(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requested.append(self.path)
        return super().do_GET()


@pytest.fixture
def logged_dir(tmp_path, settings):
    """(folder, base URL, list of the paths requested) of a local HTTP server for this test."""
    settings.FETCH_ALLOWED_HOSTS = ["127.0.0.1"]
    folder = tmp_path / "www"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Logging, directory=str(folder)))
    server.requested = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}", server.requested
    finally:
        server.shutdown()
        server.server_close()


def activity(n: int, kind: str, manifest: str, when: str, **extra) -> dict:
    return {"id": f"urn:activity:{n}", "type": kind, "object": {"id": manifest, "type": "Manifest"}, "endTime": when, **extra}


def write_stream(folder, base, pages: list[list[dict]]) -> str:
    """The stream's OrderedCollection and its pages (oldest first) under folder/activity/."""
    (folder / "activity").mkdir(exist_ok=True)
    url = f"{base}/activity/all-changes.json"
    context = "http://iiif.io/api/discovery/1/context.json"
    for i, items in enumerate(pages):
        page = {"@context": context, "id": f"{base}/activity/page-{i}.json", "type": "OrderedCollectionPage",
                "partOf": {"id": url, "type": "OrderedCollection"}, "orderedItems": items}
        if i:
            page["prev"] = {"id": f"{base}/activity/page-{i - 1}.json", "type": "OrderedCollectionPage"}
        if i < len(pages) - 1:
            page["next"] = {"id": f"{base}/activity/page-{i + 1}.json", "type": "OrderedCollectionPage"}
        (folder / "activity" / f"page-{i}.json").write_text(json.dumps(page))
    (folder / "activity" / "all-changes.json").write_text(json.dumps({
        "@context": context, "id": url, "type": "OrderedCollection", "totalItems": sum(len(p) for p in pages),
        "first": {"id": f"{base}/activity/page-0.json", "type": "OrderedCollectionPage"},
        "last": {"id": f"{base}/activity/page-{len(pages) - 1}.json", "type": "OrderedCollectionPage"},
    }))
    return url


def manifests_requested(requested) -> list[str]:
    return sorted(p for p in requested if p.endswith("manifest.json"))


def test_harvest_fetches_only_what_changed_and_withdraws_deletes(aic_dir, logged_dir, tmp_path, settings):
    www, base, requested = logged_dir
    settings.MEDIA_ROOT = tmp_path / "media-one"
    job, stats, errors = run_import(aic_dir, limit=6)
    assert errors == [] and stats.done == 6
    settings.IIIF_BASE_URL = base
    client = Client()
    originals = list(Artwork.objects.order_by("id"))
    urls = [save(www, f"{base}/iiif/artwork/{a.pk}/manifest.json", base, client)["id"] for a in originals]
    (www / "media").symlink_to(settings.MEDIA_ROOT, target_is_directory=True)
    paths = [u[len(base):] for u in urls]
    Artwork.objects.all().delete()
    settings.MEDIA_ROOT = tmp_path / "media-two"
    cfg = settings_for_tests()

    # First harvest: everything the stream lists, each manifest once (m0 was created, then updated).
    pages = [
        [activity(1, "Create", urls[0], T1), activity(2, "Create", urls[1], T1), activity(3, "Create", urls[2], T1)],
        [activity(4, "Create", urls[3], T2), activity(5, "Create", urls[4], T2), activity(6, "Update", urls[0], T2)],
    ]
    stream = write_stream(www, base, pages)
    first = harvest(stream, cfg=cfg)
    assert first.job is not None and first.job.state == Job.State.DONE and first.stats.done == 5
    assert manifests_requested(requested) == sorted(paths[:5])
    assert set(Artwork.objects.values_list("iiif_manifest_url", flat=True)) == set(urls[:5])
    state = HarvestState.objects.get(stream_url=stream)
    assert state.last_end_time == datetime(2026, 11, 2, 10, tzinfo=timezone.utc) and state.last_job == first.job
    assert sorted(state.boundary_ids) == ["urn:activity:4", "urn:activity:5", "urn:activity:6"]

    # A curator keeps m2 in a collection; then its source deletes it, revises m1 and adds m5.
    kept = Artwork.objects.get(iiif_manifest_url=urls[2])
    mine = Collection.objects.create(title="Kept", slug="kept")
    collecting.add_items(mine, [kept.pk])
    revised = json.loads((www / paths[1].lstrip("/")).read_text())
    revised["label"] = {"none": ["A revised title"]}
    (www / paths[1].lstrip("/")).write_text(json.dumps(revised))
    untouched = Artwork.objects.get(iiif_manifest_url=urls[0])
    pages.append([activity(7, "Update", urls[1], T3), activity(8, "Delete", urls[2], T3), activity(9, "Create", urls[5], T3)])
    write_stream(www, base, pages)
    requested.clear()
    second = harvest(stream, cfg=cfg)
    assert manifests_requested(requested) == sorted([paths[1], paths[5]])
    assert second.stats.done == 2 and second.withdrawn == 1
    assert Artwork.objects.get(iiif_manifest_url=urls[1]).title == "A revised title"
    assert Artwork.objects.get(iiif_manifest_url=urls[5]).status == Artwork.Status.OK
    kept.refresh_from_db()
    assert kept.metadata["withdrawn"]["activity"] == "Delete" and kept.metadata["withdrawn"]["at"].startswith("2026-11-03")
    assert list(mine.items.values_list("artwork_id", flat=True)) == [kept.pk]  # curator data kept
    assert Artwork.objects.get(pk=untouched.pk).updated_at == untouched.updated_at
    assert Artwork.objects.count() == 6

    # Nothing new: only the stream's pages are read, no manifest, no job.
    requested.clear()
    third = harvest(stream, cfg=cfg)
    assert third.job is None and third.read.activities == 0 and manifests_requested(requested) == []
    assert "/activity/page-0.json" not in requested  # stopped at the older page-1
    # A manifest created again after its delete comes back without the mark.
    pages.append([activity(10, "Create", urls[2], "2026-11-04T10:00:00Z")])
    write_stream(www, base, pages)
    harvest(stream, cfg=cfg)
    kept.refresh_from_db()
    assert "withdrawn" not in kept.metadata
    # --full reads the whole stream again.
    requested.clear()
    full = harvest(stream, cfg=cfg, full=True)
    assert manifests_requested(requested) == sorted(paths)


def test_stream_reading_rules(tmp_path):
    """Newest activity per object wins; Move withdraws the origin and fetches the target; what
    is not understood is skipped with a reason; a broken stream is a clear error."""
    m = [f"https://example.org/m{i}.json" for i in range(5)]
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"type": "OrderedCollectionPage", "orderedItems": [
        activity(1, "Create", m[0], T1), activity(2, "Delete", m[0], T2),            # created then deleted
        activity(3, "Create", m[1], T1),
        activity(4, "Move", m[1], T2, target={"id": m[2], "type": "Manifest"}),      # moved to m2
        activity(5, "Like", m[3], T2),                                                # not Change Discovery
        {"id": "urn:activity:6", "type": "Update", "object": {"id": m[4], "type": "Manifest"}},  # no endTime
        {"id": "urn:activity:7", "type": "Update", "object": {"id": "https://example.org/c", "type": "Canvas"}, "endTime": T2},
    ]}))
    stream = tmp_path / "stream.json"
    stream.write_text(json.dumps({"type": "OrderedCollection", "last": {"id": str(page), "type": "OrderedCollectionPage"}}))
    result = changes.read(str(stream))
    assert [c.object_id for c in result.fetch] == [m[2]]
    assert sorted(c.object_id for c in result.withdraw) == [m[0], m[1]]
    assert len(result.skipped) == 3 and any("'Like'" in s for s in result.skipped) and any("endTime" in s for s in result.skipped)
    assert result.newest == datetime(2026, 11, 2, 10, tzinfo=timezone.utc)
    since = changes.read(str(stream), datetime(2026, 11, 2, 10, tzinfo=timezone.utc), {"urn:activity:2"})
    assert [c.object_id for c in since.withdraw] == [m[1]] and [c.object_id for c in since.fetch] == [m[2]]
    stream.write_text(json.dumps({"type": "Collection"}))
    with pytest.raises(changes.StreamProblem, match="must be an OrderedCollection"):
        changes.read(str(stream))
    stream.write_text(json.dumps({"type": "OrderedCollection", "last": {"id": str(tmp_path / "absent.json")}}))
    with pytest.raises(changes.StreamProblem, match="cannot read"):
        changes.read(str(stream))


def test_the_archives_own_stream_harvests_into_another(aic_dir, logged_dir, tmp_path, settings):
    """/iiif/activity/all-changes.json lists each artwork's newest change; harvested (from a copy
    of the stream and manifests on another server) it brings every work into a cleared archive,
    and after one work changes here, the next harvest fetches only that one."""
    www, base, requested = logged_dir
    settings.MEDIA_ROOT = tmp_path / "media-one"
    run_import(aic_dir, limit=5)
    settings.IIIF_BASE_URL = base
    settings.IIIF_COLLECTION_PAGE_SIZE = 2
    client = Client()

    def publish() -> list[str]:
        response = client.get("/iiif/activity/all-changes.json")
        assert response["Content-Type"] == 'application/ld+json;profile="https://www.w3.org/ns/activitystreams"'
        stream = json.loads(response.content)
        assert stream["type"] == "OrderedCollection" and stream["totalItems"] == 5
        (www / "iiif" / "activity" / "page").mkdir(parents=True, exist_ok=True)
        (www / "iiif" / "activity" / "all-changes.json").write_text(json.dumps(stream))
        objects = []
        for n in range(3):
            page = json.loads(client.get(f"/iiif/activity/page/{n}.json").content)
            assert page["type"] == "OrderedCollectionPage" and len(page["orderedItems"]) <= 2
            assert ("prev" in page) == (n > 0) and ("next" in page) == (n < 2)
            (www / "iiif" / "activity" / "page" / f"{n}.json").write_text(json.dumps(page))
            objects += [a["object"]["id"] for a in page["orderedItems"]]
        assert client.get("/iiif/activity/page/3.json").status_code == 404
        for url in objects:
            save(www, url, base, client)
        return objects

    objects = publish()
    first_ids = sorted(Artwork.objects.values_list("id", flat=True))
    assert sorted(objects) == sorted(f"{base}/iiif/artwork/{pk}/manifest.json" for pk in first_ids)
    if not (www / "media").exists():
        (www / "media").symlink_to(settings.MEDIA_ROOT, target_is_directory=True)
    # The second archive's rows (source "iiif") live beside the first's in this test database.
    stream = f"{base}/iiif/activity/all-changes.json"
    settings.MEDIA_ROOT = tmp_path / "media-two"
    result = harvest(stream, cfg=settings_for_tests(), source_name="elsewhere")
    assert result.stats.done == 5
    assert set(Artwork.objects.filter(source="elsewhere").values_list("iiif_manifest_url", flat=True)) == set(objects)
    # The two archives share this test database: the second's rows are set aside so that the
    # first publishes only its own. One work changes there: its activity becomes the newest, an Update.
    Artwork.objects.filter(source="elsewhere").delete()
    changed = Artwork.objects.filter(pk__in=first_ids).order_by("id").first()
    Artwork.objects.filter(pk=changed.pk).update(title="Renamed here", updated_at=datetime(2030, 1, 1, tzinfo=timezone.utc))
    publish()
    last = json.loads((www / "iiif" / "activity" / "page" / "2.json").read_text())["orderedItems"][-1]
    assert last["type"] == "Update" and last["object"]["id"].endswith(f"/artwork/{changed.pk}/manifest.json")
    requested.clear()
    again = harvest(stream, cfg=settings_for_tests())
    assert manifests_requested(requested) == [f"/iiif/artwork/{changed.pk}/manifest.json"]
    assert again.stats.done == 1
    assert list(Artwork.objects.filter(source="elsewhere").values_list("iiif_manifest_url", "title")) == [
        (last["object"]["id"], "Renamed here")]


def test_harvest_command(tmp_path):
    """``manage.py harvest``: a stream that cannot be read is a clear error and records nothing;
    one with nothing in it says so; ``--list`` shows where each stream stands."""
    from io import StringIO

    from django.core.management import CommandError, call_command

    stream = tmp_path / "stream.json"
    stream.write_text(json.dumps({"type": "Manifest"}))
    with pytest.raises(CommandError, match="must be an OrderedCollection"):
        call_command("harvest", str(stream))
    assert not HarvestState.objects.exists()
    stream.write_text(json.dumps({"type": "OrderedCollection", "totalItems": 0}))
    out = StringIO()
    call_command("harvest", str(stream), stdout=out)
    assert "read 0 new activities" in out.getvalue() and "0 manifests to fetch" in out.getvalue()
    listing = StringIO()
    call_command("harvest", "--list", stdout=listing)
    assert str(stream) in listing.getvalue()
    with pytest.raises(CommandError, match="give the stream"):
        call_command("harvest")
