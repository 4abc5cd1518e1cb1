"""Layout jobs on real artwork images: build UMAP and t-SNE maps, place new artworks without moving
existing ones, name regions, and parse the exported files back.

Vectors come from the real embedder in ``workers.ml`` with the explicit random-weights ``test-tiny``
config (the map is then marked untrained), computed from the images' 256px derivatives.
"""
from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from PIL import Image

from archive import vectors
from archive.images import ImageLimits, ingest_location, load_derivative
from archive.models import Artwork, ArtworkLabel, EmbeddingModel, Job, Label, Layout, LayoutPoint, Region
from workers.layouts import build, export

pytestmark = pytest.mark.django_db


def aic_records(aic_dir: Path, limit: int) -> list[dict]:
    records = []
    for path in sorted((aic_dir / "collections").glob("*/collection.json")):
        data = json.loads(path.read_text())
        for art in data["artworks"]:
            image = aic_dir / "images" / f"{art['id']}.jpg"
            if image.exists():
                records.append({**art, "image": image, "collection": data["collection_id"]})
    # Interleave collections so any prefix spans several periods.
    records.sort(key=lambda r: (r["id"] % 7, r["id"]))
    return records[:limit]


def ingest(records: list[dict]) -> list[Artwork]:
    limits = ImageLimits.from_settings()
    out = []
    for r in records:
        img = ingest_location(str(r["image"]), (128, 256), Path(settings.MEDIA_ROOT), limits)  # the sizes a map uses
        year = None
        digits = "".join(ch if ch.isdigit() else " " for ch in r.get("date", "")).split()
        if digits and len(digits[0]) == 4:
            year = int(digits[0])
        out.append(Artwork.objects.create(
            source="aic", source_id=str(r["id"]), title=r["title"], creator=r.get("artist", ""),
            display_date=r.get("date", ""), year_start=year, medium=r.get("medium", ""),
            classification=r["collection"], status=Artwork.Status.OK, sha256=img.sha256, phash=img.phash,
            width=img.width, height=img.height, original_location=str(r["image"]),
        ))
    return out


def tiny_model() -> EmbeddingModel:
    from workers.ml.registry import activate, get_embedder, register

    model = register(get_embedder("test-tiny"))
    activate(model)
    return model


def embed(model: EmbeddingModel, artworks: list[Artwork]) -> None:
    from workers.ml.registry import get_embedder

    embedder = get_embedder("test-tiny")
    images = [load_derivative(a.sha256, 256) for a in artworks]
    vecs = embedder.embed_images(images)
    assert vecs.shape == (len(artworks), model.dim)
    vectors.copy_rows(
        "archive_artworkembedding", ["artwork_id", "model_id", "vector", "created_at"],
        [(a.pk, model.pk, v, "now()") for a, v in zip(artworks, vecs)],
        conflict=["artwork_id", "model_id"], update=["vector"],
    )


@pytest.fixture
def archive60(aic_dir):
    artworks = ingest(aic_records(aic_dir, 60))
    assert len(artworks) == 60
    model = tiny_model()
    return model, artworks


def coords_of(layout) -> dict[int, tuple[float, float]]:
    return {a: (x, y) for a, x, y in LayoutPoint.objects.filter(layout=layout).values_list("artwork_id", "x", "y")}


def parse_export(layout) -> tuple[dict, dict[str, np.ndarray]]:
    files = export.read_files(layout.slug, layout.export_version)
    assert files is not None, "files.json missing"
    root = export.version_dir(layout.slug, layout.export_version)
    parts = []
    for chunk in files["chunks"]:
        raw = gzip.decompress((root / chunk["file"]).read_bytes())
        parts.append(export.decode_chunk(raw, chunk["count"], files["columns"]))
    columns = {c["name"]: np.concatenate([p[c["name"]] for p in parts]) for c in files["columns"]}
    return files, columns


@pytest.fixture
def archive_all(aic_dir):
    """Every AIC painting with an image (267), ingested, with the test-tiny model active."""
    artworks = ingest(aic_records(aic_dir, 10_000))
    assert len(artworks) == 267
    return tiny_model(), artworks


def test_umap_layout_on_real_images_then_incremental_placement(archive_all):
    model, artworks = archive_all
    first, later = artworks[:250], artworks[250:]
    embed(model, first)

    job = build.request("umap", {})
    layout = build.run_job(job.pk)
    job.refresh_from_db()
    assert job.state == Job.State.DONE, job.message
    assert job.done == job.total == build.BUILD_STEPS
    assert layout.state == Layout.State.READY and layout.point_count == 250
    assert layout.model_id == model.pk and layout.seed == 0 and layout.params["untrained"] is True
    assert layout.params["placement"] == "model" and layout.is_default
    before = coords_of(layout)
    assert set(before) == {a.pk for a in first}
    assert all(np.isfinite(v).all() for v in before.values())
    # Regions at two zoom levels; no labels yet, so names come from catalogue metadata.
    assert layout.params["region_names_from"] in ("classification", "creator")
    levels = sorted(set(Region.objects.filter(layout=layout).values_list("level", flat=True)))
    assert levels == [0, 1]
    assert sum(Region.objects.filter(layout=layout, level=0).values_list("size", flat=True)) == 250
    assert all(Region.objects.filter(layout=layout).values_list("name", flat=True))

    files, cols = parse_export(layout)
    assert files["count"] == 250 and sorted(cols["id"].tolist()) == sorted(a.pk for a in first)
    # Quantised coordinates decode back to the stored ones within one quantisation step.
    b = files["bounds"]
    span = max(b[2] - b[0], b[3] - b[1])
    for i, a in enumerate(cols["id"].tolist()):
        x = b[0] + cols["x"][i] / 65535 * span
        assert abs(x - before[a][0]) <= span / 65535 + 1e-4
    years = {a.pk: a.year_start for a in first}
    assert all((years[a] or export.YEAR_NONE) == y for a, y in zip(cols["id"].tolist(), cols["year"].tolist()))
    assert set(files["classifications"]) <= {a.classification for a in first}
    assert files["atlas"]["sheets"] == [0]
    sheet = export.version_dir(layout.slug, layout.export_version) / "atlas-0000.jpg"
    with Image.open(sheet) as im:
        assert im.format == "JPEG" and im.width == export.SHEET
        # The first cell holds a real thumbnail, not the background.
        cell = np.asarray(im.crop((0, 0, export.CELL, export.CELL)))
        assert cell.std() > 5

    # New artworks are embedded: placing them keeps every existing coordinate.
    embed(model, later)
    call_command("build_map", "--method", "umap", "--wait")
    layout.refresh_from_db()
    after = coords_of(layout)
    assert layout.point_count == 267 and set(after) == {a.pk for a in artworks}
    for a, xy in before.items():
        assert after[a] == xy
    new = LayoutPoint.objects.filter(layout=layout, placed_incrementally=True)
    assert sorted(new.values_list("artwork_id", flat=True)) == sorted(a.pk for a in later)
    assert layout.export_version == 2
    files2, cols2 = parse_export(layout)
    assert files2["count"] == 267 and cols2["id"][:250].tolist() == cols["id"].tolist()
    assert files2["atlas"]["sheets"] == [0, 1]
    assert sum(Region.objects.filter(layout=layout, level=1).values_list("size", flat=True)) == 267
    # The new points lie inside the map's extent, not far away.
    xs = np.array([v[0] for v in after.values()])
    assert xs.max() - xs.min() <= 3 * (max(v[0] for v in before.values()) - min(v[0] for v in before.values()))

    # A rebuild refits everything.
    call_command("build_map", "--method", "umap", "--rebuild", "--wait")
    layout.refresh_from_db()
    assert layout.export_version == 3 and layout.point_count == 267
    assert not LayoutPoint.objects.filter(layout=layout, placed_incrementally=True).exists()
    assert not export.version_dir(layout.slug, 1).exists()  # old versions pruned, previous one kept
    assert export.version_dir(layout.slug, 2).exists()


def test_tsne_layout_and_nearest_neighbour_placement(archive60, settings):
    model, artworks = archive60
    embed(model, artworks[:40])
    settings.MAP_MODEL_MAX_POINTS = 10  # too many points to keep the model: place by kNN interpolation
    job = build.request("tsne", {}, seed=3)
    layout = build.run_job(job.pk)
    job.refresh_from_db()
    assert job.state == Job.State.DONE, job.message
    assert layout.method == "tsne" and layout.seed == 3 and layout.params["placement"] == "knn"
    assert layout.params["used"]["negative_gradient_method"] == "bh"
    assert not build.model_path(layout.slug).exists()
    before = coords_of(layout)
    assert len(before) == 40

    embed(model, artworks[40:45])
    job = build.request("tsne", {}, seed=3)
    layout = build.run_job(job.pk)
    after = coords_of(layout)
    assert len(after) == 45 and all(after[a] == xy for a, xy in before.items())
    xs = np.array([v for v in before.values()])
    for a in artworks[40:45]:
        x, y = after[a.pk]
        assert xs[:, 0].min() <= x <= xs[:, 0].max() and xs[:, 1].min() <= y <= xs[:, 1].max()


def test_export_carries_each_artworks_dominant_colour_from_its_palette(archive60):
    """The palette stage's real palettes of real images: the export's colour column is the
    largest palette colour in sRGB (RGB565), 0 for an artwork without a palette."""
    from archive import colour
    from archive.models import ArtworkPalette
    from workers import palettes

    model, artworks = archive60
    embed(model, artworks[:40])
    with_palette = artworks[:30]
    result = palettes.process([a.pk for a in with_palette], {})
    assert sorted(result.done) == sorted(a.pk for a in with_palette) and not result.errors
    layout = build.run_job(build.request("tsne", {}).pk)
    files, cols = parse_export(layout)
    assert {"name": "colour", "type": "uint16"} in files["columns"]
    by_id = dict(zip(cols["id"].tolist(), cols["colour"].tolist()))
    assert len(by_id) == 40
    stored = {p.artwork_id: p.colours for p in ArtworkPalette.objects.filter(method=colour.METHOD)}
    greys = 0
    for a in artworks[:40]:
        packed = by_id[a.pk]
        if a.pk not in stored:
            assert packed == export.COLOUR_NONE
            continue
        assert packed != export.COLOUR_NONE
        top = max(stored[a.pk], key=lambda c: c["share"])
        assert top is stored[a.pk][0]  # palettes are stored largest first
        want = np.array(colour.parse_hex(top["hex"]))
        got = export.rgb565_to_rgb([packed])[0].astype(int)
        # RGB565 keeps 5 bits of red and blue, 6 of green: within one step of the palette's sRGB.
        assert np.all(np.abs(got - want) <= [8, 4, 8]), (a.pk, top, got)
        greys += int(np.ptp(want) < 12)
    assert greys < 30  # real paintings: most dominant colours are not grey
    # Bytes per point: 15 raw with the colour column (13 before).
    raw = sum(np.dtype(t).itemsize for _, t in export.COLUMNS)
    assert raw == 15


def test_rgb565_round_trip_and_black_is_not_no_colour():
    rgb = np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0], [12, 200, 99]], dtype=np.uint8)
    packed = export.rgb565(rgb)
    assert packed[0] != export.COLOUR_NONE and packed[1] == 0xFFFF and packed[2] == 0xF800
    back = export.rgb565_to_rgb(packed).astype(int)
    assert np.all(np.abs(back - rgb) <= [8, 4, 8])
    assert back[1].tolist() == [255, 255, 255]


def test_regions_named_by_over_represented_labels(archive60):
    model, artworks = archive60
    embed(model, artworks[:40])
    horse = Label.objects.create(name="horse", slug="horse", group="animals")
    ship = Label.objects.create(name="ship", slug="ship", group="objects")
    common = Label.objects.create(name="painting", slug="painting", group="kinds")
    layout = build.run_job(build.request("tsne", {}).pk)
    before = coords_of(layout)
    # Label the artworks of one fine region "horse", the rest "ship"; everything "painting".
    region = Region.objects.filter(layout=layout, level=1).order_by("-size").first()
    points = LayoutPoint.objects.filter(layout=layout)
    in_region = set(points.filter(cluster=region.cluster).values_list("artwork_id", flat=True))
    assert len(in_region) >= 2
    rows = []
    for a in points.values_list("artwork_id", flat=True):
        rows.append(ArtworkLabel(artwork_id=a, label=horse if a in in_region else ship, model=model, score=0.3, rank=1))
        rows.append(ArtworkLabel(artwork_id=a, label=common, model=model, score=0.2, rank=2))
    ArtworkLabel.objects.bulk_create(rows)
    layout = build.run_job(build.request("tsne", {}, rebuild=True).pk)
    assert layout.params["region_names_from"] == "labels"
    # Same data and seed: the rebuild reproduces the map, so the horse artworks are one fine region again.
    assert coords_of(layout) == before
    fine = dict(LayoutPoint.objects.filter(layout=layout).values_list("artwork_id", "cluster"))
    clusters = {fine[a] for a in in_region}
    assert len(clusters) == 1 and {a for a, c in fine.items() if c in clusters} == in_region
    named = {r.cluster: r for r in Region.objects.filter(layout=layout, level=1)}
    (c,) = clusters
    assert named[c].name.startswith("horse"), named[c].name
    assert named[c].top_labels[0]["label"] == "horse" and named[c].top_labels[0]["share"] == 1.0
    assert not any("horse" in r.name for k, r in named.items() if k != c)
    assert not any("painting" in r.name for r in named.values())  # everywhere, so characteristic nowhere


def test_failed_layout_is_recorded_on_the_job(db):
    job = build.request("umap", {})
    assert build.run_job(job.pk) is None
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and "no active embedding model" in job.message
    assert job.errors.count() == 1


def test_subset_parsing_and_slugs():
    assert build.parse_subset("label:horse") == {"label": "horse"}
    assert build.parse_subset("faces") == {"faces": True}
    assert build.layout_slug("tsne", {"collection": "My Set"}) == "tsne-collection-my-set"
    with pytest.raises(ValueError):
        build.parse_subset("artist:x")


def test_export_round_trip_synthetic(tmp_path):
    rng = np.random.default_rng(0)
    n = 300_000
    x = rng.normal(size=n).astype(np.float32)
    y = rng.normal(size=n).astype(np.float32) * 2
    table = export.PointTable(
        artwork_ids=np.arange(1, n + 1), x=x, y=y, c0=rng.integers(0, 12, n), c1=rng.integers(0, 60, n),
        year=np.where(rng.random(n) < 0.1, export.YEAR_NONE, rng.integers(1200, 2020, n)),
        classification=["painting" if i % 3 else "print" for i in range(n)], thumbs=[""] * n,
    )
    files = export.export_points(table, "synthetic", 1, media_root=tmp_path)
    assert files["atlas"]["sheets"] == [] and len(files["chunks"]) == 3
    root = export.version_dir("synthetic", 1, tmp_path)
    got = np.concatenate([export.decode_chunk(gzip.decompress((root / c["file"]).read_bytes()), c["count"])["id"]
                          for c in files["chunks"]])
    assert np.array_equal(got, np.arange(1, n + 1, dtype=np.uint32))
    one = export.decode_chunk(gzip.decompress((root / files["chunks"][1]["file"]).read_bytes()), files["chunks"][1]["count"])
    start = files["chunks"][1]["start"]
    assert np.array_equal(one["year"], table.year[start : start + len(one["year"])].astype(np.int16))
    assert files["classifications"] == ["painting", "print"]
    # The y range is twice the x range: quantisation keeps the aspect ratio.
    assert int(one["y"].max()) > 60000 and int(one["x"].max()) < 40000


def test_subsets_select_their_vectors(archive60):
    from archive.models import Collection, CollectionItem, LabelDecision
    from workers.layouts.reduce import load_vectors

    model, artworks = archive60
    embed(model, artworks[:30])
    horse = Label.objects.create(name="horse", slug="horse", group="animals")
    ArtworkLabel.objects.bulk_create([ArtworkLabel(artwork=a, label=horse, model=model, score=0.3, rank=1) for a in artworks[:10]])
    LabelDecision.objects.create(artwork=artworks[3], label=horse, decision="rejected")
    LabelDecision.objects.create(artwork=artworks[20], label=horse, decision="added")
    got = load_vectors({"label": "horse"}, model.pk)
    assert sorted(got.keys.tolist()) == sorted([a.pk for a in artworks[:10] if a != artworks[3]] + [artworks[20].pk])
    assert got.X.shape == (10, model.dim) and got.X.dtype == np.float32
    c = Collection.objects.create(title="Few", slug="few")
    CollectionItem.objects.bulk_create([CollectionItem(collection=c, artwork=a) for a in artworks[25:35]])
    got = load_vectors({"collection": "few"}, model.pk)
    assert sorted(got.keys.tolist()) == sorted(a.pk for a in artworks[25:30])  # 30..34 have no vectors
    # Vectors come back exactly as stored.
    stored = ArtworkEmbedding_vector(artworks[25].pk, model.pk)
    assert np.allclose(got.X[got.keys.tolist().index(artworks[25].pk)], stored)


def ArtworkEmbedding_vector(artwork_id, model_id):
    from archive.models import ArtworkEmbedding

    return np.asarray(ArtworkEmbedding.objects.get(artwork_id=artwork_id, model_id=model_id).vector, dtype=np.float32)


def test_face_map(archive60):
    """A map of painted faces: points are faces (several per artwork possible), clicks go to the artwork."""
    from archive.models import Face

    model, artworks = archive60
    rng = np.random.default_rng(5)
    faces = []
    for a in artworks[:24]:
        for _ in range(1 + a.pk % 2):
            faces.append(Face(artwork=a, model="dlib-resnet-v1", x=0, y=0, w=10, h=10, vector=rng.normal(size=128).tolist()))
    Face.objects.bulk_create(faces)
    layout = build.run_job(build.request("tsne", {"faces": True}).pk)
    assert layout is not None and layout.state == Layout.State.READY, Job.objects.latest("id").message
    assert layout.slug == "tsne-faces" and layout.model_id is None and layout.point_count == len(faces)
    points = LayoutPoint.objects.filter(layout=layout)
    assert sorted(points.values_list("face_id", flat=True)) == sorted(f.pk for f in Face.objects.all())
    files, cols = parse_export(layout)
    assert sorted(set(cols["id"].tolist())) == sorted(a.pk for a in artworks[:24])
    assert files["atlas"]["sheets"] == [0]  # thumbnails from the artworks' derivatives (no crops stored)
    # A new face is placed by the kept model; the others stay put.
    before = dict(points.values_list("face_id", "x"))
    Face.objects.create(artwork=artworks[30], model="dlib-resnet-v1", x=0, y=0, w=10, h=10, vector=rng.normal(size=128).tolist())
    layout = build.run_job(build.request("tsne", {"faces": True}).pk)
    after = dict(LayoutPoint.objects.filter(layout=layout).values_list("face_id", "x"))
    assert len(after) == len(before) + 1 and all(after[k] == v for k, v in before.items())


def test_build_map_without_wait_queues_on_the_maps_queue(archive60, django_capture_on_commit_callbacks):
    from workers.celery import app

    model, artworks = archive60
    embed(model, artworks[:12])
    old = app.conf.task_always_eager
    app.conf.task_always_eager = True  # the task runs inline, as a "maps" worker would run it
    try:
        with django_capture_on_commit_callbacks(execute=True):  # the batch is sent when its row commits
            call_command("build_map", "--method", "tsne")
    finally:
        app.conf.task_always_eager = old
    job = Job.objects.filter(kind=Job.Kind.LAYOUT).latest("id")
    assert job.state == Job.State.DONE and Layout.objects.get(slug="tsne").point_count == 12


def test_placement_runs_keep_the_seed_and_parameters_a_different_one_rebuilds(archive60):
    from django.core.management.base import CommandError

    model, artworks = archive60
    embed(model, artworks[:30])
    call_command("build_map", "--method", "tsne", "--seed", "3", "--params", '{"perplexity": 8}', "--wait")
    layout = Layout.objects.get(slug="tsne")
    assert layout.seed == 3 and layout.params["requested"] == {"perplexity": 8} and layout.params["used"]["perplexity"] == 8
    before = coords_of(layout)

    # A plain run (the command's defaults) places the new artworks and says the map was made as before.
    embed(model, artworks[30:35])
    call_command("build_map", "--method", "tsne", "--wait")
    layout.refresh_from_db()
    assert layout.seed == 3 and layout.params["requested"] == {"perplexity": 8} and layout.params["used"]["perplexity"] == 8
    assert layout.point_count == 35 and layout.export_version == 2
    assert all(coords_of(layout)[a] == xy for a, xy in before.items())
    assert LayoutPoint.objects.filter(layout=layout, placed_incrementally=True).count() == 5

    # Another seed, or other parameters, make the job a rebuild with them.
    call_command("build_map", "--method", "tsne", "--seed", "4", "--wait")
    layout.refresh_from_db()
    job = Job.objects.filter(kind=Job.Kind.LAYOUT).latest("id")
    assert layout.seed == 4 and layout.params["requested"] == {"perplexity": 8} and "rebuilt: seed 4" in job.message
    assert not LayoutPoint.objects.filter(layout=layout, placed_incrementally=True).exists()
    call_command("build_map", "--method", "tsne", "--params", "{}", "--wait")
    layout.refresh_from_db()
    assert layout.seed == 4 and layout.params["requested"] == {} and layout.params["used"]["perplexity"] == pytest.approx((35 - 1) / 3)
    assert layout.export_version == 4

    # Bad parameters are refused before any job is made.
    jobs_before = Job.objects.count()
    with pytest.raises(CommandError, match="unknown tsne parameter"):
        call_command("build_map", "--method", "tsne", "--params", '{"perplexty": 5}', "--wait")
    with pytest.raises(CommandError, match="JSON object"):
        call_command("build_map", "--method", "tsne", "--params", "[5]", "--wait")
    assert Job.objects.count() == jobs_before


def test_fitted_models_live_outside_media_and_are_never_served(archive60, settings, client):
    from django.core.exceptions import ImproperlyConfigured

    from workers.layouts import fit as fitting, store

    model, artworks = archive60
    embed(model, artworks[:20])
    layout = build.run_job(build.request("tsne", {}).pk)
    assert layout.params["placement"] == "model"
    path = build.model_path(layout.slug)
    assert path.exists() and path.parent == Path(settings.MAP_MODEL_ROOT).resolve()
    media = Path(settings.MEDIA_ROOT).resolve()
    assert media not in path.parents and not list(media.rglob("*.pkl"))
    assert client.get(f"/media/maps/_models/{layout.slug}.pkl").status_code == 404

    # A pickle an older version left under MEDIA_ROOT is not served, and moves out on the next run.
    legacy = store.legacy_path(layout.slug)
    legacy.parent.mkdir(parents=True, exist_ok=True)
    path.replace(legacy)
    assert client.get(f"/media/maps/_models/{layout.slug}.pkl").status_code == 404
    assert client.get(f"/media/maps/x/../_models/{layout.slug}.pkl").status_code == 404
    embed(model, artworks[20:22])
    layout = build.run_job(build.request("tsne", {}).pk)
    assert layout.point_count == 22 and not legacy.exists() and build.model_path(layout.slug).exists()
    assert LayoutPoint.objects.filter(layout=layout, placed_incrementally=True).count() == 2
    assert fitting.load_model(build.model_path(layout.slug))["n"] == 20

    # A model root inside MEDIA_ROOT is refused with the reason, and the job records it.
    settings.MAP_MODEL_ROOT = Path(settings.MEDIA_ROOT) / "models"
    with pytest.raises(ImproperlyConfigured, match="MAP_MODEL_ROOT"):
        build.model_path("tsne")
    job = build.request("tsne", {}, rebuild=True)
    build.run_job(job.pk)
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and "MAP_MODEL_ROOT" in job.errors.get().reason


def test_knn_placement_on_a_subset_map_uses_the_maps_own_points(db):
    """On a collection map, a new point goes where its nearest *mapped* neighbours are, even when
    hundreds of artworks off the map are closer to it (an index query over the whole archive,
    filtered to the map afterwards, would see only those and put it in the middle)."""
    from archive.models import Collection, CollectionItem

    rng = np.random.default_rng(3)
    dim = 16
    model = EmbeddingModel.objects.create(key="knn-test/none", arch="test", dim=dim, state="active", untrained=True)
    vectors.ensure_hnsw_index(vectors.ARTWORK_EMBEDDINGS, model.pk, dim)  # as the embed stage leaves it
    basis = np.linalg.qr(rng.normal(size=(dim, dim)))[0]
    u, v, w = basis[0], basis[1], basis[2]
    target = 0.8 * v + 0.6 * w  # new points: cosine 0.8 with group B, 0.6 with the off-map crowd's axis
    groups = {
        "a": [u + 0.05 * rng.normal(size=dim) for _ in range(20)],
        "b": [v + 0.05 * rng.normal(size=dim) for _ in range(20)],
        "off": [target + 0.02 * rng.normal(size=dim) for _ in range(600)],  # not on the map, nearer than B
        "new": [target + 0.02 * rng.normal(size=dim) for _ in range(3)],
    }
    made = {}
    for name, vecs in groups.items():
        arts = Artwork.objects.bulk_create([Artwork(source="knn", source_id=f"{name}{i}", title=f"{name} {i}") for i in range(len(vecs))])
        vectors.copy_rows("archive_artworkembedding", ["artwork_id", "model_id", "vector", "created_at"],
                          [(a.pk, model.pk, vec, "now()") for a, vec in zip(arts, vecs)])
        made[name] = arts
    pair = Collection.objects.create(title="Pair", slug="pair")
    CollectionItem.objects.bulk_create([CollectionItem(collection=pair, artwork=a) for a in made["a"] + made["b"]])
    ids = np.array([a.pk for a in made["a"] + made["b"]], dtype=np.int64)
    coords = np.concatenate([rng.normal(0, 1, (20, 2)), rng.normal(50, 1, (20, 2))]).astype(np.float32)
    layout = build.get_layout("tsne", {"collection": "pair"}, model)
    build.save_layout(layout, ids, ids, coords, model=model, params={"placement": "knn"})

    CollectionItem.objects.bulk_create([CollectionItem(collection=pair, artwork=a) for a in made["new"]])
    job = build.request("tsne", {"collection": "pair"})
    with connection.cursor() as cursor:
        # At archive scale PostgreSQL answers a nearest-neighbour query by walking the HNSW index
        # (no sort); on this small table it would sort instead. Make it plan as at scale.
        cursor.execute("SET enable_sort = off")
    try:
        layout = build.run_job(job.pk)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET enable_sort")
    job.refresh_from_db()
    assert job.state == Job.State.DONE and job.message.startswith("placed 3 new points"), job.message
    placed = coords_of(layout)
    for a in made["new"]:
        x, y = placed[a.pk]
        assert abs(x - 50) < 3 and abs(y - 50) < 3, (x, y)  # among group B, not between the groups
    assert layout.point_count == 43


def test_nearest_positions_streams_chunks_exactly():
    from workers.layouts import place

    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 8)).astype(np.float32)
    xy = rng.normal(size=(1000, 2)).astype(np.float32)
    Q = rng.normal(size=(700, 8)).astype(np.float32)  # more than one query block
    chunks = [(xy[s : s + 97], X[s : s + 97]) for s in range(0, 1000, 97)]  # uneven chunks, a short last one
    sims, pos = place.nearest_positions(Q, chunks, k=10)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    exact = np.argsort(-(Qn @ Xn.T), axis=1)[:, :10]
    for r in range(len(Q)):
        assert sorted(map(tuple, pos[r].tolist())) == sorted(map(tuple, xy[exact[r]].tolist()))
    # Fewer points than k: the empty slots say so.
    sims, _ = place.nearest_positions(Q[:5], [(xy[:3], X[:3])], k=10)
    assert np.isfinite(sims).sum(axis=1).tolist() == [3] * 5


def test_face_map_names_regions_and_filters_by_the_active_models_labels(archive60, client):
    from archive.models import Face

    model, artworks = archive60
    rng = np.random.default_rng(6)
    horse = Label.objects.create(name="horse", slug="horse", group="animals", published=True)
    ship = Label.objects.create(name="ship", slug="ship", group="objects", published=True)
    Face.objects.bulk_create([
        Face(artwork=a, model="dlib-resnet-v1", x=0, y=0, w=10, h=10,
             vector=(rng.normal(size=128) + (4.0 if i < 12 else -4.0)).tolist())
        for i, a in enumerate(artworks[:24])
    ])
    ArtworkLabel.objects.bulk_create([
        ArtworkLabel(artwork=a, label=horse if i < 12 else ship, model=model, score=0.3, rank=1) for i, a in enumerate(artworks[:24])
    ])
    layout = build.run_job(build.request("tsne", {"faces": True}).pk)
    assert layout.state == Layout.State.READY and layout.model_id is None
    assert layout.params["label_model_id"] == model.pk and build.labels_model_id(layout) == model.pk
    assert layout.params["region_names_from"] == "labels"
    assert {r.name.split(" · ")[0] for r in Region.objects.filter(layout=layout, level=0)} <= {"horse", "ship"}
    assert {item["slug"]: item["count"] for item in build.label_counts(layout)} == {"horse": 12, "ship": 12}
    r = client.get(f"/map/{layout.slug}/search.json", {"label": "horse"}).json()
    assert sorted(r["ids"]) == sorted(a.pk for a in artworks[:12])
    m = client.get(f"/map/{layout.slug}/manifest.json").json()
    assert m["layout"]["model"] == "dlib-resnet-v1" and m["layout"]["label_model"] == model.key
    assert {item["slug"] for item in m["labels"] if item["count"]} == {"horse", "ship"}

    # Another active model: the face map is rebuilt so its names and filter follow the new labels.
    EmbeddingModel.objects.filter(pk=model.pk).update(state="retired")
    other = EmbeddingModel.objects.create(key="other/none", arch="test", dim=8, state="active", untrained=True)
    layout = build.run_job(build.request("tsne", {"faces": True}).pk)
    assert layout.params["label_model_id"] == other.pk and build.label_counts(layout) == []


def test_embed_job_places_new_artworks_on_the_ready_maps(archive60, django_capture_on_commit_callbacks):
    from workers import jobs
    from workers.celery import app

    model, artworks = archive60
    vectors.ensure_hnsw_index(vectors.ARTWORK_EMBEDDINGS, model.pk, model.dim)  # before any row (one test transaction)
    embed(model, artworks[:30])
    layout = build.run_job(build.request("tsne", {}).pk)
    other = build.run_job(build.request("umap", {"collection": "none-yet"}).pk)  # not built: no points
    assert layout.point_count == 30 and other is not None and other.state == Layout.State.FAILED

    old = app.conf.task_always_eager
    app.conf.task_always_eager = True  # the queued layout job runs inline, as a "maps" worker would run it
    try:
        with django_capture_on_commit_callbacks(execute=True):
            job = jobs.launch("embed", {"model": "test-tiny"}, enqueue=False)
            for batch_id in job.batches.order_by("seq").values_list("pk", flat=True):
                jobs.run_batch(batch_id)
    finally:
        app.conf.task_always_eager = old
    job.refresh_from_db()
    assert job.state == Job.State.DONE and job.done == 30, job.message
    placement = Job.objects.filter(kind=Job.Kind.LAYOUT, params__slug="tsne").latest("id")
    assert placement.state == Job.State.DONE and placement.message.startswith("placed 30 new points"), placement.message
    layout.refresh_from_db()
    assert layout.point_count == 60
    assert LayoutPoint.objects.filter(layout=layout, placed_incrementally=True).count() == 30
    assert not Job.objects.filter(kind=Job.Kind.LAYOUT, params__slug=other.slug).exclude(pk=other.job_id).exists()


def test_face_scan_places_new_faces_on_the_ready_face_maps(archive60, django_capture_on_commit_callbacks):
    """The pipeline's follow-up of a face scan queues a placement on the face maps of its face model:
    new faces get coordinates, the others stay put; a map of another face model is left alone."""
    from archive.models import Face
    from workers import pipeline
    from workers.celery import app
    from workers.layouts import auto

    model, artworks = archive60
    assert auto.place_after_faces in pipeline.FOLLOW_UPS[Job.Kind.FACES]
    rng = np.random.default_rng(9)
    Face.objects.bulk_create(Face(artwork=a, model="dlib-resnet-v1", x=0, y=0, w=10, h=10, vector=rng.normal(size=128).tolist())
                             for a in artworks[:20])
    layout = build.run_job(build.request("tsne", {"faces": True}).pk)
    assert layout.state == Layout.State.READY and layout.point_count == 20
    before = dict(LayoutPoint.objects.filter(layout=layout).values_list("face_id", "x"))
    new = [Face.objects.create(artwork=a, model="dlib-resnet-v1", x=0, y=0, w=10, h=10, vector=rng.normal(size=128).tolist())
           for a in artworks[20:23]]
    other_model = Job.objects.create(kind="faces", state=Job.State.DONE, params={"model": "another-face-model"}, total=3, done=3)
    assert auto.place_after_faces(other_model) == []
    scan = Job.objects.create(kind="faces", state=Job.State.DONE, params={"model": "dlib-resnet-v1"}, total=3, done=3)
    old = app.conf.task_always_eager
    app.conf.task_always_eager = True  # the queued layout job runs inline, as a "maps" worker would run it
    try:
        with django_capture_on_commit_callbacks(execute=True):
            pipeline.follow_up(scan)
    finally:
        app.conf.task_always_eager = old
    placement = Job.objects.filter(kind=Job.Kind.LAYOUT, params__slug="tsne-faces").latest("id")
    assert placement.state == Job.State.DONE and placement.message.startswith("placed 3 new points"), placement.message
    after = dict(LayoutPoint.objects.filter(layout=layout).values_list("face_id", "x"))
    assert set(after) == set(before) | {f.pk for f in new} and all(after[k] == v for k, v in before.items())


def test_placement_renames_regions_once_the_map_has_grown(archive60):
    """Regions keep their places; once placement has grown the map by a tenth since they were
    named, their names are made again from all the points (new subjects show up in them)."""
    from archive.models import Face

    model, artworks = archive60
    rng = np.random.default_rng(11)
    horse = Label.objects.create(name="horse", slug="horse", group="animals", published=True)
    dog = Label.objects.create(name="dog", slug="dog", group="animals", published=True)
    ship = Label.objects.create(name="ship", slug="ship", group="objects", published=True)
    ArtworkLabel.objects.bulk_create([ArtworkLabel(artwork=a, label=horse if i < 10 else dog if i < 20 else ship, model=model,
                                                   score=0.3, rank=1) for i, a in enumerate(artworks[:41])])

    def faces(chunk):
        Face.objects.bulk_create(Face(artwork=a, model="dlib-resnet-v1", x=0, y=0, w=10, h=10,
                                      vector=rng.normal(size=128).tolist()) for a in chunk)

    faces(artworks[:20])
    layout = build.run_job(build.request("tsne", {"faces": True}).pk)
    assert layout.params["regions_named_at"] == 20
    assert not any("ship" in r.name for r in Region.objects.filter(layout=layout))
    centres = sorted(Region.objects.filter(layout=layout).values_list("level", "cluster", "x", "y"))
    faces(artworks[20:40])  # twice the points, all of them ships
    layout = build.run_job(build.request("tsne", {"faces": True}).pk)
    job = Job.objects.filter(kind=Job.Kind.LAYOUT).latest("id")
    assert job.message.startswith("placed 20 new points"), job.message
    assert layout.point_count == 40 and layout.params["regions_named_at"] == 40
    assert sorted(Region.objects.filter(layout=layout).values_list("level", "cluster", "x", "y")) == centres
    assert any("ship" in r.name for r in Region.objects.filter(layout=layout))
    assert not build.names_stale(layout)
    faces(artworks[40:41])  # 2.5% more: the names stay as they are
    before = list(Region.objects.filter(layout=layout).order_by("pk").values_list("name", "top_labels"))
    layout = build.run_job(build.request("tsne", {"faces": True}).pk)
    assert layout.point_count == 41 and layout.params["regions_named_at"] == 40
    assert list(Region.objects.filter(layout=layout).order_by("pk").values_list("name", "top_labels")) == before


def test_layout_jobs_on_one_map_run_one_at_a_time(archive60):
    """A second job on a map waits for the first (it would otherwise add the same new points twice)."""
    import threading

    from django.db import connections

    model, artworks = archive60
    embed(model, artworks[:20])
    layout = build.run_job(build.request("tsne", {}).pk)
    embed(model, artworks[20:23])
    held, waited = threading.Event(), threading.Event()

    def other_job():  # holds the map's lock, as a running layout job does, until the new job queues behind it
        conn = connections.create_connection("default")
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s, %s)", [build.MAP_LOCK_SPACE, layout.pk])
                held.set()
                for _ in range(600):
                    cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                                   "AND classid = %s AND objid = %s", [build.MAP_LOCK_SPACE, layout.pk])
                    if cursor.fetchone()[0]:
                        waited.set()
                        break
                    time.sleep(0.1)
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [build.MAP_LOCK_SPACE, layout.pk])
        finally:
            conn.close()

    thread = threading.Thread(target=other_job)
    thread.start()
    assert held.wait(30)
    job = build.request("tsne", {})
    layout = build.run_job(job.pk)
    thread.join()
    assert waited.is_set()  # the job waited for the lock's holder
    job.refresh_from_db()
    assert job.state == Job.State.DONE and layout.point_count == 23
    assert LayoutPoint.objects.filter(layout=layout).count() == 23


def test_saving_a_layout_refreshes_the_planner_statistics_of_its_points(db):
    """The export joins the new points right after the bulk write; planned on the counts from before
    it (autovacuum analyses later, and never sees rows not yet committed) the label count took a
    nested loop over every point per label row. Saving a layout analyses the points table first."""
    model = tiny_model()
    n = 5_000
    arts = Artwork.objects.bulk_create([Artwork(source="stats", source_id=str(i), title=f"w {i}") for i in range(n)])
    ids = np.array([a.pk for a in arts], dtype=np.int64)
    coords = np.random.default_rng(3).normal(0, 1, (n, 2)).astype(np.float32)
    layout = build.get_layout("tsne", {}, model)
    build.save_layout(layout, ids, ids, coords, model=model, params={})
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'archive_layoutpoint'")
        assert cursor.fetchone()[0] >= n
