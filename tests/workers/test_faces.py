"""The face pipeline on real data: dlib models (found without importing face_recognition_models),
the faces stage writing Face rows in original-image pixels, idempotent re-runs that keep curators'
"not a face" marks, per-item errors, and the stage driven through the job machinery."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from PIL import Image, ImageOps

from archive import vectors
from archive.models import Artwork, Face, Job
from archive.models.faces import FaceScan
from tests.explorer.test_doppelganger_support import AIC_LANDSCAPE, add_artwork, deepface_dir
from workers import faces as stage
from workers.ml import faces as ml

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def backend():
    return ml.get_backend()


def photo(shared_data, name) -> Image.Image:
    with Image.open(deepface_dir(shared_data) / name) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def test_model_files_found_without_importing_the_package():
    sys.modules.pop("face_recognition_models", None)
    folder = ml.models_dir()
    assert (folder / "dlib_face_recognition_resnet_model_v1.dat").is_file()
    assert (folder / "mmod_human_face_detector.dat").is_file()
    assert "face_recognition_models" not in sys.modules


def test_models_dir_setting_that_lacks_files_is_a_clear_error(settings, tmp_path):
    settings.FACE_MODELS_DIR = str(tmp_path)
    with pytest.raises(ml.FaceModelsMissing, match="shape_predictor_5_face_landmarks.dat"):
        ml.models_dir()


def test_same_person_is_near_and_others_far(shared_data, backend):
    vecs = {}
    for name in ("img1.jpg", "img2.jpg", "img12.jpg"):  # person01, person01, person02
        found = ml.analyse(backend, photo(shared_data, name), max_side=800, upsample=0)
        assert len(found.detections) == 1, name
        det = found.detections[0]
        assert len(det.landmarks) == 5 and det.score > 0
        x, y, w, h = det.box
        assert all(x <= px <= x + w and y <= py <= y + h for px, py in det.landmarks)
        assert found.vectors.shape == (1, 128) and found.vectors.dtype == np.float32
        vecs[name] = found.vectors[0]
    same = ml.l2(vecs["img1.jpg"], vecs["img2.jpg"])
    other = ml.l2(vecs["img1.jpg"], vecs["img12.jpg"])
    assert same < ml.MATCH_THRESHOLD < other


def test_cnn_detector_is_selectable(shared_data):
    cnn = ml.get_backend(detector="cnn", upsample=0)
    assert cnn.detector == "cnn"
    small = photo(shared_data, "img1.jpg")
    small.thumbnail((320, 320))
    found = cnn.detect(small)
    assert len(found) == 1 and len(found[0].landmarks) == 5


def test_mtcnn_detector_boxes_carry_dlib_landmarks_and_descriptors(shared_data, aic_dir):
    """MTCNN (facenet-pytorch) finds the faces; dlib's 5 landmarks fall inside its boxes and the
    descriptors cut from them tell people apart and stay near those cut from HOG's box."""
    mtcnn = ml.get_backend(detector="mtcnn")
    assert mtcnn.detector == "mtcnn" and mtcnn.model_id == ml.MODEL_ID
    vecs = {}
    for name in ("img1.jpg", "img2.jpg", "img12.jpg"):  # person01, person01, person02
        found = ml.analyse(mtcnn, photo(shared_data, name), max_side=800)
        assert len(found.detections) == 1, name
        det = found.detections[0]
        x, y, w, h = det.box
        assert len(det.landmarks) == 5 and ml.mtcnn_settings()["threshold"] <= det.score <= 1.0
        assert all(x <= px <= x + w and y <= py <= y + h for px, py in det.landmarks)
        vecs[name] = found.vectors[0]
    assert ml.l2(vecs["img1.jpg"], vecs["img2.jpg"]) < ml.MATCH_THRESHOLD < ml.l2(vecs["img1.jpg"], vecs["img12.jpg"])
    # The same painted face (John Philip Kemble) boxed by both detectors: one descriptor, near enough.
    hog = ml.get_backend(detector="hog", upsample=1)
    with Image.open(aic_dir / "images" / "16281.jpg") as im:
        painting = im.convert("RGB")
    by_hog = max(hog.detect(painting), key=lambda d: d.area)
    by_mtcnn = max(mtcnn.detect(painting), key=lambda d: ml.iou(d.box, by_hog.box))
    assert ml.iou(by_hog.box, by_mtcnn.box) >= 0.5
    both = mtcnn.embed(painting, [by_hog, by_mtcnn])
    assert ml.l2(both[0], both[1]) < 0.3


def test_similarity_percent_mapping():
    assert ml.similarity_percent(0.0) == 100
    assert ml.similarity_percent(0.6) == 50
    assert ml.similarity_percent(1.2) == 0 and ml.similarity_percent(2.0) == 0


def test_stage_stores_faces_in_original_pixels(shared_data, backend):
    artwork = add_artwork(deepface_dir(shared_data) / "img1.jpg", source="t", source_id="img1", title="p1")
    result = stage.process([artwork.pk], {})
    assert result.done == [artwork.pk] and not result.errors
    faces = list(Face.objects.filter(artwork=artwork, model=ml.MODEL_ID))
    assert len(faces) == 1
    face = faces[0]
    # The same face found on the full-size original: the stored box is in those pixels.
    full = ml.analyse(backend, photo(shared_data, "img1.jpg"), max_side=None, upsample=0)
    assert (artwork.width, artwork.height) == full.image.size == (1382, 1868) and ml.iou((face.x, face.y, face.w, face.h), full.detections[0].box) > 0.7
    assert len(face.landmarks) == 5 and all(face.x <= px <= face.x + face.w for px, _ in face.landmarks)
    assert len(vectors.from_value(face.vector)) == 128
    assert ml.l2(vectors.from_value(face.vector), full.vectors[0]) < 0.2
    crop = Path(settings.MEDIA_ROOT) / face.crop
    assert face.crop.startswith("faces/") and crop.is_file()
    with Image.open(crop) as im:
        assert im.size == (stage.CROP_SIZE, stage.CROP_SIZE)
    scan = FaceScan.objects.get(artwork=artwork, model=ml.MODEL_ID)
    assert scan.faces == 1 and scan.derivative_size == ml.DEFAULT_DERIVATIVE_SIZE
    assert 0 < face.box_percent["left"] < 100 and face.crop_url.startswith(settings.MEDIA_URL)


def test_rerun_replaces_faces_and_keeps_not_a_face(shared_data):
    artwork = add_artwork(deepface_dir(shared_data) / "couple.jpg", source="t", source_id="couple", title="couple")
    stage.process([artwork.pk], {})
    first = list(Face.objects.filter(artwork=artwork).order_by("x"))
    assert len(first) >= 2
    rejected = first[0]
    Face.objects.filter(pk=rejected.pk).update(not_a_face=True)
    for _ in range(2):
        assert stage.process([artwork.pk], {}).done == [artwork.pk]
        again = list(Face.objects.filter(artwork=artwork).order_by("x"))
        assert len(again) == len(first)  # replaced, never duplicated
        marked = [f for f in again if f.not_a_face]
        assert len(marked) == 1 and ml.iou((marked[0].x, marked[0].y, marked[0].w, marked[0].h),
                                           (rejected.x, rejected.y, rejected.w, rejected.h)) > 0.9
    # Rejected faces are never returned by the kNN query the doppelganger page uses.
    rows = vectors.nearest(vectors.FACES, ml.MODEL_ID, vectors.from_value(marked[0].vector), dim=128, metric="l2",
                           limit=10, where="not_a_face = false")
    assert marked[0].pk not in [r[0] for r in rows]
    # Mode reset forgets faces but keeps the curator's mark, which re-applies on the next run.
    stage.reset({})
    assert list(Face.objects.filter(artwork=artwork).values_list("not_a_face", flat=True)) == [True]
    stage.process([artwork.pk], {})
    assert Face.objects.filter(artwork=artwork).count() == len(first)
    assert Face.objects.filter(artwork=artwork, not_a_face=True).count() == 1


def test_faceless_painting_is_recorded_as_searched(aic_dir):
    art = add_artwork(aic_dir / "images" / f"{AIC_LANDSCAPE}.jpg", source="faces-aic", source_id=AIC_LANDSCAPE, title="landscape")
    assert stage.process([art.pk], {}).done == [art.pk]
    assert not Face.objects.filter(artwork=art).exists()
    assert FaceScan.objects.get(artwork=art).faces == 0
    assert art.pk in set(stage.completed({"model": ml.MODEL_ID}))


def test_bad_items_are_errors_and_do_not_stop_the_batch(shared_data):
    good = add_artwork(deepface_dir(shared_data) / "img2.jpg", source="t", source_id="img2", title="p1")
    no_image = Artwork.objects.create(source="t", source_id="meta-only", title="no image")
    lost = Artwork.objects.create(source="t", source_id="lost", title="lost", sha256="f" * 64, width=10, height=10,
                                  status=Artwork.Status.OK)
    result = stage.process([no_image.pk, lost.pk, good.pk, 999_999_999], {})
    assert result.done == [good.pk]
    reasons = {e.artwork_id: e.reason for e in result.errors}
    assert set(reasons) == {no_image.pk, lost.pk, 999_999_999}
    assert "derivative missing" in reasons[lost.pk] and "no image" in reasons[no_image.pk]


def test_faces_command_runs_the_stage_through_the_job_machinery(shared_data, aic_dir, django_capture_on_commit_callbacks):
    from django.core.management import call_command

    from workers.celery import app

    arts = [add_artwork(deepface_dir(shared_data) / "img4.jpg", source="t", source_id="img4", title="p1"),
            add_artwork(aic_dir / "images" / "88372.jpg", source="faces-aic", source_id="88372", title="Mengs")]
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            call_command("faces")
    finally:
        app.conf.task_always_eager = eager
    job = Job.objects.filter(kind="faces").latest("created_at")
    assert job.state == Job.State.DONE and job.done == 2 and job.failed == 0
    assert job.params["size"] == ml.DEFAULT_DERIVATIVE_SIZE and job.params["detector"] == ml.DEFAULT_DETECTOR == "mtcnn"
    assert set(FaceScan.objects.values_list("artwork_id", flat=True)) == {a.pk for a in arts}
    assert Face.objects.filter(artwork__in=arts).count() >= 2
    # "missing" mode now has nothing to do, including for artworks without faces.
    from workers import jobs

    again = jobs.launch("faces", {}, enqueue=False)
    assert again.state == Job.State.DONE and again.total == 0


def test_batches_do_not_lock_the_table_to_check_the_index(shared_data):
    """The index is looked up in the catalogue; CREATE INDEX (a SHARE lock on the faces table, even
    with IF NOT EXISTS) runs only when it is missing."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    artwork = add_artwork(deepface_dir(shared_data) / "img4.jpg", source="t", source_id="img4-index", title="p1")
    stage.ensure_index()
    assert vectors.index_exists(vectors.FACES, ml.MODEL_ID)
    with CaptureQueriesContext(connection) as queries:
        assert stage.process([artwork.pk], {}).done == [artwork.pk]
    assert not [q["sql"] for q in queries if "CREATE INDEX" in q["sql"].upper()]
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX {vectors.index_name(vectors.FACES, ml.MODEL_ID)}")
        # Check this test transaction's deferred foreign keys now: PostgreSQL refuses CREATE INDEX
        # on a table with pending trigger events (a job's own transaction never has any).
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert not vectors.index_exists(vectors.FACES, ml.MODEL_ID)
    stage.process([artwork.pk], {})
    assert vectors.index_exists(vectors.FACES, ml.MODEL_ID)


@pytest.mark.django_db(transaction=True)
def test_a_failed_transaction_leaves_no_crops(shared_data, tmp_path):
    """The artwork is deleted while its faces are being found: storing them fails at commit (the
    foreign key is checked then) and neither rows nor crop files are left behind."""
    from django.db import IntegrityError

    # A real group photo, mirrored so that no other test has stored crops of the same image.
    mirrored = tmp_path / "couple-mirrored.jpg"
    ImageOps.mirror(photo(shared_data, "couple.jpg")).save(mirrored, quality=91)
    artwork = add_artwork(mirrored, source="t", source_id="couple-gone", title="gone")
    params = stage.prepare({})
    Artwork.objects.filter(pk=artwork.pk).delete()
    faces_dir = Path(settings.MEDIA_ROOT) / "faces" / artwork.sha256[:2] / artwork.sha256[2:4]
    assert not faces_dir.exists() or not list(faces_dir.glob(f"{artwork.sha256}_*"))
    with pytest.raises(IntegrityError):
        stage.process_artwork(artwork, params)
    left = list(faces_dir.glob("*")) if faces_dir.exists() else []
    assert not [p for p in left if p.name.startswith(artwork.sha256) or p.name.endswith(".tmp")], left
    assert not Face.objects.filter(artwork_id=artwork.pk).exists()
    assert not FaceScan.objects.filter(artwork_id=artwork.pk).exists()


def test_backends_are_registered_by_model_id_with_their_dimension(settings):
    with pytest.raises(ml.FaceModelUnknown, match="512-d"):
        ml.register("wide-model", ml.DlibFaceBackend, dim=512)
    assert "wide-model" not in ml.registered()
    with pytest.raises(ml.FaceModelUnknown, match="already registered"):
        ml.register(ml.MODEL_ID, ml.DlibFaceBackend, dim=128)
    settings.FACE_MODEL = "no-such-model"
    with pytest.raises(ml.FaceModelUnknown, match="unknown face model 'no-such-model'; registered: dlib-resnet-v1"):
        stage.prepare({})
    # A backend that says it is another model than it was registered as is refused.
    ml.register("misnamed", lambda detector, upsample: ml.DlibFaceBackend(detector=detector, upsample=upsample), dim=128)
    try:
        with pytest.raises(ml.FaceModelUnknown, match="refusing"):
            ml.get_backend("misnamed")
    finally:
        ml.unregister("misnamed")


def test_a_second_backend_stores_vectors_under_its_own_model_id(shared_data):
    """The same dlib embedder with the detector run without upsampling, registered as its own
    model: a job for it writes rows, scans and an index of that model beside the default's."""
    other = "dlib-resnet-v1-up0-stage"
    ml.register(other, lambda detector, upsample: ml.DlibFaceBackend(detector=detector, upsample=0, model_id=other), dim=128)
    try:
        params = stage.prepare({"model": other})
        assert params["model"] == other and vectors.index_exists(vectors.FACES, other)
        artwork = add_artwork(deepface_dir(shared_data) / "img5.jpg", source="t", source_id="img5-models", title="p1")
        assert stage.process([artwork.pk], {}).done == [artwork.pk]
        assert stage.process([artwork.pk], params).done == [artwork.pk]
        rows = {f.model: f for f in Face.objects.filter(artwork=artwork)}
        assert set(rows) == {ml.MODEL_ID, other}
        assert set(FaceScan.objects.filter(artwork=artwork).values_list("model", "upsample")) == {(ml.MODEL_ID, settings.FACE_UPSAMPLE), (other, 0)}
        assert ml.l2(vectors.from_value(rows[ml.MODEL_ID].vector), vectors.from_value(rows[other].vector)) < 0.3
        assert artwork.pk in set(stage.completed({"model": other}))
        # Each model's kNN sees only its own rows.
        hits = vectors.nearest(vectors.FACES, other, vectors.from_value(rows[ml.MODEL_ID].vector), dim=128, metric="l2", limit=10)
        assert {h[0] for h in hits} == {rows[other].pk}
        stage.reset({"model": other})
        assert set(Face.objects.filter(artwork=artwork).values_list("model", flat=True)) == {ml.MODEL_ID}
    finally:
        ml.unregister(other)
