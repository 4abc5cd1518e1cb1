"""Real Celery worker processes (``celery -A workers.celery worker``) against the real brokers on
this machine: Redis (private db 7), RabbitMQ, and the default server-less broker (kombu's
SQLAlchemy transport on the same PostgreSQL). The workers use the test database, so these tests
commit their rows (``transaction=True``)."""
from __future__ import annotations

import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from archive.images import ImageLimits, derivative_path, ingest_location
from archive.models import Artwork, ArtworkEmbedding, Job, JobBatch, JobError
from workers import jobs
from workers.celery import app
from workers.jobs.probe import round_trip
from workers.process import kill_worker, log_tail, start_workers, stop_workers

# Overridable so that two test runs on one machine use separate Redis databases.
REDIS_URL = os.environ.get("MUSEUM_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
AMQP_URL = os.environ.get("MUSEUM_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def service_up(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require(url: str, what: str) -> None:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or {"redis": 6379, "amqp": 5672}.get(parts.scheme, 0)
    if not service_up(host, port):
        pytest.skip(f"{what} is not running on {host}:{port}")


def test_database_url() -> str:
    """A libpq URL for the database this test session uses (the pytest-django test DB)."""
    d = connection.settings_dict
    options = d.get("OPTIONS") or {}
    host, port = d.get("HOST") or options.get("host") or "", d.get("PORT") or options.get("port") or ""
    auth = f"{d.get('USER') or ''}:{d.get('PASSWORD') or ''}"
    if host.startswith("/"):
        return f"postgresql://{auth}@/{d['NAME']}?host={host}" + (f"&port={port}" if port else "")
    return f"postgresql://{auth}@{host}{':' + str(port) if port else ''}/{d['NAME']}"


test_database_url.__test__ = False  # a helper, not a test


def worker_env(broker: str, **extra) -> dict[str, str]:
    return {
        "DATABASE_URL": test_database_url(),
        "CELERY_BROKER_URL": broker,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "CLIP_MODEL": "test-tiny",
        "JOB_LEASE_SECONDS": "3",
        "JOB_RECOVER_SECONDS": "1",
        "JOB_STALE_SECONDS": "4",
        "EMBED_DECODE_THREADS": "2",
        "NEIGHBOURS_AFTER_EMBED": "false",  # as in this process (tests/conftest.py); test_neighbours turns it on
        **{k: str(v) for k, v in extra.items()},
    }


@pytest.fixture
def broker():
    """Point this process's task sending at a broker URL for the test, then restore."""
    previous = app.conf.broker_url
    used = []

    def use(url: str) -> str:
        app.conf.broker_url = url
        used.append(url)
        return url

    yield use
    app.conf.broker_url = previous
    # kombu's SQLAlchemy transport keeps an engine per URL; close it so the test DB can be dropped.
    from kombu.transport.sqlalchemy import Channel

    for engine, _ in list(Channel._engines.values()):
        engine.dispose()
    Channel._engines.clear()


@pytest.fixture
def redis_broker(broker):
    require(REDIS_URL, "Redis")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield broker(REDIS_URL)
    client.flushdb()


@pytest.fixture
def workers():
    started = []

    def start(broker_url: str, **kwargs):
        env = worker_env(broker_url, **kwargs.pop("env", {}))
        procs = start_workers(["embed", "label"], 1, env=env, **kwargs)
        started.extend(procs)
        return procs

    yield start
    stop_workers(started)


def ingest(folder: Path, count: int) -> list[Artwork]:
    limits = ImageLimits.from_settings()
    rows = []
    for path in sorted(folder.glob("*.jpg"))[:count]:
        image = ingest_location(str(path), settings.DERIVATIVE_SIZES, Path(settings.MEDIA_ROOT), limits)
        rows.append(Artwork(source="celery-test", source_id=path.stem, title=path.stem, sha256=image.sha256,
                            phash=image.phash, width=image.width, height=image.height, status=Artwork.Status.OK))
    return Artwork.objects.bulk_create(rows)


@pytest.fixture
def garbage_derivative():
    saved = {}

    def damage(artwork: Artwork) -> None:
        path = derivative_path(artwork.sha256, 256)
        saved.setdefault(path, path.read_bytes())
        path.write_bytes(b"\xff\xd8 garbage, not a JPEG")

    def restore() -> None:
        for path, data in saved.items():
            path.write_bytes(data)
        saved.clear()

    damage.restore = restore
    yield damage
    restore()


def wait_final(job: Job, procs, timeout: float = 120.0) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_final:
            return job
        time.sleep(0.2)
    logs = "\n---\n".join(log_tail(p) for p in procs)
    pytest.fail(f"job did not finish in {timeout:.0f}s: {jobs.progress_line(job)}\nworker logs:\n{logs}")


def assert_complete(job: Job, artworks: list[Artwork], failed: set[int] = frozenset()) -> None:
    model_id = job.params["model_id"]
    stored = list(ArtworkEmbedding.objects.filter(model_id=model_id).values_list("artwork_id", flat=True))
    assert len(stored) == len(set(stored)), "duplicate embedding rows"
    assert set(stored) == {a.pk for a in artworks} - set(failed)
    assert job.state == Job.State.DONE, job.message
    assert (job.done, job.failed) == (len(artworks) - len(failed), len(failed))
    assert not job.batches.exclude(state=JobBatch.State.DONE).exists()


@contextmanager
def embedding_writes_blocked():
    """Hold a SHARE lock on the embeddings table from another connection: reads go on, but a
    worker's write of its batch waits, so the batch stays leased for as long as we hold it."""
    import psycopg

    with psycopg.connect(test_database_url()) as conn:
        conn.execute("LOCK TABLE archive_artworkembedding IN SHARE MODE")
        yield
        conn.rollback()


def blocked_writers() -> int:
    """Backends waiting for a lock on the embeddings table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'archive_artworkembedding'::regclass"
        )
        return cursor.fetchone()[0]


def kill_while_leased(job: Job, proc) -> int:
    """SIGKILL the worker (no warm shutdown) while it holds one of the job's batches: its write
    is held back until the worker is dead. Returns that batch's id."""
    with embedding_writes_blocked():
        deadline = time.monotonic() + 90
        while not blocked_writers():
            if time.monotonic() > deadline:
                pytest.fail(f"the worker never reached its write:\n{log_tail(proc)}")
            time.sleep(0.05)
        held = JobBatch.objects.get(job=job, state=JobBatch.State.RUNNING)
        assert held.lease_expires_at > timezone.now() and held.worker
        kill_worker(proc)
        proc.wait(timeout=10)
    return held.pk


def test_redis_worker_end_to_end(aic_dir, redis_broker, workers, garbage_derivative):
    """Embed 40 real images on a real worker process; SIGKILL it mid-job; a new worker finishes the
    job with no missing and no duplicate rows; a corrupt image is recorded and the rest of its batch
    stored; then a label job, pause/resume and cancel on the same worker."""
    from archive.models import ArtworkLabel

    artworks = ingest(aic_dir / "images", 40)
    bad = artworks[17]
    garbage_derivative(bad)
    first = workers(REDIS_URL)
    job = jobs.launch("embed", {"model": "test-tiny"}, batch_size=4)
    assert job.total == 40 and job.batches.count() == 10
    held = kill_while_leased(job, first[0])
    job.refresh_from_db()
    assert not job.is_final
    second = workers(REDIS_URL)  # recovers the held batch (lease expiry) and the lost message (stale job)
    job = wait_final(job, first + second)
    assert_complete(job, artworks, failed={bad.pk})
    error = JobError.objects.get(job=job)
    assert error.artwork_id == bad.pk and "unreadable" in error.reason
    assert str(derivative_path(bad.sha256, 256)) in error.reason
    assert JobBatch.objects.get(pk=held).attempts >= 2  # leased by the dead worker, redone by the new one
    assert job.params["untrained"] is True
    model_id = job.params["model_id"]

    # The label stage runs on the same machinery (its own queue); a small real vocabulary slice.
    # Launching embeds no prompt: the worker's first label batch does.
    from archive.models import LabelEmbedding
    from workers.labeling import load_vocabulary
    from workers.vocabulary import load_labels

    load_vocabulary(list(load_labels())[:60])
    labels = jobs.launch("label", {"model": "test-tiny"}, batch_size=10)
    assert labels.state != Job.State.FAILED, labels.message
    assert not LabelEmbedding.objects.filter(model_id=model_id).exists()
    labels = wait_final(labels, second)
    assert labels.state == Job.State.DONE and labels.done == 39 and labels.failed == 0, labels.message
    assert labels.params["texts_ready"] is True and LabelEmbedding.objects.filter(model_id=model_id).count() == 60
    top = list(ArtworkLabel.objects.filter(model_id=model_id, rank=1).values_list("artwork_id", flat=True))
    assert sorted(top) == sorted(a.pk for a in artworks if a.pk != bad.pk)
    assert ArtworkLabel.objects.filter(model_id=model_id).count() == 39 * 20  # top 20 each, no duplicates

    # Pause: the worker drains the queue but takes no batch of a paused job; resume finishes it.
    garbage_derivative.restore()
    job = jobs.launch("embed", {"model": "test-tiny"}, mode="all", batch_size=2)
    jobs.pause_job(job)
    round_trip("embed", timeout=60)  # every earlier message on the queue has been consumed
    job.refresh_from_db()
    assert job.state == Job.State.PAUSED and job.processed < 40
    paused_at = job.processed
    time.sleep(1.0)
    job.refresh_from_db()
    assert job.processed == paused_at and job.batches.filter(state=JobBatch.State.PENDING).exists()
    left = job.batches.exclude(state=JobBatch.State.DONE).count()  # before resuming: the worker starts at once
    assert jobs.resume_job(job) == left
    job = wait_final(job, second)
    assert_complete(job, artworks)

    # Cancel: a cancelled job takes no more batches and stays cancelled.
    other = jobs.launch("embed", {"model": "test-tiny"}, mode="all", batch_size=2)
    jobs.cancel_job(other)
    round_trip("embed", timeout=60)
    other.refresh_from_db()
    assert other.state == Job.State.CANCELLED and other.processed < 40
    assert jobs.resume_job(other) == 0
    assert ArtworkEmbedding.objects.filter(model_id=model_id).count() == 40


def test_rabbitmq_worker_runs_an_embed_job(aic_dir, broker, workers):
    """A small embed job end to end on a real worker through RabbitMQ."""
    require(AMQP_URL, "RabbitMQ")
    artworks = ingest(aic_dir / "images", 6)
    procs = workers(broker(AMQP_URL))
    assert round_trip("label", timeout=30) > 0
    job = jobs.launch("embed", {"model": "test-tiny"}, batch_size=2)
    job = wait_final(job, procs, timeout=90)
    assert_complete(job, artworks)


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")  # kombu on SQLAlchemy 2.1
def test_default_serverless_broker_runs_a_job(aic_dir, broker, workers):
    """The default broker needs no server: kombu's SQLAlchemy transport on the same PostgreSQL."""
    url = "sqla+" + test_database_url().replace("postgresql://", "postgresql+psycopg://", 1)
    assert settings.CELERY_BROKER_URL.startswith("sqla+postgresql+psycopg://") or "CELERY_BROKER_URL" in __import__("os").environ
    artworks = ingest(aic_dir / "images", 10)
    procs = workers(broker(url))
    job = jobs.launch("embed", {"model": "test-tiny"}, batch_size=4)
    job = wait_final(job, procs, timeout=90)
    assert_complete(job, artworks)


def test_each_stage_queue_gets_only_its_own_messages(redis_broker):
    """A message sent to one stage's queue lands in that queue only (no copies through a shared
    default exchange/routing key)."""
    import redis

    from workers.jobs.tasks import ping

    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in app.conf.task_queues:
            queue(channel).declare()
        with conn.Producer() as producer:
            ping.apply_async(args=("nowhere", "token"), queue="embed", producer=producer)
    client = redis.Redis.from_url(REDIS_URL)
    lengths = {q: client.llen(q) for q in ("ingest", "embed", "label", "faces", "maps")}
    assert lengths == {"ingest": 0, "embed": 1, "label": 0, "faces": 0, "maps": 0}


def test_ingest_workers_import_a_folder_and_recover_a_killed_worker(aic_dir, redis_broker, tmp_path):
    """An import on two real ingest workers: the plan streams the folder into batches of 3 records
    while both workers import them; one worker is SIGKILLed mid-job. The other finishes the job:
    every file stored once, no batch lost or written twice, and the files that are copies of the
    same bytes (some imported by different workers at the same time) leave exactly one original."""
    import shutil

    from archive.importers import open_source
    from workers.ingest.launch import launch

    folder = tmp_path / "archive"
    (folder / "copies").mkdir(parents=True)
    originals = sorted((aic_dir / "images").glob("*.jpg"))[:24]
    for path in originals:
        shutil.copy(path, folder / path.name)
    for path in originals[:4]:  # the same bytes under two more names each
        shutil.copy(path, folder / "copies" / path.name)
        shutil.copy(path, folder / f"z-{path.name}")
    procs = start_workers(["ingest"], 1, count=2, env=worker_env(REDIS_URL, INGEST_WORKERS=1))
    try:
        job = launch(open_source(str(folder)), extra={"batch_size": 3})
        deadline, caught = time.monotonic() + 90, None
        while time.monotonic() < deadline and caught is None:
            caught = (JobBatch.objects.filter(job=job, seq__gt=0, state=JobBatch.State.RUNNING, worker__startswith="w0-")
                      .values_list("pk", flat=True).first())
            if Job.objects.get(pk=job.pk).is_final:
                break
            time.sleep(0.005)
        kill_worker(procs[0])
        procs[0].wait(timeout=10)
        job.refresh_from_db()
        assert not job.is_final, "the job finished before a worker could be killed; make it bigger"
        job = wait_final(job, procs[1:], timeout=180)
    finally:
        stop_workers(procs)
    assert (job.state, job.total, job.done, job.failed) == (Job.State.DONE, 32, 32, 0), job.message
    batches = list(job.batches.filter(seq__gt=0).order_by("seq").values_list("start", "size", "state"))
    assert [start for start, _, _ in batches] == [sum(size for _, size, _ in batches[:i]) for i in range(len(batches))]
    assert sum(size for _, size, _ in batches) == 32 and {state for _, _, state in batches} == {"done"}
    if caught:
        assert JobBatch.objects.get(pk=caught).attempts >= 2  # the dead worker's batch was leased again
    rows = Artwork.objects.filter(source="folder")
    assert rows.count() == 32
    for path in originals[:4]:
        same = list(rows.filter(sha256=rows.get(source_id=f"archive/{path.name}").sha256).order_by("id"))
        assert len(same) == 3
        assert [a.status for a in same] == ["ok", "duplicate", "duplicate"]
        assert {a.duplicate_of_id for a in same[1:]} == {same[0].pk}
    assert rows.filter(status="ok").count() == 24 and rows.filter(status="duplicate").count() == 8


@contextmanager
def table_writes_blocked(table: str):
    """Hold a SHARE lock on ``table`` from another connection: reads go on, writes wait."""
    import psycopg

    with psycopg.connect(test_database_url()) as conn:
        conn.execute(f"LOCK TABLE {table} IN SHARE MODE")
        yield
        conn.rollback()


def test_a_layout_job_survives_sigkill_of_its_worker(aic_dir, redis_broker):
    """A layout job is a one-batch stage with a lease like every other kind: its worker is SIGKILLed
    while it writes the map's points; recovery (lease expiry) hands the batch to a new worker, which
    builds the map; the job ends DONE with every point written once."""
    from archive import vectors
    from archive.models import Layout, LayoutPoint
    from workers.layouts import build
    from workers.ml.registry import activate, get_embedder, register

    artworks = ingest(aic_dir / "images", 30)
    model = register(get_embedder("test-tiny"))
    activate(model)
    rng = np.random.default_rng(5)
    vectors.copy_rows(
        "archive_artworkembedding", ["artwork_id", "model_id", "vector", "created_at"],
        [(a.pk, model.pk, v, "now()") for a, v in zip(artworks, rng.normal(size=(len(artworks), model.dim)).astype("float32"))],
        conflict=["artwork_id", "model_id"], update=["vector"],
    )
    env = worker_env(REDIS_URL)
    first = start_workers(["maps"], 1, env=env)
    procs = list(first)
    try:
        with table_writes_blocked(LayoutPoint._meta.db_table):
            job = build.request("tsne", {})
            build.send(job)
            deadline = time.monotonic() + 120
            while not _waiting_on(LayoutPoint._meta.db_table):
                if time.monotonic() > deadline:
                    pytest.fail(f"the layout worker never reached its write:\n{log_tail(first[0])}")
                time.sleep(0.05)
            held = JobBatch.objects.get(job=job)
            assert held.state == JobBatch.State.RUNNING and held.lease_expires_at > timezone.now()
            kill_worker(first[0])
            first[0].wait(timeout=10)
        job.refresh_from_db()
        assert not job.is_final
        procs += start_workers(["maps"], 1, env=env)
        job = wait_final(job, procs, timeout=180)
    finally:
        stop_workers(procs)
    assert job.state == Job.State.DONE, job.message
    assert job.message.startswith("built t-SNE map"), job.message
    assert JobBatch.objects.get(job=job).attempts >= 2  # the dead worker's lease ran out; leased again
    layout = Layout.objects.get(slug="tsne")
    points = list(LayoutPoint.objects.filter(layout=layout).values_list("artwork_id", flat=True))
    assert len(points) == len(set(points)) == 30 and layout.point_count == 30


def _waiting_on(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass", [table])
        return cursor.fetchone()[0]


def restart_database() -> None:
    """Restart the embedded PostgreSQL under the running workers (a fast shutdown: every
    connection is cut). pg_ctl writes to files, never to pipes (it hangs on a pipe)."""
    from museum import embedded_pg

    server = embedded_pg._server
    if server is None:
        pytest.skip("the tests use an external DATABASE_URL: its server cannot be restarted from here")
    from pgserver._commands import pg_ctl
    from pgserver.utils import PostmasterInfo

    pg_ctl(["-w", "-m", "fast", "-l", str(server.log), "restart"], pgdata=server.pgdata, user=server.system_user, timeout=120)
    # pgserver stops the server it started when the test run ends, by its process: tell it the new one.
    server._postmaster_info = PostmasterInfo.read_from_pgdata(server.pgdata)
    connection.close()


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")  # kombu on SQLAlchemy 2.1
@pytest.mark.parametrize("transport", ["default", "redis"])
def test_workers_recover_after_the_database_restarts(aic_dir, broker, transport, tmp_path):
    """PostgreSQL restarts in the middle of an import on a live ingest worker, with the default
    server-less broker (which lives in that database) and with Redis. The worker's consumer and
    producer reconnect by themselves and the job ends DONE with every record imported once; no new
    worker is started."""
    import shutil

    from archive.importers import open_source
    from workers.ingest.launch import launch

    if transport == "redis":
        require(REDIS_URL, "Redis")
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        url = broker(REDIS_URL)
    else:
        url = broker("sqla+" + test_database_url().replace("postgresql://", "postgresql+psycopg://", 1))
    images = sorted((aic_dir / "images").glob("*.jpg"))
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, part in ((first, images[:30]), (second, images[30:40])):
        folder.mkdir()
        for path in part:
            shutil.copy(path, folder / path.name)
    procs = start_workers(["ingest"], 1, env=worker_env(url, INGEST_WORKERS=1))
    try:
        job = launch(open_source(str(first)), extra={"batch_size": 2})
        deadline = time.monotonic() + 120
        while Job.objects.get(pk=job.pk).done < 4:
            if time.monotonic() > deadline or Job.objects.get(pk=job.pk).is_final:
                pytest.fail(f"the import did not get going:\n{log_tail(procs[0])}")
            time.sleep(0.1)
        restart_database()
        job = wait_final(job, procs, timeout=240)
        # The next import is planned on the same worker, whose producer sends its record batches
        # through the connections it had before the restart.
        after = wait_final(launch(open_source(str(second)), extra={"batch_size": 2}), procs, timeout=120)
    finally:
        stop_workers(procs)
    assert (job.state, job.total, job.done, job.failed) == (Job.State.DONE, 30, 30, 0), job.message
    assert (after.state, after.total, after.done, after.failed) == (Job.State.DONE, 10, 10, 0), after.message
    assert Artwork.objects.filter(source="folder").count() == 40
    assert not JobBatch.objects.filter(job__in=[job, after]).exclude(state=JobBatch.State.DONE).exists()


def test_workers_end_when_the_process_that_started_them_is_killed(tmp_path):
    """``./run demo`` starts workers in their own sessions (Ctrl-C in the terminal does not reach
    them); if the demo itself is killed, even by SIGKILL, its workers must not live on."""
    import signal
    import subprocess
    import sys

    require(REDIS_URL, "Redis")
    pid_file = tmp_path / "worker.pid"
    script = (
        "import os, sys, time\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'museum.settings')\n"
        "from workers.process import start_workers\n"
        f"procs = start_workers(['ingest'], 1, env={worker_env(REDIS_URL)!r})\n"
        f"open({str(pid_file)!r}, 'w').write(str(procs[0].pid))\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=settings.BASE_DIR)
    try:
        deadline = time.monotonic() + 120
        while not pid_file.exists() and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.2)
        assert pid_file.exists(), "the worker did not start"
        worker_pid = int(pid_file.read_text())
        os.kill(worker_pid, 0)  # running
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.kill(worker_pid, 0)
            except ProcessLookupError:
                break
            # A zombie (finished, not yet reaped by init) counts as ended.
            if Path(f"/proc/{worker_pid}/stat").read_text().split()[2] == "Z":
                break
            time.sleep(0.2)
        else:
            os.killpg(worker_pid, signal.SIGKILL)
            pytest.fail("the worker outlived the process that started it")
    finally:
        if parent.poll() is None:
            parent.kill()
