"""Formats that were silent gaps: HEIC/HEIF photos are imported (pillow-heif), SVG files are
refused with a recorded reason (in a folder, or named by a metadata file), never skipped silently."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from archive import images
from archive.models import Artwork

from .conftest import folder_id, pattern_image, run_import, write_jpeg

pytestmark = pytest.mark.django_db

SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'


def heic_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    pattern_image(seed, size=(320, 240)).save(buf, "HEIF", quality=90)
    return buf.getvalue()


def test_heic_in_a_folder_is_imported(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "phone.heic").write_bytes(heic_bytes(1))
    (folder / "other.HEIF").write_bytes(heic_bytes(2))
    job, stats, errors = run_import(folder)
    assert errors == [] and stats.done == 2
    artwork = Artwork.objects.get(source_id=folder_id(folder, "phone.heic"))
    assert artwork.status == "ok" and (artwork.width, artwork.height) == (320, 240)
    with Image.open(images.derivative_path(artwork.sha256, 256)) as derivative:
        assert derivative.format == "JPEG"


def test_svg_in_a_folder_is_reported_not_skipped(tmp_path):
    folder = tmp_path / "mixed"
    write_jpeg(folder / "a.jpg", seed=3)
    (folder / "logo.svg").write_bytes(SVG)
    (folder / "notes.txt").write_text("not an image: ignored as before")
    job, stats, errors = run_import(folder)
    assert stats.done == 1 and len(errors) == 1
    assert errors[0].item.endswith("logo.svg") and "SVG is a vector format" in errors[0].reason


def test_svg_named_by_metadata_is_refused_with_its_reason(tmp_path):
    folder = tmp_path / "meta"
    folder.mkdir()
    (folder / "drawing.png").write_bytes(SVG)  # misnamed: the content decides
    (folder / "works.csv").write_text("id,title,image\n1,Drawing,drawing.png\n")
    job, stats, errors = run_import(folder / "works.csv", mapping="generic")
    artwork = Artwork.objects.get(source_id="1")
    assert artwork.status == "image_failed" and "SVG is a vector format" in artwork.image_error
    assert len(errors) == 1 and "SVG" in errors[0].reason
