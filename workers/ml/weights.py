"""Where a CLIP model's weights come from: a local file, or the Hugging Face hub through its cache.

:func:`fetch` turns a :class:`~workers.ml.clip.ModelSpec`'s ``pretrained`` into a checked local
file, the ordinary way:

* a path (``CLIP_PRETRAINED=/data/open_clip_model.safetensors``): used as it is;
* an open_clip tag (``laion2b_s34b_b79k``): the hub repository and file open_clip's table names for
  it, safetensors first, downloaded once by ``huggingface_hub`` into its cache (with its progress
  bar) and read from the cache afterwards;
* ``hf-hub:ORG/REPO`` or ``hf-hub:ORG/REPO/FILE`` (optionally ``@REVISION``): that repository's
  open_clip weights, e.g. a private copy.

The environment is read on every call, not once at import: ``HF_HUB_OFFLINE=1`` (never reach the
network: the cache or a clear :class:`WeightsMissing`), ``HF_ENDPOINT`` (a mirror or an in-house
hub), ``HF_HUB_CACHE`` / ``HF_HOME`` (the cache), ``HF_TOKEN`` (read by huggingface_hub itself).

Every file is checked before use: a cached file whose name in the cache is a SHA-256 (the hub's
ETag of large files) must hash to it, a small one to its git blob id; a corrupt download is deleted
from the cache and refused (:class:`WeightsCorrupt`), so the next attempt downloads it again.
Nothing here ever substitutes random weights: those are only built when asked for by name.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

log = logging.getLogger(__name__)

HUB_PREFIX = "hf-hub:"
DEFAULT_FILE = "open_clip_pytorch_model.bin"
SHA256 = re.compile(r"^[0-9a-f]{64}$")
SHA1 = re.compile(r"^[0-9a-f]{40}$")


class WeightsMissing(RuntimeError):
    """The requested pretrained weights cannot be had here. The message says how to provide them."""


class WeightsCorrupt(WeightsMissing):
    """A downloaded or cached weights file does not match its checksum (it was removed)."""


@dataclass(frozen=True)
class Weights:
    """A checked weights file: where it is, its SHA-256, where it came from (``hub:REPO/FILE@COMMIT``
    or ``file``), and the image preprocessing open_clip's table gives its tag (may be empty)."""

    path: Path
    sha256: str
    source: str
    preprocess: dict = field(default_factory=dict)


def is_hub_ref(pretrained: str) -> bool:
    return pretrained.startswith(HUB_PREFIX)


def is_weights_path(pretrained: str) -> bool:
    """A local weights file rather than an open_clip pretrained tag or a hub reference."""
    return not is_hub_ref(pretrained) and (os.sep in pretrained or (os.altsep or os.sep) in pretrained)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def offline() -> bool:
    """Whether the hub may be reached now (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``)."""
    return _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("TRANSFORMERS_OFFLINE"))


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"
    return Path(home).expanduser() / "hub"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _git_blob_sha1(path: Path) -> str:
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


class DownloadProgress(tqdm):
    """The download's progress bar, on a terminal and in a worker's log alike (huggingface_hub's
    own bar hides itself when stderr is not a terminal); ``HF_HUB_DISABLE_PROGRESS_BARS`` hides it."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("mininterval", 0.5 if sys.stderr.isatty() else 10.0)
        kwargs.setdefault("disable", _truthy(os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS")))
        super().__init__(*args, **kwargs)


def hub_location(arch: str, pretrained: str) -> tuple[str, list[str], str | None, dict]:
    """``(repo_id, candidate file names, revision, preprocess)`` for a tag or an ``hf-hub:`` ref.
    Raises :class:`ValueError` for a tag open_clip does not know for ``arch``."""
    if is_hub_ref(pretrained):
        ref, _, revision = pretrained[len(HUB_PREFIX):].partition("@")
        parts = ref.strip("/").split("/")
        if len(parts) < 2:
            raise ValueError(f"{pretrained!r}: expected hf-hub:ORG/REPO or hf-hub:ORG/REPO/FILE")
        repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:])
        return repo_id, _candidates(filename), revision or None, {}
    import open_clip

    cfg = open_clip.get_pretrained_cfg(arch, pretrained)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        raise ValueError(f"open_clip has no pretrained tag {pretrained!r} for {arch!r} (known: {', '.join(tags) or 'none'})")
    if not cfg.get("hf_hub"):
        raise ValueError(f"the weights of {arch}/{pretrained} are not on the Hugging Face hub ({cfg.get('url')}): "
                         "download them yourself and set CLIP_PRETRAINED to the file")
    # open_clip's convention: "ORG/REPO/" (its default file) or "ORG/REPO/FILE".
    repo_id, filename = os.path.split(cfg["hf_hub"])
    preprocess = {k: cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if cfg.get(k) is not None}
    return repo_id, _candidates(filename), None, preprocess


def _candidates(filename: str) -> list[str]:
    """The safetensors file first (no pickle is loaded when it exists), then the named one."""
    filename = filename or DEFAULT_FILE
    if filename.endswith(".safetensors"):
        return [filename]
    stem = filename.rsplit(".", 1)[0]
    safe = "open_clip_model.safetensors" if filename == DEFAULT_FILE else stem + ".safetensors"
    return [safe, filename]


def fetch(spec) -> Weights:
    """The checked local weights file for ``spec`` (downloading it into the cache when allowed)."""
    pretrained = spec.pretrained
    if is_weights_path(pretrained):
        path = Path(pretrained)
        if not path.is_file():
            raise WeightsMissing(missing_message(spec, f"no file at {path}"))
        return Weights(path, file_sha256(path), "file")
    try:
        repo_id, names, revision, preprocess = hub_location(spec.arch, pretrained)
    except ValueError as exc:
        raise WeightsMissing(missing_message(spec, str(exc))) from exc
    path, source = _download(spec, repo_id, names, revision)
    return Weights(path, _verify(spec, path), source, preprocess)


def _download(spec, repo_id: str, names: list[str], revision: str | None) -> tuple[Path, str]:
    import huggingface_hub
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import (
        LocalEntryNotFoundError, RemoteEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError,
    )

    is_offline = offline()
    # huggingface_hub reads HF_HUB_OFFLINE once, when first imported; the variable as it is now wins.
    constants.HF_HUB_OFFLINE = is_offline
    where = f"{endpoint()}/{repo_id}"
    last: Exception | None = None
    for name in names:
        try:
            path = hf_hub_download(
                repo_id, name, revision=revision, cache_dir=str(cache_dir()), endpoint=endpoint(),
                local_files_only=is_offline, library_name="museum", library_version="1", tqdm_class=DownloadProgress,
            )
        except LocalEntryNotFoundError as exc:  # (a subclass of EntryNotFoundError: caught first)
            last = exc
            if is_offline:
                continue  # maybe the other file is cached
            break  # the hub is unreachable (after the client's own retries): the other file would be too
        except (RemoteEntryNotFoundError, RevisionNotFoundError) as exc:
            last = exc  # this file is not in the repository: try the next name
            continue
        except RepositoryNotFoundError as exc:
            raise WeightsMissing(missing_message(spec, f"{where} is not a repository there (or needs HF_TOKEN)")) from exc
        except (OSError, huggingface_hub.errors.HfHubHTTPError) as exc:
            raise WeightsMissing(missing_message(spec, f"download from {where} failed: {exc}")) from exc
        log.info("CLIP weights %s/%s from %s", repo_id, name, path)
        commit = Path(path).parent.name if SHA1.match(Path(path).parent.name) else (revision or "main")
        return Path(path), f"hub:{repo_id}/{name}@{commit}"
    if is_offline:
        reason = f"HF_HUB_OFFLINE is set and {repo_id} ({' or '.join(names)}) is not in the cache {cache_dir()}"
    elif isinstance(last, LocalEntryNotFoundError):
        reason = f"{endpoint()} could not be reached and {repo_id} is not in the cache {cache_dir()} ({last})"
    else:
        reason = f"{where} has none of {', '.join(names)}"
    raise WeightsMissing(missing_message(spec, reason)) from last


def _verify(spec, path: Path) -> str:
    """SHA-256 of a cached file, checked against its name in the cache (the hub's ETag)."""
    blob = path.resolve()
    expected = blob.name
    sha256 = file_sha256(blob)
    if SHA256.match(expected):
        ok = sha256 == expected
    elif SHA1.match(expected):
        ok = _git_blob_sha1(blob) == expected
    else:
        ok = True  # not a hub cache entry (a file copied in by hand): nothing to check against
    if not ok:
        for link in (path, blob):
            try:
                os.unlink(link)
            except OSError:
                pass
        raise WeightsCorrupt(
            f"the CLIP weights file {path} for {spec.arch!r} (pretrained {spec.pretrained!r}) is corrupt: its SHA-256 is "
            f"{sha256}, the hub says {expected}. It was removed from the cache; run again to download it again "
            "(if it keeps happening, check HF_ENDPOINT and any proxy in between)."
        )
    return sha256


def missing_message(spec, reason: str) -> str:
    return (
        f"CLIP weights for {spec.arch!r} (pretrained {spec.pretrained!r}) are not available: {reason}. Provide them in one of these ways:\n"
        f"  1. With internet access, unset HF_HUB_OFFLINE: the weights are downloaded once into the Hugging Face cache ({cache_dir()}); "
        "HF_ENDPOINT=https://your-mirror selects a mirror.\n"
        f"  2. Copy the open_clip checkpoint file here and set CLIP_MODEL={spec.arch} CLIP_PRETRAINED=/path/to/open_clip_model.safetensors\n"
        f"  3. Copy a Hugging Face cache that holds them (from a machine with internet: python -c \"import open_clip; "
        f"open_clip.create_model('{spec.arch}', pretrained='{spec.pretrained}')\") to {cache_dir()} (or set HF_HOME).\n"
        "To exercise the pipeline without real weights, select the untrained test model explicitly with "
        "CLIP_MODEL=test-tiny (its labels and similarities are meaningless and are marked as untrained)."
    )
