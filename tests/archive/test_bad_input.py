"""Bad input never loses data: each bad item imports correctly or becomes a JobError with a clear
reason, the rest of the import goes on, and nothing already stored changes. Every file here is
made by the test."""
from __future__ import annotations

import errno
import gzip
import io
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from archive import images
from archive.images import derivative_path, load_derivative
from archive.models import Artwork, Job

from .conftest import folder_id, jpeg_bytes, pattern_image, run_import, settings_for_tests, write_jpeg

pytestmark = pytest.mark.django_db


def folder_with(tmp_path: Path, name: str, data: bytes | None = None, *, good: int = 1) -> Path:
    """A folder holding one bad file ``name`` (``data``) and ``good`` good JPEGs."""
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    for i in range(good):
        write_jpeg(folder / f"good{i}.jpg", seed=1000 + i + zlib.crc32(name.encode()) % 1000)
    if data is not None:
        (folder / name).write_bytes(data)
    return folder


def import_one_bad(tmp_path, name, data, **options):
    folder = folder_with(tmp_path, name, data)
    job, stats, errors = run_import(folder, **options)
    assert Artwork.objects.filter(source_id=folder_id(folder, "good0.jpg"), status="ok").exists(), "the good file must import"
    return job, stats, errors


def assert_rejected(tmp_path, name, data, reason_part):
    job, stats, errors = import_one_bad(tmp_path, name, data)
    assert job.state == Job.State.DONE
    assert stats.done == 1 and stats.failed == 1
    assert len(errors) == 1
    assert reason_part in errors[0].reason.lower(), errors[0].reason
    assert errors[0].payload["kind"] == "record"
    # A plain folder file that fails is only an error: no row.
    assert not Artwork.objects.filter(source_id__endswith=name).exists()
    return errors[0]


# --- files that cannot be images ---------------------------------------------------------------------

def test_truncated_jpeg(tmp_path):
    data = jpeg_bytes(pattern_image(1, (800, 600)))
    assert_rejected(tmp_path, "truncated.jpg", data[: len(data) // 2], "truncated")


def test_zero_byte_file(tmp_path):
    assert_rejected(tmp_path, "empty.jpg", b"", "empty file")


def test_text_file_with_image_extension(tmp_path):
    assert_rejected(tmp_path, "notes.png", b"these are my notes, not a picture\n" * 20, "not an image")


def test_html_error_page_saved_as_jpeg(tmp_path):
    assert_rejected(tmp_path, "download.jpeg", b"<!DOCTYPE html><html><body>403 Forbidden</body></html>", "not an image")


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height, with a tiny (invalid-size) image body."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def test_decompression_bomb(tmp_path):
    error = assert_rejected(tmp_path, "bomb.png", _png_header(100_000, 100_000), "decompression bomb")
    assert "100000x100000" in error.reason


def test_huge_non_jpeg_is_refused_not_decoded(tmp_path, settings):
    settings.MAX_DECODE_PIXELS = 50_000
    buf = io.BytesIO()
    pattern_image(5, (400, 300)).save(buf, "PNG")
    assert_rejected(tmp_path, "scan.png", buf.getvalue(), "too large to decode")


def test_corrupt_png_body(tmp_path):
    buf = io.BytesIO()
    pattern_image(6, (200, 200)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[60:200] = b"\xff" * 140  # break the compressed stream
    job, stats, errors = import_one_bad(tmp_path, "broken.png", bytes(data))
    assert len(errors) == 1 and stats.failed == 1
    assert any(word in errors[0].reason.lower() for word in ("corrupt", "truncated", "unreadable")), errors[0].reason


def test_directory_named_like_an_image(tmp_path):
    folder = folder_with(tmp_path, "x", None)
    (folder / "album.jpg").mkdir()
    job, stats, errors = run_import(folder)
    # A folder is walked into, not read as a file: the good image imports, nothing fails.
    assert stats.done == 1 and stats.failed == 0


def test_unreadable_file(tmp_path, monkeypatch):
    """A file this process may not read is an error, the rest goes on. Root may read anything, so
    there the open the importer uses fails the way the kernel fails it for other users."""
    folder = folder_with(tmp_path, "secret.jpg", jpeg_bytes(pattern_image(7)))
    secret = folder / "secret.jpg"
    if os.geteuid() == 0:
        real_open = images._open_fd

        def open_as_another_user(location):
            if location == str(secret):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), location)
            return real_open(location)

        monkeypatch.setattr(images, "_open_fd", open_as_another_user)
    secret.chmod(0)
    try:
        job, stats, errors = run_import(folder)
    finally:
        secret.chmod(0o644)
    assert stats.done == 1 and stats.failed == 1
    assert errors[0].reason == f"cannot read {secret}: Permission denied"
    assert errors[0].payload["kind"] == "record"


def test_fifo_named_like_an_image_is_refused_not_waited_on(tmp_path):
    folder = folder_with(tmp_path, "x", None)
    os.mkfifo(folder / "pipe.jpg")  # reading it would wait for a writer forever
    (folder / "null.png").symlink_to("/dev/null")  # a character device, and a link out of the folder
    job, stats, errors = run_import(folder)
    assert job.state == Job.State.DONE and stats.done == 1 and stats.failed == 2
    reasons = {e.item.rsplit("/", 1)[-1]: e.reason for e in errors}
    assert reasons["pipe.jpg"].startswith("not a regular file (a FIFO)")
    # The source policy refuses the link before the device is looked at (see test_source_policy).
    assert "outside the source's folder" in reasons["null.png"]


def test_file_and_folder_names_that_are_not_utf8(tmp_path):
    """Names in another encoding cannot be stored as ids: each is an error naming it, the rest imports."""
    folder = folder_with(tmp_path, "x", None)
    data = jpeg_bytes(pattern_image(9))
    root = os.fsencode(folder)
    with open(root + b"/caf\xe9.jpg", "wb") as handle:
        handle.write(data)
    os.mkdir(root + b"/\xe9t\xe9")
    with open(root + b"/\xe9t\xe9/inside.jpg", "wb") as handle:
        handle.write(data)
    job, stats, errors = run_import(folder)
    assert job.state == Job.State.DONE and stats.done == 1 and stats.failed == 2
    by_item = {e.item.rsplit("/", 1)[-1]: e for e in errors}
    assert "file name is not valid UTF-8" in by_item["caf\ufffd.jpg"].reason
    assert "folder name is not valid UTF-8" in by_item["\ufffdt\ufffd"].reason
    assert all(e.payload["kind"] == "reread" and e.payload["params"]["location"] == str(folder) for e in errors)
    assert Artwork.objects.filter(source="folder").count() == 1


def test_nul_in_a_source_id_is_an_error_and_the_rest_imports(tmp_path):
    path = tmp_path / "works.jsonl"
    path.write_text(
        json.dumps({"id": "a\u0000b", "title": "Nul in id"}) + "\n"
        + json.dumps({"id": "c", "title": "Fine"}) + "\n"
        + '{"id": "d", "title": "Not a number", "score": NaN}\n'
    )
    job, stats, errors = run_import(path)
    assert job.state == Job.State.DONE and stats.done == 2 and stats.failed == 1
    assert set(Artwork.objects.filter(source__startswith="metadata:").values_list("source_id", flat=True)) == {"c", "d"}
    assert errors[0].item == "works.jsonl line 1" and "NUL character" in errors[0].reason
    assert errors[0].payload == {"kind": "reread", "importer": "metadata", "params": errors[0].payload["params"], "position": 1}


def test_broken_symlink_in_folder(tmp_path):
    folder = folder_with(tmp_path, "x", None)
    (folder / "moved.jpg").symlink_to(folder / "no-longer-here.jpg")  # inside: a link out is refused (test_source_policy)
    job, stats, errors = run_import(folder)
    assert stats.done == 1 and len(errors) == 1
    assert "file not found" in errors[0].reason and errors[0].item.endswith("moved.jpg")


def test_missing_image_path_in_metadata(tmp_path):
    csv = tmp_path / "works.csv"
    write_jpeg(tmp_path / "present.jpg", seed=8)
    csv.write_text("id,title,file\n1,Present,present.jpg\n2,Gone,gone.jpg\n")
    job, stats, errors = run_import(csv)
    assert Artwork.objects.get(source__startswith="metadata:", source_id="1").status == "ok"
    gone = Artwork.objects.get(source__startswith="metadata:", source_id="2")
    # A new record with real metadata is kept, marked image_failed, and linked from its error.
    assert gone.status == "image_failed" and gone.title == "Gone"
    assert "file not found" in gone.image_error
    assert len(errors) == 1 and errors[0].artwork_id == gone.id


# --- images that are unusual but fine -----------------------------------------------------------------

def import_good(tmp_path, name, data):
    folder = folder_with(tmp_path, name, data, good=0)
    job, stats, errors = run_import(folder)
    assert errors == [] and stats.done == 1
    artwork = Artwork.objects.get(source_id=folder_id(folder, name))
    assert artwork.status == "ok"
    for size in (128, 256, 512, 1024):
        assert derivative_path(artwork.sha256, size).exists()
    assert load_derivative(artwork.sha256, 256).mode == "RGB"
    return artwork


def test_16_bit_greyscale_png(tmp_path):
    arr = (np.linspace(0, 65535, 300 * 200).reshape(200, 300)).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    artwork = import_good(tmp_path, "deep.png", buf.getvalue())
    im = load_derivative(artwork.sha256, 256)
    lo, hi = im.convert("L").getextrema()
    assert hi - lo > 200, "16-bit range must be scaled, not clipped to black/white"


def test_16_bit_big_endian_tiff_and_32_bit_integer_images(tmp_path):
    arr = (np.linspace(0, 65535, 300 * 200).reshape(200, 300)).astype(np.uint16)
    big_endian = Image.frombytes("I;16B", (300, 200), arr.astype(">u2").tobytes())
    buf = io.BytesIO()
    big_endian.save(buf, "TIFF")
    (tmp_path / "deep").mkdir()
    artwork = import_good(tmp_path / "deep", "deep.tif", buf.getvalue())
    assert artwork.width == 300
    lo, hi = load_derivative(artwork.sha256, 256).convert("L").getextrema()
    assert hi - lo > 200
    wide = Image.fromarray((arr.astype(np.int32) * 1000 - 5_000_000), "I")  # 32-bit, negative to large
    buf = io.BytesIO()
    wide.save(buf, "TIFF")
    (tmp_path / "wide").mkdir()
    artwork = import_good(tmp_path / "wide", "wide.tif", buf.getvalue())
    lo, hi = load_derivative(artwork.sha256, 256).convert("L").getextrema()
    assert lo < 10 and hi > 245, "32-bit values are stretched over their own range"


def test_cmyk_jpeg(tmp_path):
    buf = io.BytesIO()
    pattern_image(11).convert("CMYK").save(buf, "JPEG")
    artwork = import_good(tmp_path, "print.jpg", buf.getvalue())
    assert (artwork.width, artwork.height) == (320, 240)


def test_palette_png_with_transparency(tmp_path):
    im = pattern_image(12).convert("P", palette=Image.ADAPTIVE, colors=16)
    im.info["transparency"] = 0
    buf = io.BytesIO()
    im.save(buf, "PNG", transparency=0)
    import_good(tmp_path, "palette.png", buf.getvalue())


def test_rgba_png_composited_on_white(tmp_path):
    im = Image.new("RGBA", (200, 100), (255, 0, 0, 0))  # fully transparent red
    buf = io.BytesIO()
    im.save(buf, "PNG")
    artwork = import_good(tmp_path, "alpha.png", buf.getvalue())
    r, g, b = load_derivative(artwork.sha256, 128).getpixel((10, 10))
    assert min(r, g, b) > 240, "transparent pixels become white, not black or red"


def test_animated_gif_uses_first_frame(tmp_path):
    frames = [pattern_image(s, (120, 90)).convert("P") for s in (13, 14, 15)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    artwork = import_good(tmp_path, "anim.gif", buf.getvalue())
    assert (artwork.width, artwork.height) == (120, 90)


def test_exif_orientation_is_applied(tmp_path):
    im = pattern_image(16, (400, 200))  # stored landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif.tobytes())
    artwork = import_good(tmp_path, "rotated.jpg", buf.getvalue())
    assert (artwork.width, artwork.height) == (200, 400)
    assert load_derivative(artwork.sha256, 1024).size == (200, 400)


def test_huge_jpeg_scan_is_decoded_at_reduced_size(tmp_path):
    im = pattern_image(17, (6000, 4000))
    artwork = import_good(tmp_path, "scan.jpg", jpeg_bytes(im, quality=70))
    assert (artwork.width, artwork.height) == (6000, 4000)
    assert load_derivative(artwork.sha256, 1024).size == (1024, 683)


def test_greyscale_and_bilevel_images(tmp_path):
    buf = io.BytesIO()
    pattern_image(18).convert("1").save(buf, "PNG")
    import_good(tmp_path, "bilevel.png", buf.getvalue())


# --- bad metadata rows ------------------------------------------------------------------------------

def test_csv_rows_missing_id_bad_encoding_wrong_columns(tmp_path):
    write_jpeg(tmp_path / "a.jpg", seed=20)
    rows = [
        b"id,title,date,file",
        b"1,Good one,c. 1895,a.jpg",
        b",No id here,1900,",
        b"3,Caf\xe9 in Latin-1,1901,",  # not UTF-8
        b"4,Too,many,columns,here",
        b"5,Too few",
        b'6,"Quoted, with comma",1650-55,',
    ]
    path = tmp_path / "works.csv"
    path.write_bytes(b"\n".join(rows) + b"\n")
    job, stats, errors = run_import(path)
    assert job.state == Job.State.DONE
    assert set(Artwork.objects.filter(source__startswith="metadata:").values_list("source_id", flat=True)) == {"1", "6"}
    assert Artwork.objects.get(source__startswith="metadata:", source_id="6").year_start == 1650
    reasons = {e.item: e.reason for e in errors}
    assert len(errors) == 4, reasons
    assert "no value for the id" in reasons["works.csv row 2"]
    assert "bad encoding" in next(r for i, r in reasons.items() if "row 3" in i)
    assert "has 5 columns, the header has 4" in next(r for i, r in reasons.items() if "row 4" in i)
    assert "has 2 columns" in next(r for i, r in reasons.items() if "row 5" in i)
    assert all(e.payload["kind"] == "reread" and e.payload["position"] for e in errors)


def test_csv_with_latin1_encoding_option(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("id,title\n1,Café\n".encode("cp1252"))
    job, stats, errors = run_import(path, encoding="cp1252")
    assert errors == [] and Artwork.objects.get(source__startswith="metadata:", source_id="1").title == "Café"


def test_jsonl_bad_lines(tmp_path):
    path = tmp_path / "works.jsonl"
    path.write_text(
        '{"id": 1, "title": "Fine"}\n'
        '{"id": 2, "title": "Broken"\n'
        '[1, 2, 3]\n'
        '\n'
        '{"id": 4, "title": {"nested": "object"}}\n'
        '{"id": 5, "title": "Also fine", "date": "1890s"}\n'
    )
    job, stats, errors = run_import(path)
    assert set(Artwork.objects.filter(source="metadata:works.jsonl").values_list("source_id", flat=True)) == {"1", "4", "5"}
    assert Artwork.objects.get(source="metadata:works.jsonl", source_id="5").year_end == 1899
    # An object where text is expected is written out readably, and kept as it was in metadata.
    nested = Artwork.objects.get(source="metadata:works.jsonl", source_id="4")
    assert nested.title == "nested: object" and nested.metadata["title"] == {"nested": "object"}
    reasons = [e.reason for e in errors]
    assert any("not valid JSON" in r for r in reasons)
    assert any("expected a JSON object, found list" in r for r in reasons)


def test_truncated_gzip_keeps_what_was_read(tmp_path):
    lines = b"".join(json.dumps({"id": i, "title": f"Work {i}", "padding": os.urandom(50).hex()}).encode() + b"\n" for i in range(2000))
    data = gzip.compress(lines)
    path = tmp_path / "works.jsonl.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    job, stats, errors = run_import(path)
    imported = Artwork.objects.filter(source__startswith="metadata:").count()
    assert 0 < imported < 2000
    assert len(errors) == 1 and "truncated" in errors[0].reason


def test_json_document_that_is_not_json(tmp_path):
    path = tmp_path / "works.json"
    path.write_text('{"data": [{"id": 1, "title": "x"}')
    job, stats, errors = run_import(path, mapping="generic")
    assert stats.done == 0 and len(errors) == 1 and "not valid JSON" in errors[0].reason


def test_overlong_values_and_nul_characters(tmp_path):
    path = tmp_path / "works.jsonl"
    record = {
        "id": "x1", "title": "Nul\x00 in title", "date": "1901 " + "x" * 400, "url": "https://example.org/" + "a" * 2000,
        "description": "ok\x00",
    }
    path.write_text(json.dumps(record) + "\n" + json.dumps({"id": "x" * 600, "title": "long id"}) + "\n")
    job, stats, errors = run_import(path)
    artwork = Artwork.objects.get(source__startswith="metadata:", source_id="x1")
    assert artwork.title == "Nul in title"
    assert len(artwork.display_date) == 255 and artwork.year_start == 1901
    assert artwork.source_url == "" and artwork.metadata["source_url"].startswith("https://example.org/")
    assert len(errors) == 1 and "at most 512" in errors[0].reason


# --- re-imports never damage what is stored --------------------------------------------------------------

def test_failing_reimport_leaves_existing_row_unchanged(tmp_path):
    folder = tmp_path / "in"
    image = write_jpeg(folder / "work.jpg", seed=30)
    (folder / "metadata.csv").write_text("file,title,date\nwork.jpg,Original title,1890\n")
    run_import(folder)
    before = Artwork.objects.get(source_id=folder_id(folder, "work.jpg"))
    assert before.status == "ok" and before.title == "Original title"

    image.write_bytes(b"")  # the file got broken
    (folder / "metadata.csv").write_text("file,title,date\nwork.jpg,Changed title,1950\n")
    job, stats, errors = run_import(folder)
    after = Artwork.objects.get(source_id=folder_id(folder, "work.jpg"))
    assert len(errors) == 1 and errors[0].artwork_id == before.id and "empty file" in errors[0].reason
    for field in ("title", "year_start", "sha256", "phash", "status", "width", "height", "updated_at"):
        assert getattr(after, field) == getattr(before, field), field
    assert derivative_path(before.sha256, 256).exists()


def test_moved_folder_updates_the_same_rows(tmp_path):
    """Folder ids are the folder's name and the path inside it: remounted elsewhere, the same rows."""
    folder = tmp_path / "mnt1" / "archive"
    write_jpeg(folder / "a.jpg", seed=31)
    write_jpeg(folder / "sub" / "b.jpg", seed=32)
    run_import(folder)
    before = {a.source_id: a.pk for a in Artwork.objects.filter(source="folder")}
    assert set(before) == {"archive/a.jpg", "archive/sub/b.jpg"}
    moved = tmp_path / "mnt2" / "archive"
    moved.parent.mkdir()
    folder.rename(moved)
    job, stats, errors = run_import(moved)
    assert errors == [] and stats.created == 0 and stats.updated == 2
    assert {a.source_id: a.pk for a in Artwork.objects.filter(source="folder")} == before
    assert Artwork.objects.get(source_id="archive/a.jpg").original_location == str(moved / "a.jpg")


def test_folder_file_with_sidecar_metadata_that_fails_is_kept(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bad.jpg").write_bytes(b"GIF89a-not-really")
    (folder / "plain.jpg").write_bytes(b"also not an image")
    (folder / "metadata.json").write_text(json.dumps({"bad.jpg": {"title": "Catalogued work", "artist": "A. Painter"}}))
    job, stats, errors = run_import(folder)
    kept = Artwork.objects.get(source_id=folder_id(folder, "bad.jpg"))
    assert kept.status == "image_failed" and kept.creator == "A. Painter"
    assert not Artwork.objects.filter(source_id=folder_id(folder, "plain.jpg")).exists()
    assert stats.failed == 2


def test_small_batches_and_one_worker_give_the_same_result(tmp_path):
    folder = tmp_path / "in"
    for i in range(7):
        write_jpeg(folder / f"{i}.jpg", seed=40 + i)
    (folder / "bad.jpg").write_bytes(b"nope")
    job, stats, errors = run_import(folder, cfg=settings_for_tests(workers=1, batch_size=2))
    assert stats.done == 7 and stats.failed == 1
    assert Job.objects.get(pk=job.pk).total == 8


def test_sidecar_with_bad_rows_still_imports_the_files(tmp_path):
    folder = tmp_path / "in"
    write_jpeg(folder / "a.jpg", seed=50)
    write_jpeg(folder / "b.jpg", seed=51)
    (folder / "metadata.csv").write_text("file,title\na.jpg,Catalogued A\nb.jpg,Too,many,columns\n")
    job, stats, errors = run_import(folder)
    assert stats.done == 2 and len(errors) == 1
    assert "sidecar metadata.csv" in errors[0].reason and "has 4 columns" in errors[0].reason
    assert Artwork.objects.get(source_id=folder_id(folder, "a.jpg")).title == "Catalogued A"
    assert Artwork.objects.get(source_id=folder_id(folder, "b.jpg")).title == "b"


def test_unwritable_media_root_is_a_clear_error_and_the_import_goes_on(tmp_path):
    folder = folder_with(tmp_path, "x", None, good=2)
    blocked = tmp_path / "media-is-a-file"
    blocked.write_text("not a folder")
    job, stats, errors = run_import(folder, cfg=settings_for_tests(media_root=blocked))
    assert job.state == Job.State.DONE and stats.failed == 2 and stats.done == 0
    assert all("cannot write the derivatives" in e.reason for e in errors)
