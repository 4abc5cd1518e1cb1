"""dlib's face recognition ResNet through PyTorch (workers/ml/dlib_resnet.py) gives dlib's own
descriptors for real faces, so the faces stored before and after the switch stay comparable."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from workers.ml.dlib_resnet import DlibResNet, UnexpectedNetwork, read_layers
from workers.ml.faces import MODEL_FILES, DlibFaceBackend, models_dir

PHOTOS = ["img1.jpg", "img2.jpg", "img12.jpg", "img54.jpg", "couple.jpg"]


def test_descriptors_equal_dlibs_own_on_real_faces(faces_dir):
    ours = DlibFaceBackend("hog", 1)
    assert ours._net is not None
    dlibs = DlibFaceBackend("hog", 1)
    dlibs._net = None  # dlib's compute_face_descriptor
    compared = 0
    for name in PHOTOS:
        with Image.open(faces_dir / "photos-deepface" / name) as im:
            photo = ImageOps.exif_transpose(im).convert("RGB")
        photo.thumbnail((800, 800))
        found = ours.detect(photo)
        assert found, name
        a, b = ours.embed(photo, found), dlibs.embed(photo, found)
        assert a.shape == b.shape == (len(found), 128) and a.dtype == np.float32
        assert np.abs(a - b).max() < 1e-4, (name, np.abs(a - b).max())
        compared += len(found)
    assert compared >= len(PHOTOS) + 1  # the couple: two faces in one batch


def test_the_network_is_read_layer_by_layer():
    layers = read_layers(models_dir() / MODEL_FILES["recognition"])
    kinds = [layer["kind"] for layer in layers]
    assert kinds[:4] == ["con", "affine", "relu", "max_pool"] and kinds[-2:] == ["avg_pool", "fc"]
    assert layers[0]["weight"].shape == (32, 3, 7, 7) and layers[-1]["weight"].shape == (256, 128)


def test_another_file_is_refused(tmp_path):
    with pytest.raises(UnexpectedNetwork):
        DlibResNet(models_dir() / MODEL_FILES["cnn"])  # the face detector, another network
    junk = tmp_path / "junk.dat"
    junk.write_bytes(b"\x01\x02" * 1000)
    with pytest.raises(UnexpectedNetwork):
        DlibResNet(junk)
