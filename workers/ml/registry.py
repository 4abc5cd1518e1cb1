"""Embedding models by key: parse, load lazily once per process, and record in the registry table."""
from __future__ import annotations

import threading

from django.conf import settings
from django.utils import timezone

from .clip import RANDOM, ClipEmbedder, ModelSpec, WeightsMissing

__all__ = [
    "WeightsMissing", "spec_for", "default_spec", "get_embedder", "unload", "register", "active_model", "activate",
]

_cache: dict[str, ClipEmbedder] = {}
_lock = threading.Lock()


def default_spec() -> ModelSpec:
    arch = getattr(settings, "CLIP_MODEL", "ViT-B-32")
    if arch == "test-tiny":
        return ModelSpec("test-tiny", RANDOM)
    return ModelSpec(arch, getattr(settings, "CLIP_PRETRAINED", "laion2b_s34b_b79k"))


def spec_for(key: str | None) -> ModelSpec:
    """The model spec for a registry key; ``None`` means the active model, else the configured default."""
    from archive.models import EmbeddingModel

    if key is None:
        active = active_model()
        if active is None:
            return default_spec()
        key = active.key
    if key == "test-tiny":
        return ModelSpec("test-tiny", RANDOM)
    row = EmbeddingModel.objects.filter(key=key).only("arch", "pretrained").first()
    if row is not None:
        return ModelSpec(row.arch, row.pretrained)
    default = default_spec()
    if key == default.key:
        return default
    arch, _, pretrained = key.partition("/")
    if not pretrained:
        raise ValueError(f"model key {key!r} must look like ARCH/PRETRAINED (e.g. ViT-B-32/laion2b_s34b_b79k) or test-tiny")
    return ModelSpec(arch, pretrained)


def get_embedder(key: str | None = None, device: str | None = None) -> ClipEmbedder:
    """Load (once per process) the embedder for ``key`` (None: the active model)."""
    spec = spec_for(key)
    with _lock:
        embedder = _cache.get(spec.key)
        if embedder is None:
            embedder = ClipEmbedder(spec, device=device or getattr(settings, "ML_DEVICE", None))
            _cache[spec.key] = embedder
    return embedder


def unload(key: str | None = None) -> None:
    """Forget the loaded model(s) of this process (all, or the one for ``key``); the next
    :func:`get_embedder` loads again from the weights."""
    with _lock:
        if key is None:
            _cache.clear()
        else:
            _cache.pop(spec_for(key).key, None)


def register(embedder: ClipEmbedder):
    """The registry row for a loaded embedder (created on first use). A row made for the same
    architecture and weights under an older key is reused, so a key-format change never registers
    a model twice. The image preprocessing is recorded by the embed stage (:mod:`workers.embedding`),
    which checks it on every job and updates it when a model is re-embedded from scratch."""
    from archive.models import EmbeddingModel

    weights = getattr(embedder, "weights", None)
    identity = {"weights_sha256": weights.sha256, "weights_source": weights.source} if weights else {}
    row = EmbeddingModel.objects.filter(key=embedder.key).first()
    if row is None and embedder.spec.pretrained != RANDOM:
        row = EmbeddingModel.objects.filter(arch=embedder.spec.arch, pretrained=embedder.spec.pretrained).order_by("pk").first()
    if row is None:
        row, _ = EmbeddingModel.objects.get_or_create(
            key=embedder.key,
            defaults={
                "arch": embedder.spec.arch,
                "pretrained": embedder.spec.pretrained,
                "dim": embedder.dim,
                "untrained": embedder.untrained,
                **identity,
            },
        )
    return _check_identity(row, identity)


def _check_identity(row, identity: dict):
    """Record the weights' identity on a row made before it was recorded; refuse other weights
    under a key whose vectors were made with different ones (they would not be comparable)."""
    if not identity:
        return row
    if not row.weights_sha256:
        type(row).objects.filter(pk=row.pk).update(**identity)
        for name, value in identity.items():
            setattr(row, name, value)
    elif row.weights_sha256 != identity["weights_sha256"]:
        raise WeightsMissing(
            f"the weights loaded for {row.key} ({identity['weights_source']}, SHA-256 {identity['weights_sha256']}) are not "
            f"the ones its vectors were made with ({row.weights_source}, SHA-256 {row.weights_sha256}). Put the original "
            "weights back, or register the new ones under their own key (another file name or pretrained tag) and embed with it."
        )
    return row


def active_model():
    from archive.models import EmbeddingModel

    return EmbeddingModel.objects.filter(state=EmbeddingModel.State.ACTIVE).first()


def activate(model) -> None:
    """Make ``model`` the one the explorer reads; the previous active model is retired but kept."""
    from django.db import transaction

    from archive.models import EmbeddingModel

    with transaction.atomic():
        EmbeddingModel.objects.filter(state=EmbeddingModel.State.ACTIVE).exclude(pk=model.pk).update(
            state=EmbeddingModel.State.RETIRED
        )
        EmbeddingModel.objects.filter(pk=model.pk).update(state=EmbeddingModel.State.ACTIVE, activated_at=timezone.now())
    model.refresh_from_db()
