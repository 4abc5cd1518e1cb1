"""The storage seam: every file the project keeps goes through here, over Django's ``STORAGES``.

Three stores (see ``museum/settings.py``):

* :func:`public` (``STORAGES["default"]``) — files the browser fetches by URL: image derivatives,
  face crops, map exports. By default :class:`MediaFolder`, the local folder ``MEDIA_ROOT``
  served at ``MEDIA_URL``.
* :func:`private` (``STORAGES["private"]``) — files only the workers read: fetched metadata files
  of imports. By default :class:`PrivateFolder` on ``PRIVATE_ROOT`` (``var/private``); no URL.
* :func:`map_models` (``STORAGES["maps-models"]``) — fitted map models (pickles holding the
  training vectors), a :class:`PrivateFolder` on ``MAP_MODEL_ROOT``. It must be a local folder.

Nothing else builds a media path or URL: callers name files relative to a store
(``derivatives/ab/cd/<sha>_256.jpg``) and call :func:`save`, :func:`open`, :func:`url`, ...
Any Django storage backend works for the public and private stores (``MEDIA_STORAGE`` /
``PRIVATE_STORAGE`` name its class, see docs/architecture.md "Storage"); :func:`local_path` gives a
filesystem path only where the store is a local folder (``None`` otherwise), and readers that need
one fall back to :func:`open` / :func:`read`.

The folder classes read their location from the settings on every use (never cached), so a
setting changed at run time (tests do) takes effect at once.
"""
from __future__ import annotations

import builtins
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterable, Iterator

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile, File
from django.core.files.storage import FileSystemStorage, Storage, storages

PUBLIC, PRIVATE, MAP_MODELS = "default", "private", "maps-models"


class StoreUnavailable(ConnectionError):
    """A store could not be reached (network, endpoint down, throttled, server error): nothing is
    known to be wrong with the file. Stages let it propagate, so the kernel gives the batch back
    and retries it later (``workers.jobs.contract.TRANSIENT_ERRORS``) instead of failing its items."""


# --- the folder backends ------------------------------------------------------------------------

class MediaFolder(FileSystemStorage):
    """The public store on the local filesystem: ``MEDIA_ROOT`` at ``MEDIA_URL`` (read on every use)."""

    @property
    def base_location(self):
        return self._value_or_setting(self._location, settings.MEDIA_ROOT)

    @property
    def location(self):
        return os.path.abspath(self.base_location)

    @property
    def base_url(self):
        url = self._value_or_setting(self._base_url, settings.MEDIA_URL)
        return url if url is None or url.endswith("/") else url + "/"

    def __str__(self) -> str:
        return self.location


def public_roots() -> list[Path]:
    """Local folders served publicly: the public store (when it is a folder) and the static files."""
    roots = []
    store = public()
    if isinstance(store, FileSystemStorage):
        roots.append(Path(store.location))
    if getattr(settings, "STATIC_ROOT", None):
        roots.append(Path(settings.STATIC_ROOT))
    roots += [Path(p if isinstance(p, (str, Path)) else p[1]) for p in getattr(settings, "STATICFILES_DIRS", [])]
    return [r.resolve() for r in roots]


class PrivateFolder(FileSystemStorage):
    """A local folder no URL reaches. Its location is the setting named ``setting`` (read on every
    use) or an explicit ``location``; one inside a publicly served folder is refused."""

    def __init__(self, location=None, setting: str = "PRIVATE_ROOT", default: str = "var/private", **kwargs):
        super().__init__(location=location, **kwargs)
        self.setting = setting
        self.default = default

    @property
    def base_location(self):
        if self._location is not None:
            return self._location
        return getattr(settings, self.setting, None) or Path(settings.BASE_DIR) / self.default

    @property
    def location(self):
        root = Path(self.base_location).resolve()
        for served in public_roots():
            if root == served or served in root.parents:
                raise ImproperlyConfigured(
                    f"{self.setting} ({root}) lies inside {served}, which is served publicly; it holds files that must "
                    f"not be reachable by URL: set {self.setting} to a folder outside MEDIA_ROOT and the static files"
                )
        return str(root)

    @property
    def base_url(self):
        return None

    def url(self, name):
        raise ValueError(f"{self.setting} is a private store: its files have no URL")

    def __str__(self) -> str:
        return self.location


# --- the stores -----------------------------------------------------------------------------------

def public() -> Storage:
    return storages[PUBLIC]


def private() -> Storage:
    return storages[PRIVATE]


def map_models() -> Storage:
    return storages[MAP_MODELS]


def resolve(where=None) -> Storage:
    """A store from what callers pass: None (the public store), a storage, or a local folder."""
    if where is None:
        return public()
    if isinstance(where, Storage):
        return where
    if isinstance(where, (str, os.PathLike)):
        return MediaFolder(location=str(where))
    raise TypeError(f"not a storage or a folder: {where!r}")


def describe(store: Storage) -> str:
    """Where a store keeps its files, for messages."""
    if isinstance(store, FileSystemStorage):
        return str(store.location)
    if hasattr(store, "describe"):
        return store.describe()
    return f"{store.__class__.__module__}.{store.__class__.__name__}"


def where(store: Storage, name: str) -> str:
    """One file's place, for messages: its local path, else the store and the name."""
    path = local_path(store, name)
    return str(path) if path is not None else f"{describe(store)}:{name}"


def local_path(store: Storage, name: str = "") -> Path | None:
    """The local filesystem path of ``name`` where the store is a local folder, else None."""
    if not isinstance(store, FileSystemStorage):
        return None
    return Path(store.path(name)) if name else Path(store.location)


# --- writing ------------------------------------------------------------------------------------

def _as_bytes_file(data) -> File:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return ContentFile(bytes(data))
    if isinstance(data, str):
        return ContentFile(data.encode())
    return data if isinstance(data, File) else File(data)


def _fs_write(path: Path, chunks: Iterable[bytes], *, overwrite: bool) -> None:
    """Write to a temporary file beside ``path``, then name it: atomically replacing (overwrite) or
    linking only if absent (FileExistsError otherwise). Nothing is left behind on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
        mode = settings.FILE_UPLOAD_PERMISSIONS
        os.chmod(tmp, mode if mode is not None else 0o644)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # atomic, and fails if the name exists
            except FileExistsError:
                raise
            except OSError:  # a filesystem without hard links
                if path.exists():
                    raise FileExistsError(f"{path} exists") from None
                os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _chunks_of(data) -> Iterator[bytes]:
    if isinstance(data, (bytes, bytearray, memoryview)):
        yield bytes(data)
        return
    if isinstance(data, str):
        yield data.encode()
        return
    yield from _as_bytes_file(data).chunks()


def save(store: Storage, name: str, data, *, overwrite: bool = False) -> str:
    """Write ``data`` (bytes, str or a file) as ``name``, atomically: readers see the whole file or
    none. An existing file is replaced only with ``overwrite``; else FileExistsError."""
    path = local_path(store, name)
    if path is not None:
        _fs_write(path, _chunks_of(data), overwrite=overwrite)
        return name
    if store.exists(name):
        if not overwrite:
            raise FileExistsError(f"{where(store, name)} exists")
        store.delete(name)
    saved = store.save(name, _as_bytes_file(data))
    if saved != name:  # another writer got there first and the backend chose another name
        store.delete(saved)
        if not overwrite:
            raise FileExistsError(f"{where(store, name)} exists")
    return name


def put(store: Storage, name: str, data) -> bool:
    """Write a content-addressed file unless it is there (the same name holds the same content).
    Returns whether it was written."""
    if exists(store, name):
        return False
    try:
        save(store, name, data)
    except FileExistsError:
        return False
    return True


def save_stream(store: Storage, name: str, chunks: Iterable[bytes], *, overwrite: bool = False) -> str:
    """:func:`save` for a stream of byte chunks (a download): a local folder gets them written straight
    beside the target; another backend gets them through a temporary file. An exception raised by
    the stream leaves nothing behind."""
    path = local_path(store, name)
    if path is not None:
        _fs_write(path, chunks, overwrite=overwrite)
        return name
    with tempfile.TemporaryFile() as spool:
        for chunk in chunks:
            spool.write(chunk)
        spool.seek(0)
        return save(store, name, File(spool), overwrite=overwrite)


def copy(source: Storage, name: str, target: Storage, target_name: str | None = None, *, overwrite: bool = False) -> str:
    """Copy one file between stores (or within one); a hard link where both are the same local disk."""
    target_name = target_name or name
    src, dst = local_path(source, name), local_path(target, target_name)
    if src is not None and dst is not None:
        dst.parent.mkdir(parents=True, exist_ok=True)
        if overwrite and dst.exists():
            dst.unlink()
        try:
            os.link(src, dst)
            return target_name
        except FileExistsError:
            raise
        except OSError:
            pass  # another device, or links unsupported: copy the bytes
    with source.open(name, "rb") as handle:
        return save(target, target_name, handle, overwrite=overwrite)


def delete(store: Storage, name: str) -> None:
    """Remove a file; a missing one is not an error."""
    try:
        store.delete(name)
    except FileNotFoundError:
        pass


# --- reading ------------------------------------------------------------------------------------

def open(store: Storage, name: str, mode: str = "rb") -> IO:
    """Open a file for reading (FileNotFoundError when it is missing)."""
    if "w" in mode or "a" in mode or "+" in mode:
        raise ValueError("the storage seam writes through save(), never through an open file")
    path = local_path(store, name)
    if path is not None:
        return builtins.open(path, mode)
    if hasattr(store, "open_bytes"):  # an object store read in one request (archive/storage_s3.py)
        return store.open_bytes(name)
    if not store.exists(name):
        raise FileNotFoundError(f"{where(store, name)} does not exist")
    return store.open(name, mode)


def read(store: Storage, name: str) -> bytes:
    if local_path(store, name) is None and hasattr(store, "read_bytes"):
        return store.read_bytes(name)
    with open(store, name) as handle:
        return handle.read()


def exists(store: Storage, name: str) -> bool:
    path = local_path(store, name)
    return path.is_file() if path is not None else store.exists(name)


def url(store: Storage, name: str) -> str:
    """The URL the browser fetches ``name`` at (a trailing "/" names a prefix: a base URL)."""
    return store.url(name)


def listdir(store: Storage, prefix: str = "") -> tuple[list[str], list[str]]:
    """(folders, files) directly under ``prefix``; empty when there is none."""
    path = local_path(store, prefix)
    if path is not None and not path.is_dir():
        return [], []
    try:
        dirs, files = store.listdir(prefix)
    except FileNotFoundError:
        return [], []
    return sorted(dirs), sorted(files)


def walk(store: Storage, prefix: str = "") -> Iterator[str]:
    """Every file name under ``prefix`` (recursively), relative to the store."""
    dirs, files = listdir(store, prefix)
    base = prefix.rstrip("/") + "/" if prefix else ""
    for f in files:
        yield base + f
    for d in dirs:
        yield from walk(store, base + d)


def delete_prefix(store: Storage, prefix: str) -> None:
    """Remove everything under ``prefix`` (a "folder" of the store)."""
    if not prefix.strip("/"):
        raise ValueError("refusing to delete a whole store")
    path = local_path(store, prefix)
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
        return
    for name in list(walk(store, prefix)):
        delete(store, name)
    try:
        store.delete(prefix.rstrip("/"))  # backends that keep folders (InMemoryStorage); object stores have none
    except (OSError, NotImplementedError):
        pass


def local_copy(store: Storage, name: str) -> Path:
    """A local file with ``name``'s content, for readers that need a path (metadata parsers): the file
    itself in a local folder, else a copy cached in the system's temporary folder."""
    path = local_path(store, name)
    if path is not None:
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
        return path
    try:  # a changed file gets a new copy
        version = f"{store.size(name)}:{store.get_modified_time(name).timestamp()}"
    except (NotImplementedError, AttributeError):
        version = str(store.size(name))
    key = hashlib.sha1(f"{describe(store)}:{name}:{version}".encode()).hexdigest()[:16]
    cached = Path(tempfile.gettempdir()) / "museum-storage" / f"{key}_{Path(name).name}"
    if not cached.exists():
        with open(store, name) as handle:
            _fs_write(cached, iter(lambda: handle.read(1 << 20), b""), overwrite=True)
    return cached
