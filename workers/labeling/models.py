"""Which embedding model a labelling call means."""
from __future__ import annotations

from archive.models import EmbeddingModel


def model_for_work(model=None) -> EmbeddingModel:
    """The model to label with: an EmbeddingModel, its pk or registry key; ``None`` means the active
    model, else the configured default (registered on first use, which loads it)."""
    from workers.ml import registry

    if isinstance(model, EmbeddingModel):
        return model
    if isinstance(model, int):
        return EmbeddingModel.objects.get(pk=model)
    if model is None:
        active = registry.active_model()
        if active is not None:
            return active
        model = registry.default_spec().key
    row = EmbeddingModel.objects.filter(key=model).first()
    return row if row is not None else registry.register(registry.get_embedder(model))


def model_for_reading(model=None) -> EmbeddingModel | None:
    """The model whose labels pages show: the given one, else the active model (None if none)."""
    if isinstance(model, EmbeddingModel):
        return model
    if isinstance(model, int):
        return EmbeddingModel.objects.filter(pk=model).first()
    if isinstance(model, str):
        return EmbeddingModel.objects.filter(key=model).first()
    return EmbeddingModel.objects.filter(state=EmbeddingModel.State.ACTIVE).first()
