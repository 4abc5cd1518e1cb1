"""The embed stage on real images: vectors in pgvector (one row per artwork and model), the
per-model HNSW index, untrained flag, the pipelined decode, and switching models without loss."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from archive.images import ImageLimits, derivative_path, ingest_location, load_derivative
from archive.models import Artwork, ArtworkEmbedding, EmbeddingModel, Job, JobBatch, JobError, Label, LabelDecision
from archive.vectors import ARTWORK_EMBEDDINGS, from_value, index_name, nearest
from workers import embedding, jobs
from workers.ml.registry import activate, active_model, get_embedder


def ingest_artworks(folder: Path, count: int) -> list[Artwork]:
    limits = ImageLimits.from_settings()
    rows = []
    for path in sorted(folder.glob("*.jpg"))[:count]:
        image = ingest_location(str(path), settings.DERIVATIVE_SIZES, Path(settings.MEDIA_ROOT), limits)
        rows.append(Artwork(source="embed-test", source_id=path.stem, title=path.stem, sha256=image.sha256,
                            phash=image.phash, width=image.width, height=image.height, status=Artwork.Status.OK))
    return Artwork.objects.bulk_create(rows)


@pytest.fixture
def artworks(culturecraft_dir):
    return ingest_artworks(culturecraft_dir / "images" if (culturecraft_dir / "images").exists() else culturecraft_dir, 10)


def run_all(job: Job) -> Job:
    for batch_id in job.batches.order_by("seq").values_list("pk", flat=True):
        jobs.run_batch(batch_id)
    job.refresh_from_db()
    return job


@pytest.mark.django_db
def test_vectors_match_the_model_and_are_queryable(artworks):
    job = run_all(jobs.launch("embed", {"model": "test-tiny"}, enqueue=False))
    assert job.state == Job.State.DONE and job.done == 10
    model = EmbeddingModel.objects.get(pk=job.params["model_id"])
    assert model.key == "test-tiny" and model.untrained and model.dim == 64 and model.preprocess_fingerprint
    assert model.state == EmbeddingModel.State.ACTIVE  # first model: activated when complete
    embedder = get_embedder("test-tiny")
    first = artworks[0]
    expected = embedder.embed_images([load_derivative(first.sha256, 256)])[0]
    stored = from_value(ArtworkEmbedding.objects.get(artwork=first, model=model).vector)
    # Stored as halfvec: the model's float32 output rounded to the nearest float16, exactly.
    assert stored.shape == (64,) and np.array_equal(stored, expected.astype(np.float16).astype(np.float32))
    assert abs(np.linalg.norm(stored) - 1) < 1e-3
    # The per-model partial HNSW index exists and kNN finds the artwork itself first.
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [index_name(ARTWORK_EMBEDDINGS, model.pk)])
        (indexdef,) = cursor.fetchone()
    assert "hnsw" in indexdef and f"model_id = {model.pk}" in indexdef
    hits = nearest(ARTWORK_EMBEDDINGS, model.pk, stored, dim=64, limit=3, columns=["artwork_id"])
    assert hits[0][2] == first.pk and hits[0][1] < 1e-4


@pytest.mark.django_db
def test_missing_derivative_is_an_item_error(artworks):
    missing = artworks[4]
    path = derivative_path(missing.sha256, 256)
    saved = path.read_bytes()
    path.unlink()
    try:
        result = embedding.process([a.pk for a in artworks] + [987654321], {"model_key": "test-tiny", "model_id": embedding.register(get_embedder("test-tiny")).pk})
    finally:
        path.write_bytes(saved)
    reasons = {e.artwork_id: e.reason for e in result.errors}
    assert set(reasons) == {missing.pk, 987654321}
    assert "missing" in reasons[missing.pk] and str(path) in reasons[missing.pk]
    assert reasons[987654321] == "artwork no longer exists"
    assert sorted(result.done) == sorted(a.pk for a in artworks if a.pk != missing.pk)


@pytest.mark.django_db
def test_micro_batches_pipeline_gives_same_vectors(artworks, settings):
    embedder = get_embedder("test-tiny")
    items = [(a.pk, a.sha256) for a in artworks]
    settings.EMBED_MICRO_BATCH = 3
    ids_small, small, _ = embedding.embed_artworks(embedder, items)
    settings.EMBED_MICRO_BATCH = 64
    ids_big, big, _ = embedding.embed_artworks(embedder, items)
    assert ids_small == ids_big == [a.pk for a in artworks]
    assert np.allclose(small, big, atol=1e-5)


@pytest.mark.django_db(transaction=True)  # a second model's index is created after rows exist
def test_switching_models_keeps_the_old_one_usable_until_the_new_one_is_ready(artworks):
    """A model switch: the old model stays active until the new one covers every artwork (one
    permanently unreadable image does not block it) and has labels on every embedded artwork
    (checked on the rows, not on job states); the reason it waits is on the job; curator
    decisions stay and curator thresholds move to the new model's units."""
    from archive.models import LabelEmbedding
    from workers import switch
    from workers.celery import app

    old_job = run_all(jobs.launch("embed", {"model": "test-tiny"}, enqueue=False))
    old = EmbeddingModel.objects.get(pk=old_job.params["model_id"])
    assert active_model() == old
    labels = [Label.objects.create(name=n, slug=n.replace(" ", "-"), group="test") for n in ("a boat", "a tree", "a face")]
    run_all(jobs.launch("label", {"model": "test-tiny"}, enqueue=False))  # old model: labels and statistics
    curated = labels[0]
    stats_old = LabelEmbedding.objects.get(label=curated, model=old)
    threshold = stats_old.score_mean + 0.5 * stats_old.score_std
    Label.objects.filter(pk=curated.pk).update(threshold=threshold)
    LabelDecision.objects.create(artwork=artworks[0], label=curated, decision=LabelDecision.Decision.ACCEPTED)

    unreadable = artworks[5]
    path = derivative_path(unreadable.sha256, 256)
    saved = path.read_bytes()
    path.write_bytes(b"not an image any more")
    app.conf.task_always_eager = True  # the label job the embed job starts runs here, not on a broker
    try:
        # Embed the new model in the background: only part of it first.
        new_job = jobs.launch("embed", {"model": "test-tiny-b/random", "activate_when_complete": True}, batch_size=4, enqueue=False)
        new = EmbeddingModel.objects.get(pk=new_job.params["model_id"])
        assert new.untrained and new.dim == 32 and new.state == EmbeddingModel.State.EMBEDDING
        jobs.run_batch(new_job.batches.get(seq=0).pk)
        waiting = switch.maybe_activate(new)
        assert not waiting and waiting.waiting_for == "embeddings" and "6 (e.g. artworks" in waiting.reason
        assert active_model() == old and ArtworkEmbedding.objects.filter(model=old).count() == 10
        # A label job that is DONE is no proof of labels: coverage is read from the rows.
        Job.objects.create(kind=Job.Kind.LABEL, state=Job.State.DONE, params={"model_id": new.pk})
        assert not switch.labels_complete(new)
        run_all(new_job)
    finally:
        app.conf.task_always_eager = False
        path.write_bytes(saved)
    assert (new_job.state, new_job.done, new_job.failed) == (Job.State.DONE, 9, 1)
    assert switch.coverage_complete(new)  # the unreadable image is a recorded failure, not a gap
    # Its end started a label job for the new model; that job's end switched the active model.
    label_job = Job.objects.filter(kind=Job.Kind.LABEL, params__model_id=new.pk).exclude(total=0).get()
    assert label_job.state == Job.State.DONE and label_job.done == 9, label_job.message
    assert f"computed by job {label_job.pk}" in new_job.message
    assert "test-tiny-b/random is now the active model" in label_job.message
    assert "1 converted" in label_job.message
    new.refresh_from_db()
    old.refresh_from_db()
    assert new.state == EmbeddingModel.State.ACTIVE and old.state == EmbeddingModel.State.RETIRED
    assert ArtworkEmbedding.objects.filter(model=old).count() == 10  # kept, not deleted
    assert LabelDecision.objects.filter(artwork=artworks[0], label=curated).exists()  # model-independent
    # The curator threshold keeps its meaning: the same z-score under the new model's statistics;
    # its value in the old model's units is kept on the old model's row.
    stats_new = LabelEmbedding.objects.get(label=curated, model=new)
    curated.refresh_from_db()
    assert curated.threshold == pytest.approx(stats_new.score_mean + 0.5 * stats_new.score_std, rel=1e-6)
    assert LabelEmbedding.objects.get(label=curated, model=old).threshold == pytest.approx(threshold)
    # Switching back restores it.
    switch.maybe_activate(old)
    curated.refresh_from_db()
    assert curated.threshold == pytest.approx(threshold, rel=1e-6)


@pytest.mark.django_db
def test_activation_waits_and_says_why_on_the_label_job(artworks):
    """The label job of a requested switch that does not cover every embedded artwork leaves the
    model inactive and writes why on the job."""
    from workers import switch

    old = EmbeddingModel.objects.get(pk=run_all(jobs.launch("embed", {"model": "test-tiny"}, enqueue=False)).params["model_id"])
    Label.objects.create(name="a boat", slug="a-boat", group="test")
    with connection.cursor() as cursor:  # fire the test transaction's deferred FK checks, so an index can be built
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    new_job = jobs.launch("embed", {"model": "test-tiny-b/random", "activate_when_complete": True}, enqueue=False)
    for batch_id in new_job.batches.values_list("pk", flat=True):
        jobs.run_batch(batch_id)
    new = EmbeddingModel.objects.get(pk=new_job.params["model_id"])
    label_job = Job.objects.get(kind=Job.Kind.LABEL, params__model_id=new.pk)  # started by the embed job's end
    # Label all but two artworks (as if two batches were lost and the job closed by hand).
    first = label_job.batches.get()
    ids = first.item_ids
    JobBatch.objects.filter(pk=first.pk).update(item_ids=ids[:-2])
    jobs.run_batch(first.pk)
    label_job.refresh_from_db()
    assert label_job.state == Job.State.DONE
    assert active_model() == old
    assert "is not active yet" in label_job.message and "2 (e.g. artworks" in label_job.message
    assert f"manage.py label --model {new.key}" in label_job.message
    assert not switch.labels_complete(new)


@pytest.mark.django_db(transaction=True)
def test_cli_embed_wait_jobs_show_and_retry(artworks, settings, capsys):
    """The commands end to end, tasks run eagerly in this process (no broker)."""
    from workers.celery import app

    path = derivative_path(artworks[2].sha256, 256)
    saved = path.read_bytes()
    path.write_bytes(b"garbage")
    app.conf.task_always_eager = True
    try:
        call_command("embed", "--model", "test-tiny", "--wait", "--batch-size", "4")
        job = Job.objects.get(kind="embed")
        assert (job.state, job.done, job.failed) == (Job.State.DONE, 9, 1)
        out = capsys.readouterr().out
        assert f"job {job.pk} embed (untrained model) done: 9/10 done, 1 failed" in out and "UNTRAINED" in out
        call_command("jobs", "show", str(job.pk))
        out = capsys.readouterr().out
        assert f"artwork {artworks[2].pk}: image derivative unreadable" in out
        path.write_bytes(saved)
        call_command("jobs", "retry", str(job.pk))
        retry = Job.objects.exclude(pk=job.pk).get(kind="embed")
        assert (retry.state, retry.done, retry.failed) == (Job.State.DONE, 1, 0)
        assert JobError.objects.get(job=job).retried_in_id == retry.pk
        call_command("jobs", "list")
        assert f"job {retry.pk} embed (untrained model) done" in capsys.readouterr().out  # flagged in the list
        call_command("embed", "--model", "test-tiny")  # nothing missing: done at once
        assert "0 items" in capsys.readouterr().out
    finally:
        app.conf.task_always_eager = False
        path.write_bytes(saved)


@pytest.mark.django_db
def test_cli_refuses_missing_weights_with_instructions(artworks, tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError) as info:
        call_command("embed", "--model", f"ViT-B-32/{tmp_path / 'nope.safetensors'}")
    assert "CLIP_PRETRAINED=" in str(info.value) and "test-tiny" in str(info.value)


@pytest.mark.django_db
def test_split_preprocessing_matches_open_clip_transform(artworks):
    """Threads run only the PIL part; the batched tensor part gives open_clip's exact numbers."""
    import torch

    embedder = get_embedder("test-tiny")
    images = [load_derivative(a.sha256, 256) for a in artworks[:5]] + [load_derivative(artworks[0].sha256, 256).convert("L")]
    reference = torch.stack([embedder.preprocess(im) for im in images])
    assert torch.allclose(embedder.preprocess_images(images), reference, atol=1e-6)


@pytest.mark.django_db
def test_preprocessing_is_described_checked_and_re_recorded_by_reset(artworks):
    """The registry records what the image preprocessing does in plain values; a job that would
    mix vectors made with other preprocessing is refused, with what changed and the command;
    ``--mode reset`` re-embeds and records the new preprocessing."""
    embedder = get_embedder("test-tiny")
    assert embedder.preprocess_description == {
        "size": [64, 64], "resize_mode": "shortest", "interpolation": "bicubic", "mode": "RGB",
        "mean": [0.481455, 0.457827, 0.408211], "std": [0.26863, 0.261303, 0.275777], "fill_color": 0,
    }
    job = run_all(jobs.launch("embed", {"model": "test-tiny"}, enqueue=False))
    model = EmbeddingModel.objects.get(pk=job.params["model_id"])
    assert model.preprocess == {**embedder.preprocess_description, "input": "256px JPEG derivative"}
    assert model.preprocess_fingerprint.startswith("pp1-") and job.params["preprocess"] == model.preprocess
    # The embeddings were made with other preprocessing (e.g. an older configuration at 224 px).
    older = {**model.preprocess, "size": [224, 224]}
    EmbeddingModel.objects.filter(pk=model.pk).update(preprocess=older, preprocess_fingerprint="pp1-older")
    refused = jobs.launch("embed", {"model": "test-tiny"}, mode="all", enqueue=False)
    assert refused.state == Job.State.FAILED
    assert "size: [224, 224] -> [64, 64]" in refused.message and "--mode reset" in refused.message
    redo = jobs.launch("embed", {"model": "test-tiny"}, mode="reset", enqueue=False)
    assert redo.state == Job.State.QUEUED and redo.total == 10, redo.message
    model.refresh_from_db()
    assert model.preprocess["size"] == [64, 64] and model.preprocess_fingerprint != "pp1-older"
    run_all(redo)
    assert redo.state == Job.State.DONE and ArtworkEmbedding.objects.filter(model=model).count() == 10
    assert jobs.launch("embed", {"model": "test-tiny"}, mode="all", enqueue=False).state == Job.State.QUEUED
    # A registry row from before descriptions existed adopts the current one.
    EmbeddingModel.objects.filter(pk=model.pk).update(preprocess={}, preprocess_fingerprint="0123456789abcdef")
    assert jobs.launch("embed", {"model": "test-tiny"}, enqueue=False).state == Job.State.DONE
    model.refresh_from_db()
    assert model.preprocess["size"] == [64, 64] and model.preprocess_fingerprint.startswith("pp1-")


@pytest.mark.django_db
def test_embeddings_are_written_with_binary_copy_bit_for_bit(artworks):
    """float32 values that need 9 significant digits come back exactly (text formatting with 7
    digits did not); rewriting keeps one row per (artwork, model); NaN is refused."""
    from archive.vectors import binary_copy_payload
    from workers.labeling.store import load_embeddings

    model = embedding.register(get_embedder("test-tiny"))
    ids = [a.pk for a in artworks]
    rng = np.random.default_rng(7)
    matrix = rng.standard_normal((len(ids), model.dim)).astype(np.float32) / 3
    matrix[0, :4] = [np.float32(1) / 3, np.float32(2) / 3, np.nextafter(np.float32(0.1), np.float32(1)), np.float32(1e-30)]
    assert embedding.store_embeddings(model.pk, ids, matrix) == len(ids)
    got_ids, got = load_embeddings(model.pk, ids)
    # halfvec: each value is the float16 nearest the float32 sent (1e-30 underflows to 0), bit for bit.
    half = matrix.astype(np.float16).astype(np.float32)
    assert got_ids.tolist() == ids and got.dtype == np.float32 and np.array_equal(got, half)
    assert np.array_equal(from_value(ArtworkEmbedding.objects.get(artwork_id=ids[0], model=model).vector), half[0])
    embedding.store_embeddings(model.pk, ids[:3], matrix[:3] * 2)
    assert ArtworkEmbedding.objects.filter(model=model).count() == len(ids)
    assert np.array_equal(load_embeddings(model.pk, ids[:3])[1], (matrix[:3] * 2).astype(np.float16).astype(np.float32))
    bad = matrix[:1].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        binary_copy_payload(["vector"], [bad])


def test_local_weights_with_the_same_file_name_get_different_keys(tmp_path):
    from workers.ml.clip import ModelSpec

    a, b = tmp_path / "a" / "model.safetensors", tmp_path / "b" / "model.safetensors"
    key_a, key_b = ModelSpec("ViT-B-32", str(a)).key, ModelSpec("ViT-B-32", str(b)).key
    assert key_a != key_b and key_a.startswith("ViT-B-32/model.safetensors@") and len(key_a.rsplit("@")[1]) == 8
    assert ModelSpec("ViT-B-32", str(a)).key == key_a  # stable
    relative = ModelSpec("ViT-B-32", os.path.relpath(a))
    assert relative.pretrained == str(a) and relative.key == key_a  # made absolute
    assert ModelSpec("ViT-B-32", "laion2b_s34b_b79k").key == "ViT-B-32/laion2b_s34b_b79k"
    assert ModelSpec("test-tiny", "random").key == "test-tiny"


@pytest.mark.django_db
def test_registry_reuses_a_row_registered_under_an_older_key(tmp_path):
    """A model registered before keys carried the path hash keeps its row (no second registration)."""
    import open_clip
    import torch

    from workers.ml import registry
    from workers.ml.clip import _add_local_configs

    _add_local_configs()
    weights = tmp_path / "tiny.pt"
    torch.save(open_clip.create_model("test-tiny").state_dict(), weights)
    legacy = EmbeddingModel.objects.create(key="test-tiny/tiny.pt", arch="test-tiny", pretrained=str(weights), dim=64)
    embedder = get_embedder(f"test-tiny/{weights}")
    assert embedder.key != legacy.key and registry.register(embedder) == legacy
    assert EmbeddingModel.objects.filter(arch="test-tiny", pretrained=str(weights)).count() == 1
    assert get_embedder(legacy.key) is embedder


def test_text_tower_cut_to_the_real_token_length_gives_the_padded_vectors():
    """open_clip pads every text to 77 tokens; cutting each group of texts to its longest gives
    the same vectors (a causal tower read at the end-of-text token)."""
    embedder = get_embedder("test-tiny")
    texts = ["a dog.", "a painting of a dog.", "an engraving of the Madonna and Child with saints in a landscape.",
             "x", "a photograph of a very " + "very " * 90 + "long sentence"]  # the last one fills all 77 tokens
    texts = texts * 60  # several groups
    cut = embedder.embed_texts(texts)
    padded = embedder.embed_texts(texts, cut=False)
    assert cut.shape == padded.shape == (len(texts), embedder.dim)
    assert np.allclose(cut, padded, atol=2e-6)
    assert np.allclose(np.linalg.norm(cut, axis=1), 1, atol=1e-5)
    lengths = embedder._text_lengths(embedder.tokenizer(texts[:5])).tolist()
    assert lengths[0] < lengths[1] < lengths[2] < lengths[4] == 77


def test_untrained_model_is_the_same_in_every_process():
    """The test-tiny model's random weights come from a fixed seed: a worker that embeds images and
    the web process that embeds a text query build the same model, whatever random numbers each
    process drew before, and building it leaves the caller's random state alone."""
    import subprocess
    import sys

    import torch

    from workers.ml.clip import RANDOM, ClipEmbedder, ModelSpec

    spec = ModelSpec("test-tiny", RANDOM)
    torch.manual_seed(123)
    first = ClipEmbedder(spec, device="cpu").embed_texts(["a horse in a storm"])[0]
    after = torch.rand(1)
    torch.manual_seed(123)
    torch.rand(1000)  # a different RNG state before building
    second = ClipEmbedder(spec, device="cpu").embed_texts(["a horse in a storm"])[0]
    np.testing.assert_array_equal(first, second)
    torch.manual_seed(123)
    ClipEmbedder(spec, device="cpu")
    assert torch.equal(torch.rand(1), after)  # the caller's RNG stream is untouched
    code = (
        "from workers.ml.clip import RANDOM, ClipEmbedder, ModelSpec\n"
        "v = ClipEmbedder(ModelSpec('test-tiny', RANDOM), device='cpu').embed_texts(['a horse in a storm'])[0]\n"
        "print(','.join(repr(float(x)) for x in v))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=settings.BASE_DIR)
    other = np.array([float(x) for x in out.stdout.strip().splitlines()[-1].split(",")], dtype=np.float32)
    np.testing.assert_allclose(other, first, rtol=0, atol=1e-6)


@pytest.mark.django_db
def test_jpeg_batch_preprocessing_matches_the_pil_path(artworks):
    """The GPU path (nvJPEG + tensor resize, used on CUDA) reproduces the PIL preprocessing. Run
    here on the CPU, where torchvision decodes the same way; an undecodable file is reported and
    the rest of the batch kept."""
    import torch

    embedder = get_embedder("test-tiny")
    shas = [a.sha256 for a in artworks]
    datas = [derivative_path(sha, 256).read_bytes() for sha in shas]
    datas.insert(3, b"\xff\xd8\xff\xe0 not really a jpeg")
    batch, kept, failed = embedder.batch_from_jpegs(datas)
    assert kept == [i for i in range(len(datas)) if i != 3]
    assert [position for position, _ in failed] == [3] and "JPEG" in failed[0][1]
    reference = embedder.batch_from_prepared([embedder.prepare_image(load_derivative(sha, 256)) for sha in shas])
    std = torch.tensor(embedder.preprocess_description["std"]).view(1, 3, 1, 1)
    grey = (batch - reference).abs() * std * 255
    assert grey.mean() < 1.5, grey.mean()  # within a grey level or so on average (resampling rounding)
    cos = (embedder.embed_batch(batch) * embedder.embed_batch(reference)).sum(axis=1)
    assert cos.min() > 0.999, cos


@pytest.mark.django_db
def test_embed_job_through_the_jpeg_batch_path(artworks, monkeypatch):
    """With the batch decode on (as on CUDA), a job stores every vector and records a corrupt
    derivative as an item error, exactly like the threaded PIL path."""
    embedder = get_embedder("test-tiny")
    monkeypatch.setattr(embedder, "_gpu_decode", True, raising=False)
    broken = artworks[2]
    path = derivative_path(broken.sha256, 256)
    original = path.read_bytes()  # derivatives are shared by content: put it back afterwards
    path.write_bytes(b"\xff\xd8\xff truncated")
    try:
        job = run_all(jobs.launch("embed", {"model": "test-tiny"}, enqueue=False))
    finally:
        path.write_bytes(original)
    assert job.state == Job.State.DONE and job.done == len(artworks) - 1 and job.failed == 1
    assert JobError.objects.get(job=job).item == str(broken.pk)
    stored = set(ArtworkEmbedding.objects.filter(model__key="test-tiny").values_list("artwork_id", flat=True))
    assert stored == {a.pk for a in artworks} - {broken.pk}
