"""S3-compatible object storage (archive/storage_s3.py, museum/object_storage.py) against a real S3
server: moto's server mode, started once for this module as its own process on 127.0.0.1. The
public bucket is readable by anyone (bucket policy), the private one is not: the test reads the
public files anonymously over HTTP at the URLs the seam gives, and is refused the private ones."""
from __future__ import annotations

import gzip
import io
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import requests
from PIL import Image

from archive import storage
from archive.storage_s3 import PrivateS3Storage, PublicS3Storage
from museum import object_storage

PUBLIC, PRIVATE = "museum-public", "museum-private"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret", "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    port = _free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(endpoint, timeout=2)
                break
            except requests.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("moto's S3 server did not start")
                time.sleep(0.2)
        import boto3

        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket=PUBLIC)
        client.create_bucket(Bucket=PRIVATE)
        client.put_bucket_policy(Bucket=PUBLIC, Policy=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                           "Resource": f"arn:aws:s3:::{PUBLIC}/*"}],
        }))
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def s3_env(endpoint: str, **extra) -> dict:
    return {"STORAGE_URL": f"s3://{PUBLIC}/media?endpoint={endpoint}", "PRIVATE_STORAGE_URL": f"s3://{PRIVATE}/imports-and-models",
            **extra}


@pytest.fixture
def s3_stores(s3_endpoint, settings):
    settings.STORAGES = {**settings.STORAGES, **object_storage.stores(s3_env(s3_endpoint))}
    public, private = storage.public(), storage.private()
    assert isinstance(public, PublicS3Storage) and isinstance(private, PrivateS3Storage)
    return public, private


# --- configuration ---------------------------------------------------------------------------------

def test_storage_urls_select_buckets_prefixes_endpoint_and_cdn():
    stores = object_storage.stores({"STORAGE_URL": "s3://pics/media?region=eu-west-1", "STORAGE_CDN_DOMAIN": "cdn.example.org"})
    assert stores["default"] == {"BACKEND": "archive.storage_s3.PublicS3Storage", "OPTIONS": {
        "bucket_name": "pics", "location": "media", "region_name": "eu-west-1", "custom_domain": "cdn.example.org",
        "object_parameters": {"CacheControl": object_storage.DEFAULT_CACHE_CONTROL}}}
    # Without a private URL the private files get their own prefix of the same bucket, never the CDN.
    assert stores["private"] == {"BACKEND": "archive.storage_s3.PrivateS3Storage", "OPTIONS": {
        "bucket_name": "pics", "location": "private", "region_name": "eu-west-1"}}
    alone = object_storage.stores({"STORAGE_URL": "s3://pics", "STORAGE_ENDPOINT_URL": "http://minio:9000"})
    assert alone["default"]["OPTIONS"]["location"] == "public" and alone["private"]["OPTIONS"]["location"] == "private"
    assert alone["default"]["OPTIONS"]["addressing_style"] == "path"
    assert object_storage.stores({}) == {}
    for bad in ({"STORAGE_URL": "s3://pics/media", "PRIVATE_STORAGE_URL": "s3://pics/media/private"},
                {"STORAGE_URL": "s3://pics/private"},
                {"STORAGE_URL": "s3://pics", "PRIVATE_STORAGE_URL": "s3://pics"}):
        with pytest.raises(ValueError, match="overlap"):
            object_storage.stores(bad)
    with pytest.raises(ValueError, match="expected s3://"):
        object_storage.stores({"STORAGE_URL": "https://pics/media"})
    with pytest.raises(ValueError, match="unknown parameter"):
        object_storage.stores({"STORAGE_URL": "s3://pics?secret=x"})


def test_settings_read_the_storage_url_from_the_environment(s3_endpoint):
    from pathlib import Path

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "museum.settings", "DATABASE_URL": "postgresql://u:p@127.0.0.1:1/none",
           **s3_env(s3_endpoint, STORAGE_CACHE_CONTROL="public, max-age=60")}
    code = "import json; from django.conf import settings as s; print(json.dumps([s.STORAGES['default'], s.STORAGES['private']]))"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=Path(__file__).resolve().parent.parent,
                         capture_output=True, text=True, check=True)
    public, private = json.loads(out.stdout)
    assert public["BACKEND"] == "archive.storage_s3.PublicS3Storage" and public["OPTIONS"]["bucket_name"] == PUBLIC
    assert public["OPTIONS"]["object_parameters"] == {"CacheControl": "public, max-age=60"}
    assert private["OPTIONS"]["bucket_name"] == PRIVATE and private["OPTIONS"]["endpoint_url"] == s3_endpoint


# --- the seam on S3 ------------------------------------------------------------------------------------

def test_the_seam_helpers_on_s3(s3_stores):
    public, _ = s3_stores
    assert storage.save(public, "t/a/one.txt", b"first") == "t/a/one.txt"
    assert storage.read(public, "t/a/one.txt") == b"first" and storage.exists(public, "t/a/one.txt")
    with pytest.raises(FileExistsError):
        storage.save(public, "t/a/one.txt", b"second")
    storage.save(public, "t/a/one.txt", b"second", overwrite=True)
    with storage.open(public, "t/a/one.txt") as handle:
        assert handle.read() == b"second"
    assert storage.put(public, "t/a/one.txt", b"other") is False
    with pytest.raises(FileNotFoundError, match=f"s3://{PUBLIC}/media/t/a/missing.txt does not exist"):
        storage.read(public, "t/a/missing.txt")
    with pytest.raises(FileNotFoundError):
        storage.open(public, "t/a/missing.txt")
    storage.save_stream(public, "t/b/two.csv", iter([b"a,b\n", b"1,2\n"]))
    assert storage.listdir(public, "t") == (["a", "b"], [])
    assert sorted(storage.walk(public, "t")) == ["t/a/one.txt", "t/b/two.csv"]
    assert storage.local_copy(public, "t/b/two.csv").read_bytes() == b"a,b\n1,2\n"
    storage.delete_prefix(public, "t")
    assert list(storage.walk(public, "t")) == []
    assert storage.describe(public) == f"s3://{PUBLIC}/media"


def test_public_files_are_read_anonymously_at_their_urls_and_private_ones_never(s3_stores, s3_endpoint):
    public, private = s3_stores
    storage.save(public, "derivatives/x/anon.jpg", b"jpeg bytes", overwrite=True)
    url = storage.url(public, "derivatives/x/anon.jpg")
    assert url == f"{s3_endpoint}/{PUBLIC}/media/derivatives/x/anon.jpg"  # plain: no signature to expire
    response = requests.get(url, timeout=10)  # no credentials
    assert response.status_code == 200 and response.content == b"jpeg bytes"
    assert response.headers["Cache-Control"] == object_storage.DEFAULT_CACHE_CONTROL

    storage.save(private, "imports/secret.csv", b"a,b\n", overwrite=True)
    assert storage.read(private, "imports/secret.csv") == b"a,b\n"  # the workers read it
    with pytest.raises(ValueError, match="no URL"):
        storage.url(private, "imports/secret.csv")
    assert requests.get(f"{s3_endpoint}/{PRIVATE}/imports-and-models/imports/secret.csv", timeout=10).status_code == 403


def test_a_cdn_domain_gives_the_public_urls(s3_endpoint, settings):
    settings.STORAGES = {**settings.STORAGES, **object_storage.stores(s3_env(s3_endpoint, STORAGE_CDN_DOMAIN="cdn.example.org"))}
    assert storage.url(storage.public(), "maps/m/3/") == "https://cdn.example.org/media/maps/m/3/"


@pytest.mark.django_db
def test_derivatives_face_crops_and_a_map_export_on_s3_read_through_their_urls(s3_stores, shared_data, settings):
    from archive.images import derivative_relpath, derivative_url, ingest_location, load_derivative, ImageLimits
    from archive.models import Artwork, Face
    from tests.explorer.test_doppelganger_support import deepface_dir
    from workers import embedding
    from workers import faces as stage
    from workers.layouts import export
    from workers.ml.registry import get_embedder

    public, _ = s3_stores
    image = ingest_location(str(deepface_dir(shared_data) / "img1.jpg"), settings.DERIVATIVE_SIZES, None,
                            ImageLimits.from_settings())
    response = requests.get(derivative_url(image.sha256, 256), timeout=10)
    assert response.status_code == 200 and response.content == storage.read(public, derivative_relpath(image.sha256, 256))
    assert max(load_derivative(image.sha256, 256).size) == 256

    artwork = Artwork.objects.create(source="s3", source_id="1", title="p", sha256=image.sha256, phash=image.phash,
                                     width=image.width, height=image.height, status=Artwork.Status.OK)
    ok, vectors, errors = embedding.embed_artworks(get_embedder("test-tiny"), [(artwork.pk, image.sha256)])
    assert ok == [artwork.pk] and not errors

    result = stage.process([artwork.pk], {})
    assert result.done == [artwork.pk] and not result.errors
    face = Face.objects.get(artwork=artwork)
    with Image.open(io.BytesIO(requests.get(face.crop_url, timeout=10).content)) as crop:
        assert crop.size == (stage.CROP_SIZE, stage.CROP_SIZE)

    n = 200
    rng = np.random.default_rng(3)
    table = export.PointTable(
        artwork_ids=np.arange(1, n + 1), x=rng.normal(size=n).astype(np.float32), y=rng.normal(size=n).astype(np.float32),
        c0=np.zeros(n, int), c1=np.zeros(n, int), year=np.full(n, export.YEAR_NONE), classification=[""] * n,
        thumbs=[derivative_relpath(image.sha256, 128), face.crop] + [""] * (n - 2),
    )
    files = export.export_points(table, "s3map", 1)
    base = export.base_url("s3map", 1)
    assert base.startswith(f"http://127.0.0.1:") and base.endswith(f"/{PUBLIC}/media/maps/s3map/1/")
    assert requests.get(base + "files.json", timeout=10).json() == files
    chunk = requests.get(base + "points-000.bin.gz", timeout=10)
    data = chunk.content
    if data[:2] == b"\x1f\x8b":  # a client that did not undo a Content-Encoding: gzip
        data = gzip.decompress(data)
    assert np.array_equal(export.decode_chunk(data, n)["id"], np.arange(1, n + 1, dtype=np.uint32))
    assert requests.get(base + "atlas-0000.jpg", timeout=10).headers["Content-Type"] == "image/jpeg"
    export.prune_versions("s3map", keep=[])
    assert export.read_files("s3map", 1) is None


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_cannot_reach_the_store_gives_its_batch_back_and_marks_nothing(s3_endpoint, settings, shared_data):
    """The store unreachable from a worker: the embed batch is given back (pending, retried by the
    task and by recovery), no item is failed or done; once the store answers, the same batch runs."""
    from archive.images import ImageLimits, ingest_location
    from archive.models import Artwork, ArtworkEmbedding, Job, JobBatch, JobError
    from archive.storage import StoreUnavailable
    from tests.explorer.test_doppelganger_support import deepface_dir
    from workers import jobs

    reachable = object_storage.stores(s3_env(s3_endpoint))
    settings.STORAGES = {**settings.STORAGES, **reachable}
    images = [ingest_location(str(deepface_dir(shared_data) / f"img{i}.jpg"), settings.DERIVATIVE_SIZES, None,
                              ImageLimits.from_settings()) for i in (1, 2, 3)]
    for i, image in enumerate(images):
        Artwork.objects.create(source="s3-down", source_id=str(i), sha256=image.sha256, width=image.width,
                               height=image.height, status=Artwork.Status.OK)
    job = jobs.launch("embed", {"model": "test-tiny"}, batch_size=10, enqueue=False)
    batch = job.batches.get()

    settings.STORAGES = {**settings.STORAGES, **object_storage.stores(s3_env("http://127.0.0.1:9"))}  # nothing listens
    with pytest.raises(StoreUnavailable, match="could not be reached"):
        jobs.run_batch(batch.pk)
    batch.refresh_from_db()
    job.refresh_from_db()
    assert batch.state == JobBatch.State.PENDING and job.state != Job.State.DONE and job.done == 0
    assert not JobError.objects.filter(job=job).exists() and not ArtworkEmbedding.objects.exists()

    settings.STORAGES = {**settings.STORAGES, **reachable}
    jobs.run_batch(batch.pk)
    job.refresh_from_db()
    assert job.state == Job.State.DONE and job.done == 3 and job.failed == 0
    assert ArtworkEmbedding.objects.filter(artwork__source="s3-down").count() == 3
