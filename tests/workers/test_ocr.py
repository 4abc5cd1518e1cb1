"""The OCR stage on real images: inscriptions rendered onto copies of shared paintings in several
fonts and sizes (word recall and precision, boxes against the rendered ones), small text read
from the original, paintings without text, a real floor plan from the shared culturecraft set,
the stage through the job machinery, and search by a word that is only in an image."""
from __future__ import annotations

import pytest
from PIL import Image

from archive.models import Artwork, ArtworkText, Job
from tests.explorer.test_doppelganger_support import add_artwork
from tests.workers.text_images import INSCRIPTIONS, fonts_available, inscribe
from workers.ocr import engine
from workers.ocr import stage

pytestmark = pytest.mark.django_db

PAINTINGS = ["100026", "100342", "100343", "100344", "100352", "100356", "101077", "102087"]


@pytest.fixture(scope="session")
def tesseract():
    try:
        engine.check_languages("eng")
    except engine.EngineMissing as exc:
        pytest.skip(f"OCR tests need Tesseract: {exc}")


@pytest.fixture(scope="session")
def fonts():
    found = fonts_available()
    if len(found) < 3:
        pytest.skip("OCR tests render text in DejaVu/Liberation fonts: apt-get install fonts-dejavu-core fonts-liberation")
    return found


def painting(aic_dir, aic_id: str) -> Image.Image:
    with Image.open(aic_dir / "images" / f"{aic_id}.jpg") as im:
        return im.convert("RGB")


def add_rendered(tmp_path, rendered, name: str, title: str = "Untitled study") -> Artwork:
    path = tmp_path / f"{name}.jpg"
    rendered.image.save(path, quality=92)
    return add_artwork(path, source="ocr-test", source_id=name, title=title)


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / float(aw * ah + bw * bh - inter) if inter else 0.0


def test_rendered_inscriptions_word_recall_and_precision(aic_dir, tmp_path, tesseract, fonts):
    """Each font at three sizes on a different painting, through the stage: nearly every word read,
    hardly any read that is not there, and each found word's box on its rendered box."""
    artworks, truths = [], {}
    for index, font in enumerate(fonts):
        for size_index, size in enumerate((20, 30, 44)):
            base = painting(aic_dir, PAINTINGS[(index + size_index) % len(PAINTINGS)])
            rendered = inscribe(base, INSCRIPTIONS[index % len(INSCRIPTIONS)], font, size, top=0.2 + 0.25 * size_index)
            art = add_rendered(tmp_path, rendered, f"{font}-{size}")
            artworks.append(art)
            truths[art.pk] = rendered.words
    result = stage.process([a.pk for a in artworks], stage.prepare({"languages": "eng"}))
    assert sorted(result.done) == sorted(a.pk for a in artworks) and not result.errors
    true_total = found_true = read_total = read_true = boxes_ok = 0
    for art in artworks:
        row = ArtworkText.objects.get(artwork=art)
        truth = truths[art.pk]
        # Single letters ("a") are dropped by design (engine.is_real_word): not counted as missed.
        true_words = [w.lower() for w, _ in truth if len(w) > 1]
        read = [w["text"].lower() for w in row.words]
        true_total += len(true_words)
        found_true += sum(1 for w in true_words if w in read)
        read_total += len(read)
        read_true += sum(1 for w in read if w in true_words)
        # Boxes: the stored box of a read word overlaps its rendered box (same pixels: the
        # rendered image is its own full size).
        for word in row.words:
            boxes = [box for text, box in truth if text.lower() == word["text"].lower()]
            if boxes and max(iou((word["x"], word["y"], word["w"], word["h"]), b) for b in boxes) >= 0.5:
                boxes_ok += 1
        assert row.text.split() == [w["text"] for w in row.words]
        assert all(w["conf"] >= stage.settings.OCR_MIN_CONFIDENCE for w in row.words)
    recall, precision = found_true / true_total, read_true / max(1, read_total)
    print(f"OCR of {len(artworks)} rendered inscriptions: recall {recall:.3f}, precision {precision:.3f}, boxes on target {boxes_ok}/{read_true}")
    assert recall >= 0.85, f"word recall {recall:.3f}"
    assert precision >= 0.95, f"word precision {precision:.3f}"
    assert boxes_ok >= 0.95 * read_true


def test_paintings_without_text_yield_almost_no_words(aic_dir, tesseract):
    """Brushwork reads as letters to Tesseract; the confidence and junk filters drop it."""
    arts = [add_artwork(aic_dir / "images" / f"{p}.jpg", source="ocr-test", source_id=p, title=p) for p in PAINTINGS]
    result = stage.process([a.pk for a in arts], stage.prepare({}))
    assert len(result.done) == len(arts)
    words = [w["text"] for row in ArtworkText.objects.filter(artwork__in=arts) for w in row.words]
    assert ArtworkText.objects.filter(artwork__in=arts).count() == len(arts)  # an empty row marks "read"
    assert len(words) <= 2, words


@pytest.mark.parametrize("text, real", [
    ("Hamelin", True), ("1902", True), ("McDonald", True), ("12th", True), ("l0O8", False), ("lll", False),
    ("a", False), ("—", False), ("DAaamHaMmae", False), ("||", False), ("don't", True),
])
def test_junk_filter(text, real):
    assert engine.is_real_word(engine.clean(text)) is real


def test_short_words_need_a_longer_word_on_their_line():
    line, other = (1, 1, 1), (1, 1, 2)
    words = [engine.Word("of", 95, 0, 0, 10, 10, line), engine.Word("Gardens", 95, 20, 0, 50, 10, line),
             engine.Word("te", 95, 0, 40, 10, 10, other), engine.Word("Palace", 40, 0, 80, 10, 10, (1, 1, 3))]
    assert [w.text for w in engine.keep(words, 70)] == ["of", "Gardens"]


def test_small_text_is_read_from_the_original(aic_dir, tmp_path, tesseract, fonts, settings):
    """A 3000 px scan with 22 px lettering: 7 px high in the 1024 px derivative, too small to read
    there; the stage reads the original and stores boxes in the original's pixels."""
    base = painting(aic_dir, "100342").resize((3000, int(3000 * 997 / 843)), Image.Resampling.LANCZOS)
    rendered = inscribe(base, "Harbour lights over Amsterdam at dusk", "DejaVuSerif.ttf", 24)
    art = add_rendered(tmp_path, rendered, "small-text")
    assert art.width == 3000
    result = stage.process([art.pk], stage.prepare({}))
    assert result.done == [art.pk]
    row = ArtworkText.objects.get(artwork=art)
    assert row.source == "original" and row.read_size == settings.OCR_ORIGINAL_SIDE
    read = {w["text"].lower() for w in row.words}
    assert {"harbour", "lights", "amsterdam"} <= read
    truth = dict((w.lower(), box) for w, box in rendered.words)
    for word in row.words:
        if word["text"].lower() in truth:
            assert iou((word["x"], word["y"], word["w"], word["h"]), truth[word["text"].lower()]) >= 0.5


def test_a_real_floor_plan_from_the_shared_data(culturecraft_dir, tesseract):
    """culturecraft 9: "Panovazza Court. Floor plans" (NYPL, 1909), rooms lettered on the plan."""
    art = add_artwork(culturecraft_dir / "images" / "9.jpg", source="ocr-test", source_id="cc9", title="Panovazza Court. Floor plans")
    stage.process([art.pk], stage.prepare({}))
    read = {w["text"].upper() for w in ArtworkText.objects.get(artwork=art).words}
    assert {"CHAMBER", "PARLOR", "COURT", "PRIVATE"} <= read, read


def test_bad_items_are_reported_and_reruns_replace_rows(aic_dir, tesseract):
    art = add_artwork(aic_dir / "images" / "100343.jpg", source="ocr-test", source_id="a", title="a")
    params = stage.prepare({})
    stage.process([art.pk], params)
    stage.process([art.pk], params)
    assert ArtworkText.objects.filter(artwork=art).count() == 1
    no_image = Artwork.objects.create(source="t", source_id="none", title="metadata only")
    lost = Artwork.objects.create(source="t", source_id="lost", sha256="0" * 64, status=Artwork.Status.OK)
    result = stage.process([no_image.pk, lost.pk, 999_999_999, art.pk], params)
    assert result.done == [art.pk]
    reasons = {e.artwork_id: e.reason for e in result.errors}
    assert "no image" in reasons[no_image.pk] and "derivative missing" in reasons[lost.pk]
    assert "no longer exists" in reasons[999_999_999]


def test_missing_language_refuses_the_job_with_the_package_to_install(tesseract):
    from workers import jobs

    with pytest.raises(engine.EngineMissing, match="tesseract-ocr-"):
        engine.check_languages("eng+" + next(code for code in ("tlh", "qya", "zzz") if code not in engine.installed_languages()))
    with pytest.raises(ValueError, match="not a Tesseract language"):
        engine.check_languages("english; rm -rf")
    job = jobs.launch("ocr", {"languages": "zzz"}, enqueue=False)
    assert job.state == Job.State.FAILED and "tesseract-ocr-zzz" in job.message


def test_ocr_job_runs_through_the_job_machinery(aic_dir, tmp_path, tesseract, fonts, django_capture_on_commit_callbacks):
    from workers import jobs
    from workers.celery import app

    rendered = inscribe(painting(aic_dir, "100344"), INSCRIPTIONS[2], fonts[0], 36)
    arts = [add_rendered(tmp_path, rendered, "job-a"), add_artwork(aic_dir / "images" / "100352.jpg", source="ocr-test", source_id="b", title="b")]
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            job = jobs.launch("ocr", {})
    finally:
        app.conf.task_always_eager = eager
    job.refresh_from_db()
    assert job.state == Job.State.DONE and job.done == 2 and job.failed == 0
    assert set(ArtworkText.objects.values_list("artwork_id", flat=True)) == {a.pk for a in arts}
    assert "zeppelin" in ArtworkText.objects.get(artwork=arts[0]).text.lower()
    again = jobs.launch("ocr", {}, enqueue=False)
    assert again.state == Job.State.DONE and again.total == 0


def test_ocr_after_import_is_opt_in(aic_dir, tmp_path, settings, tesseract, django_capture_on_commit_callbacks):
    import shutil

    from django.core.management import call_command

    from workers.celery import app

    settings.PALETTES_AFTER_IMPORT = False
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(aic_dir / "images" / "100356.jpg", folder / "100356.jpg")
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        settings.OCR_AFTER_IMPORT = False
        with django_capture_on_commit_callbacks(execute=True):
            call_command("import", str(folder), verbosity=0)
        assert not Job.objects.filter(kind=Job.Kind.OCR).exists()
        settings.OCR_AFTER_IMPORT = True
        shutil.copy(aic_dir / "images" / "101077.jpg", folder / "101077.jpg")
        with django_capture_on_commit_callbacks(execute=True):
            call_command("import", str(folder), verbosity=0)
    finally:
        app.conf.task_always_eager = eager
    job = Job.objects.get(kind=Job.Kind.OCR)
    assert job.state == Job.State.DONE and job.done == 2
    assert f"job {job.pk}" in Job.objects.filter(kind=Job.Kind.IMPORT).order_by("-pk").first().message
