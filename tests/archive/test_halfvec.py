"""Artwork embeddings as halfvec: the batched migration from float32 (writes during it kept),
recall@10 of the halfvec HNSW index against exact float32 ranking, and search within filters of
every size returning its full count, ordered (iterative index scans)."""
from __future__ import annotations

import numpy as np
import pytest
from django.db import connection

from archive import halfvec, vectors
from archive.models import Artwork, ArtworkEmbedding, EmbeddingModel

DIM = 512


def clustered_vectors(n: int, seed: int = 0, intrinsic: int = 32, clusters: int = 60) -> np.ndarray:
    """Unit vectors with the structure of image embeddings: clusters on a low-dimensional manifold
    (as bench/browse.py makes them), not uniform noise, where every neighbour is equally far."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((DIM, intrinsic)))[0].T  # intrinsic x DIM, orthonormal
    centres = rng.standard_normal((clusters, intrinsic)) * 1.5
    low = centres[rng.integers(0, clusters, n)] + rng.standard_normal((n, intrinsic))
    x = low @ basis + 0.05 * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_archive(n: int, *, institutions=None) -> tuple[EmbeddingModel, list[int]]:
    model = EmbeddingModel.objects.create(key=f"test/halfvec-{n}", arch="test", dim=DIM)
    institutions = institutions or (lambda i: "")
    Artwork.objects.bulk_create(
        [Artwork(source="halfvec", source_id=str(i), institution=institutions(i), status=Artwork.Status.OK) for i in range(n)],
        batch_size=5000,
    )
    ids = [pk for _, pk in sorted(Artwork.objects.filter(source="halfvec").values_list("source_id", "id"), key=lambda r: int(r[0]))]
    return model, ids


def column_type() -> str:
    with connection.cursor() as cursor:
        return halfvec._column_type(cursor, "vector")


@pytest.mark.django_db(transaction=True)
def test_batched_conversion_from_float32_keeps_every_row_and_concurrent_writes():
    model, ids = make_archive(2500)
    matrix = clustered_vectors(2501, seed=1)
    halfvec.revert(connection)  # the table as main left it: float32 vector
    assert column_type() == "vector"
    float32_space = vectors.VectorSpace(table=halfvec.TABLE, model_column="model_id")
    vectors.copy_arrays(halfvec.TABLE, {"artwork_id": np.array(ids[:2400]), "model_id": np.full(2400, model.pk),
                                        "vector": matrix[:2400], "created_at": np.full(2400, np.datetime64("2026-01-01"))})
    vectors.ensure_hnsw_index(float32_space, model.pk, DIM)
    written = []

    def write_during_migration(message):  # the embed stage writing float32 while batches convert
        if "converted" in message and not written:
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO archive_artworkembedding (artwork_id, model_id, vector, created_at) "
                    "VALUES (%s, %s, %s::vector, now())",
                    [ids[2400], model.pk, vectors.to_literal(matrix[2400])],
                )
            written.append(message)

    converted = halfvec.convert(connection, batch_size=500, log=write_during_migration)

    assert written and converted == 2400
    assert column_type() == "halfvec"
    rows = dict(ArtworkEmbedding.objects.filter(model=model).values_list("artwork_id", "vector"))
    assert len(rows) == 2401
    for i in (0, 999, 2399, 2400):
        assert np.array_equal(vectors.from_value(rows[ids[i]]), matrix[i].astype(np.float16).astype(np.float32))
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [vectors.index_name(vectors.ARTWORK_EMBEDDINGS, model.pk)])
        (definition,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM pg_trigger WHERE tgname = %s", [halfvec.TRIGGER])
        assert cursor.fetchone()[0] == 0
    assert "halfvec_cosine_ops" in definition and "halfvec(512)" in definition
    hits = vectors.nearest(vectors.ARTWORK_EMBEDDINGS, model.pk, matrix[5], dim=DIM, limit=3, columns=("artwork_id",))
    assert hits[0][2] == ids[5] and hits[0][1] < 1e-3
    assert halfvec.convert(connection) == 0  # idempotent


def recall_at_10(model, matrix, ids, queries, ef_search) -> float:
    found = 0
    for q in queries:
        truth = set(np.array(ids)[np.argsort(-(matrix @ q), kind="stable")[:10]])
        hits = vectors.nearest(vectors.ARTWORK_EMBEDDINGS, model.pk, q, dim=DIM, limit=10, ef_search=ef_search, columns=("artwork_id",))
        found += len(truth & {h[2] for h in hits})
    return found / (10 * len(queries))


@pytest.mark.django_db(transaction=True)
def test_halfvec_hnsw_recall_against_exact_float32():
    n = 6000
    model, ids = make_archive(n)
    matrix = clustered_vectors(n, seed=2)
    vectors.copy_arrays(halfvec.TABLE, {"artwork_id": np.array(ids), "model_id": np.full(n, model.pk),
                                        "vector": matrix, "created_at": np.full(n, np.datetime64("2026-01-01"))})
    assert vectors.column_types(halfvec.TABLE)["vector"] == "halfvec"
    vectors.ensure_hnsw_index(vectors.ARTWORK_EMBEDDINGS, model.pk, DIM)
    rng = np.random.default_rng(3)
    queries = matrix[rng.choice(n, 40, replace=False)] + 0.02 * rng.standard_normal((40, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    # Truth: exact float32 ranking in numpy; the index ranks float16 values through HNSW.
    assert recall_at_10(model, matrix, ids, queries, ef_search=64) >= 0.95
    with connection.cursor() as cursor:
        cursor.execute("SELECT avg(pg_column_size(vector)) FROM archive_artworkembedding WHERE model_id = %s", [model.pk])
        assert float(cursor.fetchone()[0]) == 8 + 2 * DIM  # 1,032 bytes a vector; float32 takes 2,056


@pytest.mark.django_db(transaction=True)
def test_search_within_filters_of_every_size_returns_the_full_count_ordered(monkeypatch):
    from explorer import search as search_mod, similar

    n = 8000
    # Filters of 0.1 %, 1 %, 10 % and 50 % of the archive, each spread over every cluster, plus one
    # confined to a single cluster far from most queries (the iterative scan must go far for it).
    sizes = {"tiny": 8, "small": 80, "mid": 800, "half": 4000}
    order = np.random.default_rng(4).permutation(n)
    rank = np.empty(n, dtype=int)
    rank[order] = np.arange(n)

    def institution(i):
        start = 0
        for name, size in sizes.items():
            if start <= rank[i] < start + size:
                return name
            start += size
        return "other"

    model, ids = make_archive(n, institutions=institution)
    matrix = clustered_vectors(n, seed=5)
    vectors.copy_arrays(halfvec.TABLE, {"artwork_id": np.array(ids), "model_id": np.full(n, model.pk),
                                        "vector": matrix, "created_at": np.full(n, np.datetime64("2026-01-01"))})
    vectors.ensure_hnsw_index(vectors.ARTWORK_EMBEDDINGS, model.pk, DIM)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE archive_artworkembedding; ANALYZE archive_artwork")
    monkeypatch.setattr(similar, "EXACT_LIMIT", 50)  # every filter above 50 goes through the index here
    limit = 100
    for name, size in sizes.items():
        members = [i for i in range(n) if institution(i) == name]
        assert len(members) == size
        within = search_mod.Filters(institution=name).apply(search_mod.base_queryset())
        q = matrix[members[0]] * 0.5 + matrix[0] * 0.5
        q /= np.linalg.norm(q)
        hits = similar.nearest_in(model, q, within, limit=limit)
        assert len(hits) == min(limit, size), name
        member_ids = {ids[i] for i in members}
        assert {a for a, _ in hits} <= member_ids
        sims = [s for _, s in hits]
        assert sims == sorted(sims, reverse=True), name
        truth = [ids[i] for i in sorted(members, key=lambda i: -float(matrix[i] @ q))[:limit]]
        overlap = len(set(truth) & {a for a, _ in hits}) / len(truth)
        assert overlap >= 0.9, (name, overlap)
    # An index scan allowed to visit too few entries finds fewer than 100 of the 800: the set is
    # then ranked exactly, so the answer is still complete.
    monkeypatch.setattr(similar, "MAX_SCAN_TUPLES", 150)
    within = search_mod.Filters(institution="mid").apply(search_mod.base_queryset())
    assert len(similar.index_nearest_in(model, matrix[0], within, limit=limit)) < limit
    hits = similar.nearest_in(model, matrix[0], within, limit=limit)
    members = [i for i in range(n) if institution(i) == "mid"]
    truth = [ids[i] for i in sorted(members, key=lambda i: -float(matrix[i] @ matrix[0]))[:limit]]
    assert len(hits) == limit and len(set(truth) & {a for a, _ in hits}) >= 0.97 * limit


@pytest.mark.django_db(transaction=True)
def test_two_phase_search_above_the_configured_size(settings, monkeypatch):
    """From VECTOR_TWO_PHASE_ABOVE rows a model gets the binary-quantized HNSW index instead of the
    halfvec one; similar artworks and search within filters then re-rank its candidates exactly."""
    from explorer import search as search_mod, similar

    n = 6000
    model, ids = make_archive(n, institutions=lambda i: "tenth" if i % 10 == 3 else "other")
    matrix = clustered_vectors(n, seed=6)
    vectors.copy_arrays(halfvec.TABLE, {"artwork_id": np.array(ids), "model_id": np.full(n, model.pk),
                                        "vector": matrix, "created_at": np.full(n, np.datetime64("2026-01-01"))})
    space = vectors.ARTWORK_EMBEDDINGS
    settings.VECTOR_TWO_PHASE_ABOVE = n + 1
    assert vectors.ensure_artwork_index(model.pk, DIM) == vectors.index_name(space, model.pk)
    settings.VECTOR_TWO_PHASE_ABOVE = n
    assert vectors.ensure_artwork_index(model.pk, DIM) == vectors.binary_index_name(space, model.pk)
    assert vectors.index_exists(space, model.pk, binary=True) and not vectors.index_exists(space, model.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_relation_size(%s)", [vectors.binary_index_name(space, model.pk)])
        assert cursor.fetchone()[0] / n < 400  # 64 bytes of bits a vector plus the graph; halfvec's is ~1,300

    rng = np.random.default_rng(7)
    queries = matrix[rng.choice(n, 40, replace=False)] + 0.02 * rng.standard_normal((40, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    found = 0
    for q in queries:
        truth = set(np.array(ids)[np.argsort(-(matrix @ q))[:10]])
        hits = similar.nearest_artworks(model, q, limit=10)
        sims = [s for _, s in hits]
        assert len(hits) == 10 and sims == sorted(sims, reverse=True)
        found += len(truth & {a for a, _ in hits})
    assert found / 400 >= 0.95

    monkeypatch.setattr(similar, "EXACT_LIMIT", 50)
    members = [i for i in range(n) if i % 10 == 3]
    within = search_mod.Filters(institution="tenth").apply(search_mod.base_queryset())
    q = queries[0]
    hits = similar.nearest_in(model, q, within, limit=100)
    truth = [ids[i] for i in sorted(members, key=lambda i: -float(matrix[i] @ q))[:100]]
    assert len(hits) == 100 and {a for a, _ in hits} <= {ids[i] for i in members}
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert len(set(truth) & {a for a, _ in hits}) >= 90
