"""The storage seam (archive/storage.py): nothing outside it builds a media path or URL, its helpers
on a local folder and on another Django backend (InMemoryStorage), the private folders, and the
pipeline (derivatives, face crops, map exports) on a public store that is not a local folder."""
from __future__ import annotations

import ast
import gzip
import io
import json
from pathlib import Path

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage, InMemoryStorage
from PIL import Image

from archive import storage

ROOT = Path(__file__).resolve().parent.parent
APPS = ("archive", "workers", "explorer", "museum")
# The only modules that may name the stores' settings: where they are read, and the seam itself.
ALLOWED = {"museum/settings.py", "archive/storage.py"}
SETTINGS_NAMES = {"MEDIA_ROOT", "MEDIA_URL", "MAP_MODEL_ROOT", "PRIVATE_ROOT", "STATIC_ROOT"}


def media_joins(source: str) -> list[str]:
    """What in one module builds a media path or URL by hand: the settings of the stores' folders
    and URLs read as attributes or by getattr, and "/media/" URLs written out."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in SETTINGS_NAMES:
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("getattr", "hasattr") and len(node.args) >= 2:
            name = node.args[1]
            if isinstance(name, ast.Constant) and name.value in SETTINGS_NAMES:
                found.append(f"line {node.lineno}: getattr {name.value}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("/media/"):
            found.append(f"line {node.lineno}: {node.value!r}")
    return found


def test_the_scanner_finds_hand_made_media_paths():
    assert media_joins("from django.conf import settings\nurl = settings.MEDIA_URL + crop\n")
    assert media_joins("p = Path(s.MEDIA_ROOT) / 'faces'\n")
    assert media_joins("root = getattr(settings, 'MAP_MODEL_ROOT', None)\n")
    assert media_joins("u = f'/media/maps/{slug}/'\n") or media_joins("u = '/media/maps/'\n")
    assert not media_joins("url = storage.url(storage.public(), crop)  # not MEDIA_URL + crop\n")


def test_no_module_outside_the_seam_builds_a_media_path_or_url():
    offenders = {}
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in ALLOWED or "/migrations/" in rel:
                continue
            found = media_joins(path.read_text())
            if found:
                offenders[rel] = found
    assert not offenders, f"go through archive.storage instead: {offenders}"


# --- the helpers, on a local folder and on another backend ---------------------------------------

@pytest.fixture(params=["folder", "memory"])
def store(request, tmp_path):
    if request.param == "folder":
        return FileSystemStorage(location=str(tmp_path / "store"), base_url="/files/")
    return InMemoryStorage(base_url="/files/")


def test_save_read_and_never_overwrite_silently(store):
    assert storage.save(store, "a/b/one.txt", b"first") == "a/b/one.txt"
    assert storage.read(store, "a/b/one.txt") == b"first" and storage.exists(store, "a/b/one.txt")
    with pytest.raises(FileExistsError):
        storage.save(store, "a/b/one.txt", b"second")
    assert storage.read(store, "a/b/one.txt") == b"first"
    storage.save(store, "a/b/one.txt", b"second", overwrite=True)
    assert storage.read(store, "a/b/one.txt") == b"second"
    assert storage.put(store, "a/b/one.txt", b"other") is False and storage.read(store, "a/b/one.txt") == b"second"
    assert storage.put(store, "a/c.txt", "text") is True and storage.read(store, "a/c.txt") == b"text"
    with storage.open(store, "a/c.txt") as handle:
        assert handle.read() == b"text"
    with pytest.raises(FileNotFoundError):
        storage.read(store, "a/missing.txt")
    with pytest.raises(ValueError):
        storage.open(store, "a/c.txt", "wb")
    assert storage.url(store, "a/c.txt") == "/files/a/c.txt"
    assert storage.url(store, "maps/x/3/") == "/files/maps/x/3/"


def test_listing_copy_and_deleting_a_prefix(store):
    for name in ("maps/m/1/files.json", "maps/m/1/points-000.bin.gz", "maps/m/2/files.json", "maps/other.txt"):
        storage.save(store, name, name.encode())
    assert storage.listdir(store, "maps") == (["m"], ["other.txt"])
    assert storage.listdir(store, "maps/m") == (["1", "2"], [])
    assert storage.listdir(store, "nothing/here") == ([], [])
    assert sorted(storage.walk(store, "maps/m")) == ["maps/m/1/files.json", "maps/m/1/points-000.bin.gz", "maps/m/2/files.json"]
    storage.copy(store, "maps/m/1/files.json", store, "maps/m/3/files.json")
    assert storage.read(store, "maps/m/3/files.json") == b"maps/m/1/files.json"
    storage.delete_prefix(store, "maps/m/1")
    assert storage.listdir(store, "maps/m") == (["2", "3"], [])
    assert storage.read(store, "maps/m/2/files.json") == b"maps/m/2/files.json"
    storage.delete(store, "maps/m/2/files.json")
    storage.delete(store, "maps/m/2/files.json")  # a missing file is not an error
    with pytest.raises(ValueError):
        storage.delete_prefix(store, "/")


def test_a_failed_stream_leaves_nothing(store):
    def chunks():
        yield b"part"
        raise ValueError("too large")

    with pytest.raises(ValueError, match="too large"):
        storage.save_stream(store, "imports/big.csv", chunks())
    assert not storage.exists(store, "imports/big.csv")
    assert list(storage.walk(store, "imports")) == []
    storage.save_stream(store, "imports/ok.csv", iter([b"a,b\n", b"1,2\n"]))
    assert storage.local_copy(store, "imports/ok.csv").read_bytes() == b"a,b\n1,2\n"


def test_local_paths_only_for_local_folders(tmp_path):
    folder = FileSystemStorage(location=str(tmp_path))
    assert storage.local_path(folder, "x/y.jpg") == tmp_path / "x" / "y.jpg"
    assert storage.where(folder, "x/y.jpg") == str(tmp_path / "x" / "y.jpg")
    memory = InMemoryStorage()
    assert storage.local_path(memory, "x/y.jpg") is None
    assert storage.where(memory, "x/y.jpg").endswith("InMemoryStorage:x/y.jpg")
    assert isinstance(storage.resolve(tmp_path), FileSystemStorage) and storage.resolve(memory) is memory


# --- the configured stores ----------------------------------------------------------------------------

def test_the_public_folder_follows_media_root_at_once(tmp_path):
    """Some tests (and scripts) assign settings.MEDIA_ROOT directly, without a settings signal: the
    folder is read on every use, never cached."""
    from django.conf import settings

    old = settings.MEDIA_ROOT
    try:
        settings.MEDIA_ROOT = tmp_path / "elsewhere"
        storage.save(storage.public(), "derivatives/x.jpg", b"jpeg")
        assert (tmp_path / "elsewhere" / "derivatives" / "x.jpg").read_bytes() == b"jpeg"
    finally:
        settings.MEDIA_ROOT = old
    assert not storage.exists(storage.public(), "derivatives/x.jpg")


def test_private_folders_have_no_url_and_refuse_public_locations(settings, tmp_path):
    settings.PRIVATE_ROOT = tmp_path / "private"
    private = storage.private()
    storage.save(private, "imports/a.csv", b"x")
    assert (tmp_path / "private" / "imports" / "a.csv").is_file()
    with pytest.raises(ValueError, match="no URL"):
        storage.url(private, "imports/a.csv")
    settings.PRIVATE_ROOT = Path(settings.MEDIA_ROOT) / "private"
    with pytest.raises(ImproperlyConfigured, match="PRIVATE_ROOT .* served publicly"):
        storage.save(storage.private(), "imports/a.csv", b"x")
    settings.PRIVATE_ROOT = Path(settings.STATICFILES_DIRS[0])
    with pytest.raises(ImproperlyConfigured, match="PRIVATE_ROOT"):
        storage.local_path(storage.private())


def test_private_files_are_not_served(client, settings):
    storage.save(storage.public(), "imports/old-download.csv", b"a,b\n", overwrite=True)
    storage.save(storage.public(), "derivatives/served.jpg", b"jpeg", overwrite=True)
    assert client.get("/media/derivatives/served.jpg").status_code == 200
    assert client.get("/media/imports/old-download.csv").status_code == 404
    assert client.get("/media/derivatives/../imports/old-download.csv").status_code == 404


# --- the pipeline on a public store that is not a local folder -------------------------------------

@pytest.fixture
def memory_public(settings):
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}
    store = storage.public()
    assert isinstance(store, InMemoryStorage)
    return store


@pytest.mark.django_db
def test_derivatives_crops_and_map_exports_on_another_backend(memory_public, shared_data, settings):
    from archive.images import (
        ImageLimits,
        derivative_path,
        derivative_relpath,
        derivative_url,
        ingest_location,
        load_derivative,
    )
    from archive.models import Artwork, Face
    from tests.explorer.test_doppelganger_support import deepface_dir
    from workers import faces as stage
    from workers.layouts import export

    media_before = sorted(Path(settings.MEDIA_ROOT).rglob("*"))
    photo = deepface_dir(shared_data) / "img1.jpg"
    image = ingest_location(str(photo), settings.DERIVATIVE_SIZES, None, ImageLimits.from_settings())
    for size in settings.DERIVATIVE_SIZES:
        assert memory_public.exists(derivative_relpath(image.sha256, size))
    assert derivative_path(image.sha256, 256) is None
    assert derivative_url(image.sha256, 256) == "/media/" + derivative_relpath(image.sha256, 256)
    assert max(load_derivative(image.sha256, 256).size) == 256

    artwork = Artwork.objects.create(source="t", source_id="mem", title="p", sha256=image.sha256, phash=image.phash,
                                     width=image.width, height=image.height, status=Artwork.Status.OK)
    # The embed stage reads the derivative through the seam too (bytes, no path).
    from workers import embedding
    from workers.ml.registry import get_embedder

    embedder = get_embedder("test-tiny")
    ok, vectors, errors = embedding.embed_artworks(embedder, [(artwork.pk, image.sha256)])
    assert ok == [artwork.pk] and not errors and vectors.shape[0] == 1
    assert np.allclose(vectors[0], embedder.embed_images([load_derivative(image.sha256, 256)])[0], atol=1e-4)
    ok, vectors, errors = embedding.embed_artworks(embedder, [(artwork.pk, "f" * 64)])
    assert ok == [] and "image derivative missing" in errors[0].reason and "InMemoryStorage:derivatives/ff/ff/" in errors[0].reason
    result = stage.process([artwork.pk], {})
    assert result.done == [artwork.pk] and not result.errors
    face = Face.objects.get(artwork=artwork)
    assert face.crop.startswith("faces/") and face.crop_url == "/media/" + face.crop
    with Image.open(io.BytesIO(storage.read(memory_public, face.crop))) as crop:
        assert crop.size == (stage.CROP_SIZE, stage.CROP_SIZE)

    n = 300
    rng = np.random.default_rng(1)
    table = export.PointTable(
        artwork_ids=np.arange(1, n + 1), x=rng.normal(size=n).astype(np.float32), y=rng.normal(size=n).astype(np.float32),
        c0=np.zeros(n, int), c1=np.zeros(n, int), year=np.full(n, export.YEAR_NONE), classification=[""] * n,
        thumbs=[derivative_relpath(image.sha256, 128), face.crop] + [""] * (n - 2),
    )
    files = export.export_points(table, "memory", 1)
    assert files["atlas"]["sheets"] == [0] and export.read_files("memory", 1) == files
    data = storage.read(memory_public, "maps/memory/1/points-000.bin.gz")
    assert np.array_equal(export.decode_chunk(gzip.decompress(data), n)["id"], np.arange(1, n + 1, dtype=np.uint32))
    assert json.loads(storage.read(memory_public, "maps/memory/1/files.json"))["count"] == n
    # The next version reuses the unchanged sheet, and pruning keeps only the versions asked for.
    files2 = export.export_points(table, "memory", 2, reuse=(1, n))
    assert files2["atlas"]["sheets"] == [0]
    assert storage.read(memory_public, "maps/memory/2/atlas-0000.jpg") == storage.read(memory_public, "maps/memory/1/atlas-0000.jpg")
    export.prune_versions("memory", keep=[2])
    assert export.read_files("memory", 1) is None and export.read_files("memory", 2) == files2
    assert export.base_url("memory", 2) == "/media/maps/memory/2/"
    # Nothing of this went to the local media folder.
    assert sorted(Path(settings.MEDIA_ROOT).rglob("*")) == media_before
