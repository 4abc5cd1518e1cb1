"""dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) run with PyTorch.

The dlib wheel this project installs (``dlib-bin``) is built without BLAS, so its CPU network
computes convolutions with its own loops: ~100 ms of CPU per face on the development machine, the
bulk of a doppelganger look-up. This module reads the same weights from the same ``.dat`` file
and runs the same network through PyTorch's convolutions (oneDNN): the same 128-d descriptors (to
float rounding, checked against dlib in tests/workers/test_dlib_resnet.py) at a fraction of the
CPU time. dlib still finds the faces, their landmarks and the aligned 150 px chips.

The file is dlib's serialisation of the network defined in dlib's ``dnn_face_recognition_ex.cpp``
(``anet_type``): layers are written from the input up, each as its version string and fields;
tensors as their shape and raw little-endian float32s. The reader walks the layer strings in order
(29 ``con_``, 29 ``affine_``, 29 ``relu_``, 5 ``avg_pool_``, 1 ``max_pool_``, 14 ``add_prev_``,
one ``fc_``) and refuses anything else, so a different network in that file is a clear error,
never wrong descriptors.

The architecture (dlib's names): a 7x7/2 convolution with 32 filters, affine, relu, 3x3/2 max
pool; residual blocks (two 3x3 convolutions, each followed by affine, relu between them; the input
added back, avg-pooled 2x2/2 when the block strides by 2; dlib's ``add_prev`` zero-fills the
smaller tensor's missing channels and rows); 3 blocks of 32, 4 of 64, 3 of 128, 3 of 256 filters
and a last 256 one, global average pool, a 256x128 linear layer without bias.
"""
from __future__ import annotations

import re
import threading
from pathlib import Path

import numpy as np

# input_rgb_image_sized<150>: pixels minus these channel means, divided by 256 (dlib's input layer).
MEAN_RGB = (122.782, 117.001, 104.298)
CHIP_SIZE = 150
CHIP_PADDING = 0.25  # dlib's compute_face_descriptor default
_LAYER = re.compile(rb"\x01(\x05con_[4-6]|\x07affine_|\x08affine_2|\x05relu_|\x06relu_2|\x0amax_pool_2|\x0aavg_pool_2|\x09add_prev_|\x04fc_[23])")


class UnexpectedNetwork(ValueError):
    """The ``.dat`` file does not hold the network this module implements."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    size = data[pos]
    negative, size = size & 0x80, size & 0x0F
    value = int.from_bytes(data[pos + 1:pos + 1 + size], "little")
    return (-value if negative else value), pos + 1 + size


def _tensor(data: bytes, pos: int) -> tuple[np.ndarray, int]:
    version, pos = _varint(data, pos)
    if version != 2:
        raise UnexpectedNetwork(f"tensor serialisation version {version}, expected 2")
    shape = []
    for _ in range(4):
        n, pos = _varint(data, pos)
        shape.append(n)
    count = int(np.prod(shape))
    return np.frombuffer(data, dtype="<f4", count=count, offset=pos).astype(np.float32), pos + 4 * count


def read_layers(path: Path) -> list[dict]:
    """The network's layers from the input up: ``{"kind": ..., ...weights and settings}``."""
    data = Path(path).read_bytes()
    layers = []
    for match in _LAYER.finditer(data):
        name, pos = match.group(1)[1:].decode(), match.end()
        if name.startswith("con_"):
            params, pos = _tensor(data, pos)
            filters, pos = _varint(data, pos)
            fields = []
            for _ in range(6):
                v, pos = _varint(data, pos)
                fields.append(v)
            nr, nc, sy, sx, py, px = fields
            channels = (params.size - filters) // (filters * nr * nc)
            if channels * filters * nr * nc + filters != params.size:
                raise UnexpectedNetwork(f"convolution of {params.size} parameters does not fit {filters} {nr}x{nc} filters")
            weight = params[:filters * channels * nr * nc].reshape(filters, channels, nr, nc)
            layers.append({"kind": "con", "weight": weight, "bias": params[-filters:], "stride": (sy, sx), "padding": (py, px)})
        elif name.startswith("affine_"):
            params, pos = _tensor(data, pos)
            half = params.size // 2
            layers.append({"kind": "affine", "gamma": params[:half], "beta": params[half:]})
        elif name.startswith("relu_"):
            layers.append({"kind": "relu"})
        elif name in ("max_pool_2", "avg_pool_2"):
            fields = []
            for _ in range(6):
                v, pos = _varint(data, pos)
                fields.append(v)
            layers.append({"kind": name[:3] + "_pool", "size": (fields[0], fields[1]), "stride": (fields[2], fields[3]),
                           "padding": (fields[4], fields[5])})
        elif name == "add_prev_":
            layers.append({"kind": "add_prev"})
        elif name.startswith("fc_"):
            outputs, pos = _varint(data, pos)
            inputs, pos = _varint(data, pos)
            params, pos = _tensor(data, pos)
            if params.size != inputs * outputs:
                raise UnexpectedNetwork("the last layer is not a fully connected layer without bias")
            layers.append({"kind": "fc", "weight": params.reshape(inputs, outputs)})
    return layers


def _check(layers: list[dict]) -> None:
    kinds = [layer["kind"] for layer in layers]
    expected = {"con": 29, "affine": 29, "relu": 29, "max_pool": 1, "avg_pool": 5, "add_prev": 14, "fc": 1}
    got = {k: kinds.count(k) for k in expected}
    if got != expected or len(kinds) != sum(expected.values()):
        raise UnexpectedNetwork(f"layers {got}, expected dlib's face recognition ResNet {expected}")


class DlibResNet:
    """The network as a plain function of a batch of 150x150 RGB chips (uint8, N x 150 x 150 x 3)."""

    def __init__(self, path: Path):
        import torch

        layers = read_layers(path)
        _check(layers)
        self._torch = torch
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
        stem_con, stem_affine = layers[0], layers[1]
        if [layer["kind"] for layer in layers[:4]] != ["con", "affine", "relu", "max_pool"]:
            raise UnexpectedNetwork("the network does not start with con, affine, relu, max_pool")
        self.stem = (t(stem_con["weight"]), t(stem_con["bias"]), stem_con["stride"], stem_con["padding"],
                     t(stem_affine["gamma"]), t(stem_affine["beta"]), layers[3])
        self.blocks = []
        i = 4
        while layers[i]["kind"] == "con":
            seq = [layer["kind"] for layer in layers[i:i + 8]]
            c1, a1, c2, a2 = layers[i], layers[i + 1], layers[i + 3], layers[i + 4]
            if seq[:5] != ["con", "affine", "relu", "con", "affine"]:
                raise UnexpectedNetwork(f"unexpected residual block {seq}")
            down = seq[5] == "avg_pool"
            pool = layers[i + 5] if down else None
            end = i + (8 if down else 7)
            if [layer["kind"] for layer in layers[end - 2:end]] != ["add_prev", "relu"]:
                raise UnexpectedNetwork(f"unexpected end of residual block {seq}")
            self.blocks.append((t(c1["weight"]), t(c1["bias"]), c1["stride"], c1["padding"], t(a1["gamma"]), t(a1["beta"]),
                                t(c2["weight"]), t(c2["bias"]), c2["stride"], c2["padding"], t(a2["gamma"]), t(a2["beta"]), pool))
            i = end
        if [layer["kind"] for layer in layers[i:]] != ["avg_pool", "fc"] or layers[i]["size"] != (0, 0):
            raise UnexpectedNetwork("the network does not end with a global average pool and the 128-d layer")
        self.fc = t(layers[i + 1]["weight"])
        self.mean = torch.tensor(MEAN_RGB, dtype=torch.float32).view(1, 3, 1, 1)
        self._lock = threading.Lock()

    @staticmethod
    def _add_prev(F, a, b):
        """dlib's add_prev: the sum over the larger of both shapes, missing values counted as zero."""
        k, h, w = max(a.shape[1], b.shape[1]), max(a.shape[2], b.shape[2]), max(a.shape[3], b.shape[3])
        pad = lambda x: F.pad(x, (0, w - x.shape[3], 0, h - x.shape[2], 0, k - x.shape[1]))  # noqa: E731
        return pad(a) + pad(b)

    def __call__(self, chips: np.ndarray) -> np.ndarray:
        """Descriptors (N x 128, float32) of ``chips``. Runs on one thread: a face is small work,
        and a web process serves several look-ups at once in its own threads (with the default
        thread pool, two threads on a busy 2-core machine spent 13x the CPU in OpenMP's waits)."""
        torch = self._torch
        with self._lock:
            threads = torch.get_num_threads()
            if threads != 1:
                torch.set_num_threads(1)
            try:
                return self._forward(chips)
            finally:
                if threads != 1:
                    torch.set_num_threads(threads)

    def _forward(self, chips: np.ndarray) -> np.ndarray:
        torch = self._torch
        F = torch.nn.functional
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(chips)).permute(0, 3, 1, 2).float()
            x = (x - self.mean) / 256.0
            w, b, stride, padding, gamma, beta, pool = self.stem
            x = F.conv2d(x, w, b, stride=stride, padding=padding)
            x = F.relu(x * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1))
            x = F.max_pool2d(x, pool["size"], pool["stride"], pool["padding"])
            for w1, b1, s1, p1, g1, be1, w2, b2, s2, p2, g2, be2, pool in self.blocks:
                y = F.conv2d(x, w1, b1, stride=s1, padding=p1)
                y = F.relu(y * g1.view(1, -1, 1, 1) + be1.view(1, -1, 1, 1))
                y = F.conv2d(y, w2, b2, stride=s2, padding=p2)
                y = y * g2.view(1, -1, 1, 1) + be2.view(1, -1, 1, 1)
                skip = F.avg_pool2d(x, pool["size"], pool["stride"], pool["padding"]) if pool else x
                x = F.relu(self._add_prev(F, y, skip))
            x = x.mean(dim=(2, 3))
            return (x @ self.fc).numpy().astype(np.float32)
