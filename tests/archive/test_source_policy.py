"""The source policy, tried as an attacker would: manifests and metadata that name file:// URLs and
absolute paths outside their folder, a symlink out of an imported folder, a remote manifest that
points at local files, a dashboard import of a server path. Nothing outside the source's root is
read, every refusal is a recorded error, and an operator can widen the rule with a setting."""
from __future__ import annotations

import json

import pytest

from archive.importers import SourceError, open_source
from archive.models import Artwork, JobError

from .conftest import folder_id, run_import, write_jpeg

pytestmark = pytest.mark.django_db


def manifest(manifest_id: str, images: list[str]) -> dict:
    return {
        "@context": "http://iiif.io/api/presentation/3/context.json",
        "id": manifest_id, "type": "Manifest", "label": {"en": ["Attack"]},
        "items": [
            {
                "id": f"{manifest_id}/canvas/{i}", "type": "Canvas", "width": 10, "height": 10,
                "items": [{"id": f"{manifest_id}/page/{i}", "type": "AnnotationPage", "items": [
                    {"id": f"{manifest_id}/anno/{i}", "type": "Annotation", "motivation": "painting",
                     "body": {"id": image, "type": "Image"}, "target": f"{manifest_id}/canvas/{i}"},
                ]}],
            }
            for i, image in enumerate(images, start=1)
        ],
    }


@pytest.fixture
def secret(tmp_path):
    """A decodable image outside every source folder (what an attacker would want published)."""
    return write_jpeg(tmp_path / "outside" / "secret.jpg", seed=99)


def _no_image_of(path) -> None:
    from archive import images

    assert not Artwork.objects.filter(status="ok").exists()
    assert not Artwork.objects.exclude(sha256="").filter(sha256=images.hashlib.sha256(path.read_bytes()).hexdigest()).exists()


def test_local_manifest_cannot_read_files_outside_its_folder(tmp_path, secret):
    folder = tmp_path / "iiif"
    folder.mkdir()
    doc = manifest("https://example.org/m1", [f"file://{secret}", str(secret), "file:///etc/passwd", "../outside/secret.jpg"])
    (folder / "manifest.json").write_text(json.dumps(doc))
    job, stats, errors = run_import(folder / "manifest.json", canvases="all")
    assert stats.done == 0 and len(errors) == 4
    assert all("outside the source's folder" in e.reason for e in errors), [e.reason for e in errors]
    _no_image_of(secret)
    assert Artwork.objects.filter(status="image_failed").count() == 4


def test_local_manifest_reads_files_in_its_folder(tmp_path):
    folder = tmp_path / "iiif"
    write_jpeg(folder / "img" / "a.jpg", seed=1)
    (folder / "manifest.json").write_text(json.dumps(manifest("https://example.org/m2", ["img/a.jpg"])))
    job, stats, errors = run_import(folder / "manifest.json")
    assert errors == [] and stats.done == 1


def test_extra_allowed_root(tmp_path, secret, settings):
    folder = tmp_path / "iiif"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(manifest("https://example.org/m3", [str(secret)])))
    settings.IMPORT_ALLOWED_ROOTS = [str(secret.parent)]
    job, stats, errors = run_import(folder / "manifest.json")
    assert errors == [] and stats.done == 1


def test_remote_manifest_may_reference_only_urls(http_dir, secret):
    www, base = http_dir
    write_jpeg(www / "ok.jpg", seed=3)
    doc = manifest(f"{base}/m.json", [f"file://{secret}", str(secret), f"{base}/ok.jpg", "ftp://example.org/x.jpg"])
    (www / "m.json").write_text(json.dumps(doc))
    job, stats, errors = run_import(f"{base}/m.json", canvases="all")
    reasons = sorted(e.reason for e in errors)
    assert stats.done == 1 and len(errors) == 3, reasons
    assert sum("remote source may reference only http(s) URLs" in r for r in reasons) == 2
    assert any("not ftp: URLs" in r for r in reasons)
    assert Artwork.objects.filter(status="ok").count() == 1


def test_remote_collection_cannot_point_at_local_manifests(http_dir, tmp_path):
    www, base = http_dir
    local = tmp_path / "local.json"
    local.write_text(json.dumps(manifest("https://example.org/local", ["/etc/passwd"])))
    collection = {
        "@context": "http://iiif.io/api/presentation/3/context.json", "id": f"{base}/c.json", "type": "Collection",
        "items": [{"id": str(local), "type": "Manifest"}, {"id": f"file://{local}", "type": "Manifest"}],
    }
    (www / "c.json").write_text(json.dumps(collection))
    job, stats, errors = run_import(f"{base}/c.json")
    assert len(errors) == 2 and all("remote source may reference only http(s) URLs" in e.reason for e in errors)
    assert not Artwork.objects.exists()


def test_symlink_out_of_the_folder_is_refused(tmp_path, secret):
    folder = tmp_path / "images"
    write_jpeg(folder / "real.jpg", seed=5)
    (folder / "leak.jpg").symlink_to(secret)
    (folder / "sub").mkdir()
    (folder / "sub" / "inside.jpg").symlink_to(folder / "real.jpg")  # a link that stays inside is fine
    job, stats, errors = run_import(folder)
    assert stats.done == 2, [e.reason for e in errors]
    assert len(errors) == 1 and "outside the source's folder" in errors[0].reason and "resolves to" in errors[0].reason
    assert not Artwork.objects.filter(source_id=folder_id(folder, "leak.jpg"), status="ok").exists()


def test_sidecar_link_out_of_the_folder_is_reported(tmp_path):
    folder = tmp_path / "images"
    write_jpeg(folder / "a.jpg", seed=6)
    other = tmp_path / "private.csv"
    other.write_text("file,title\na.jpg,Leaked title\n")
    (folder / "metadata.csv").symlink_to(other)
    job, stats, errors = run_import(folder)
    assert stats.done == 1 and Artwork.objects.get().title == "a"
    assert len(errors) == 1 and "outside the source's folder" in errors[0].reason


def test_metadata_csv_cannot_name_files_outside_its_folder(tmp_path, secret):
    folder = tmp_path / "meta"
    write_jpeg(folder / "in.jpg", seed=7)
    (folder / "works.csv").write_text(
        "id,title,image\n"
        f"1,Inside,in.jpg\n2,Absolute,{secret}\n3,File URL,file://{secret}\n4,Dotdot,../outside/secret.jpg\n5,Passwd,/etc/passwd\n"
    )
    job, stats, errors = run_import(folder / "works.csv", mapping="generic")
    assert Artwork.objects.get(source_id="1").status == "ok"
    refused = Artwork.objects.exclude(source_id="1")
    assert refused.count() == 4 and set(refused.values_list("status", flat=True)) == {"image_failed"}
    assert all("outside the source's folder" in a.image_error for a in refused)
    assert all("outside the source's folder" in e.reason for e in errors) and len(errors) == 4


def test_fetched_metadata_csv_cannot_name_local_files(http_dir, secret, settings, tmp_path):
    www, base = http_dir
    (www / "works.csv").write_text(f"id,title,image_url\n1,Absolute,{secret}\n2,File URL,file://{secret}\n")
    job, stats, errors = run_import(f"{base}/works.csv", mapping="generic")
    assert len(errors) == 2 and all("remote source may reference only http(s)" in e.reason for e in errors)
    _no_image_of(secret)


def test_fetched_metadata_file_is_kept_privately(http_dir, settings):
    www, base = http_dir
    (www / "works.csv").write_text("id,title\n1,One\n")
    run_import(f"{base}/works.csv", mapping="generic")
    from pathlib import Path

    media = list((Path(settings.MEDIA_ROOT) / "imports").glob("*works.csv")) if (Path(settings.MEDIA_ROOT) / "imports").exists() else []
    assert media == []
    private = Path(settings.PRIVATE_ROOT) / "imports"
    assert list(private.glob("*_works.csv"))


def test_dashboard_and_api_imports_read_local_paths_only_inside_allowed_roots(tmp_path, settings):
    from explorer.jobs import JobControlError, launch

    folder = tmp_path / "images"
    write_jpeg(folder / "a.jpg", seed=8)
    with pytest.raises(JobControlError, match="IMPORT_ALLOWED_ROOTS"):
        launch("import", {"source": str(folder)}, "missing", None)
    with pytest.raises(JobControlError, match="IMPORT_ALLOWED_ROOTS"):
        launch("import", {"source": "/etc"}, "missing", None)
    with pytest.raises(JobControlError, match="unknown mapping"):
        launch("import", {"source": "https://example.org/x.csv", "mapping": "/etc/passwd"}, "missing", None)
    settings.IMPORT_ALLOWED_ROOTS = [str(tmp_path)]
    job = launch("import", {"source": str(folder)}, "missing", None)
    assert job.params["importer"] == "folder"


def test_command_line_may_import_any_path(tmp_path):
    folder = tmp_path / "anywhere"
    write_jpeg(folder / "a.jpg", seed=9)
    assert open_source(str(folder)).kind == "folder"
    with pytest.raises(SourceError, match="IMPORT_ALLOWED_ROOTS"):
        open_source(str(folder), operator=False)
    assert not JobError.objects.exists()


def test_legacy_public_imports_folder_is_never_served(client, settings, tmp_path):
    """Older versions kept fetched files under MEDIA_ROOT/imports/ at a predictable name."""
    from pathlib import Path

    settings.MEDIA_ROOT = tmp_path / "media"
    legacy = Path(settings.MEDIA_ROOT) / "imports" / "0123456789ab_private.csv"
    legacy.parent.mkdir(parents=True)
    legacy.write_text("id,title\n1,Secret\n")
    assert client.get("/media/imports/0123456789ab_private.csv").status_code == 404
