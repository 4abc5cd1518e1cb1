"""The neighbours stage (the stored kNN graph the path runs on) on real shared paintings embedded by
the test model: each stored list against the nearest works computed here from the stored vectors,
the embed job's follow-up (new works get their lists, old lists are left alone and reach the new
works through the rows that list them), bad items and refusals, and the backfill as a job on a real
Celery worker process."""
from __future__ import annotations

import time

import numpy as np
import pytest
from django.conf import settings

from archive import neighbour_graph
from archive.models import Artwork, ArtworkEmbedding, ArtworkNeighbours, Job, JobBatch
from tests.workers.test_celery import (  # noqa: F401 (fixtures)
    REDIS_URL,
    broker,
    redis_broker,
    wait_final,
    worker_env,
)
from workers import jobs
from workers import landmarks
from workers import neighbours as stage
from workers.celery import app

pytestmark = pytest.mark.django_db


def add(folder, start: int, stop: int) -> list[Artwork]:
    """Real paintings ``start``..``stop`` of the folder (sorted), ingested as artworks."""
    from pathlib import Path

    from archive.images import ImageLimits, ingest_location

    limits, rows = ImageLimits.from_settings(), []
    for path in sorted(folder.glob("*.jpg"))[start:stop]:
        image = ingest_location(str(path), settings.DERIVATIVE_SIZES, Path(settings.MEDIA_ROOT), limits)
        rows.append(Artwork(source="graph-test", source_id=path.stem, title=path.stem, sha256=image.sha256,
                            phash=image.phash, width=image.width, height=image.height, status=Artwork.Status.OK))
    return Artwork.objects.bulk_create(rows)


def run_eagerly(capture, fn):
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with capture(execute=True):
            return fn()
    finally:
        app.conf.task_always_eager = eager


def stored_vectors(model_id: int) -> tuple[list[int], np.ndarray]:
    """The model's stored embeddings (as the index compares them), unit length, by artwork id."""
    from archive import vectors

    rows = sorted(ArtworkEmbedding.objects.filter(model_id=model_id).values_list("artwork_id", "vector"))
    matrix = np.stack([vectors.from_value(v) for _, v in rows]).astype(np.float64)
    return [a for a, _ in rows], matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def check_lists(model_id: int, only: set[int] | None = None) -> dict[int, ArtworkNeighbours]:
    """Every row lists K other works nearest first, with their true cosine distances, and no work
    left out of a list is nearer than the list's last one (computed here from the vectors)."""
    ids, unit = stored_vectors(model_id)
    at = {a: i for i, a in enumerate(ids)}
    rows = {r.artwork_id: r for r in ArtworkNeighbours.objects.filter(model_id=model_id)}
    for artwork_id in only if only is not None else ids:
        row = rows[artwork_id]
        distances = 1.0 - unit @ unit[at[artwork_id]]
        assert len(row.neighbours) == min(stage.K, len(ids) - 1) == len(row.distances)
        assert artwork_id not in row.neighbours and len(set(row.neighbours)) == len(row.neighbours)
        assert row.distances == sorted(row.distances)
        assert row.distances == pytest.approx([distances[at[b]] for b in row.neighbours], abs=2e-3)
        others = np.delete(distances, at[artwork_id])
        assert row.distances[-1] <= np.sort(others)[len(row.neighbours) - 1] + 2e-3  # nothing nearer missed
    return rows


def test_an_embed_job_writes_the_lists_and_new_works_are_reached_from_old_ones(
        aic_dir, settings, django_capture_on_commit_callbacks):
    settings.NEIGHBOURS_AFTER_EMBED = True
    first = add(aic_dir / "images", 0, 24)
    embed = run_eagerly(django_capture_on_commit_callbacks, lambda: jobs.launch("embed", {"model": "test-tiny"}))
    embed.refresh_from_db()
    model_id = embed.params["model_id"]
    graph = Job.objects.get(kind=Job.Kind.NEIGHBOURS)
    assert graph.state == Job.State.DONE and graph.done == 24 and graph.failed == 0, graph.message
    assert f"job {graph.pk}" in embed.message
    before = check_lists(model_id)
    assert set(before) == {a.pk for a in first}
    assert all(len(r.landmarks or b"") == 4 * min(landmarks.COUNT, 24) for r in before.values())  # the job's finish

    # Later works: the next embed job's follow-up writes their lists only; old lists stay as they were.
    later = add(aic_dir / "images", 24, 32)
    assert len(later) == 8
    again = run_eagerly(django_capture_on_commit_callbacks, lambda: jobs.launch("embed", {"model": "test-tiny"}))
    again.refresh_from_db()
    graph = Job.objects.filter(kind=Job.Kind.NEIGHBOURS).latest("pk")
    assert graph.total == 8 and graph.done == 8, graph.message
    check_lists(model_id, only={a.pk for a in later})
    assert all(r.landmarks for r in ArtworkNeighbours.objects.filter(model_id=model_id))  # 8 of 32 without: recomputed
    after = {r.artwork_id: r for r in ArtworkNeighbours.objects.filter(model_id=model_id)}
    for artwork_id, row in before.items():
        assert (after[artwork_id].neighbours, after[artwork_id].computed_at) == (row.neighbours, row.computed_at)
    # Each old work a new one lists is linked to it when the graph is read at the old work.
    for new in later:
        for old, d in zip(after[new.pk].neighbours, after[new.pk].distances):
            edges = {(b, listed): dist for a, b, dist, listed in neighbour_graph.edges(model_id, [old])}
            assert edges.get((new.pk, False), edges.get((new.pk, True))) == pytest.approx(d)
    # A list rewritten (``--mode all``) drops its landmark distances: they were for the old graph.
    rewritten = [a.pk for a in first[:3]]
    stage.process(rewritten, {"model_id": model_id})
    assert [r.landmarks for r in ArtworkNeighbours.objects.filter(model_id=model_id, artwork_id__in=rewritten)] == [None] * 3
    assert all(r.landmarks for r in ArtworkNeighbours.objects.filter(model_id=model_id).exclude(artwork_id__in=rewritten))


def test_bad_items_refusals_and_reruns(aic_dir, django_capture_on_commit_callbacks):
    arts = add(aic_dir / "images", 0, 6)
    run_eagerly(django_capture_on_commit_callbacks, lambda: jobs.launch("embed", {"model": "test-tiny"}))
    params = stage.prepare({"model": "test-tiny"})
    stage.process([a.pk for a in arts], params)
    stage.process([a.pk for a in arts], params)
    assert ArtworkNeighbours.objects.count() == 6  # a rerun replaces rows
    check_lists(params["model_id"])
    no_embedding = Artwork.objects.create(source="t", source_id="none", title="metadata only")
    result = stage.process([no_embedding.pk, 999_999_999, arts[0].pk], params)
    assert result.done == [arts[0].pk]
    assert {e.artwork_id for e in result.errors} == {no_embedding.pk, 999_999_999}
    assert all("no embedding under test-tiny" in e.reason for e in result.errors)
    with pytest.raises(ValueError, match="no model 'nope'"):
        stage.prepare({"model": "nope"})
    refused = jobs.launch("neighbours", {"model": "nope"})
    assert refused.state == Job.State.FAILED and "embed first" in refused.message


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_the_backfill_runs_on_a_real_worker_in_batches_and_resumes(aic_dir, redis_broker):
    """An archive embedded before the graph existed: the backfill job (mode missing) runs on a
    real worker process in small batches; run again after some rows are lost, it writes those only."""
    from workers.process import start_workers, stop_workers

    arts = add(aic_dir / "images", 0, 20)
    procs = start_workers(["embed", "maps"], 1, env=worker_env(REDIS_URL))
    try:
        embed = wait_final(jobs.launch("embed", {"model": "test-tiny"}, batch_size=10), procs)
        assert embed.state == Job.State.DONE and not Job.objects.filter(kind=Job.Kind.NEIGHBOURS).exists()
        backfill = jobs.launch("neighbours", {"model": "test-tiny"}, batch_size=3)  # the model may be activated just after
        assert backfill.total == 20 and backfill.batches.count() == 7, backfill.message
        backfill = wait_final(backfill, procs)
        assert backfill.state == Job.State.DONE and (backfill.done, backfill.failed) == (20, 0), backfill.message
        assert not backfill.batches.exclude(state=JobBatch.State.DONE).exists()
        model_id = backfill.params["model_id"]
        check_lists(model_id)
        # The job's finish on the worker writes the landmark distances once its DONE has committed
        # (transaction.on_commit): they may land a moment after the state this test waited for.
        deadline = time.monotonic() + 120
        while landmarks.stale(model_id) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not landmarks.stale(model_id)
        lost = [a.pk for a in arts[::4]]
        ArtworkNeighbours.objects.filter(artwork_id__in=lost).delete()
        kept = {r.artwork_id: r.computed_at for r in ArtworkNeighbours.objects.all()}
        resumed = wait_final(jobs.launch("neighbours", {"model": "test-tiny"}, batch_size=3), procs)
        assert resumed.state == Job.State.DONE and resumed.total == len(lost)
        rows = check_lists(model_id)
        assert set(rows) == {a.pk for a in arts} and ArtworkNeighbours.objects.count() == 20
        assert all(rows[a].computed_at == t for a, t in kept.items())
    finally:
        stop_workers(procs)


@pytest.mark.django_db(transaction=True)  # CREATE INDEX needs no pending trigger events
def test_lists_through_the_binary_quantized_index(aic_dir, settings, django_capture_on_commit_callbacks):
    """From VECTOR_TWO_PHASE_ABOVE artworks a model has only its binary-quantized index: the stage's
    look-ups go through it in two phases (candidates by Hamming distance, re-ranked exactly) and
    the lists are still each work's nearest."""
    from archive import vectors

    add(aic_dir / "images", 0, 16)
    run_eagerly(django_capture_on_commit_callbacks, lambda: jobs.launch("embed", {"model": "test-tiny"}))
    params = stage.prepare({"model": "test-tiny"})
    settings.VECTOR_TWO_PHASE_ABOVE = 10
    space = vectors.ARTWORK_EMBEDDINGS
    try:
        vectors.ensure_artwork_index(params["model_id"], params["dim"])
        assert vectors.index_exists(space, params["model_id"], binary=True) and not vectors.index_exists(space, params["model_id"])
        assert stage.two_phase(params["model_id"]) == stage.TWO_PHASE_CANDIDATES
        ids = list(ArtworkEmbedding.objects.filter(model_id=params["model_id"]).values_list("artwork_id", flat=True))
        assert stage.process(ids, params).done == ids
        check_lists(params["model_id"])
    finally:  # the flush after this test keeps indexes: leave none for a later model with this id
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX IF EXISTS {vectors.binary_index_name(space, params['model_id'])}")
