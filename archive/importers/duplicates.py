"""Exact duplicates are linked, near-duplicates flagged for review, also when several ingest
workers write batches at the same time.

Exact: every artwork whose image has the same sha256 points (``duplicate_of``, status
``duplicate``) at the earliest one (lowest id), which stays ``ok``. Batches run concurrently, so a
batch cannot assume it sees every row with its hashes: it takes a transaction-level advisory lock
per sha256 (in sorted order, so two batches never deadlock) and then re-links *all* rows with
those hashes, its own and anyone else's. Each batch links after its rows are committed, so
whichever batch links last sees every copy and leaves one original and the rest duplicates, in
any interleaving. Pending near-duplicate flags of a row that turned out to be a duplicate are
dropped (its original carries them).

Near: pairs within the perceptual-hash Hamming distance, found with the HNSW index on
``phash_bits``. Each batch searches after its rows are committed, so of two near-duplicates
written at the same time the later search finds the other.
"""
from __future__ import annotations

from django.db import connection, transaction
from django.db.models import Q

from archive import images
from archive.models import Artwork, NearDuplicate
from archive.vectors import VectorSpace, nearest

PHASH_SPACE = VectorSpace(table="archive_artwork", model_column="status", vector_column="phash_bits")
# First key of the advisory locks taken while linking (the second is hashtext(sha256)).
LINK_LOCK = 0x494D50


def link_exact_duplicates(shas_by_id: dict[int, str]) -> set[int]:
    """Link every artwork sharing a sha256 with the given rows ({artwork id: sha256}) to the
    earliest one. Returns the given ids that are duplicates."""
    if not shas_by_id:
        return set()
    shas = sorted(set(shas_by_id.values()))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(%s, hashtext(s))) FROM (SELECT s FROM unnest(%s::text[]) AS s ORDER BY s) AS ordered",
            [LINK_LOCK, shas],
        )
        cursor.execute(
            """
            WITH canon AS (
                SELECT sha256, min(id) AS cid FROM archive_artwork
                WHERE sha256 = ANY(%s) AND status IN ('ok', 'duplicate') GROUP BY sha256
            ), target AS (
                SELECT a.id,
                       CASE WHEN a.id = c.cid THEN 'ok' ELSE 'duplicate' END AS status,
                       CASE WHEN a.id = c.cid THEN NULL ELSE c.cid END AS duplicate_of_id
                  FROM archive_artwork a JOIN canon c ON a.sha256 = c.sha256
                 WHERE a.status IN ('ok', 'duplicate')
            )
            UPDATE archive_artwork a
               SET status = t.status, duplicate_of_id = t.duplicate_of_id
              FROM target t
             WHERE a.id = t.id AND (a.status <> t.status OR a.duplicate_of_id IS DISTINCT FROM t.duplicate_of_id)
            RETURNING a.id, a.status
            """,
            [shas],
        )
        turned = [aid for aid, status in cursor.fetchall() if status == Artwork.Status.DUPLICATE]
        if turned:
            NearDuplicate.objects.filter(review=NearDuplicate.Review.PENDING).filter(
                Q(artwork_id__in=turned) | Q(other_id__in=turned)
            ).delete()
        return set(
            Artwork.objects.filter(id__in=list(shas_by_id), status=Artwork.Status.DUPLICATE).values_list("id", flat=True)
        )


def flag_near_duplicates(artwork_ids: list[int], max_distance: int) -> int:
    """Flag pairs within the Hamming distance; returns how many new pairs were flagged."""
    if not artwork_ids or max_distance < 0:
        return 0
    rows = Artwork.objects.filter(id__in=artwork_ids, status=Artwork.Status.OK).values_list("id", "phash", "sha256")
    pairs = []
    for aid, phash, sha in rows:
        if phash is None:
            continue
        neighbours = nearest(
            PHASH_SPACE, "ok", images.phash_bits(phash), dim=64, limit=10, metric="l2", ef_search=80,
            where="id <> %s AND sha256 <> %s", params=[aid, sha], columns=("phash",),
        )
        for other_id, _l2, other_phash in neighbours:
            if other_phash is None:
                continue
            distance = images.hamming(phash, other_phash)
            if distance <= max_distance:
                a, b = max(aid, other_id), min(aid, other_id)
                pairs.append(NearDuplicate(artwork_id=a, other_id=b, distance=distance))
    unique = {(p.artwork_id, p.other_id): p for p in pairs}
    if not unique:
        return 0
    known = set(NearDuplicate.objects.filter(artwork_id__in={a for a, _ in unique}).values_list("artwork_id", "other_id"))
    fresh = [p for key, p in unique.items() if key not in known]
    NearDuplicate.objects.bulk_create(fresh, ignore_conflicts=True)
    return len(fresh)
