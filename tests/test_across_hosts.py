"""The whole pipeline as two "hosts" that share only PostgreSQL, the Redis broker and an S3 store
(moto's server mode on 127.0.0.1): host A runs the web side (this process) and an ingest worker,
host B the embed, faces and maps workers; each host has its own empty MEDIA_ROOT, PRIVATE_ROOT and
MAP_MODEL_ROOT. The embed worker is SIGKILLed mid-job and restarted: no missing and no duplicate
rows. The pages and the map then point every image at the store, and no host wrote a local file
but the maps worker's fitted layout model (kept in its MAP_MODEL_ROOT by design)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests

from archive import storage
from archive.models import Artwork, ArtworkEmbedding, Face, Job, Layout, LayoutPoint
from museum import object_storage
from tests.test_object_storage import PUBLIC, s3_endpoint, s3_env  # noqa: F401  (the module's S3 server)
from tests.workers.test_celery import (  # noqa: F401  (fixtures)
    REDIS_URL, assert_complete, broker, kill_while_leased, redis_broker, wait_final, worker_env,
)
from workers import jobs
from workers.process import start_workers, stop_workers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def host(root: Path, endpoint: str) -> dict:
    for name in ("media", "private", "maps-models"):
        (root / name).mkdir(parents=True)
    return worker_env(REDIS_URL, MEDIA_ROOT=root / "media", PRIVATE_ROOT=root / "private",
                      MAP_MODEL_ROOT=root / "maps-models", **s3_env(endpoint))


def local_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_the_pipeline_on_two_hosts_sharing_only_database_broker_and_store(
        s3_endpoint, redis_broker, aic_dir, settings, tmp_path, client):  # noqa: F811
    host_a, host_b = host(tmp_path / "a", s3_endpoint), host(tmp_path / "b", s3_endpoint)
    # This process is host A's web server.
    settings.MEDIA_ROOT, settings.PRIVATE_ROOT = host_a["MEDIA_ROOT"], host_a["PRIVATE_ROOT"]
    settings.MAP_MODEL_ROOT = host_a["MAP_MODEL_ROOT"]
    settings.STORAGES = {**settings.STORAGES, **object_storage.stores(s3_env(s3_endpoint))}
    folder = tmp_path / "incoming"
    folder.mkdir()
    for path in sorted((aic_dir / "images").glob("*.jpg"))[:16]:
        shutil.copy(path, folder / path.name)

    procs = []
    try:
        procs += start_workers(["ingest"], 1, env={**host_a, "INGEST_WORKERS": "2"})
        embed = start_workers(["embed"], 1, env=host_b)
        procs += embed + start_workers(["faces", "maps", "label"], 1, env=host_b)

        from archive.importers import open_source
        from workers.ingest.launch import launch

        imported = wait_final(launch(open_source(str(folder)), extra={"batch_size": 4}), procs, timeout=180)
        assert (imported.state, imported.done, imported.failed) == (Job.State.DONE, 16, 0), imported.message
        artworks = list(Artwork.objects.filter(status=Artwork.Status.OK))
        assert len(artworks) == 16

        job = jobs.launch("embed", {"model": "test-tiny", "activate_when_complete": True}, batch_size=2)
        kill_while_leased(job, embed[0])  # SIGKILL while it holds a batch
        job.refresh_from_db()
        assert not job.is_final
        procs += start_workers(["embed"], 1, env=host_b)  # the restarted embed worker
        job = wait_final(job, procs, timeout=180)
        assert_complete(job, artworks)
        assert ArtworkEmbedding.objects.count() == 16

        faces = wait_final(jobs.launch("faces", {}, batch_size=8), procs, timeout=180)
        assert faces.state == Job.State.DONE and faces.failed == 0, faces.message

        from workers.layouts import build

        layout_job = build.request("tsne", {})
        build.send(layout_job)
        layout_job = wait_final(layout_job, procs, timeout=240)
        assert layout_job.state == Job.State.DONE, layout_job.message
    finally:
        stop_workers(procs)

    layout = Layout.objects.get(slug="tsne")
    assert LayoutPoint.objects.filter(layout=layout).count() == 16
    store_base = f"{s3_endpoint}/{PUBLIC}/media/"

    # The pages: every image at the store, readable there without credentials.
    artwork = artworks[0]
    html = client.get(f"/artworks/{artwork.pk}/").content.decode()
    assert f'src="{store_base}derivatives/' in html and 'src="/media/' not in html
    assert requests.get(artwork.derivative_url_1024, timeout=10).status_code == 200
    for face in Face.objects.exclude(crop="")[:3]:
        assert face.crop_url.startswith(store_base) and requests.get(face.crop_url, timeout=10).status_code == 200
    manifest = client.get("/map/tsne/manifest.json").json()
    assert manifest["base_url"].startswith(store_base + "maps/tsne/")
    files = requests.get(manifest["base_url"] + "files.json", timeout=10)
    assert files.status_code == 200 and files.json()["count"] == 16

    # Nothing went to either host's disk but the maps host's fitted layout model (MAP_MODEL_ROOT is a
    # local folder of the maps worker, docs/deploy.md): the store is all they share.
    assert local_files(tmp_path / "a") == []
    assert local_files(tmp_path / "b") == [tmp_path / "b" / "maps-models" / "tsne.pkl"]
    assert storage.exists(storage.public(), f"maps/tsne/{layout.export_version}/files.json")
