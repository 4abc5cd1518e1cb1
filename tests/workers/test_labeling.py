"""Zero-shot labelling on real AIC images embedded with the (untrained) test-tiny model, against
the real PostgreSQL: top-k rows, idempotent re-runs, chunking, thresholds, curator decisions,
labels scored on demand, and model switches."""
from __future__ import annotations

import numpy as np
import pytest
from django.utils import timezone

from archive.images import ImageLimits, ingest_location, load_derivative
from archive.models import Artwork, ArtworkEmbedding, ArtworkLabel, EmbeddingModel, Label, LabelDecision, LabelEmbedding
from archive.vectors import ARTWORK_EMBEDDINGS, copy_rows, ensure_hnsw_index
from workers.labeling import (
    STAGE,
    apply_label,
    artworks_for_label,
    ensure_label_embeddings,
    label_artworks,
    load_vocabulary,
    score_label,
    visible_labels,
    visible_labels_for,
)
from workers.labeling.setup import ensure_texts
from workers.labeling.store import load_embeddings, load_label_vectors
from workers.ml.registry import activate, get_embedder

N_IMAGES = 30
K = 5
MODEL_KEY = "test-tiny-labels"

VOCAB = [
    {"name": "dog", "slug": "dog", "group": "animals", "source": "test", "prompt": "", "description": ""},
    {"name": "horse", "slug": "horse", "group": "animals", "source": "test", "prompt": "a horse", "description": ""},
    {"name": "boat", "slug": "boat", "group": "objects", "source": "test", "prompt": "", "description": ""},
    {"name": "tree", "slug": "tree", "group": "nature", "source": "test", "prompt": "", "description": ""},
    {"name": "sea", "slug": "sea", "group": "nature", "source": "test", "prompt": "the sea", "description": ""},
    {"name": "portrait", "slug": "portrait", "group": "genres", "source": "test", "prompt": "", "description": ""},
    {"name": "landscape", "slug": "landscape", "group": "genres", "source": "test", "prompt": "", "description": ""},
    {"name": "still life", "slug": "still-life", "group": "genres", "source": "test", "prompt": "", "description": ""},
    {"name": "Madonna and Child", "slug": "madonna-and-child", "group": "iconography", "source": "test", "prompt": "", "description": ""},
    {"name": "church", "slug": "church", "group": "architecture", "source": "test", "prompt": "", "description": ""},
    {"name": "flowers", "slug": "flowers", "group": "nature", "source": "test", "prompt": "", "description": ""},
    {"name": "crowd", "slug": "crowd", "group": "people", "source": "test", "prompt": "a crowd of people", "description": ""},
]


def _embed(model, artworks, media_root, embedder, noise=0.0):
    images = [load_derivative(a.sha256, 256, media_root) for a in artworks]
    vectors = embedder.embed_images(images)
    if noise:
        vectors = vectors + noise * np.random.default_rng(5).standard_normal(vectors.shape).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    now = timezone.now()
    copy_rows(
        "archive_artworkembedding",
        ["artwork_id", "model_id", "vector", "created_at"],
        [(a.pk, model.pk, v, now) for a, v in zip(artworks, vectors)],
        conflict=["artwork_id", "model_id"],
        update=["vector"],
    )


@pytest.fixture(scope="module")
def archive(django_db_setup, django_db_blocker, aic_dir, tmp_path_factory):
    """~30 real AIC paintings ingested, embedded with test-tiny; cleaned up afterwards."""
    media_root = tmp_path_factory.mktemp("label_media")
    paths = sorted((aic_dir / "images").glob("*.jpg"))[:N_IMAGES]
    with django_db_blocker.unblock():
        _cleanup()  # leftovers of an interrupted run with --reuse-db
        artworks = []
        for path in paths:
            img = ingest_location(str(path), (256,), media_root, ImageLimits())
            artworks.append(
                Artwork.objects.create(
                    source="test-labels", source_id=path.stem, title=f"AIC {path.stem}", sha256=img.sha256,
                    phash=img.phash, phash_bits=img.phash_bits, width=img.width, height=img.height, status=Artwork.Status.OK,
                )
            )
        embedder = get_embedder("test-tiny")
        # A model row of our own (the test-tiny weights under another key), so rows other test
        # modules keep for "test-tiny" in a shared test database never mix with these.
        model = EmbeddingModel.objects.create(
            key=MODEL_KEY, arch="test-tiny", pretrained="random", dim=embedder.dim, untrained=True
        )
        assert get_embedder(MODEL_KEY) is embedder
        _embed(model, artworks, media_root, embedder)
        load_vocabulary(VOCAB)
        yield {"artworks": artworks, "model": model, "media_root": media_root, "embedder": embedder}
        _cleanup()


def _cleanup():
    Artwork.objects.filter(source="test-labels").delete()
    Label.objects.filter(source__in=["test", "curator test"]).delete()
    EmbeddingModel.objects.filter(key__in=[MODEL_KEY, MODEL_KEY + "-b"]).delete()


def _rows(model):
    return sorted(ArtworkLabel.objects.filter(model=model).values_list("artwork_id", "label_id", "rank", "score"))


def _same(a, b):
    """Same rows (artwork, label, rank) and scores equal up to float32 BLAS noise."""
    assert [r[:3] for r in a] == [r[:3] for r in b]
    assert np.allclose([r[3] for r in a], [r[3] for r in b], atol=1e-5)
    return True


def _label_all(archive, **kw):
    params = STAGE.prepare({"model": MODEL_KEY, "top_k": K})
    ids = list(STAGE.candidates(params))
    result = STAGE.process(ids, params)
    return params, ids, result


@pytest.mark.django_db
def test_load_vocabulary_is_idempotent_and_keeps_curator_edits(archive):
    assert Label.objects.filter(source="test").count() == len(VOCAB)
    assert load_vocabulary(VOCAB) == {"created": 0, "updated": 0, "unchanged": len(VOCAB), "skipped": 0}
    Label.objects.filter(slug="dog").update(threshold=0.9, published=False, prompt="a small dog")
    changed = [dict(v, description="Canis familiaris") if v["slug"] == "dog" else v for v in VOCAB]
    counts = load_vocabulary(changed)
    assert counts["updated"] == 1
    dog = Label.objects.get(slug="dog")
    assert (dog.threshold, dog.published, dog.prompt, dog.description) == (0.9, False, "a small dog", "Canis familiaris")
    load_vocabulary(changed, force=True)
    dog.refresh_from_db()
    assert (dog.threshold, dog.published, dog.prompt) == (None, True, "")


@pytest.mark.django_db
def test_label_embeddings_are_cached_per_prompt_fingerprint(archive):
    model = archive["model"]
    LabelEmbedding.objects.filter(model=model).delete()
    assert ensure_label_embeddings(model) == Label.objects.filter(published=True).count()
    assert ensure_label_embeddings(model) == 0
    Label.objects.filter(slug="boat").update(prompt="a sailing boat")
    assert ensure_label_embeddings(model) == 1
    ids, matrix = load_label_vectors(model.pk)
    assert matrix.shape == (Label.objects.filter(published=True).count(), model.dim)
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    # the ensemble is the normalised mean of the normalised template embeddings
    from workers.labeling.prompts import prompts_for

    boat = Label.objects.get(slug="boat")
    vecs = archive["embedder"].embed_texts(prompts_for(boat))
    mean = vecs.mean(axis=0)
    assert np.allclose(matrix[list(ids).index(boat.pk)], mean / np.linalg.norm(mean), atol=1e-5)


@pytest.mark.django_db
def test_stage_labels_every_artwork_top_k_and_reruns_do_not_duplicate(archive):
    model = archive["model"]
    params, ids, result = _label_all(archive)
    assert params["model_id"] == model.pk and params["untrained"] is True
    assert sorted(ids) == sorted(a.pk for a in archive["artworks"])
    assert sorted(result.done) == sorted(ids) and not result.errors
    rows = _rows(model)
    assert len(rows) == len(ids) * K
    by_artwork = {}
    for artwork_id, label_id, rank, score in rows:
        by_artwork.setdefault(artwork_id, []).append((rank, score, label_id))
    ids_, emb = load_embeddings(model.pk, ids)
    label_ids, labels = load_label_vectors(model.pk)
    for artwork_id, entries in by_artwork.items():
        entries.sort()
        assert [r for r, _, _ in entries] == list(range(1, K + 1))
        assert all(a[1] >= b[1] for a, b in zip(entries, entries[1:]))
        # the stored labels are the K best by cosine similarity (the stage normalises each stored
        # vector: float16 values leave its length a little off 1)
        vector = emb[list(ids_).index(artwork_id)]
        scores = labels @ (vector / np.linalg.norm(vector))
        assert [l for _, _, l in entries] == label_ids[np.argsort(-scores)[:K]].tolist()
        assert np.allclose([s for _, s, _ in entries], np.sort(scores)[::-1][:K], atol=1e-5)
    assert sorted(STAGE.completed(params)) == sorted(ids)
    # re-running (whole set, then a subset) rewrites, never duplicates
    STAGE.process(ids, params)
    STAGE.process(ids[:7], params)
    assert _same(_rows(model), rows)
    # stats exist for the derived thresholds
    assert LabelEmbedding.objects.filter(model=model, default_threshold__isnull=False, stats_count=len(ids)).count() == len(label_ids)


@pytest.mark.django_db
def test_statistics_sample(archive):
    from workers.labeling.stats import sample_embeddings

    model = archive["model"]
    sample = sample_embeddings(model.pk, size=10)
    assert sample.shape == (10, model.dim)
    assert np.allclose(np.linalg.norm(sample, axis=1), 1.0, atol=1e-5)
    assert sample_embeddings(model.pk, size=1000).shape == (len(archive["artworks"]), model.dim)


@pytest.mark.django_db
def test_chunk_size_smaller_than_batch_gives_identical_rows(archive):
    model = archive["model"]
    params, ids, _ = _label_all(archive)
    one = _rows(model)
    label_artworks(ids, model, k=K, max_rows=4)
    assert _same(_rows(model), one)


@pytest.mark.django_db
def test_items_without_embedding_are_item_errors(archive):
    params = STAGE.prepare({"model": MODEL_KEY, "top_k": K})
    stub = Artwork.objects.create(source="test-labels", source_id="no-embedding", status=Artwork.Status.OK)
    zero = Artwork.objects.create(source="test-labels", source_id="zero-embedding", status=Artwork.Status.OK)
    copy_rows("archive_artworkembedding", ["artwork_id", "model_id", "vector", "created_at"],
              [(zero.pk, archive["model"].pk, np.zeros(archive["model"].dim, dtype=np.float32), timezone.now())])
    good = archive["artworks"][0].pk
    result = STAGE.process([good, stub.pk, zero.pk], params)
    assert result.done == [good]
    reasons = {e.artwork_id: e.reason for e in result.errors}
    assert set(reasons) == {stub.pk, zero.pk}
    assert "no embedding" in reasons[stub.pk] and "zero" in reasons[zero.pk]
    assert not ArtworkLabel.objects.filter(artwork_id__in=[stub.pk, zero.pk]).exists()


@pytest.mark.django_db
def test_thresholds_and_curator_decisions(archive, settings):
    model = archive["model"]
    activate(model)
    _label_all(archive)
    art = archive["artworks"][0]
    rows = list(ArtworkLabel.objects.filter(model=model, artwork=art).order_by("rank").select_related("label"))
    # no thresholds at all: every top-k row is shown
    LabelEmbedding.objects.filter(model=model).update(default_threshold=None)
    shown = visible_labels(art)
    assert [s.label.pk for s in shown] == [r.label_id for r in rows]
    assert all(s.calibrated is not None for s in shown)
    # a curator threshold above the top score hides that label
    top, second = rows[0].label, rows[1].label
    Label.objects.filter(pk=top.pk).update(threshold=rows[0].score + 1e-3)
    assert top.pk not in [s.label.pk for s in visible_labels(art)]
    # a global setting applies to labels without their own threshold
    settings.LABEL_THRESHOLD = 2.0
    assert visible_labels(art) == []
    settings.LABEL_THRESHOLD = None
    # derived per-label thresholds (a percentile over the archive) apply otherwise
    ensure_texts(model)  # what a label job's first batch does: texts and statistics
    Label.objects.filter(pk=top.pk).update(threshold=None)
    derived = dict(LabelEmbedding.objects.filter(model=model).values_list("label_id", "default_threshold"))
    expected = [r.label_id for r in rows if r.score >= derived[r.label_id]]
    assert [s.label.pk for s in visible_labels(art)] == expected
    shown_all = visible_labels_for([a.pk for a in archive["artworks"]])
    assert 0 < sum(len(v) for v in shown_all.values()) < len(archive["artworks"]) * K
    # decisions: rejected hides, accepted shows below threshold, added shows without a row
    Label.objects.filter(pk__in=[top.pk, second.pk]).update(threshold=5.0)
    unranked = Label.objects.filter(source="test").exclude(pk__in=[r.label_id for r in rows]).first()
    LabelDecision.objects.create(artwork=art, label=second, decision="accepted")
    LabelDecision.objects.create(artwork=art, label=unranked, decision="added")
    shown = visible_labels(art)
    assert {s.label.pk for s in shown if s.by_curator} == {second.pk, unranked.pk}
    assert top.pk not in [s.label.pk for s in shown]
    Label.objects.filter(pk=top.pk).update(threshold=None)
    LabelDecision.objects.create(artwork=art, label=top, decision="rejected")
    assert top.pk not in [s.label.pk for s in visible_labels(art)]
    # decisions survive re-labelling
    STAGE.process([art.pk], STAGE.prepare({"model": MODEL_KEY, "top_k": K}))
    shown = visible_labels_for([art.pk])[art.pk]
    assert top.pk not in [s.label.pk for s in shown] and unranked.pk in [s.label.pk for s in shown]
    # the label page: curator-added first, rejected never
    assert art.pk in list(artworks_for_label(unranked).values_list("pk", flat=True))
    assert art.pk not in list(artworks_for_label(top).values_list("pk", flat=True))


@pytest.mark.django_db
def test_curator_label_scored_on_demand_and_applied(archive):
    model = archive["model"]
    _label_all(archive)
    before = _rows(model)
    label = Label.objects.create(name="a ship at sea", slug="ship-at-sea", group="curated", prompt="a ship in a storm at sea", source="curator test", published=False)
    ensure_hnsw_index(ARTWORK_EMBEDDINGS, model.pk, model.dim)
    hits = score_label(label, model=model, limit=10)
    assert len(hits) == 10
    ids, emb = load_embeddings(model.pk, [a.pk for a in archive["artworks"]])
    vec = load_label_vectors(model.pk, published_only=False, label_ids=[label.pk])[1][0]
    brute = sorted(zip((emb @ vec).tolist(), ids.tolist()), reverse=True)[:10]
    assert [a for a, _ in hits] == [a for _, a in brute]  # exact on 30 rows
    assert np.allclose([s for _, s in hits], [s for s, _ in brute], atol=1e-4)

    summary = apply_label(label, model=model, k=K, chunk_size=7)
    assert summary["scored"] == len(ids)
    after = _rows(model)
    assert len(after) == len(before)  # every entry pushed one row out of a full top-k
    assert summary["inserted"] == summary["evicted"]
    new = {a: (r, s) for a, l, r, s in after if l == label.pk}
    assert len(new) == summary["inserted"]
    for artwork_id, (rank, score) in new.items():
        others = [s for a, l, r, s in before if a == artwork_id]
        assert score > min(others) - 1e-9
        assert rank == 1 + sum(s > score for s in others)
    for artwork_id in ids.tolist():
        assert sorted(r for a, l, r, s in after if a == artwork_id) == list(range(1, K + 1))
    assert LabelEmbedding.objects.get(model=model, label=label).stats_count == len(ids)
    # applying again changes nothing
    apply_label(label, model=model, k=K)
    assert _same(_rows(model), after)
    # after a prompt edit, re-applying replaces the label's rows with the new scores
    label.prompt = "a portrait of a woman in a red dress"
    label.save()
    apply_label(label, model=model, k=K)
    vec2 = load_label_vectors(model.pk, published_only=False, label_ids=[label.pk])[1][0]
    new_scores = dict(zip(ids.tolist(), (emb @ vec2).tolist()))
    final = _rows(model)
    for artwork_id in ids.tolist():
        mine = [(a, l, r, s) for a, l, r, s in final if a == artwork_id]
        others = [s for a, l, r, s in after if a == artwork_id and l != label.pk]
        assert sorted(r for _, _, r, _ in mine) == list(range(1, len(mine) + 1)) and len(mine) in (K - 1, K)
        has = [s for _, l, _, s in mine if l == label.pk]
        expected_in = len(others) < K or new_scores[artwork_id] > min(others)
        assert bool(has) == expected_in
        if has:
            assert abs(has[0] - new_scores[artwork_id]) < 1e-4


@pytest.mark.django_db
def test_model_switch_keeps_the_old_models_rows(archive):
    old = archive["model"]
    activate(old)
    _label_all(archive)
    old_rows = _rows(old)
    new = EmbeddingModel.objects.create(key=MODEL_KEY + "-b", arch="test-tiny", pretrained="random", dim=old.dim, untrained=True)
    _embed(new, archive["artworks"], archive["media_root"], archive["embedder"], noise=0.3)
    art = archive["artworks"][3]
    old_shown = [s.label.pk for s in visible_labels(art)]
    params = STAGE.prepare({"model": MODEL_KEY + "-b", "top_k": K})
    assert params["model_id"] == new.pk
    ids = list(STAGE.candidates(params))
    STAGE.reset(params)
    STAGE.process(ids, params)
    assert _rows(old) == old_rows  # labelling the new model never touched the old one
    assert len(_rows(new)) == len(ids) * K
    # the explorer reads the active model's labels until the switch
    assert [s.label.pk for s in visible_labels(art)] == old_shown
    activate(new)
    new_rows = {l for a, l, r, s in _rows(new) if a == art.pk}
    assert {s.label.pk for s in visible_labels(art)} <= new_rows
    STAGE.reset(params)
    assert _rows(old) == old_rows and _rows(new) == []
    ArtworkEmbedding.objects.filter(model=new).delete()


@pytest.mark.django_db
def test_load_vocabulary_command_on_the_real_vocabulary(archive):
    try:
        from workers.vocabulary import load_labels  # noqa: F401
    except ImportError:
        pytest.skip("workers.vocabulary.load_labels (the vocabulary data) is not installed yet")
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("load_vocabulary", stdout=out, verbosity=0)
    assert "created" in out.getvalue()
    count = Label.objects.count()
    assert count >= 1000
    out = StringIO()
    call_command("load_vocabulary", stdout=out, verbosity=0)
    assert "0 created, 0 updated" in out.getvalue() and Label.objects.count() == count
    # --embed computes the published labels' text embeddings (a few here, to stay fast)
    keep = list(Label.objects.exclude(source="test").order_by("pk").values_list("pk", flat=True)[:5])
    Label.objects.exclude(pk__in=keep).update(published=False)
    LabelEmbedding.objects.filter(model=archive["model"]).delete()
    out = StringIO()
    call_command("load_vocabulary", "--embed", "--model", MODEL_KEY, stdout=out, verbosity=0)
    assert f"{MODEL_KEY}: 5 computed (untrained" in out.getvalue()
    assert set(LabelEmbedding.objects.filter(model=archive["model"]).values_list("label_id", flat=True)) == set(keep)


@pytest.mark.django_db
def test_label_job_through_the_job_machinery(archive):
    from archive.models import Job
    from workers import jobs

    model = archive["model"]
    job = jobs.launch("label", {"model": MODEL_KEY, "top_k": K}, mode="reset", batch_size=8, enqueue=False)
    assert job.params["model_id"] == model.pk and job.total == len(archive["artworks"])
    for batch_id in job.batches.order_by("seq").values_list("pk", flat=True):
        jobs.run_batch(batch_id, worker="test")
    job.refresh_from_db()
    assert job.state == Job.State.DONE and job.done == len(archive["artworks"]) and job.failed == 0
    assert ArtworkLabel.objects.filter(model=model).count() == len(archive["artworks"]) * K
    again = jobs.launch("label", {"model": MODEL_KEY, "top_k": K}, mode="missing", enqueue=False)
    assert again.total == 0  # every embedded artwork already has labels under this model


@pytest.mark.django_db
def test_label_launch_returns_at_once_and_the_job_prepares_the_texts(archive):
    """Launching embeds no prompt (a web request or the CLI returns at once); the job's first
    batch does it on the worker, once per job, and a later job reuses the cached embeddings."""
    from archive.models import Job
    from workers import jobs

    model = archive["model"]
    LabelEmbedding.objects.filter(model=model).delete()
    job = jobs.launch("label", {"model": MODEL_KEY, "top_k": K}, mode="reset", batch_size=8, enqueue=False)
    assert job.state == Job.State.QUEUED and job.total == len(archive["artworks"])
    assert not LabelEmbedding.objects.filter(model=model).exists() and "texts_ready" not in job.params
    batches = list(job.batches.order_by("seq").values_list("pk", flat=True))
    jobs.run_batch(batches[0])
    job.refresh_from_db()
    published = Label.objects.filter(published=True).count()
    assert job.params["texts_ready"] is True
    assert job.message == f"label texts ready ({published} labels embedded for this job)"
    assert LabelEmbedding.objects.filter(model=model, stats_count__isnull=False).count() == published
    first_made = dict(LabelEmbedding.objects.filter(model=model).values_list("label_id", "created_at"))
    for batch_id in batches[1:]:
        jobs.run_batch(batch_id)
    job.refresh_from_db()
    assert job.state == Job.State.DONE and job.done == len(archive["artworks"])
    again = jobs.launch("label", {"model": MODEL_KEY, "top_k": K}, mode="all", batch_size=8, enqueue=False)
    assert "texts_ready" not in again.params
    jobs.run_batch(again.batches.order_by("seq").first().pk)
    again.refresh_from_db()
    assert again.message == "label texts ready (0 labels embedded for this job)"
    assert dict(LabelEmbedding.objects.filter(model=model).values_list("label_id", "created_at")) == first_made


@pytest.mark.django_db
def test_published_curator_label_is_scored_by_a_job(archive):
    """``score_label``: the work of ``apply_label`` as a job over every non-retired model with
    embeddings, batch by batch, with the label's statistics stored at the end."""
    from archive.models import Job
    from workers import jobs

    model = archive["model"]
    _label_all(archive)
    before = _rows(model)
    retired = EmbeddingModel.objects.create(key=MODEL_KEY + "-b", arch="test-tiny", pretrained="random", dim=model.dim,
                                            untrained=True, state=EmbeddingModel.State.RETIRED)
    _embed(retired, archive["artworks"][:3], archive["media_root"], archive["embedder"])
    label = Label.objects.create(name="a ship at sea", slug="ship-at-sea", group="curated", prompt="a ship in a storm at sea",
                                 source="curator test", published=True)
    job = jobs.launch("score_label", {"label_id": label.pk, "top_k": K}, batch_size=7, enqueue=False)
    assert job.state == Job.State.QUEUED, job.message
    assert model.pk in job.params["model_ids"] and retired.pk not in job.params["model_ids"]
    assert job.params["untrained"] is True and job.total >= len(archive["artworks"])
    for batch_id in job.batches.order_by("seq").values_list("pk", flat=True):
        jobs.run_batch(batch_id)
    job.refresh_from_db()
    assert job.state == Job.State.DONE and job.failed == 0, job.message
    ids, emb = load_embeddings(model.pk, [a.pk for a in archive["artworks"]])
    vec = load_label_vectors(model.pk, published_only=False, label_ids=[label.pk])[1][0]
    scores = dict(zip(ids.tolist(), (emb @ vec).tolist()))
    after = _rows(model)
    assert len(after) == len(before)  # each entry pushed one row out of a full top-k
    for artwork_id in ids.tolist():
        others = [s for a, l, r, s in before if a == artwork_id]
        mine = [(r, s) for a, l, r, s in after if a == artwork_id and l == label.pk]
        assert bool(mine) == (scores[artwork_id] > min(others))
        if mine:
            assert mine[0][0] == 1 + sum(s > scores[artwork_id] for s in others)
        assert sorted(r for a, l, r, s in after if a == artwork_id) == list(range(1, K + 1))
    stats = LabelEmbedding.objects.get(model=model, label=label)
    assert stats.stats_count == len(ids) and stats.default_threshold is not None
    assert not ArtworkLabel.objects.filter(model=retired).exists()
    refused = jobs.launch("score_label", {"label_id": 987654321}, enqueue=False)
    assert refused.state == Job.State.FAILED and "existing label" in refused.message
