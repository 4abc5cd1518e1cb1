"""Labels a curator creates from a text prompt: create unpublished, score over the whole archive on
demand, review the top-scored artworks, publish."""
from __future__ import annotations

from django.db import transaction
from django.utils.text import slugify

from archive.models import ArtworkLabel, Label

from .models_state import active_model
from .similar import nearest_artworks

REVIEW_SIZE = 60
PUBLISH_LIMIT = 500


def create_prompt_label(name: str, prompt: str, user, *, group: str = "curated") -> Label:
    name, prompt = (name or "").strip(), (prompt or "").strip()
    if not name:
        raise ValueError("the label needs a name")
    if len(name) > 200 or len(prompt) > 1000:
        raise ValueError("name (200) or prompt (1000 characters) too long")
    base = slugify(name)[:200] or "label"
    slug, n = base, 1
    while Label.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return Label.objects.create(
        name=name, slug=slug, group=(group or "curated")[:50], prompt=prompt or name, published=False,
        created_by=user if user and user.is_authenticated else None, source="curator prompt",
    )


def score_label(label: Label, *, limit: int = REVIEW_SIZE) -> list[tuple[int, float]]:
    """``(artwork_id, score)`` best first, over the whole archive, under the active model.

    Uses the labeling engine's ``workers.labeling.score_label`` when it is installed; otherwise the
    cosine similarity of the prompt's text embedding to each artwork (kNN)."""
    model = active_model()
    if model is None:
        raise LookupError("no embedding model is active yet: embed the archive first (./run manage embed)")
    try:
        from workers.labeling import score_label as engine_score
    except ImportError:
        engine_score = None
    if engine_score is not None:
        return [(int(a), float(s)) for a, s in engine_score(label, model=model, limit=limit)]
    from workers.ml.registry import get_embedder

    query = get_embedder(model.key).embed_texts([label.prompt or label.name])[0]
    return nearest_artworks(model, query, limit=limit, ef_search=max(limit, 200))


def publish(label: Label, scores: list[tuple[int, float]], *, threshold: float | None = None) -> int:
    """Publish the label and store its scores under the active model, so its page lists them.

    With the labeling engine installed, ``workers.labeling.apply_label`` enters the label into the
    stored top-k of every artwork where it now ranks (and records its score statistics); without it,
    the reviewed scores themselves are stored."""
    model = active_model()
    rows = [(a, s) for a, s in scores if threshold is None or s >= threshold][:PUBLISH_LIMIT]
    try:
        from workers.labeling import apply_label
    except ImportError:
        apply_label = None
    if apply_label is not None and model is not None:
        label.published = True
        if threshold is not None:
            label.threshold = threshold
        label.save(update_fields=["published", "threshold"])
        result = apply_label(label, model)
        from .browse import forget_counts

        forget_counts()
        return int(result.get("inserted", len(rows))) if isinstance(result, dict) else len(rows)
    with transaction.atomic():
        if model is not None:
            ArtworkLabel.objects.bulk_create(
                [ArtworkLabel(artwork_id=a, label=label, model=model, score=s, rank=0) for a, s in rows],
                update_conflicts=True, unique_fields=["artwork", "model", "label"], update_fields=["score"],
            )
        label.published = True
        if threshold is not None:
            label.threshold = threshold
        label.save(update_fields=["published", "threshold"])
    from .browse import forget_counts

    forget_counts()
    return len(rows)
