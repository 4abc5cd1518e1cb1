"""The painted-faces test set (``bench/data/painted_faces.json``, made by hand for bench/face_detect.py)
is whole and consistent with the shared paintings, and the stage's default detector finds the
faces it records in known portraits of the set (real images, real dlib models)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workers.ml import faces as ml

TEST_SET = Path(__file__).resolve().parents[2] / "bench" / "data" / "painted_faces.json"
# Single-sitter portraits of the set: John Philip Kemble, Madame Léon Clapisson, Ismael Mengs, Lucie Bérard.
PORTRAITS = ("16281", "16622", "88372", "16600")


@pytest.fixture(scope="module")
def test_set() -> dict:
    return json.loads(TEST_SET.read_text())


def test_test_set_says_how_it_was_made_and_is_well_formed(test_set):
    assert len(test_set["method"]) > 200 and "by eye" in test_set["method"]
    assert test_set["match_iou"] == 0.4 and "box" in test_set
    images = test_set["images"]
    assert len(images) == 267
    assert sum(len(entry["faces"]) for entry in images.values()) > 300
    assert any(not entry["faces"] for entry in images.values()), "paintings without a face are listed too"
    for key, entry in images.items():
        width, height = entry["size"]
        for box in entry["faces"]:
            x, y, w, h = box
            assert all(isinstance(v, int) for v in box), key
            assert w >= 10 and h >= 10, (key, box)
            assert x >= 0 and y >= 0 and x + w <= width and y + h <= height, (key, box)
        for sitter in entry.get("sitters", []):
            assert sitter["name"] and 0 <= sitter["face"] < len(entry["faces"]), key


def test_every_image_of_the_set_is_a_shared_painting_of_that_size(test_set, aic_dir):
    folder = aic_dir / "images"
    on_disk = {p.stem for p in folder.glob("*.jpg")}
    assert set(test_set["images"]) == on_disk
    for key, entry in test_set["images"].items():
        with Image.open(folder / f"{key}.jpg") as im:
            assert list(im.size) == entry["size"], key


@pytest.mark.parametrize("key", PORTRAITS)
def test_default_detector_finds_the_sitter_in_known_portraits(test_set, aic_dir, key):
    """The stage's default set-up (FACE_DETECTOR, FACE_UPSAMPLE, the 1024 px derivative) finds the
    sitter's face where the test set has it (IoU >= 0.4 after scaling back to original pixels)."""
    conf = ml.face_settings()
    backend = ml.get_backend(detector=conf["detector"], upsample=conf["upsample"])
    with Image.open(aic_dir / "images" / f"{key}.jpg") as im:
        original = im.convert("RGB")
    image = original.copy()
    image.thumbnail((conf["size"], conf["size"]))
    factor = original.size[0] / image.size[0]
    found = [det.scaled(factor).box for det in backend.detect(image)]
    truth = test_set["images"][key]["faces"]
    sitter = truth[test_set["images"][key]["sitters"][0]["face"]]
    assert any(ml.iou(box, sitter) >= test_set["match_iou"] for box in found), (found, sitter)


def test_locate_embeds_a_face_from_its_known_box(test_set, aic_dir):
    """``locate`` (used to embed the test set's hand-checked boxes) gives the same descriptor as
    detecting the face, within a small distance."""
    backend = ml.get_backend(detector="hog", upsample=1)
    with Image.open(aic_dir / "images" / "16281.jpg") as im:
        image = im.convert("RGB")
    detected = max(backend.detect(image), key=lambda d: d.area)
    located = backend.locate(image, [detected.box])
    assert len(located) == 1 and len(located[0].landmarks) == 5 and located[0].box == detected.box
    x, y, w, h = detected.box
    assert all(x - w <= px <= x + 2 * w and y - h <= py <= y + 2 * h for px, py in located[0].landmarks)
    vectors = backend.embed(image, [detected] + located)
    assert vectors.shape == (2, 128) and ml.l2(vectors[0], vectors[1]) < 0.05
    truth = test_set["images"]["16281"]["faces"][0]
    from_truth = backend.embed(image, backend.locate(image, [truth]))
    assert ml.l2(vectors[0], from_truth[0]) < ml.MATCH_THRESHOLD


def _derivative(aic_dir, key):
    with Image.open(aic_dir / "images" / f"{key}.jpg") as im:
        original = im.convert("RGB")
    image = original.copy()
    image.thumbnail((1024, 1024))
    return image, original.size[0] / image.size[0]


def test_mtcnn_mirror_pass_adds_the_mirror_images_faces(test_set, aic_dir):
    """FACE_MTCNN_MIRROR: MTCNN also searches the mirror image and maps its boxes back. Its faces
    are those of the image and of the mirror image (found apart and mapped back), one per face
    (NMS at MIRROR_NMS_IOU), best score first; a face both passes found gets the mean of their
    two boxes. In 100352 the sitter's turned face scores 0.99 or more in the mirror."""
    from workers.ml.mtcnn import MIRROR_NMS_IOU, MtcnnDetector, suppress

    image, factor = _derivative(aic_dir, "100352")
    arr = ml.as_array(image)
    width = arr.shape[1]
    sitter = test_set["images"]["100352"]["faces"][0]

    plain = MtcnnDetector(threshold=0.9, mirror=False)
    own = plain(arr)
    in_mirror = [((width - x - w, y, w, h), s) for (x, y, w, h), s in plain(np.ascontiguousarray(arr[:, ::-1]))]
    both = MtcnnDetector(threshold=0.9, mirror=True)(arr)
    expected = suppress(sorted(own + in_mirror, key=lambda item: -item[1]), MIRROR_NMS_IOU)
    assert len(both) == len(expected) >= 1
    fused = 0
    for (box, score), (lead, lead_score) in zip(both, expected):
        assert abs(score - lead_score) < 1e-3, (both, expected)
        # The other pass's best box of the same face, if it found it.
        other_pass = in_mirror if any(ml.iou(lead, b) > 0.95 and abs(s - lead_score) < 1e-3 for b, s in own) else own
        partner = [b for b, _ in other_pass if ml.iou(b, lead) >= MIRROR_NMS_IOU]
        if partner:
            want = tuple((a + b) / 2 for a, b in zip(lead, partner[0]))
            fused += 1
        else:
            want = lead
        assert all(abs(a - b) <= 1.01 for a, b in zip(box, want)), (box, want, lead, partner)
    assert fused >= 1, "the sitter's face is found in both passes"
    assert any(ml.iou([v * factor for v in box], sitter) >= 0.4 and score >= 0.99 for box, score in both), both
    assert all(ml.iou(a, b) < MIRROR_NMS_IOU for i, (a, _) in enumerate(both) for b, _ in both[i + 1:])


def test_faces_lower_than_the_minimum_height_are_not_kept(test_set, aic_dir, settings):
    """FACE_MIN_HEIGHT (20 px in the derivative): the stage's detector drops boxes lower than
    that and keeps every other one as it was. In 30368, where the test set holds no face, MTCNN
    proposes boxes under 20 px high and nothing larger."""
    assert test_set["images"]["30368"]["faces"] == []
    image, _ = _derivative(aic_dir, "30368")
    assert ml.min_height() == ml.DEFAULT_MIN_HEIGHT == 20
    kept = ml.get_backend().detect(image)  # the stage's default detector
    settings.FACE_MIN_HEIGHT = 0
    every = ml.get_backend()
    assert every.min_height == 0
    found = every.detect(image)
    assert any(d.box[3] < 20 for d in found), [d.box for d in found]
    assert [d.box for d in kept] == [d.box for d in found if d.box[3] >= 20]
    assert all(d.box[3] >= 20 for d in kept)
    settings.FACE_MIN_HEIGHT = -1
    with pytest.raises(ValueError, match="FACE_MIN_HEIGHT"):
        ml.get_backend(detector="hog")


def test_mtcnn_settings_reach_the_stage_backend(settings):
    """FACE_MTCNN_THRESHOLD, FACE_MTCNN_MIRROR and FACE_MTCNN_STAGE_THRESHOLDS configure the stage's
    MTCNN (a backend per setting, not a stale cached one); values outside (0, 1) are refused."""
    settings.FACE_MTCNN_THRESHOLD = 0.97
    settings.FACE_MTCNN_MIRROR = False
    settings.FACE_MTCNN_STAGE_THRESHOLDS = "0.5,0.6,0.5"
    backend = ml.get_backend(detector="mtcnn")
    assert backend._mtcnn.threshold == 0.97 and backend._mtcnn.mirror is False
    assert list(backend._mtcnn._net.thresholds) == [0.5, 0.6, 0.5]
    settings.FACE_MTCNN_THRESHOLD = 0.85
    settings.FACE_MTCNN_MIRROR = True
    settings.FACE_MTCNN_STAGE_THRESHOLDS = "0.4,0.5,0.5"
    default = ml.get_backend(detector="mtcnn")
    assert default is not backend and default._mtcnn.threshold == 0.85 and default._mtcnn.mirror is True
    assert list(default._mtcnn._net.thresholds) == [0.4, 0.5, 0.5]
    settings.FACE_MTCNN_STAGE_THRESHOLDS = "0.4,0.5"
    with pytest.raises(ValueError, match="FACE_MTCNN_STAGE_THRESHOLDS"):
        ml.get_backend(detector="mtcnn")
    settings.FACE_MTCNN_STAGE_THRESHOLDS = "0.4,0.5,1.5"
    with pytest.raises(ValueError, match="FACE_MTCNN_STAGE_THRESHOLDS"):
        ml.get_backend(detector="mtcnn")
    settings.FACE_MTCNN_STAGE_THRESHOLDS = "0.4,0.5,0.5"
    settings.FACE_MTCNN_THRESHOLD = 1.5
    with pytest.raises(ValueError, match="FACE_MTCNN_THRESHOLD"):
        ml.get_backend(detector="mtcnn")
