"""Face vectors as halfvec (migration 0025): the batched conversion from float32 keeps every face,
a face written while it runs, and the look-up through a rebuilt halfvec_l2_ops HNSW index."""
from __future__ import annotations

import numpy as np
import pytest
from django.db import connection

from archive import halfvec, vectors
from archive.models import Artwork, Face

DIM = 128
MODEL = "test-faces-halfvec"


def face_type() -> str:
    with connection.cursor() as cursor:
        return halfvec._column_type(cursor, "vector", halfvec.FACES_TABLE)


def face_rows(art_ids, matrix):
    for i, vec in enumerate(matrix):
        yield [art_ids[i // 2], MODEL, i, 0, 40, 40, "[]", 0.9, "", vec, False, "2026-01-01T00:00:00Z"]


COLUMNS = ["artwork_id", "model", "x", "y", "w", "h", "landmarks", "score", "crop", "vector", "not_a_face", "created_at"]


@pytest.mark.django_db(transaction=True)
def test_batched_face_conversion_keeps_every_face_and_concurrent_writes():
    rng = np.random.default_rng(4)
    matrix = (0.1 * rng.standard_normal((1201, DIM))).astype(np.float32)
    Artwork.objects.bulk_create([Artwork(source="facehalf", source_id=str(i)) for i in range(601)])
    art_ids = list(Artwork.objects.filter(source="facehalf").order_by("id").values_list("id", flat=True))
    halfvec.revert(connection, table=halfvec.FACES_TABLE)  # faces as main stored them: float32 vector
    assert face_type() == "vector"
    float32_faces = vectors.VectorSpace(table="archive_face", model_column="model")
    vectors.copy_rows("archive_face", COLUMNS, face_rows(art_ids, matrix[:1200]))
    vectors.ensure_hnsw_index(float32_faces, MODEL, DIM, metric="l2")
    written = []

    def write_during_migration(message):  # the faces stage writing float32 while batches convert
        if "converted" in message and not written:
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO archive_face (artwork_id, model, x, y, w, h, landmarks, score, crop, vector, not_a_face, "
                    "created_at) VALUES (%s, %s, 1, 2, 3, 4, '[]', 0.5, '', %s::vector, false, now())",
                    [art_ids[600], MODEL, vectors.to_literal(matrix[1200])],
                )
            written.append(message)

    converted = halfvec.convert(connection, table=halfvec.FACES_TABLE, batch_size=300, log=write_during_migration)

    assert written and converted == 1200
    assert face_type() == "halfvec"
    stored = {(f.artwork_id, f.x): vectors.from_value(f.vector) for f in Face.objects.filter(model=MODEL)}
    assert len(stored) == 1201
    for i in (0, 599, 1199):
        assert np.array_equal(stored[(art_ids[i // 2], i)], matrix[i].astype(np.float16).astype(np.float32))
    assert np.array_equal(stored[(art_ids[600], 1)], matrix[1200].astype(np.float16).astype(np.float32))
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [vectors.index_name(vectors.FACES, MODEL)])
        (definition,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM pg_trigger WHERE tgname = %s", [halfvec.trigger_name(halfvec.FACES_TABLE)])
        assert cursor.fetchone()[0] == 0
        cursor.execute(
            "EXPLAIN SELECT id FROM archive_face WHERE model = %s ORDER BY vector::halfvec(128) <-> %s::halfvec(128) LIMIT 5",
            [MODEL, vectors.to_literal(matrix[7])],
        )
        plan = " ".join(r[0] for r in cursor.fetchall())
    assert "halfvec_l2_ops" in definition and "halfvec(128)" in definition
    assert vectors.index_name(vectors.FACES, MODEL) in plan  # the look-up's own expression uses the index
    hits = vectors.nearest(vectors.FACES, MODEL, matrix[7], dim=DIM, metric="l2", limit=3, columns=("x",))
    assert hits[0][2] == 7 and hits[0][1] < 1e-2
    assert halfvec.convert(connection, table=halfvec.FACES_TABLE) == 0  # idempotent


def test_only_the_vector_tables_are_converted():
    with pytest.raises(ValueError, match="no halfvec conversion"):
        halfvec.trigger_name("archive_artwork")
