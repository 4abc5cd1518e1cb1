"""Partial HNSW indexes per common institution (archive.filter_indexes): built for the institutions
in range and only those, picked by the planner for a search within such an institution (EXPLAIN),
answers equal to the exact ranking, the embedding rows' institution kept in step with the artwork
by triggers, and migrations 0028/0029's batched copy of the columns for existing rows."""
from __future__ import annotations

import importlib
import io

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext

from archive import filter_indexes, vectors
from archive.models import Artwork, ArtworkEmbedding, EmbeddingModel
from explorer import search, similar
from explorer.search import Filters
from tests.archive.test_halfvec import DIM, clustered_vectors
from tests.explorer.sql_plans import plan_of

# 1,200 works: "Big" 600, "Mid" 300, "Small" 60, the rest (240) without an institution.
N = 1200


def institution_of(i: int) -> str:
    return "Big" if i % 2 == 0 else "Mid" if i % 4 == 1 else "Small" if i % 20 == 3 else ""


def build_archive(tag: str):
    model = EmbeddingModel.objects.create(key=f"test/filter-index-{tag}", arch="test", dim=DIM)
    Artwork.objects.bulk_create([
        Artwork(source=f"fi-{tag}", source_id=str(i), institution=institution_of(i), status=Artwork.Status.OK,
                classification="Print" if i % 3 == 0 else "painting", year_start=1800 + i % 100)
        for i in range(N)
    ])
    ids = [pk for _, pk in sorted(Artwork.objects.filter(source=f"fi-{tag}").values_list("source_id", "id"), key=lambda r: int(r[0]))]
    matrix = clustered_vectors(N, seed=5)
    vectors.copy_arrays("archive_artworkembedding", {
        "artwork_id": np.array(ids), "model_id": np.full(N, model.pk), "vector": matrix,
        "created_at": np.full(N, np.datetime64("2026-12-01")),
    })
    vectors.ensure_hnsw_index(vectors.ARTWORK_EMBEDDINGS, model.pk, DIM)
    with connection.cursor() as cursor:  # statistics, as autovacuum leaves them after a load
        cursor.execute("ANALYZE archive_artworkembedding")
        cursor.execute("ANALYZE archive_artwork")
    return model, ids, matrix


@pytest.fixture
def indexed(settings):
    """The archive with its institution indexes: at least 200 works and at most 30 % of them, so
    Big (50 %) and Small (60) get none, Mid (300, 25 %) gets one."""
    settings.VECTOR_FILTER_INDEX_MIN = 200
    settings.VECTOR_FILTER_INDEX_MAX_SHARE = 0.3
    model, ids, matrix = build_archive("a")
    outcome = filter_indexes.ensure(model.pk, DIM)
    return model, ids, matrix, outcome


@pytest.mark.django_db(transaction=True)
def test_only_institutions_in_range_get_an_index_and_ensure_is_idempotent(indexed, settings):
    model, _, _, outcome = indexed
    mid = filter_indexes.index_name(model.pk, "Mid")
    assert outcome.built == [mid] and not outcome.kept and not outcome.dropped
    assert filter_indexes.indexed_works(model.pk, "Mid") == 300
    assert filter_indexes.indexed_works(model.pk, "Big") == 0 and filter_indexes.indexed_works(model.pk, "Small") == 0
    again = filter_indexes.ensure(model.pk, DIM)
    assert again.kept == [mid] and not again.built and not again.dropped
    # The command, with progress: Big now in range (share up to 60 %), Mid out (minimum 400).
    settings.VECTOR_FILTER_INDEX_MIN = 400
    settings.VECTOR_FILTER_INDEX_MAX_SHARE = 0.6
    out = io.StringIO()
    call_command("vector_filter_indexes", "--model", model.key, stdout=out)
    text = out.getvalue()
    assert f"dropping {mid}" in text and "building" in text and "'Big' (600 works)" in text and "1 built, 0 kept, 1 dropped" in text
    assert set(filter_indexes.existing(model.pk)) == {filter_indexes.index_name(model.pk, "Big")}
    assert filter_indexes.indexed_works(model.pk, "Mid", max_age=0) == 0




def _sql_of(call) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        result = call()
    return result, [q["sql"] for q in queries.captured_queries]


@pytest.mark.django_db(transaction=True)
def test_search_within_an_indexed_institution_uses_its_index_and_equals_the_exact_ranking(indexed, monkeypatch):
    model, ids, matrix, _ = indexed
    monkeypatch.setattr(similar, "EXACT_LIMIT", 10)  # else these small sets would be ranked exactly anyway
    mid = filter_indexes.index_name(model.pk, "Mid")
    filters = Filters(institution="Mid")
    within = filters.apply(search.base_queryset())
    members = sorted(ids[i] for i in range(N) if institution_of(i) == "Mid")
    for row in (1, 7, 400, 901):  # queries near works of Mid and of other institutions
        query = matrix[row] + 0.02 * np.random.default_rng(row).standard_normal(DIM).astype(np.float32)
        before = similar.PATHS.copy()
        hits, sqls = _sql_of(lambda: similar.nearest_in(model, query, within, limit=20, filters=filters))
        assert (similar.PATHS - before) == {"institution index": 1}
        exact = similar.exact_nearest(model, query, members, limit=20)
        assert [a for a, _ in hits] == [a for a, _ in exact]
        assert np.allclose([s for _, s in hits], [s for _, s in exact], atol=1e-6)
    knn = [s for s in sqls if "ORDER BY" in s and "<=>" in s]
    assert len(knn) == 1
    plan = plan_of(knn[0])
    assert f"Index Scan using {mid}" in plan, plan
    assert vectors.index_name(vectors.ARTWORK_EMBEDDINGS, model.pk) + " " not in plan + " "


@pytest.mark.django_db(transaction=True)
def test_an_institution_without_its_own_index_is_checked_on_the_embedding_row(indexed, monkeypatch):
    """Big (half the works, above the share) takes the model's index; each candidate's institution
    is read from the embedding row itself (no look-up of the artwork in the query)."""
    model, ids, matrix, _ = indexed
    monkeypatch.setattr(similar, "EXACT_LIMIT", 10)
    filters = Filters(institution="Big")
    within = filters.apply(search.base_queryset())
    members = sorted(ids[i] for i in range(N) if institution_of(i) == "Big")
    before = similar.PATHS.copy()
    hits, sqls = _sql_of(lambda: similar.nearest_in(model, matrix[2], within, limit=20, filters=filters))
    assert (similar.PATHS - before) == {"model index, filters on the row": 1}
    assert [a for a, _ in hits] == [a for a, _ in similar.exact_nearest(model, matrix[2], members, limit=20)]
    knn = [s for s in sqls if "ORDER BY" in s and "<=>" in s]
    assert len(knn) == 1 and "institution = 'Big' AND NOT duplicate" in knn[0] and "archive_artwork\"" not in knn[0]
    # A classification alone, in any case, is checked on the row too (stored in upper case).
    filters = Filters(classification="PRINT")
    members = sorted(ids[i] for i in range(N) if i % 3 == 0)
    before = similar.PATHS.copy()
    hits = similar.nearest_in(model, matrix[3], filters.apply(search.base_queryset()), limit=20, filters=filters)
    assert (similar.PATHS - before) == {"model index, filters on the row": 1}
    assert [a for a, _ in hits] == [a for a, _ in similar.exact_nearest(model, matrix[3], members, limit=20)]


@pytest.mark.django_db(transaction=True)
def test_institution_and_more_filters_walk_the_institution_index_checking_the_rest(indexed, monkeypatch):
    model, ids, matrix, _ = indexed
    monkeypatch.setattr(similar, "EXACT_LIMIT", 10)
    monkeypatch.setattr(similar, "WALK_FACTOR", 0)  # the walk pays at any size here
    query = matrix[9]
    cases = [  # the classification is on the embedding row; years need the artwork
        (Filters(institution="Mid", classification="print"), lambda i: i % 3 == 0, "institution index + filters on the row"),
        (Filters(institution="Mid", year_from=1850), lambda i: i % 100 >= 50, "institution index + filters"),
    ]
    for filters, keep, path in cases:
        within = filters.apply(search.base_queryset())
        members = sorted(ids[i] for i in range(N) if institution_of(i) == "Mid" and keep(i))
        before = similar.PATHS.copy()
        hits, sqls = _sql_of(lambda: similar.nearest_in(model, query, within, limit=20, filters=filters))
        assert (similar.PATHS - before) == {path: 1}
        assert [a for a, _ in hits] == [a for a, _ in similar.exact_nearest(model, query, members, limit=20)]
        knn = [s for s in sqls if "ORDER BY" in s and "<=>" in s]
        plan = plan_of(knn[0])
        assert f"Index Scan using {filter_indexes.index_name(model.pk, 'Mid')}" in plan, plan
    # A set too small for the walk to pay (WALK_FACTOR): ranked exactly, same answer.
    monkeypatch.setattr(similar, "WALK_FACTOR", 10**9)
    monkeypatch.setattr(similar, "EXACT_LIMIT", 15_000)
    before = similar.PATHS.copy()
    again = similar.nearest_in(model, query, within, limit=20, filters=filters)
    assert (similar.PATHS - before) == {"exact": 1} and again == hits


@pytest.mark.django_db(transaction=True)
def test_triggers_keep_the_embedding_rows_institution_and_duplicate_flag_in_step(indexed, monkeypatch):
    model, ids, matrix, _ = indexed
    moved = ids[1]  # a Mid work, nearest to its own vector
    rows = ArtworkEmbedding.objects.filter(artwork_id=moved)
    assert list(rows.values_list("institution", "classification", "duplicate")) == [("Mid", "PAINTING", False)]
    Artwork.objects.filter(pk=moved).update(institution="Elsewhere")
    assert list(rows.values_list("institution", "classification", "duplicate")) == [("Elsewhere", "PAINTING", False)]
    Artwork.objects.filter(pk=moved).update(classification="Drawing")
    assert list(rows.values_list("institution", "classification", "duplicate")) == [("Elsewhere", "DRAWING", False)]
    art = Artwork.objects.get(pk=ids[5])  # through save() too, and a duplicate is flagged
    art.status = Artwork.Status.DUPLICATE
    art.save()
    assert ArtworkEmbedding.objects.get(artwork_id=ids[5]).duplicate
    # The search within Mid (through its index) no longer finds either.
    monkeypatch.setattr(similar, "EXACT_LIMIT", 10)
    filters = Filters(institution="Mid")
    hits = similar.nearest_in(model, matrix[1], filters.apply(search.base_queryset()), limit=50, filters=filters)
    assert len(hits) == 50 and moved not in {a for a, _ in hits} and ids[5] not in {a for a, _ in hits}
    # A new embedding row takes its artwork's values on insert.
    ArtworkEmbedding.objects.filter(artwork_id=moved).delete()
    vectors.copy_arrays("archive_artworkembedding", {
        "artwork_id": np.array([moved]), "model_id": np.array([model.pk]), "vector": matrix[1:2],
        "created_at": np.array([np.datetime64("2026-12-02")]),
    })
    assert list(rows.values_list("institution", "classification", "duplicate")) == [("Elsewhere", "DRAWING", False)]


BEFORE = [("archive", "0027_face_vectors_halfvec")]
AFTER = [("archive", "0029_embedding_filter_columns_copy")]


@pytest.mark.django_db(transaction=True)
def test_migration_copies_the_columns_of_existing_rows_in_batches(monkeypatch):
    migration = importlib.import_module("archive.migrations.0029_embedding_filter_columns_copy")
    monkeypatch.setattr(migration, "BATCH", 7)
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(BEFORE)
        old = executor.loader.project_state(BEFORE).apps
        Old = old.get_model("archive", "Artwork")
        model = old.get_model("archive", "EmbeddingModel").objects.create(key="test/migrate-0028", arch="t", dim=4)
        works = [Old.objects.create(source="m", source_id=str(i), title=f"W{i}", institution=f"I{i % 3}" if i % 5 else "",
                                    classification="print" if i % 2 else "", status="duplicate" if i == 4 else "ok")
                 for i in range(30)]
        with connection.cursor() as cursor:
            for w in works:
                cursor.execute("INSERT INTO archive_artworkembedding (artwork_id, model_id, vector, created_at) "
                               "VALUES (%s, %s, '[1,0,0,0]', now())", [w.pk, model.pk])
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        with CaptureQueriesContext(connection) as queries:
            executor.migrate(AFTER)
        batches = [q for q in queries.captured_queries if q["sql"].lstrip().startswith("UPDATE archive_artworkembedding e")]
        with connection.cursor() as cursor:
            cursor.execute("SELECT a.institution, a.status = 'duplicate', upper(a.classification), e.institution, e.duplicate, "
                           "e.classification FROM archive_artworkembedding e "
                           "JOIN archive_artwork a ON a.id = e.artwork_id WHERE e.model_id = %s", [model.pk])
            rows = [(r[3], r[4], r[5], r[0], r[1], r[2]) for r in cursor.fetchall()]
        assert len(rows) == 30 and all(r[3:] == r[:3] for r in rows)
        assert sum(r[2] == "PRINT" for r in rows) == 15
        assert sum(r[1] for r in rows) == 1 and sum(r[0] != "" for r in rows) == 24
        assert len(batches) == -(-30 // 7)  # one statement (one transaction) a batch of 7 consecutive ids
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_a_model_searched_in_two_phases_gets_binary_quantized_institution_indexes(indexed, monkeypatch):
    """When the model's index becomes the binary-quantized one, ensure() replaces the halfvec
    institution indexes by binary ones, and the search within the institution walks it."""
    model, ids, matrix, _ = indexed
    vectors.ensure_binary_index(vectors.ARTWORK_EMBEDDINGS, model.pk, DIM)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX {vectors.index_name(vectors.ARTWORK_EMBEDDINGS, model.pk)}")
    vectors._forget_index(vectors.index_name(vectors.ARTWORK_EMBEDDINGS, model.pk))
    outcome = filter_indexes.ensure(model.pk, DIM)
    binary = filter_indexes.index_name(model.pk, "Mid", binary=True)
    assert outcome.built == [binary] and outcome.dropped == [filter_indexes.index_name(model.pk, "Mid")]
    monkeypatch.setattr(similar, "EXACT_LIMIT", 10)
    monkeypatch.setattr(similar, "INDEX_KIND_SECONDS", 0)
    filters = Filters(institution="Mid")
    within = filters.apply(search.base_queryset())
    members = sorted(ids[i] for i in range(N) if institution_of(i) == "Mid")
    before = similar.PATHS.copy()
    hits, sqls = _sql_of(lambda: similar.nearest_in(model, matrix[5], within, limit=20, filters=filters))
    assert (similar.PATHS - before) == {"institution index": 1}
    exact = [a for a, _ in similar.exact_nearest(model, matrix[5], members, limit=20)]
    assert len(set(exact) & {a for a, _ in hits}) >= 19  # candidates by Hamming distance, re-ranked exactly
    knn = [s for s in sqls if "<~>" in s]
    plan = plan_of(knn[0])
    assert f"Index Scan using {binary}" in plan, plan


@pytest.mark.django_db(transaction=True)
def test_an_embed_jobs_finish_builds_them_concurrently_once_its_transaction_commits(settings):
    """The embed stage's finish runs inside the kernel's transaction: the institution indexes wait
    for its commit and are then built CONCURRENTLY (a plain build or drop inside it would lock the
    table against searches and writes until the hook ended)."""
    from archive.models import Job
    from django.db import transaction
    from workers import embedding

    settings.VECTOR_FILTER_INDEX_MIN = 200
    settings.VECTOR_FILTER_INDEX_MAX_SHARE = 0.3
    model, _, _ = build_archive("finish")
    job = Job.objects.create(kind=Job.Kind.EMBED, params={"model_id": model.pk, "dim": DIM})
    mid = filter_indexes.index_name(model.pk, "Mid")
    with CaptureQueriesContext(connection) as queries:
        with transaction.atomic():
            embedding.finish(job)
            assert mid not in filter_indexes.existing(model.pk)  # not inside the hook's transaction
    assert filter_indexes.existing(model.pk) == {mid: True}
    assert any(q["sql"].startswith(f"CREATE INDEX CONCURRENTLY {mid}") for q in queries.captured_queries)


@pytest.mark.django_db(transaction=True)
def test_a_second_build_of_the_same_models_indexes_leaves_them_to_the_first(indexed):
    model, _, _, _ = indexed
    from django.db import connections

    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [filter_indexes.LOCK_CLASS, model.pk])
        lines = []
        outcome = filter_indexes.ensure(model.pk, DIM, progress=lines.append)
        assert outcome == filter_indexes.Outcome([], [], []) and "another process" in lines[0]
        with other.cursor() as cursor:  # released now: a closed connection's backend may still hold it a moment
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [filter_indexes.LOCK_CLASS, model.pk])
    finally:
        other.close()
    assert filter_indexes.ensure(model.pk, DIM).kept == [filter_indexes.index_name(model.pk, "Mid")]


@pytest.mark.django_db(transaction=True)
def test_an_institution_named_with_a_percent_sign_is_searched_through_its_index(settings):
    """The index predicate goes into the query as a literal beside bound parameters: a ``%`` in the
    institution's name must not be read as a placeholder."""
    settings.VECTOR_FILTER_INDEX_MIN = 200
    settings.VECTOR_FILTER_INDEX_MAX_SHARE = 0.3
    model, ids, matrix = build_archive("pct")
    Artwork.objects.filter(institution="Mid", source="fi-pct").update(institution="50% Museum %s")
    assert filter_indexes.ensure(model.pk, DIM).built == [filter_indexes.index_name(model.pk, "50% Museum %s")]
    filters = Filters(institution="50% Museum %s")
    within = filters.apply(search.base_queryset())
    before = similar.PATHS.copy()
    hits = similar.nearest_in(model, matrix[1], within, limit=20, filters=filters)
    assert (similar.PATHS - before) == {"institution index": 1}
    members = [ids[i] for i in range(N) if institution_of(i) == "Mid"]
    exact = [a for a, _ in similar.exact_nearest(model, matrix[1], members, limit=20)]
    assert len(set(exact) & {a for a, _ in hits}) >= 18
