"""A small real archive for the explorer tests: 40 AIC paintings + 20 culturecraft crops, ingested
with archive.images (real derivatives), embedded with the untrained test-tiny model, labelled with
direct ArtworkLabel rows (cosine of image and label text embeddings, top 5 per artwork)."""
from __future__ import annotations

import csv
import json
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings

AIC_COUNT = 40
CC_COUNT = 20
LABELS = [
    ("portrait", "genres", "a portrait of a person"),
    ("landscape", "genres", "a landscape painting"),
    ("still life", "genres", "a still life with fruit and flowers"),
    ("horse", "animals", "a horse"),
    ("dog", "animals", "a dog"),
    ("bird", "animals", "a bird"),
    ("ship", "objects", "a sailing ship"),
    ("flower", "objects", "flowers"),
    ("impressionism", "styles", "an impressionist painting"),
    ("baroque", "styles", "a baroque painting"),
]


def aic_records(aic_dir: Path) -> list[dict]:
    records = []
    for path in sorted((aic_dir / "collections").glob("*/collection.json")):
        for art in json.loads(path.read_text())["artworks"]:
            image = aic_dir / "images" / f"{art['id']}.jpg"
            if image.exists():
                records.append({**art, "_image": str(image), "_collection": path.parent.name})
    # Spread over the periods: every k-th record.
    step = max(1, len(records) // AIC_COUNT)
    return records[::step][:AIC_COUNT]


def cc_records(cc_dir: Path) -> list[dict]:
    with open(cc_dir / "metadata.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if (cc_dir / "images" / f"{r['index']}.jpg").exists()]
    step = max(1, len(rows) // CC_COUNT)
    return [{**r, "_image": str(cc_dir / "images" / f"{r['index']}.jpg")} for r in rows[::step][:CC_COUNT]]


@lru_cache(maxsize=None)
def _ingest(location: str, media_root: str):
    from archive.images import ImageLimits, ingest_location

    return ingest_location(location, tuple(settings.DERIVATIVE_SIZES), Path(media_root), ImageLimits.from_settings())


def _year(text: str):
    import re

    m = re.search(r"(\d{3,4})", text or "")
    return int(m.group(1)) if m else None


def build_archive(aic_dir: Path, cc_dir: Path) -> dict:
    """Create (idempotently) the artworks, embeddings and labels; returns a summary dict."""
    from archive import vectors
    from archive.models import Artwork, ArtworkEmbedding, ArtworkLabel, Label, LabelEmbedding
    from workers.ml.registry import activate, get_embedder, register
    from archive.images import load_derivative

    media_root = str(settings.MEDIA_ROOT)
    artworks = []
    for rec in aic_records(aic_dir):
        img = _ingest(rec["_image"], media_root)
        year = _year(rec.get("date", ""))
        artwork, _ = Artwork.objects.update_or_create(
            source="aic", source_id=str(rec["id"]),
            defaults=dict(
                title=rec["title"], creator=rec.get("artist", ""), display_date=rec.get("date", ""),
                year_start=year, year_end=year, medium=rec.get("medium", ""), classification="painting",
                institution="Art Institute of Chicago", rights="CC0", rights_url="https://creativecommons.org/publicdomain/zero/1.0/",
                source_url=f"https://www.artic.edu/artworks/{rec['id']}",
                iiif_image_service=f"https://www.artic.edu/iiif/2/{rec['image_id']}",
                original_location=rec["_image"], sha256=img.sha256, phash=img.phash, phash_bits=img.phash_bits, width=img.width, height=img.height,
                status=Artwork.Status.OK,
            ),
        )
        artworks.append(artwork)
    for rec in cc_records(cc_dir):
        img = _ingest(rec["_image"], media_root)
        year = _year(rec.get("year", ""))
        artwork, _ = Artwork.objects.update_or_create(
            source="culturecraft", source_id=rec["id"],
            defaults=dict(
                title=rec["title"], creator=rec.get("creator", ""), display_date=rec.get("year", ""),
                year_start=year, year_end=year, classification="detail", institution=rec["source"].upper(),
                rights="Public domain", source_url=rec.get("url", ""), original_location=rec["_image"],
                sha256=img.sha256, phash=img.phash, phash_bits=img.phash_bits, width=img.width, height=img.height, status=Artwork.Status.OK,
            ),
        )
        artworks.append(artwork)

    embedder = get_embedder("test-tiny")
    model = register(embedder)
    if model.state != "active":
        activate(model)
    images = [load_derivative(a.sha256, 256) for a in artworks]
    matrix = embedder.embed_images(images)
    ArtworkEmbedding.objects.filter(model=model).delete()
    vectors.copy_rows("archive_artworkembedding", ["artwork_id", "model_id", "vector", "created_at"],
                      [(a.pk, model.pk, matrix[i], "now") for i, a in enumerate(artworks)])
    vectors.ensure_hnsw_index(vectors.ARTWORK_EMBEDDINGS, model.pk, model.dim)

    labels = []
    for name, group, prompt in LABELS:
        label, _ = Label.objects.update_or_create(
            slug=name.replace(" ", "-"), defaults=dict(name=name, group=group, prompt=prompt, published=True, threshold=None)
        )
        labels.append(label)
    text = embedder.embed_texts([l.prompt for l in labels])
    for label, vec in zip(labels, text):
        LabelEmbedding.objects.update_or_create(label=label, model=model, defaults={"vector": vec.tolist()})
    scores = matrix @ text.T
    ArtworkLabel.objects.filter(model=model).delete()
    rows = []
    for i, artwork in enumerate(artworks):
        order = np.argsort(-scores[i])[:5]
        for rank, j in enumerate(order, start=1):
            rows.append(ArtworkLabel(artwork=artwork, label=labels[j], model=model, score=float(scores[i, j]), rank=rank))
    ArtworkLabel.objects.bulk_create(rows)
    # The label stage keeps the stored per-label counts current as it writes; rows written here
    # directly are counted once, as a migration or `manage.py refresh_label_counts` would.
    from archive.label_counts import refresh

    refresh(model.pk)
    from django.core.cache import cache

    cache.clear()
    return {"artworks": artworks, "labels": labels, "model": model, "embedder": embedder, "matrix": matrix}


def remove_archive(data: dict) -> None:
    """Delete what build_archive committed, so other test modules start from an empty archive."""
    from archive.models import Artwork, Collection, EmbeddingModel, Job, Label, LabelDecision

    ids = [a.pk for a in data["artworks"]]
    LabelDecision.objects.filter(artwork_id__in=ids).delete()
    Collection.objects.filter(items__artwork_id__in=ids).delete()
    Artwork.objects.filter(pk__in=ids).delete()
    Label.objects.filter(slug__in=[l.slug for l in data["labels"]]).delete()
    EmbeddingModel.objects.filter(pk=data["model"].pk).delete()
    from django.core.cache import cache

    cache.clear()
