"""The explorer's ways in beyond labels on the small real archive: search by colour (page and
API, with filters, bad input as a clear 400), swatches and "more in these colours" on the
artwork page, the OpenAPI schema."""
from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from archive.models import ArtworkPalette
from tests.explorer.sql_plans import plan_of

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def palettes(archive, django_db_blocker, tmp_path_factory):
    """The palette stage over the archive (its derivatives are in the session's MEDIA_ROOT)."""
    from django.conf import settings

    from workers import palettes as stage

    old, settings.MEDIA_ROOT = settings.MEDIA_ROOT, tmp_path_factory.getbasetemp() / "media"
    try:
        with django_db_blocker.unblock():
            ids = [a.pk for a in archive["artworks"]]
            result = stage.process(ids, {})
            assert result.done == ids, result.errors[:3]
            rows = {r.artwork_id: r.colours for r in ArtworkPalette.objects.filter(artwork_id__in=ids)}
    finally:
        settings.MEDIA_ROOT = old
    return rows


def dominant(palettes):
    """The artwork most covered by one colour, and that colour."""
    artwork_id = max(palettes, key=lambda a: palettes[a][0]["share"])
    return artwork_id, palettes[artwork_id][0]["hex"]


def test_colour_page_finds_the_painting_dominated_by_the_colour(client, palettes):
    artwork_id, hex_colour = dominant(palettes)
    r = client.get("/colours/", {"colour": [hex_colour, "#000000", "#ffffff"], "amount": ["100", "0", "0"]})
    assert r.status_code == 200
    found = [a.pk for a, _ in r.context["found"]]
    assert found[0] == artwork_id
    assert f'href="/artworks/{artwork_id}/"' in r.content.decode()
    assert r.context["query"].hexes == (hex_colour,)


def test_colour_page_within_a_filter_and_with_bad_input(client, palettes, archive):
    artwork_id, hex_colour = dominant(palettes)
    r = client.get("/colours/", {"colours": hex_colour.lstrip("#"), "classification": "detail"})
    assert r.status_code == 200
    kinds = {a.classification for a, _ in r.context["found"]}
    assert kinds == {"detail"}
    r = client.get("/colours/", {"colours": "#zzzzzz"})
    assert r.status_code == 400 and "not a colour" in r.content.decode()
    assert client.get("/colours/").status_code == 200  # the empty form


def test_artwork_page_shows_swatches_and_more_in_these_colours(client, palettes):
    artwork_id = next(iter(palettes))
    r = client.get(f"/artworks/{artwork_id}/")
    html = r.content.decode()
    assert r.status_code == 200 and 'id="palette"' in html
    for c in palettes[artwork_id]:
        assert c["hex"] in html
    more = r.context["more_in_colours"]
    assert more.startswith("/colours/?colours=")
    r = client.get(more)
    assert r.status_code == 200 and artwork_id in [a.pk for a, _ in r.context["found"]][:3]


def test_colour_search_api(client, palettes):
    artwork_id, hex_colour = dominant(palettes)
    r = client.get("/api/v1/search/colour/", {"colours": hex_colour, "limit": 5})
    assert r.status_code == 200
    data = r.json()
    assert data["colours"] == [hex_colour] and data["amounts"] == [1.0]
    assert data["results"][0]["artwork"]["id"] == artwork_id and len(data["results"]) == 5
    scores = [row["score"] for row in data["results"]]
    assert scores == sorted(scores, reverse=True)
    assert data["next"] and "offset=5" in data["next"]
    two = client.get("/api/v1/search/colour/", {"colours": f"{hex_colour},#1f3a80", "amounts": "80,20", "year_to": 1700}).json()
    assert two["amounts"] == [0.8, 0.2]
    assert all(row["artwork"]["year_start"] is not None and row["artwork"]["year_start"] <= 1700 for row in two["results"])
    for bad in ({"colours": ""}, {"colours": "#12"}, {"colours": "#111111", "amounts": "0"}, {"colours": "#111111", "offset": 5000}):
        r = client.get("/api/v1/search/colour/", bad)
        assert r.status_code == 400, bad
        assert r.json()  # says what is wrong


def test_artwork_api_has_its_palette(client, palettes):
    artwork_id = next(iter(palettes))
    data = client.get(f"/api/v1/artworks/{artwork_id}/").json()
    assert [c["hex"] for c in data["palette"]] == [c["hex"] for c in palettes[artwork_id]]


def test_schema_lists_the_discovery_endpoints(client, archive):
    schema = client.get("/api/v1/schema/", {"format": "json"}, HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert "/api/v1/search/colour/" in schema["paths"] and "/api/v1/path/" in schema["paths"]
    params = {p["name"] for p in schema["paths"]["/api/v1/search/colour/"]["get"]["parameters"]}
    assert {"colours", "amounts", "year_from", "label", "offset", "limit"} <= params


# --- the path between two artworks -----------------------------------------------------------------
import numpy as np  # noqa: E402


INDEX_SLACK = 2  # the graph comes from the HNSW index, which may miss one or two of the k nearest and list the next


def exact_knn(archive, k, slack=INDEX_SLACK):
    """Each artwork's k nearest by cosine (and the next ``slack``: see INDEX_SLACK), computed here
    from the embedding matrix (no index)."""
    ids = [a.pk for a in archive["artworks"]]
    unit = archive["matrix"] / np.linalg.norm(archive["matrix"], axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    return {ids[i]: {ids[j] for j in np.argsort(-sims[i])[:k + slack]} for i in range(len(ids))}, dict(zip(ids, unit))


def farthest_pair(archive):
    ids = [a.pk for a in archive["artworks"]]
    unit = archive["matrix"] / np.linalg.norm(archive["matrix"], axis=1, keepdims=True)
    i, j = np.unravel_index(np.argmin(unit @ unit.T), (len(ids), len(ids)))
    return ids[i], ids[j]


@pytest.fixture(scope="module")
def graph(archive, django_db_blocker):
    """The stored kNN graph of the archive, written by the neighbours stage's own code (committed;
    removed with the archive's artworks)."""
    from archive.models import ArtworkNeighbours
    from workers import neighbours as stage

    with django_db_blocker.unblock():
        ids = [a.pk for a in archive["artworks"]]
        result = stage.process(ids, {})
        assert result.done == ids, result.errors[:3]
        # The stored lists are the nearest neighbours, up to the index's approximation.
        knn, _ = exact_knn(archive, stage.K, slack=0)
        rows = {r.artwork_id: r.neighbours for r in ArtworkNeighbours.objects.filter(model=archive["model"], artwork_id__in=ids)}
        assert set(rows) == set(ids) and all(len(v) == stage.K for v in rows.values())
        assert sum(len(knn[a] & set(v)) for a, v in rows.items()) >= 0.95 * stage.K * len(ids)
    return ids


def check_path(ids, start, end, knn):
    """Starts at start, ends at end, no repeats, each step links nearest neighbours (one is among
    the other's k nearest, computed exactly here, up to INDEX_SLACK)."""
    assert ids[0] == start and ids[-1] == end
    assert len(set(ids)) == len(ids)
    for a, b in zip(ids, ids[1:]):
        assert b in knn[a] or a in knn[b], (a, b)


def test_path_between_the_two_most_different_works(archive, graph):
    from explorer import path as path_mod

    start, end = farthest_pair(archive)
    found = path_mod.find_path(start, end, archive["model"])
    assert found.online == 0 and found.queries >= 1  # every work's neighbours came from the stored graph
    knn, unit = exact_knn(archive, path_mod.NEIGHBOURS)
    check_path(found.ids, start, end, knn)
    assert 3 <= len(found.ids) <= path_mod.MAX_WORKS
    # Small steps: every step is closer than the two ends are to each other.
    assert min(found.similarities) > float(unit[start] @ unit[end])
    assert found.similarities == pytest.approx([float(unit[a] @ unit[b]) for a, b in zip(found.ids, found.ids[1:])], abs=1e-4)
    # Each pair of works: a path (or a clear refusal), never a repeat or a jump.
    ids = [a.pk for a in archive["artworks"]][:8]
    for a in ids:
        for b in ids:
            if a != b:
                found = path_mod.find_path(a, b, archive["model"])
                check_path(found.ids, a, b, knn)
                assert found.online == 0


def test_path_falls_back_to_the_index_where_the_graph_is_missing(archive, graph):
    """Works without a stored row (embedded after the graph job ran) get their neighbours from the
    HNSW index; the path keeps its guarantees. Without any stored row it is the online search."""
    from archive.models import ArtworkNeighbours
    from explorer import path as path_mod

    start, end = farthest_pair(archive)
    knn, _ = exact_knn(archive, path_mod.NEIGHBOURS)
    ArtworkNeighbours.objects.filter(artwork_id=start).delete()
    found = path_mod.find_path(start, end, archive["model"])
    check_path(found.ids, start, end, knn)
    assert found.online >= 1
    ArtworkNeighbours.objects.filter(model=archive["model"]).delete()
    found = path_mod.find_path(start, end, archive["model"])
    check_path(found.ids, start, end, knn)
    assert found.online == found.expansions


def test_a_work_listed_by_no_one_is_reached_from_the_works_it_lists(archive, graph):
    """A work embedded after its neighbours lists them, but their lists do not hold it: the graph
    is read both ways (the rows that list a work), so the search reaches it from them."""
    from archive import neighbour_graph
    from archive.models import ArtworkNeighbours
    from explorer import path as path_mod

    start, end = farthest_pair(archive)
    rows = ArtworkNeighbours.objects.filter(model=archive["model"])
    for row in rows.filter(neighbours__contains=[end]):  # as if ``end`` had been embedded after every other work
        keep = [i for i, a in enumerate(row.neighbours) if a != end]
        row.neighbours, row.distances = [row.neighbours[i] for i in keep], [row.distances[i] for i in keep]
        row.save()
    assert not rows.filter(neighbours__contains=[end]).exists()
    model = archive["model"]
    listed = ArtworkNeighbours.objects.get(model=model, artwork_id=end)
    for other, d in zip(listed.neighbours, listed.distances):
        # Read at ``other``: the edge to ``end`` is there (from end's row), with its distance.
        got = {b: dist for a, b, dist, _ in neighbour_graph.edges(model.pk, [other])}
        assert got[end] == pytest.approx(d)
        assert set(got) == set(ArtworkNeighbours.objects.get(model=model, artwork_id=other).neighbours) | set(
            rows.filter(neighbours__contains=[other]).values_list("artwork_id", flat=True))
    knn, _ = exact_knn(archive, path_mod.NEIGHBOURS)
    found = path_mod.find_path(start, end, model)
    check_path(found.ids, start, end, knn)
    assert found.online == 0


def graph_distances(model_id, source):
    """Shortest distance along the stored graph (edges both ways, each weighted by its chord) from
    ``source`` to every work, by a plain Dijkstra here."""
    import heapq
    import math

    from archive.models import ArtworkNeighbours

    adj = {}
    for row in ArtworkNeighbours.objects.filter(model_id=model_id):
        for other, d in zip(row.neighbours, row.distances):
            w = math.sqrt(2 * max(d, 0.0))
            for a, b in ((row.artwork_id, other), (other, row.artwork_id)):
                adj.setdefault(a, {})[b] = min(w, adj.setdefault(a, {}).get(b, math.inf))
    best, heap = {source: 0.0}, [(0.0, source)]
    while heap:
        g, node = heapq.heappop(heap)
        if g > best[node]:
            continue
        for other, w in adj.get(node, {}).items():
            if g + w < best.get(other, math.inf):
                best[other] = g + w
                heapq.heappush(heap, (g + w, other))
    return best


def test_landmark_distances_are_distances_along_the_graph(archive, graph):
    from archive import neighbour_graph
    from archive.models import ArtworkNeighbours
    from workers import landmarks

    model = archive["model"]
    done = landmarks.compute(model.pk)
    count = min(landmarks.COUNT, len(graph))
    assert done == {"rows": len(graph), "landmarks": count}
    assert not landmarks.stale(model.pk) and landmarks.stale(model.pk, count=count - 1)  # another count: recompute
    stored = neighbour_graph.landmarks_of(model.pk, graph)
    assert set(stored) == set(graph) and all(v.shape == (count,) for v in stored.values())
    matrix = np.stack([stored[a] for a in graph])
    chosen = [graph[int(np.argmin(matrix[:, i]))] for i in range(count)]  # each landmark is 0 from itself
    assert len(set(chosen)) == count and all(matrix[:, i].min() == 0 for i in range(count))
    for i in (0, count - 1):
        truth = graph_distances(model.pk, chosen[i])
        assert matrix[:, i] == pytest.approx([truth.get(a, np.inf) for a in graph], rel=1e-4, abs=1e-4)
    ArtworkNeighbours.objects.filter(artwork_id__in=graph[:1]).update(landmarks=None)
    assert neighbour_graph.landmarks_of(model.pk, graph[:2]).keys() == {graph[1]}


def test_path_guided_by_landmarks_keeps_its_guarantees(archive, graph):
    """With the landmark distances the search is guided by them (one statement per round) and
    expands no more works than by straight lines on the hardest pair; every path still links
    nearest neighbours from one end to the other. An end whose row has none yet is estimated
    through its neighbours; without any, the search goes by straight lines."""
    from archive.models import ArtworkNeighbours
    from explorer import path as path_mod
    from workers import landmarks

    model = archive["model"]
    landmarks.compute(model.pk)
    knn, unit = exact_knn(archive, path_mod.NEIGHBOURS)
    start, end = farthest_pair(archive)
    guided = path_mod.find_path(start, end, model)
    straight = path_mod.find_path(start, end, model, landmarks=False)
    assert guided.guided and not straight.guided and guided.online == 0
    check_path(guided.ids, start, end, knn)
    assert guided.expansions <= straight.expansions
    assert min(guided.similarities) > float(unit[start] @ unit[end])
    assert guided.similarities == pytest.approx([float(unit[a] @ unit[b]) for a, b in zip(guided.ids, guided.ids[1:])], abs=1e-4)
    ids = [a.pk for a in archive["artworks"]][:8]
    for a in ids:
        for b in ids:
            if a != b:
                found = path_mod.find_path(a, b, model)
                assert found.guided
                check_path(found.ids, a, b, knn)
    bare = [a for a in graph if a not in (start, end)][::2]  # rows written after the landmarks
    ArtworkNeighbours.objects.filter(model=model, artwork_id__in=bare).update(landmarks=None)
    for a in ids[:4]:
        found = path_mod.find_path(a, end, model)
        assert found.guided
        check_path(found.ids, a, end, knn)
    ArtworkNeighbours.objects.filter(model=model, artwork_id=end).update(landmarks=None)  # as if written after them
    fresh = path_mod.find_path(start, end, model)
    assert fresh.guided
    check_path(fresh.ids, start, end, knn)
    ArtworkNeighbours.objects.filter(model=model, artwork_id=start).update(landmarks=np.zeros(3, "<f4").tobytes())  # another count
    mixed = path_mod.find_path(start, end, model)
    assert mixed.guided
    check_path(mixed.ids, start, end, knn)
    ArtworkNeighbours.objects.filter(model=model).update(landmarks=None)
    assert not path_mod.find_path(start, end, model).guided


def test_a_deleted_work_is_never_a_step_of_a_guided_path(archive, graph):
    """A work deleted after the rows listing it were written: its own row goes with it, the rows
    of its neighbours still list it; the guided search steps around it."""
    from archive.models import Artwork
    from explorer import path as path_mod
    from workers import landmarks

    model = archive["model"]
    landmarks.compute(model.pk)
    start, end = farthest_pair(archive)
    first = path_mod.find_path(start, end, model)
    assert first.guided and len(first.ids) >= 3
    gone = first.ids[len(first.ids) // 2]
    Artwork.objects.filter(pk=gone).delete()
    again = path_mod.find_path(start, end, model)
    assert again.guided and gone not in again.ids
    knn, _ = exact_knn(archive, path_mod.NEIGHBOURS)
    check_path(again.ids, start, end, knn)


def test_path_refusals_are_clear(archive):
    from archive.models import Artwork
    from explorer import path as path_mod

    a = archive["artworks"][0].pk
    with pytest.raises(path_mod.NoPath, match="two different"):
        path_mod.find_path(a, a, archive["model"])
    lonely = Artwork.objects.create(source="t", source_id="no-embedding", title="metadata only")
    with pytest.raises(path_mod.NoPath, match="no embedding"):
        path_mod.find_path(a, lonely.pk, archive["model"])
    with pytest.raises(path_mod.NoPath, match="active image model"):
        path_mod.find_path(a, lonely.pk, None)
    start, end = farthest_pair(archive)
    with pytest.raises(path_mod.NoPath, match="at most 2 works"):
        path_mod.find_path(start, end, archive["model"], max_works=2)


def test_path_page_and_api(client, archive, graph):
    start, end = farthest_pair(archive)
    r = client.get("/path/", {"from": start, "to": f"http://testserver/artworks/{end}/"})
    assert r.status_code == 200
    html = r.content.decode()
    shown = [a.pk for a, _ in r.context["steps"]]
    assert shown[0] == start and shown[-1] == end and 'id="path-strip"' in html
    assert f"/path/?from={start}&amp;to={end}" in html  # the shareable address
    data = client.get("/api/v1/path/", {"from": start, "to": end}).json()
    assert [a["id"] for a in data["artworks"]] == shown and len(data["similarities"]) == len(shown) - 1
    assert data["url"] == f"/path/?from={start}&to={end}"
    assert client.get("/api/v1/path/", {"from": start, "to": start}).status_code == 400
    assert client.get("/api/v1/path/", {"from": start}).status_code == 400
    assert client.get("/api/v1/path/", {"from": start, "to": "x"}).status_code == 400
    assert client.get("/api/v1/path/", {"from": start, "to": 999_999_999}).status_code == 404
    assert client.get("/path/", {"from": start, "to": start}).status_code == 400
    assert client.get("/path/", {"from": "nothing", "to": end}).status_code == 400
    assert client.get("/path/", {"from": start, "to": 999_999_999}).status_code == 404
    page = client.get(f"/artworks/{start}/").content.decode()
    assert f'href="/path/?from={start}"' in page
    assert client.get("/path/", {"from": start}).status_code == 200  # the form, the start filled in


def test_path_page_links_to_the_path_on_the_map_that_holds_most_of_it(client, archive):
    import numpy as np

    from workers.layouts import build

    start, end = farthest_pair(archive)
    r = client.get("/path/", {"from": start, "to": end})
    ids = [a.pk for a, _ in r.context["steps"]]
    assert r.context["map_url"] is None and 'id="path-on-map"' not in r.content.decode()  # no map yet
    model = archive["model"]
    every = np.array([a.pk for a in archive["artworks"]], dtype=np.int64)
    rng = np.random.default_rng(0)
    whole = build.get_layout("umap", {}, model)
    build.save_layout(whole, every, every, rng.normal(0, 1, (len(every), 2)).astype(np.float32), model=model, params={"untrained": True})
    # A map holding the whole path beats the default map, which holds only its first work.
    part = np.array([a for a in every if a not in ids[1:]], dtype=np.int64)
    subset = build.get_layout("tsne", {"label": "horse"}, model)
    build.save_layout(subset, part, part, rng.normal(0, 1, (len(part), 2)).astype(np.float32), model=model, params={"untrained": True})
    whole.refresh_from_db()
    from archive.models import Layout

    Layout.objects.filter(pk=whole.pk).update(is_default=False)
    Layout.objects.filter(pk=subset.pk).update(is_default=True)
    html = client.get("/path/", {"from": start, "to": end}).content.decode()
    want = f"/map/?layout={whole.slug}#path={','.join(map(str, ids))}"
    assert 'id="path-on-map"' in html and f'href="{want}"' in html


def test_loops_are_cut_out_of_the_walk():
    from explorer.path import _without_loops

    walk = [(1, 0.1), (2, 0.2), (3, 0.3), (2, 0.4), (4, 0.5), (5, None)]
    assert _without_loops(walk) == [(1, 0.1), (2, 0.4), (4, 0.5), (5, None)]
    assert _without_loops([(1, 0.1), (2, None)]) == [(1, 0.1), (2, None)]


# --- the timeline ----------------------------------------------------------------------------------
def test_timeline_counts_and_works_per_bin(client, archive, palettes):
    from archive.models import Artwork

    dated = Artwork.objects.exclude(status="duplicate").filter(year_start__isnull=False)
    lo, hi = min(dated.values_list("year_start", flat=True)), max(dated.values_list("year_start", flat=True))
    data = client.get("/api/v1/timeline/", {"bins": 10, "per_bin": 3}).json()
    assert (data["data_from"], data["data_to"], data["year_from"], data["year_to"]) == (lo, hi, lo, hi)
    assert data["total"] == dated.count() == sum(b["count"] for b in data["bins"])
    assert data["bins"][0]["start"] == lo and data["bins"][-1]["end"] == hi
    for b in data["bins"]:
        assert b["end"] - b["start"] + 1 <= data["width"]
        assert dated.filter(year_start__gte=b["start"], year_start__lte=b["end"]).count() == b["count"]
        assert len(b["artworks"]) == min(3, b["count"])
        assert all(b["start"] <= a["year_start"] <= b["end"] for a in b["artworks"])
    # With a filter: only its works are counted.
    paintings = client.get("/api/v1/timeline/", {"classification": "painting", "bins": 5}).json()
    assert paintings["total"] == dated.filter(classification__iexact="painting").count()
    page = client.get("/timeline/", {"year_from": lo, "year_to": hi})
    assert page.status_code == 200 and 'id="timeline"' in page.content.decode()


def test_timeline_dates_outside_the_data_are_a_clear_400(client, archive):
    from archive.models import Artwork

    lo = min(Artwork.objects.filter(year_start__isnull=False).values_list("year_start", flat=True))
    r = client.get("/api/v1/timeline/", {"year_from": lo - 1})
    assert r.status_code == 400 and "outside the data" in r.json()["detail"] and str(lo) in r.json()["detail"]
    r = client.get("/timeline/", {"year_to": 2999})
    assert r.status_code == 400 and "outside the data" in r.content.decode()
    assert client.get("/api/v1/timeline/", {"bins": 0}).status_code == 400
    assert client.get("/api/v1/timeline/", {"year_from": "abc"}).status_code == 400
    schema = client.get("/api/v1/schema/", {"format": "json"}, HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert "/api/v1/timeline/" in schema["paths"]


# --- colour search within filters through the partial indexes of their buckets ---------------------


def test_colour_within_filters_walks_the_index_of_its_bucket_and_equals_the_exact_ranking(palettes, archive, settings,
                                                                                        monkeypatch):
    """Partial HNSW indexes per period of years and per classification (archive.palette_indexes):
    built for the buckets in range, taken by the planner for a search inside one bucket (or two
    periods, merged), answers equal to the exact ranking of the filtered set; a palette that
    enters a bucket after its index was built is found through it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from archive import colour, filter_indexes, palette_indexes, vectors
    from archive.models import Artwork
    from explorer import colours as colour_search
    from explorer.search import Filters

    limit = 4
    settings.PALETTE_FILTER_INDEXES = ["period", "classification"]
    settings.PALETTE_FILTER_INDEX_MIN = limit
    settings.PALETTE_FILTER_INDEX_MAX_SHARE = 0.9
    settings.PALETTE_PERIOD_YEARS = 50
    monkeypatch.setattr(filter_indexes, "_seen", {})  # this test's indexes go with its transaction
    monkeypatch.setattr(colour_search, "WALK_FACTOR", 0)  # else these few palettes are ranked exactly

    rows = list(ArtworkPalette.objects.filter(artwork_id__in=palettes).values_list(
        "artwork_id", "year_start", "year_end", "classification"))
    # The buckets counted here from the rows: the periods of 50 years (starting every 25) the years
    # overlap, the classifications.
    expected: dict = {}
    for _, start, end, classification in rows:
        if start is not None:
            lo, hi = min(start, end or start), max(start, end or start)
            for p in range((lo - 49) // 25 * 25, hi + 1, 25):
                if p + 49 >= lo:
                    expected[palette_indexes.Bucket("period", p)] = expected.get(palette_indexes.Bucket("period", p), 0) + 1
        expected[palette_indexes.Bucket("classification", classification)] = expected.get(
            palette_indexes.Bucket("classification", classification), 0) + 1
    in_range = {b: n for b, n in expected.items() if limit <= n <= 0.9 * len(rows)}
    assert palette_indexes.wanted() == in_range
    outcome = palette_indexes.ensure()
    assert sorted(outcome.built) == sorted(palette_indexes.index_name(b) for b in in_range) and not outcome.dropped
    assert palette_indexes.ensure().kept == sorted(outcome.built)  # idempotent
    for bucket, n in in_range.items():  # reltuples as of the build: it counts the dead row versions it met too
        assert filter_indexes.indexed_rows(palette_indexes.index_name(bucket)) >= n

    periods = sorted(b.value for b in in_range if b.kind == "period")
    classes = sorted((n, b.value) for b, n in in_range.items() if b.kind == "classification")
    assert periods and classes, in_range
    first = periods[0]
    pair = next((p for p in periods if p + 50 in periods), None)
    assert pair is not None, periods
    cases = [(Filters(classification=classes[0][1].lower()), "classification index"),
             (Filters(year_from=first, year_to=first + 49), "period index")]
    cases.append((Filters(year_from=pair, year_to=pair + 99), "period index x 2"))  # both scanned, pages merged
    queries = [colour_search.parse(palettes[a][0]["hex"]) for a in list(palettes)[:6:2]]
    queries.append(colour_search.parse("#c03020,#1f3a80", "70,30"))
    sqls = []
    for filters, path in cases:
        where, params = colour_search.row_condition(filters)
        for query in queries:
            before = colour_search.PATHS.copy()
            with CaptureQueriesContext(connection) as captured:
                hits = colour_search.ranking(query.vector, filters, limit=limit)
            exact = colour_search._exact_where(query.vector, where, params, limit)
            answered = colour_search.PATHS - before
            assert answered == {path: 1}, (filters, answered)
            assert [a for a, _ in hits] == [a for a, _ in exact], filters
            assert np.allclose([s for _, s in hits], [s for _, s in exact], atol=1e-6)
            sqls.append((path, [q["sql"] for q in captured.captured_queries if "<=>" in q["sql"] and "hits AS" in q["sql"]]))
    with connection.cursor() as cursor:  # the scans' planner setting went with them (this test's transaction)
        cursor.execute("SHOW enable_sort")
        assert cursor.fetchone()[0] == "on"
    # The planner takes the bucket's index (its predicate stated literally), not the method's.
    method_index = vectors.index_name(colour.PALETTES, colour.METHOD)
    for path, knn in sqls[:: len(queries)]:
        assert knn, path
        for sql in knn:
            plan = plan_of(sql)
            assert "Index Scan using " + method_index + "_" in plan and f"Index Scan using {method_index} " not in plan + " ", plan
    # A window across more periods: the method's index (or, short of a page, exact), same answer.
    wide = Filters(year_from=first, year_to=first + 149)
    before = colour_search.PATHS.copy()
    hits = colour_search.ranking(queries[0].vector, wide, limit=limit)
    assert colour_search.PATHS - before in ({"method index": 1}, {"exact": 1})
    assert hits == colour_search._exact_where(queries[0].vector, *colour_search.row_condition(wide), limit)

    # A palette entering the period after its index was built (its artwork re-dated): found through
    # the index, first for its own colours.
    inside = {a for a, s, e, _ in rows if s is not None and first <= max(s, e or s) and min(s, e or s) <= first + 49}
    outsider = next(a for a, s, _, _ in rows if a not in inside)
    Artwork.objects.filter(pk=outsider).update(year_start=first + 10, year_end=first + 10)
    own = colour.palette_signature(palettes[outsider])
    filters = Filters(year_from=first, year_to=first + 49)
    before = colour_search.PATHS.copy()
    hits = colour_search.ranking(own, filters, limit=limit)
    assert colour_search.PATHS - before == {"period index": 1}
    assert hits[0][0] == outsider
    assert hits == colour_search._exact_where(own, *colour_search.row_condition(filters), limit)

    # Out of range (a higher minimum): the command drops them.
    settings.PALETTE_FILTER_INDEX_MIN = 10**6
    out = io.StringIO()
    call_command("vector_filter_indexes", stdout=out)
    assert f"0 built, 0 kept, {len(outcome.built)} dropped" in out.getvalue()
    assert not filter_indexes.existing_with("archive_artworkpalette", [method_index + "_"])


def test_exact_colour_ranking_reads_a_classification_or_institution_and_years_from_one_index(palettes, archive):
    """A small set within a classification (or an institution) and years is read through the
    GiST index on both (migration 0031), years alone through the years' range: never a bitmap AND
    with a b-tree listing every earlier year; the ranking holds exactly the filtered works."""
    from collections import Counter

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from explorer import colours as colour_search
    from explorer.search import Filters, base_queryset

    rows = list(ArtworkPalette.objects.filter(artwork_id__in=palettes, year_start__isnull=False).values_list(
        "year_start", "classification", "institution"))
    classification = Counter(c for _, c, _ in rows if c).most_common(1)[0][0]
    institution = Counter(i for _, _, i in rows if i).most_common(1)[0][0]
    years = sorted(y for y, _, _ in rows)
    window = {"year_from": years[len(years) // 4], "year_to": years[3 * len(years) // 4]}
    cases = {"palette_class_years_range": Filters(classification=classification.lower(), **window),
             "palette_inst_years_range": Filters(institution=institution, **window),
             "palette_years_range": Filters(**window)}
    query = colour_search.parse("#c03020,#1f3a80", "70,30")
    for index, filters in cases.items():
        where, params = colour_search.row_condition(filters)
        with CaptureQueriesContext(connection) as captured:
            hits = colour_search._exact_where(query.vector, where, params, 1000)
        sql = captured.captured_queries[-1]["sql"]
        # On a few hundred rows every index on the range costs alike: each case is planned with the
        # other two range indexes gone (this test's transaction), the b-trees left as the rivals.
        with connection.cursor() as cursor:
            cursor.execute("SAVEPOINT plan")
            for other in set(cases) - {index}:
                cursor.execute(f"DROP INDEX {other}")
            plan = plan_of(sql)
            cursor.execute("ROLLBACK TO SAVEPOINT plan")
        assert f"Index Scan using {index} " in plan or f"Index Scan on {index} " in plan, plan
        assert "BitmapAnd" not in plan, plan
        cond = next(line for line in plan.splitlines() if "Index Cond" in line)
        assert "int4range" in cond and ("classification" in cond) == bool(filters.classification), plan
        assert ("institution" in cond) == bool(filters.institution), plan
        expected = set(filters.apply(base_queryset()).filter(pk__in=palettes).values_list("pk", flat=True))
        assert expected and {a for a, _ in hits} == expected, filters
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
