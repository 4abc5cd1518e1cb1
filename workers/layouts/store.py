"""Where fitted layout models are kept: ``MAP_MODEL_ROOT`` (default ``var/maps-models``).

A fitted model (PCA + UMAP, or PCA + openTSNE) holds the map's training vectors, its kNN graph and
neighbour index, so it is for workers only and must never be reachable by URL. The root is
refused when it lies inside ``MEDIA_ROOT`` or the static files (both are served publicly), and a
pickle left under ``MEDIA_ROOT/maps/_models/`` by an older version is moved out on first use.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

log = logging.getLogger(__name__)

LEGACY_DIR = ("maps", "_models")


def _public_roots() -> list[Path]:
    roots = [Path(settings.MEDIA_ROOT)]
    if getattr(settings, "STATIC_ROOT", None):
        roots.append(Path(settings.STATIC_ROOT))
    roots += [Path(p if isinstance(p, (str, Path)) else p[1]) for p in getattr(settings, "STATICFILES_DIRS", [])]
    return [r.resolve() for r in roots]


def model_root() -> Path:
    """The folder of fitted models; ImproperlyConfigured if a public URL could reach it."""
    root = Path(getattr(settings, "MAP_MODEL_ROOT", Path(settings.BASE_DIR) / "var" / "maps-models")).resolve()
    for public in _public_roots():
        if root == public or public in root.parents:
            raise ImproperlyConfigured(
                f"MAP_MODEL_ROOT ({root}) lies inside {public}, which is served publicly; fitted map models "
                "hold the training vectors: set MAP_MODEL_ROOT to a folder outside MEDIA_ROOT and the static files"
            )
    return root


def legacy_path(slug: str) -> Path:
    return Path(settings.MEDIA_ROOT).joinpath(*LEGACY_DIR, f"{slug}.pkl")


def model_path(slug: str) -> Path:
    """Path of ``slug``'s fitted model under MAP_MODEL_ROOT (moving a pickle an older version left
    under MEDIA_ROOT out of the public tree first)."""
    path = model_root() / f"{slug}.pkl"
    old = legacy_path(slug)
    if old.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            old.unlink()
        else:
            shutil.move(str(old), str(path))
            log.info("moved the fitted model of map %s out of MEDIA_ROOT to %s", slug, path)
        try:
            old.parent.rmdir()  # only when empty
        except OSError:
            pass
    return path
