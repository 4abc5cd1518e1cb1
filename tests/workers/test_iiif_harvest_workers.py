"""A Change Discovery harvest sent to a real ingest worker (``harvest --async``): the manifests the
stream lists are imported by the worker process, fetched from a local server, and the harvest
state records the stream's newest activity."""
from __future__ import annotations

import json

import pytest
from django.test import Client

from archive.models import Artwork, HarvestState, Job
from tests.archive.conftest import http_dir, run_import  # noqa: F401 (http_dir is a fixture)
from tests.explorer.test_iiif_harvest import activity, write_stream
from tests.explorer.test_iiif_roundtrip import save
from tests.workers.test_celery import REDIS_URL, broker, redis_broker, wait_final, worker_env  # noqa: F401 (fixtures)
from workers.ingest.harvest import harvest
from workers.process import start_workers, stop_workers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_async_harvest_runs_on_an_ingest_worker(aic_dir, http_dir, redis_broker, tmp_path, settings):  # noqa: F811
    www, base = http_dir
    settings.MEDIA_ROOT = tmp_path / "media-one"
    run_import(aic_dir, limit=3)
    settings.IIIF_BASE_URL = base
    client = Client()
    urls = [save(www, f"{base}/iiif/artwork/{pk}/manifest.json", base, client)["id"]
            for pk in Artwork.objects.order_by("id").values_list("id", flat=True)]
    (www / "media").symlink_to(settings.MEDIA_ROOT, target_is_directory=True)
    Artwork.objects.all().delete()
    settings.MEDIA_ROOT = tmp_path / "media-two"
    stream = write_stream(www, base, [[activity(i, "Create", url, "2026-11-01T10:00:00Z") for i, url in enumerate(urls)]])
    procs = start_workers(["ingest"], 1, env=worker_env(REDIS_URL, INGEST_WORKERS=1, FETCH_ALLOWED_HOSTS="127.0.0.1"))
    try:
        result = harvest(stream, run_here=False)
        assert result.stats is None and result.job.params["harvest"]["stream"] == stream
        job = wait_final(result.job, procs, timeout=180)
    finally:
        stop_workers(procs)
    assert (job.state, job.done, job.failed) == (Job.State.DONE, 3, 0), job.message
    assert set(Artwork.objects.values_list("iiif_manifest_url", flat=True)) == set(urls)
    state = HarvestState.objects.get(stream_url=stream)
    assert state.last_job_id == job.pk and state.last_end_time.isoformat() == "2026-11-01T10:00:00+00:00"
    assert json.loads(json.dumps(state.last_counts))["fetch"] == 3
