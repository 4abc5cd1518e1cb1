"""Where fitted layout models are kept: the ``maps-models`` store of :mod:`archive.storage`, the
local folder ``MAP_MODEL_ROOT`` (default ``var/maps-models``).

A fitted model (PCA + UMAP, or PCA + openTSNE) holds the map's training vectors, its kNN graph and
neighbour index, so it is for workers only and must never be reachable by URL: the store is a
:class:`archive.storage.PrivateFolder`, which refuses a location inside ``MEDIA_ROOT`` or the
static files (both are served publicly). A pickle an older version left under ``maps/_models/``
of the public store is moved out on first use (and by ``manage.py upgrade_storage``).
"""
from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from archive import storage, storage_upgrade

LEGACY_DIR = storage_upgrade.LEGACY_MODELS_DIR


def model_root() -> Path:
    """The folder of fitted models; ImproperlyConfigured if a public URL could reach it."""
    root = storage.local_path(storage.map_models())
    if root is None:
        raise ImproperlyConfigured("STORAGES['maps-models'] must be a local folder: fitted map models are loaded from files")
    return root


def legacy_name(slug: str) -> str:
    return f"{LEGACY_DIR}/{slug}.pkl"


def legacy_path(slug: str) -> Path | None:
    """Where an older version kept the model, in the public store (a local path where it is a folder)."""
    return storage.local_path(storage.public(), legacy_name(slug))


def model_path(slug: str) -> Path:
    """Path of ``slug``'s fitted model under MAP_MODEL_ROOT (moving a pickle an older version left
    in the public store out of it first)."""
    path = model_root() / f"{slug}.pkl"
    storage_upgrade.move_legacy_model(slug)
    return path
