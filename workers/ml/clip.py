"""open_clip image/text embedder.

One entry point builds any open_clip model from a name and a pretrained tag, a hub reference, a
local weights path, or (explicitly) random weights. Pretrained weights come from
:mod:`workers.ml.weights`: a local file, or the Hugging Face cache, downloaded into it on first use
when the network is allowed (``HF_HUB_OFFLINE``, ``HF_ENDPOINT``), checked against their checksum;
weights that cannot be had raise :class:`WeightsMissing` with the steps to provide them. Random
weights are only used when asked for (``pretrained="random"``, e.g. the ``test-tiny`` config) and
the embedder is then flagged ``untrained``; so is anything the ``test-tiny`` architectures produce,
whatever weights they carry.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from . import weights as weights_source
from .weights import WeightsMissing, is_weights_path  # noqa: F401  (re-exported)

# OpenMP threads that spin while waiting steal the cores that the image-decoding threads need
# (measured: 3-4x slower embedding with decode overlapped). Read when torch first loads, so the
# worker entry point (workers/celery.py) sets it too.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

CONFIG_DIR = Path(__file__).with_name("configs")
RANDOM = "random"
UNTRAINED_SEED = 0  # the seed of "random" weights (see ClipEmbedder)
TEST_ARCHS = ("test-tiny", "test-tiny-b")  # configs in CONFIG_DIR: whatever they produce is untrained


@dataclass(frozen=True)
class ModelSpec:
    arch: str
    pretrained: str  # a tag known to open_clip, a local file path (made absolute), or "random"

    def __post_init__(self):
        if is_weights_path(self.pretrained):
            object.__setattr__(self, "pretrained", os.path.abspath(os.path.expanduser(self.pretrained)))

    @property
    def key(self) -> str:
        """Registry key: ``ARCH/TAG``, or for a local file ``ARCH/FILENAME@HASH`` where HASH is a
        short hash of the absolute path (two files named alike never share a key)."""
        if self.pretrained == RANDOM and self.arch == "test-tiny":
            return "test-tiny"
        if is_weights_path(self.pretrained):
            digest = hashlib.sha256(self.pretrained.encode()).hexdigest()[:8]
            return f"{self.arch}/{Path(self.pretrained).name}@{digest}"
        return f"{self.arch}/{self.pretrained}"

    @property
    def untrained(self) -> bool:
        return self.pretrained == RANDOM or self.arch in TEST_ARCHS


def weights_missing_message(spec: ModelSpec, cause: BaseException | None = None) -> str:
    return weights_source.missing_message(spec, f"{cause.__class__.__name__}: {cause}" if cause else "not found")


_config_lock = threading.Lock()
_configs_added = False


def _add_local_configs() -> None:
    global _configs_added
    with _config_lock:
        if not _configs_added:
            import open_clip

            open_clip.add_model_config(CONFIG_DIR)
            _configs_added = True


def pick_device(requested: str | None = None) -> str:
    import torch

    if requested and requested != "auto":
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


class ClipEmbedder:
    """Embeds PIL images and texts into L2-normalised float32 vectors of one model."""

    def __init__(self, spec: ModelSpec, device: str | None = None):
        import open_clip
        import torch

        _add_local_configs()
        self.spec = spec
        self.device = pick_device(device)
        # The checked weights file (downloaded into the Hugging Face cache when allowed); None for
        # random weights, which are built only when asked for by name.
        self.weights = None if spec.pretrained == RANDOM else weights_source.fetch(spec)
        preprocess_cfg = self.weights.preprocess if self.weights else {}
        try:
            # Random weights come from a fixed seed (without touching the caller's RNG state), so
            # every process (web, workers, tests) builds the same untrained model and its image
            # and text vectors stay comparable.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(UNTRAINED_SEED)
                model, _, preprocess = open_clip.create_model_and_transforms(
                    spec.arch, pretrained=str(self.weights.path) if self.weights else None, device=self.device,
                    # the preprocessing open_clip's table gives the tag, as when it loads a tag itself
                    image_mean=preprocess_cfg.get("mean"), image_std=preprocess_cfg.get("std"),
                    image_interpolation=preprocess_cfg.get("interpolation"),
                    image_resize_mode=preprocess_cfg.get("resize_mode"),
                )
        except RuntimeError as exc:
            if "Unknown model" in str(exc) or "not found in built-ins" in str(exc):
                raise ValueError(f"unknown open_clip model {spec.arch!r}: {exc}") from exc
            raise WeightsMissing(weights_missing_message(spec, exc)) from exc
        except (OSError, ValueError, KeyError) as exc:
            raise WeightsMissing(weights_missing_message(spec, exc)) from exc
        model.eval()
        self.model = model
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(spec.arch)
        self.dim = int(model.text_projection.shape[1] if hasattr(model, "text_projection") and model.text_projection is not None else model.visual.output_dim)
        self._torch = torch
        self._lock = threading.Lock()

    # -- identity ----------------------------------------------------------------------------
    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def untrained(self) -> bool:
        return self.spec.untrained

    @property
    def preprocess_description(self) -> dict:
        """What the image preprocessing does, in plain values (input size, resize mode,
        interpolation, colour mode, normalisation), from open_clip's ``preprocess_cfg``; for models
        without one, read off the transforms. Independent of class names and reprs, so a library
        upgrade that keeps the numbers keeps the description."""
        cfg = dict(getattr(self.model.visual, "preprocess_cfg", None) or {})
        if not cfg:
            cfg = _describe_transforms(self.preprocess)
        described = {}
        for name in ("size", "resize_mode", "interpolation", "mode", "mean", "std", "fill_color"):
            value = cfg.get(name)
            if isinstance(value, (tuple, list)):
                value = [round(float(v), 6) if isinstance(v, float) else v for v in value]
            elif isinstance(value, float):
                value = round(value, 6)
            elif value is not None and not isinstance(value, (int, str, bool)):
                value = str(getattr(value, "value", value))
            described[name] = value
        if isinstance(described["size"], int):
            described["size"] = [described["size"], described["size"]]
        return described

    @property
    def fingerprint(self) -> str:
        """Short hash of :attr:`preprocess_description`: embeddings made with other preprocessing differ."""
        return preprocess_fingerprint(self.preprocess_description)

    # -- embedding ---------------------------------------------------------------------------
    def _autocast(self):
        if self.device.startswith("cuda"):
            dtype = self._torch.bfloat16 if self._torch.cuda.is_bf16_supported() else self._torch.float16
            return self._torch.autocast("cuda", dtype=dtype)
        return nullcontext()

    def _finish(self, features) -> np.ndarray:
        features = features.float()
        features = features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return features.cpu().numpy().astype(np.float32, copy=False)

    # Preprocessing is split in two so that worker threads never run torch ops (each torch op
    # would start its own intra-op threads and oversubscribe the cores the model needs): the PIL
    # part (resize, crop, mode) runs per image in threads and yields uint8 arrays; the tensor part
    # (ToTensor + Normalize) runs once per batch, vectorised. Same numbers as ``self.preprocess``.
    def _split_preprocess(self):
        if not hasattr(self, "_split"):
            steps = list(getattr(self.preprocess, "transforms", []))
            index = next((i for i, t in enumerate(steps) if "ToTensor" in type(t).__name__), None)
            self._split = (steps[:index], steps[index + 1 :]) if index is not None else None
        return self._split

    def prepare_image(self, image) -> np.ndarray | "torch.Tensor":  # noqa: F821
        """The per-image part of preprocessing (thread-safe, no torch ops when the pipeline allows):
        a uint8 HxWxC array, or a finished tensor when the transform cannot be split."""
        split = self._split_preprocess()
        if split is None:
            return self.preprocess(image)
        for step in split[0]:
            image = step(image)
        return np.asarray(image, dtype=np.uint8)

    def batch_from_prepared(self, prepared: Sequence) -> "torch.Tensor":  # noqa: F821
        """Stack :meth:`prepare_image` results into one normalised batch tensor."""
        torch = self._torch
        if prepared and isinstance(prepared[0], torch.Tensor):
            return torch.stack(list(prepared))
        array = np.stack(prepared)
        if array.ndim == 3:  # greyscale: add the channel axis
            array = array[..., None]
        batch = torch.from_numpy(array).permute(0, 3, 1, 2).float().div_(255.0)
        for step in self._split_preprocess()[1]:
            batch = step(batch)
        return batch.contiguous()

    # -- decoding and preprocessing on the GPU --------------------------------------------------
    # On CUDA, CPU threads cannot keep up with the model (a few thousand small JPEGs a second need
    # the GIL between PIL calls). There the JPEG bytes are decoded by nvJPEG in one call per batch
    # and resized, cropped and normalised with tensor ops: the same steps as ``self.preprocess``
    # (shortest side to the input size with antialiased bicubic, PIL's kernel; centre crop;
    # rounding to 8 bits; mean/std), equal to the CPU path within a grey level.
    @property
    def gpu_decode(self) -> bool:
        """Whether :meth:`batch_from_jpegs` can be used (CUDA, and a preprocessing it reproduces)."""
        if not hasattr(self, "_gpu_decode"):
            from django.conf import settings

            cfg = self.preprocess_description
            self._gpu_decode = bool(
                self.device.startswith("cuda")
                and getattr(settings, "EMBED_GPU_DECODE", True)
                and cfg.get("resize_mode") in (None, "shortest")
                and cfg.get("interpolation") in ("bicubic", "bilinear")
                and cfg.get("mean") and cfg.get("std")
                and bool(cfg.get("size")) and cfg["size"][0] == cfg["size"][1]
            )
        return self._gpu_decode

    def batch_from_jpegs(self, datas: Sequence[bytes]) -> tuple["torch.Tensor | None", list[int], list[tuple[int, str]]]:  # noqa: F821
        """Decode JPEG bytes on the GPU and preprocess them into one normalised batch. Returns the
        batch, the positions of ``datas`` it holds, and ``(position, reason)`` for those that
        could not be decoded (the rest of the batch is kept)."""
        torch = self._torch
        from torchvision.io import ImageReadMode, decode_jpeg

        encoded = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
        try:
            images = decode_jpeg(encoded, mode=ImageReadMode.RGB, device=self.device)
        except RuntimeError:  # one bad file fails the batched call: decode one by one
            images = []
            for data in encoded:
                try:
                    images.append(decode_jpeg(data, mode=ImageReadMode.RGB, device=self.device))
                except RuntimeError as exc:
                    images.append(exc)
        cfg = self.preprocess_description
        height, width = cfg["size"]
        mean = torch.tensor(cfg["mean"], device=self.device).view(3, 1, 1)
        std = torch.tensor(cfg["std"], device=self.device).view(3, 1, 1)
        out, kept, failed = [], [], []
        with torch.inference_mode():
            for position, image in enumerate(images):
                if isinstance(image, Exception):
                    failed.append((position, f"not a decodable JPEG ({str(image)[:200]})"))
                    continue
                out.append(self._gpu_resize_crop(image, height, width, cfg["interpolation"]))
                kept.append(position)
            if not out:
                return None, kept, failed
            batch = torch.stack(out).round_().clamp_(0, 255).div_(255.0)
            batch = (batch - mean) / std
        return batch, kept, failed

    def _gpu_resize_crop(self, image, height: int, width: int, interpolation: str):
        """torchvision ``Resize(min(height, width))`` + ``CenterCrop((height, width))`` on a CHW
        uint8 tensor, as floats in 0..255."""
        torch = self._torch
        _, h, w = image.shape
        short = min(height, width)
        if h <= w:
            new_h, new_w = short, int(short * w / h)
        else:
            new_h, new_w = int(short * h / w), short
        x = image[None].float()
        if (new_h, new_w) != (h, w):
            x = torch.nn.functional.interpolate(x, size=(new_h, new_w), mode=interpolation, align_corners=False, antialias=True)
        top, left = int(round((new_h - height) / 2.0)), int(round((new_w - width) / 2.0))
        return x[0, :, top : top + height, left : left + width]

    def preprocess_images(self, images: Sequence) -> "torch.Tensor":  # noqa: F821
        """Preprocess PIL images into one batch tensor."""
        return self.batch_from_prepared([self.prepare_image(im) for im in images])

    def embed_batch(self, batch) -> np.ndarray:
        """Embed an already preprocessed batch tensor."""
        with self._lock, self._torch.inference_mode(), self._autocast():
            return self._finish(self.model.encode_image(batch.to(self.device, non_blocking=True)))

    def embed_images(self, images: Sequence) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.embed_batch(self.preprocess_images(images))

    # -- text --------------------------------------------------------------------------------
    # open_clip pads every text to the context length (77 tokens) and runs the whole padded
    # sequence. CLIP's text tower is causal and is read at the end-of-text token, so the outputs
    # there do not depend on the padding after it: a batch cut to its longest text gives the same
    # vectors (tested), in a fraction of the time for short prompts. Texts are sorted by length
    # and embedded in groups of TEXT_GROUP so that each group is cut as short as it can be.
    TEXT_GROUP = 128

    def _text_lengths(self, tokens) -> "torch.Tensor | None":  # noqa: F821
        """Tokens up to and including each text's end-of-text token, or None when this model's text
        tower cannot be cut (not a causal open_clip CLIP text tower read at one token)."""
        import open_clip

        model = self.model
        if not isinstance(model, open_clip.CLIP) or getattr(model, "attn_mask", None) is None:
            return None
        if tokens.shape[1] != model.positional_embedding.shape[0]:
            return None
        if model.text_pool_type == "argmax":
            return tokens.argmax(dim=-1) + 1
        if model.text_pool_type == "eos" and getattr(model, "text_eos_id", None) is not None:
            return (tokens == model.text_eos_id).int().argmax(dim=-1) + 1
        return None

    def _encode_text_cut(self, tokens):
        """``model.encode_text`` on tokens cut to length L (positions and causal mask cut alike)."""
        from open_clip.transformer import text_global_pool

        model = self.model
        length = tokens.shape[1]
        cast_dtype = model.transformer.get_cast_dtype()
        x = model.token_embedding(tokens).to(cast_dtype)
        x = x + model.positional_embedding[:length].to(cast_dtype)
        x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
        x = model.ln_final(x)
        x = text_global_pool(x, tokens, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
        if model.text_projection is not None:
            x = model.text_projection(x) if isinstance(model.text_projection, self._torch.nn.Linear) else x @ model.text_projection
        return x

    def embed_texts(self, texts: Sequence[str], *, cut: bool = True) -> np.ndarray:
        """L2-normalised text embeddings. ``cut=False`` runs open_clip's padded path (the reference)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        tokens = self.tokenizer(list(texts))
        lengths = self._text_lengths(tokens) if cut else None
        with self._lock, self._torch.inference_mode(), self._autocast():
            if lengths is None:
                return self._finish(self.model.encode_text(tokens.to(self.device)))
            out = np.empty((len(texts), self.dim), dtype=np.float32)
            order = self._torch.argsort(lengths)
            for start in range(0, len(order), self.TEXT_GROUP):
                group = order[start : start + self.TEXT_GROUP]
                length = int(lengths[group].max())
                cut_tokens = tokens[group, :length].to(self.device)
                out[group.numpy()] = self._finish(self._encode_text_cut(cut_tokens))
            return out


def preprocess_fingerprint(description: dict) -> str:
    text = json.dumps(description, sort_keys=True, default=str)
    return "pp1-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _describe_transforms(preprocess) -> dict:
    """Preprocessing values read off torchvision transforms (models without ``preprocess_cfg``)."""
    described: dict = {}
    for step in getattr(preprocess, "transforms", []):
        for name in ("size", "interpolation", "mean", "std", "mode"):
            value = getattr(step, name, None)
            if value is not None and name not in described:
                described[name] = value
        if "Crop" in type(step).__name__:
            described.setdefault("resize_mode", "shortest")
    return described
