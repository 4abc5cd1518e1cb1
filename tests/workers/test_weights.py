"""Real weights on first run: CLIP weights are downloaded the ordinary way (huggingface_hub, into
its cache, with a progress bar), checked against the hub's checksum, read from the cache after,
and refused with a clear message when they cannot be had. The hub here is a small
HuggingFace-compatible HTTP server on 127.0.0.1 (``HF_ENDPOINT``) serving the routes
``hf_hub_download`` uses (HEAD and GET ``/{repo}/resolve/{revision}/{file}``); the model is the
tiny ``test-tiny`` architecture with weights of its own (untrained, and marked so)."""
from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from workers.ml import weights
from workers.ml.clip import ClipEmbedder, ModelSpec, WeightsMissing, _add_local_configs

COMMIT = "0123456789abcdef0123456789abcdef01234567"
TINY_REPO = "museum-test/test-tiny-clip"


class Hub:
    """Files by ``repo/filename``; ``corrupt`` names files served with other bytes than announced."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.corrupt: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _file(self):
                head, sep, tail = self.path.partition("/resolve/")
                if not sep:
                    return None, None
                revision, _, filename = tail.partition("/")
                key = f"{head.strip('/')}/{filename}"
                hub.requests.append((self.command, key))
                return key, hub.files.get(key)

            def _headers(self, key, data):
                if data is None:
                    self.send_response(404)
                    self.send_header("X-Repo-Commit", COMMIT)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return False
                self.send_response(200)
                self.send_header("X-Repo-Commit", COMMIT)
                # Large (LFS) files: the ETag is the content's SHA-256.
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                return True

            def do_HEAD(self):
                key, data = self._file()
                self._headers(key, data)

            def do_GET(self):
                key, data = self._file()
                if self._headers(key, data):
                    if key in hub.corrupt:
                        data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
                    self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def gets(self, key: str) -> int:
        return sum(1 for method, k in self.requests if method == "GET" and k == key)


@pytest.fixture(scope="module")
def hub():
    server = Hub()
    yield server
    server.server.shutdown()


@pytest.fixture(scope="module")
def tiny_weights():
    """The test-tiny architecture's weights from another seed than its "random" ones, as safetensors."""
    import open_clip
    import torch
    from safetensors.torch import save

    _add_local_configs()
    torch.manual_seed(1234)
    state = open_clip.create_model("test-tiny").state_dict()
    return save({k: v.contiguous() for k, v in state.items()}), state


@pytest.fixture
def online(hub, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    hub.requests.clear()
    return tmp_path / "hf-cache"


def test_first_run_downloads_with_progress_and_caches_then_reads_the_cache(hub, online, tiny_weights, monkeypatch, capfd):
    data, state = tiny_weights
    key = f"{TINY_REPO}/open_clip_model.safetensors"
    hub.files[key] = data
    spec = ModelSpec("test-tiny", f"hf-hub:{TINY_REPO}")

    embedder = ClipEmbedder(spec, device="cpu")
    assert hub.gets(key) == 1
    assert "open_clip_model.safetensors" in capfd.readouterr().err  # huggingface_hub's progress bar
    assert embedder.weights.sha256 == hashlib.sha256(data).hexdigest()
    assert embedder.weights.source == f"hub:{key}@{COMMIT}"
    assert str(embedder.weights.path).startswith(str(online))
    # The served weights were loaded, not the architecture's random ones.
    loaded = embedder.model.state_dict()
    assert all(np.array_equal(loaded[k].numpy(), v.numpy()) for k, v in state.items())
    random_model = ClipEmbedder(ModelSpec("test-tiny", "random"), device="cpu")
    assert not np.array_equal(loaded["visual.proj"].numpy(), random_model.model.state_dict()["visual.proj"].numpy())
    assert embedder.untrained  # the test architecture: whatever it produces is marked untrained

    # Second run, online: nothing downloaded again (at most a HEAD for the newest revision).
    again = weights.fetch(spec)
    assert again.path == embedder.weights.path and hub.gets(key) == 1
    # Offline with the cache: no request at all.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.requests.clear()
    assert weights.fetch(spec).sha256 == embedder.weights.sha256 and hub.requests == []


def test_an_open_clip_tag_downloads_the_file_open_clip_names_for_it(hub, online):
    key = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K/open_clip_model.safetensors"
    hub.files[key] = b"stand-in for the 600 MB checkpoint"
    fetched = weights.fetch(ModelSpec("ViT-B-32", "laion2b_s34b_b79k"))
    assert fetched.path.read_bytes() == hub.files[key] and hub.gets(key) == 1
    assert fetched.preprocess["interpolation"] == "bicubic" and fetched.preprocess["resize_mode"] == "shortest"


def test_a_corrupt_download_is_refused_and_removed(hub, online, tiny_weights):
    key = "museum-test/corrupt/open_clip_model.safetensors"
    hub.files[key] = tiny_weights[0]
    hub.corrupt.add(key)
    spec = ModelSpec("test-tiny", "hf-hub:museum-test/corrupt")
    with pytest.raises(weights.WeightsCorrupt, match="is corrupt: its SHA-256 is"):
        ClipEmbedder(spec, device="cpu")
    assert not list(online.rglob("*.safetensors")), "the corrupt file stayed in the cache"
    hub.corrupt.discard(key)  # fixed upstream: the next run downloads it again and succeeds
    assert weights.fetch(spec).sha256 == hashlib.sha256(tiny_weights[0]).hexdigest()
    assert hub.gets(key) == 2


def test_offline_without_the_weights_says_what_to_do(hub, online, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsMissing) as info:
        ClipEmbedder(ModelSpec("ViT-B-32", "laion2b_s34b_b79k"), device="cpu")
    message = str(info.value)
    assert "HF_HUB_OFFLINE is set" in message and "laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in message
    assert "unset HF_HUB_OFFLINE" in message and "CLIP_PRETRAINED=/path/to/" in message and "CLIP_MODEL=test-tiny" in message
    assert hub.requests == []  # offline means no request


def test_an_unreachable_hub_and_an_absent_repository_are_clear_errors(hub, online, monkeypatch):
    with pytest.raises(WeightsMissing, match="has none of open_clip_model.safetensors, open_clip_pytorch_model.bin"):
        weights.fetch(ModelSpec("test-tiny", "hf-hub:museum-test/absent"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    # The hub client retries an unreachable server with back-off (about 20 s): the retries still
    # happen here, the waits between them are skipped.
    import huggingface_hub.utils._http as hub_http

    monkeypatch.setattr(hub_http.time, "sleep", lambda seconds: None)
    with pytest.raises(WeightsMissing, match="could not be reached"):
        weights.fetch(ModelSpec("test-tiny", "hf-hub:museum-test/elsewhere"))


def test_a_local_weights_file_is_hashed_and_a_missing_one_refused(tmp_path, tiny_weights):
    path = tmp_path / "tiny.safetensors"
    path.write_bytes(tiny_weights[0])
    fetched = weights.fetch(ModelSpec("test-tiny", str(path)))
    assert (fetched.path, fetched.source, fetched.sha256) == (path, "file", hashlib.sha256(tiny_weights[0]).hexdigest())
    with pytest.raises(WeightsMissing, match="no file at"):
        weights.fetch(ModelSpec("test-tiny", str(tmp_path / "absent.safetensors")))


@pytest.mark.django_db
def test_the_registry_row_records_the_weights_identity_and_refuses_other_weights_under_its_key(tmp_path, tiny_weights):
    import torch
    from safetensors.torch import save

    from workers.ml.registry import register

    path = tmp_path / "tiny.safetensors"
    path.write_bytes(tiny_weights[0])
    row = register(ClipEmbedder(ModelSpec("test-tiny", str(path)), device="cpu"))
    row.refresh_from_db()
    assert (row.weights_sha256, row.weights_source) == (hashlib.sha256(tiny_weights[0]).hexdigest(), "file")
    assert row.untrained

    # The same file name with other weights: its vectors would not be comparable with the row's.
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in tiny_weights[1].items()}
    path.write_bytes(save({k: v.contiguous() for k, v in state.items()}))
    with pytest.raises(WeightsMissing, match="are not the ones its vectors were made with"):
        register(ClipEmbedder(ModelSpec("test-tiny", str(path)), device="cpu"))
