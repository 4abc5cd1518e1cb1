"""Shared fixtures. Tests run against the real PostgreSQL (embedded by default) and read the real
images under ../shared/data/, skipping with a visible reason where that folder is absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# No test reaches the internet for model weights: the hub is offline unless a test says otherwise
# (tests/workers/test_weights.py serves weights from a local hub). Workers started by tests inherit it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARED_DATA = Path(os.environ.get("MUSEUM_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not available: {path} is missing (expected ../shared/data beside the checkout)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _require(SHARED_DATA)


@pytest.fixture(scope="session")
def aic_dir(shared_data) -> Path:
    return _require(shared_data / "artworks" / "aic-artwall")


@pytest.fixture(scope="session")
def culturecraft_dir(shared_data) -> Path:
    return _require(shared_data / "artworks" / "culturecraft")


@pytest.fixture(scope="session")
def tate_dir(shared_data) -> Path:
    return _require(shared_data / "metadata" / "tate")


@pytest.fixture(scope="session")
def faces_dir(shared_data) -> Path:
    return _require(shared_data / "faces")


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path_factory):
    """Each test session writes derivatives into its own temporary MEDIA_ROOT."""
    root = tmp_path_factory.getbasetemp() / "media"
    root.mkdir(exist_ok=True)
    settings.MEDIA_ROOT = root
    return root


@pytest.fixture(autouse=True)
def _private_root(settings, tmp_path_factory):
    """The private store (fetched metadata files) goes to a temporary PRIVATE_ROOT."""
    root = tmp_path_factory.getbasetemp() / "private"
    settings.PRIVATE_ROOT = root
    return root


@pytest.fixture(autouse=True)
def _map_model_root(settings, tmp_path_factory):
    """Fitted map models go to a temporary MAP_MODEL_ROOT (outside MEDIA_ROOT, as in production)."""
    root = tmp_path_factory.getbasetemp() / "maps-models"
    settings.MAP_MODEL_ROOT = root
    return root


@pytest.fixture(autouse=True)
def _no_palettes_after_import(settings):
    """An import job's end starts no palette job in tests (tests count the jobs they start);
    tests/workers/test_palettes.py turns it on to check the pipeline's step."""
    settings.PALETTES_AFTER_IMPORT = False


@pytest.fixture(autouse=True)
def _no_neighbours_after_embed(settings):
    """An embed job's end starts no neighbour-graph job in tests (tests count the jobs they start);
    tests/workers/test_neighbours.py turns it on to check the pipeline's step."""
    settings.NEIGHBOURS_AFTER_EMBED = False
