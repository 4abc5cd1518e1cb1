"""Labels a curator creates from a text prompt: create unpublished, score over the whole archive on
demand (a preview from the HNSW index), review the top-scored artworks, publish (a job scores it
over the whole archive on a worker)."""
from __future__ import annotations

from django.utils.text import slugify

from archive.models import Job, Label

from .models_state import active_model
from .similar import nearest_artworks

REVIEW_SIZE = 60


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


def publish(label: Label, *, threshold: float | None = None, user=None) -> Job | None:
    """Publish the label and launch the job that scores it over the whole archive (``score_label``
    on the label queue: it enters the label into the stored top-k of every artwork where it ranks,
    under every non-retired model with embeddings). Returns at once with the job, or None when no
    model has embeddings yet (the label job scores published labels when the archive is embedded)."""
    label.published = True
    if threshold is not None:
        label.threshold = threshold
    label.save(update_fields=["published", "threshold"])
    from archive import label_counts
    from workers.jobs import launch
    from workers.labeling.curator_job import scoring_models

    models = list(scoring_models().values_list("pk", flat=True))
    for model_id in models:
        label_counts.refresh(model_id, [label.pk])  # its threshold may have changed; the job keeps it current
    if not models:
        return None
    return launch("score_label", {"label_id": label.pk}, user=user if user is not None and user.is_authenticated else None)


def may_delete_draft(label: Label, user) -> bool:
    """A draft label belongs to the curator who created it: only they (or an operator) delete it."""
    from .permissions import is_operator

    if label.published or user is None or not user.is_authenticated:
        return False
    return label.created_by_id == user.pk or is_operator(user) or user.is_superuser
