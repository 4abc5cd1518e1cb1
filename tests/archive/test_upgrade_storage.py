"""A data folder laid out by the previous version (before the storage seam) still works after the
upgrade: derivatives, face crops and map exports are read where they are; fetched metadata files
and fitted map models are moved by ``manage.py upgrade_storage`` (idempotent), and the jobs that
name the moved files are updated so they can be read again."""
from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from PIL import Image

from archive.importers import source_from_params
from archive.models import Artwork, Face, Job, JobError, Layout

pytestmark = pytest.mark.django_db

SHA = "ab" + "cd" + "0123456789abcdef" * 3 + "0123456789ab"
CSV = "id,title,date\n" + "".join(f"old{i},Old print {i},18{i:02d}\n" for i in range(5))


def jpeg(size: tuple[int, int], colour) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", quality=85)
    return out.getvalue()


def old_var(media: Path) -> dict:
    """Files where the previous version put them (paths written out here, not asked of the code)."""
    made = {}
    for size in (128, 256, 512, 1024):
        path = media / "derivatives" / "ab" / "cd" / f"{SHA}_{size}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg((size, size * 3 // 4), (120, 80, 40)))
    crop = "faces/ab/cd/" + f"{SHA}_dlib-resnet-v1_10_20_30_40.jpg"
    (media / crop).parent.mkdir(parents=True, exist_ok=True)
    (media / crop).write_bytes(jpeg((224, 224), (200, 150, 120)))
    made["crop"] = crop
    # A map export: version 3 is served; an interrupted export left a staging folder beside it.
    version = media / "maps" / "umap-all" / "3"
    version.mkdir(parents=True)
    ids = np.array([1], dtype="<u4").tobytes() + np.array([100], dtype="<u2").tobytes() * 2 + np.array([1850], dtype="<i2").tobytes() + bytes([0, 0, 255])
    (version / "points-000.bin.gz").write_bytes(gzip.compress(ids, mtime=0))
    (version / "atlas-0000.jpg").write_bytes(jpeg((1024, 64), (34, 34, 34)))
    files = {
        "version": 3, "count": 1, "bounds": [0.0, 0.0, 1.0, 1.0], "world": 1024.0,
        "columns": [{"name": n, "type": t} for n, t in (("id", "uint32"), ("x", "uint16"), ("y", "uint16"), ("year", "int16"),
                                                        ("c0", "uint8"), ("c1", "uint8"), ("cls", "uint8"))],
        "chunks": [{"file": "points-000.bin.gz", "start": 0, "count": 1, "bytes": (version / "points-000.bin.gz").stat().st_size,
                    "bounds": [100, 100, 100, 100]}],
        "atlas": {"cell": 64, "sheet": 1024, "per_row": 16, "per_sheet": 256, "sheets": [0], "pattern": "atlas-{sheet:04d}.jpg"},
        "classifications": [], "year_none": -32768, "cls_other": 255, "labels": [],
    }
    (version / "files.json").write_text(json.dumps(files, separators=(",", ":")))
    made["files"] = files
    (media / "maps" / "umap-all" / ".4.tmp4242").mkdir()
    (media / "maps" / "umap-all" / ".4.tmp4242" / "points-000.bin.gz").write_bytes(b"partial")
    # A fitted model the version before kept in the public tree.
    (media / "maps" / "_models").mkdir()
    (media / "maps" / "_models" / "umap-all.pkl").write_bytes(b"pickled model")
    # A fetched metadata file, named by the import job that fetched it.
    (media / "imports").mkdir()
    fetched = media / "imports" / "1a2b3c4d5e6f_works.csv"
    fetched.write_text(CSV)
    made["fetched"] = fetched
    return made


def test_a_data_folder_of_the_previous_version_works_after_upgrade(client, settings, tmp_path):
    media = Path(settings.MEDIA_ROOT) / "old-var-media"
    settings.MEDIA_ROOT = media
    settings.PRIVATE_ROOT = tmp_path / "private"
    settings.MAP_MODEL_ROOT = tmp_path / "maps-models"
    made = old_var(media)
    artwork = Artwork.objects.create(source="old", source_id="1", title="Old", sha256=SHA, width=1024, height=768,
                                     status=Artwork.Status.OK)
    face = Face.objects.create(artwork=artwork, model="dlib-resnet-v1", x=10, y=20, w=30, h=40, crop=made["crop"], vector=[0.0] * 128)
    layout = Layout.objects.create(name="All", slug="umap-all", method="umap", state=Layout.State.READY, export_version=3,
                                   point_count=1, is_default=True)
    source = {"location": str(made["fetched"]), "mapping": "generic", "with_images": False, "encoding": "utf-8",
              "source": None, "image_base": str(made["fetched"].parent)}
    job = Job.objects.create(kind=Job.Kind.IMPORT, state=Job.State.DONE, params={"importer": "metadata", "params": source})
    JobError.objects.create(job=job, item="row 3", reason="r", payload={"kind": "reread", "importer": "metadata", "params": source, "position": 3})

    # Before the upgrade: derivatives, crops and the export are read in place; the private files are not served.
    from archive.images import derivative_url, load_derivative
    from workers.layouts import build, export

    assert load_derivative(SHA, 256).size == (256, 192)
    assert client.get(derivative_url(SHA, 256)).status_code == 200
    assert client.get(face.crop_url).status_code == 200
    assert export.read_files("umap-all", 3) == made["files"]
    assert client.get("/media/imports/1a2b3c4d5e6f_works.csv").status_code == 404
    assert client.get("/media/maps/_models/umap-all.pkl").status_code == 404

    call_command("upgrade_storage", stdout=io.StringIO())

    # Fetched files and the fitted model moved out of the public folder; leftovers gone; nothing else touched.
    moved = tmp_path / "private" / "imports" / "1a2b3c4d5e6f_works.csv"
    assert moved.read_text() == CSV and not (media / "imports").exists()
    assert (tmp_path / "maps-models" / "umap-all.pkl").read_bytes() == b"pickled model"
    assert not (media / "maps" / "_models").exists() and build.model_path("umap-all").read_bytes() == b"pickled model"
    assert not (media / "maps" / "umap-all" / ".4.tmp4242").exists()
    assert sorted(p.name for p in (media / "maps" / "umap-all").iterdir()) == ["3"]
    assert len(list((media / "derivatives").rglob("*.jpg"))) == 4 and (media / made["crop"]).is_file()

    # The job and its error payload name the new place, and the source reads from it again.
    job.refresh_from_db()
    assert job.params["params"]["location"] == str(moved) and job.params["params"]["image_base"] == str(moved.parent)
    payload = JobError.objects.get(job=job).payload
    assert payload["params"]["location"] == str(moved)
    records = list(source_from_params("metadata", job.params["params"]).records())
    assert [r.source_id for r in records] == [f"old{i}" for i in range(5)]

    # The explorer serves everything as before.
    assert client.get(derivative_url(SHA, 1024)).status_code == 200
    assert client.get(face.crop_url).status_code == 200
    manifest = client.get(f"/map/{layout.slug}/manifest.json").json()
    assert manifest["version"] == 3 and manifest["base_url"] == "/media/maps/umap-all/3/"
    assert manifest["chunks"] == made["files"]["chunks"]
    chunk = client.get(manifest["base_url"] + "points-000.bin.gz")
    assert chunk.status_code == 200
    # (an export of that version has no dominant-colour column: read with its own column list)
    assert export.decode_chunk(gzip.decompress(b"".join(chunk.streaming_content)), 1, manifest["columns"])["year"][0] == 1850

    # A second run finds nothing to do and changes nothing.
    out = io.StringIO()
    call_command("upgrade_storage", stdout=out)
    assert all(line.endswith(": 0") for line in out.getvalue().splitlines()), out.getvalue()
    assert moved.read_text() == CSV and build.model_path("umap-all").read_bytes() == b"pickled model"


def test_upgrade_refuses_to_overwrite_a_different_file(settings, tmp_path):
    media = Path(settings.MEDIA_ROOT) / "old-var-conflict"
    settings.MEDIA_ROOT = media
    settings.PRIVATE_ROOT = tmp_path / "private"
    (media / "imports").mkdir(parents=True)
    (media / "imports" / "a.csv").write_text("old")
    (tmp_path / "private" / "imports").mkdir(parents=True)
    (tmp_path / "private" / "imports" / "a.csv").write_text("new and different")
    with pytest.raises(FileExistsError, match="other content"):
        call_command("upgrade_storage", stdout=io.StringIO())
    assert (media / "imports" / "a.csv").read_text() == "old"
    assert (tmp_path / "private" / "imports" / "a.csv").read_text() == "new and different"
