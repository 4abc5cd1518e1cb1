"""Exact duplicates are linked, near-duplicates flagged through the HNSW index on phash_bits."""
from __future__ import annotations

import io
import threading
import time

import pytest
from django.db import connection, connections, transaction
from PIL import Image, ImageEnhance

from archive.images import hamming
from archive.models import Artwork, NearDuplicate

from .conftest import folder_id, jpeg_bytes, pattern_image, run_import, settings_for_tests, write_jpeg

pytestmark = pytest.mark.django_db


def test_exact_duplicate_is_linked_not_stored_twice(tmp_path):
    folder = tmp_path / "in"
    original = write_jpeg(folder / "a.jpg", seed=1)
    (folder / "b_copy.jpg").write_bytes(original.read_bytes())
    (folder / "sub").mkdir()
    (folder / "sub" / "c_copy.jpg").write_bytes(original.read_bytes())
    write_jpeg(folder / "other.jpg", seed=2)
    job, stats, errors = run_import(folder)
    assert errors == [] and stats.duplicates == 2
    a = Artwork.objects.get(source_id=folder_id(folder, "a.jpg"))
    copies = Artwork.objects.filter(duplicate_of=a)
    assert a.status == "ok" and a.duplicate_of is None
    assert {c.source_id for c in copies} == {"in/b_copy.jpg", "in/sub/c_copy.jpg"}
    assert set(copies.values_list("status", flat=True)) == {"duplicate"}
    assert all(c.has_image and c.thumbnail_url == a.thumbnail_url for c in copies)

    # Re-importing keeps the same links; a later import of the same bytes under a new record, kept
    # as a separate artwork, links too (by default it would enrich the original: test_museum_data).
    run_import(folder)
    assert Artwork.objects.filter(duplicate_of=a).count() == 2
    csv = tmp_path / "meta.csv"
    csv.write_text(f"id,title,file\nm1,Same picture,{original}\n")
    run_import(csv, on_match="separate")
    assert Artwork.objects.get(source="metadata:meta.csv", source_id="m1").duplicate_of_id == a.id


@pytest.mark.django_db(transaction=True)
def test_same_bytes_ingested_at_once_by_two_workers_leave_one_original(tmp_path):
    """Two ingest workers write the same bytes at the same time. Worker B has written its row but
    not committed; worker A writes and links meanwhile. A must not decide alone: it waits for B's
    lock on that hash, then sees B's row, and exactly one original is left."""
    from workers.ingest.launch import import_location

    data = jpeg_bytes(pattern_image(61))
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "same.jpg").write_bytes(data)
    b_written, release_b = threading.Event(), threading.Event()
    failures = []

    def worker(name, before=None, after=None):
        try:
            if before:
                before.wait(60)
            with transaction.atomic():
                import_location(str(tmp_path / name), cfg=settings_for_tests(workers=1))
                if after:
                    after.set()
                    release_b.wait(60)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            connections.close_all()

    thread_b = threading.Thread(target=worker, args=("b",), kwargs={"after": b_written})
    thread_a = threading.Thread(target=worker, args=("a",), kwargs={"before": b_written})
    thread_b.start()
    assert b_written.wait(60), failures
    thread_a.start()
    # Let B commit once A is waiting for B's lock on the hash (or A is done: it took no lock).
    while thread_a.is_alive():
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            if cursor.fetchone()[0]:
                break
        time.sleep(0.01)
    release_b.set()
    thread_a.join(60)
    thread_b.join(60)
    assert not failures, failures
    rows = {a.source_id: a for a in Artwork.objects.filter(source="folder")}
    original, copy = rows["b/same.jpg"], rows["a/same.jpg"]  # B's row was inserted first
    assert original.status == "ok" and original.duplicate_of_id is None
    assert copy.status == "duplicate" and copy.duplicate_of_id == original.pk


def test_near_duplicates_are_flagged_for_review(tmp_path, settings):
    settings.NEAR_DUPLICATE_DISTANCE = 6
    folder = tmp_path / "in"
    base = pattern_image(7, (640, 480))
    folder.mkdir()
    (folder / "master.jpg").write_bytes(jpeg_bytes(base, quality=95))
    # The same picture re-encoded smaller, slightly brighter: different bytes, close hashes.
    variant = ImageEnhance.Brightness(base.resize((400, 300))).enhance(1.05)
    (folder / "variant.jpg").write_bytes(jpeg_bytes(variant, quality=60))
    buf = io.BytesIO()
    base.save(buf, "PNG")
    (folder / "as_png.png").write_bytes(buf.getvalue())
    for seed in (100, 101, 102):
        write_jpeg(folder / f"unrelated{seed}.jpg", seed=seed)
    job, stats, errors = run_import(folder)
    assert errors == []
    by_name = {a.source_id.rsplit("/", 1)[-1]: a for a in Artwork.objects.filter(source="folder")}
    master, variant_row, png = by_name["master.jpg"], by_name["variant.jpg"], by_name["as_png.png"]
    assert hamming(master.phash, variant_row.phash) <= 6
    pairs = {(n.artwork_id, n.other_id): n for n in NearDuplicate.objects.all()}
    expected = {
        (max(master.id, variant_row.id), min(master.id, variant_row.id)),
        (max(master.id, png.id), min(master.id, png.id)),
        (max(png.id, variant_row.id), min(png.id, variant_row.id)),
    }
    assert set(pairs) == expected
    for pair in pairs.values():
        assert pair.review == "pending"
        assert pair.distance == hamming(pair.artwork.phash, pair.other.phash) <= 6
    # Unrelated images are not flagged, and re-importing adds no new pairs.
    run_import(folder)
    assert NearDuplicate.objects.count() == 3


def test_near_duplicate_query_uses_the_hnsw_index():
    """The importer's own near-duplicate query (archive.vectors.nearest over phash_bits, status 'ok')
    is answered by the HNSW index once the table is large, not by sorting every row."""
    import numpy as np

    from archive.images import phash_bits
    from archive.importers.duplicates import PHASH_SPACE
    from archive.vectors import copy_rows, to_literal

    rng = np.random.default_rng(0)
    with connection.cursor() as cursor:  # bulk-build the index after the rows (rolled back after the test)
        cursor.execute("DROP INDEX artwork_phash_hnsw")
    values = rng.integers(-(2**63), 2**63 - 1, size=5_000, dtype=np.int64)
    copy_rows(
        "archive_artwork",
        ["source", "source_id", "title", "creator", "display_date", "medium", "classification", "institution", "rights",
         "rights_url", "credit_line", "source_url", "iiif_manifest_url", "iiif_image_service", "metadata",
         "original_location", "sha256", "phash", "phash_bits", "status", "image_error", "created_at", "updated_at"],
        (
            ["bench", str(i), "", "", "", "", "", "", "", "", "", "", "", "", "{}", "", f"{i:064x}", int(v),
             to_literal(phash_bits(int(v))), "ok", "", "2026-01-01", "2026-01-01"]
            for i, v in enumerate(values)
        ),
    )
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("CREATE INDEX artwork_phash_hnsw ON archive_artwork USING hnsw (phash_bits vector_l2_ops)")
        cursor.execute("ANALYZE archive_artwork")
        q = to_literal(phash_bits(int(values[0])))
        cursor.execute(
            f"EXPLAIN SELECT id FROM {PHASH_SPACE.table} WHERE status = 'ok' AND (id <> %s AND sha256 <> %s) "
            "ORDER BY phash_bits::vector(64) <-> %s::vector LIMIT 10",
            [1, "x", q],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "artwork_phash_hnsw" in plan, plan
