"""Start and stop Celery worker processes (for ``./run demo``, tests and benchmarks). The recovery
watchdog that runs inside every worker is :mod:`workers.jobs.watchdog`."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterable, Mapping

from workers.jobs.registry import QUEUES as ALL_QUEUES

log = logging.getLogger(__name__)
BASE_DIR = Path(__file__).resolve().parent.parent


def worker_command(queues: Iterable[str], concurrency: int, *, name: str, pool: str | None = None, loglevel: str = "INFO") -> list[str]:
    pool = pool or ("solo" if concurrency == 1 else "prefork")
    cmd = [
        sys.executable, "-m", "celery", "-A", "workers.celery", "worker",
        "-Q", ",".join(queues), "-n", name, "--loglevel", loglevel, "-O", "fair",
        "--without-gossip", "--without-mingle", "--pool", pool,
    ]
    if pool != "solo":
        cmd += ["--concurrency", str(concurrency)]
    return cmd


def _end_with_parent() -> None:
    """Run in the child before exec: on Linux, ask the kernel to send SIGTERM (Celery's warm
    shutdown) when the process that started the worker dies, even by SIGKILL, so a killed demo or
    test run never leaves workers behind. Elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_workers(
    queues: Iterable[str] | None = None,
    concurrency: int = 1,
    *,
    count: int = 1,
    env: Mapping[str, str] | None = None,
    pool: str | None = None,
    wait: bool = True,
    timeout: float = 120.0,
    logfile: str | Path | None = None,
    loglevel: str = "INFO",
) -> list[subprocess.Popen]:
    """Start ``count`` worker processes consuming ``queues`` (default: all) with ``concurrency``
    task slots each (pool ``solo`` for 1, else ``prefork``). With ``wait`` return once each is
    ready to take tasks (raises RuntimeError with the log tail if one exits first). Each worker is
    its own process group, so :func:`stop_workers` also ends its pool children.

    ``env`` is added to this process's environment (e.g. DATABASE_URL, CELERY_BROKER_URL)."""
    queues = list(queues or ALL_QUEUES)
    procs: list[subprocess.Popen] = []
    for index in range(count):
        ready = Path(tempfile.mkstemp(prefix="museum-worker-", suffix=".ready")[1])
        ready.unlink()
        full_env = {**os.environ, **(env or {}), "MUSEUM_WORKER_READY_FILE": str(ready), "PYTHONUNBUFFERED": "1"}
        if logfile:
            log_path = Path(str(logfile).replace("%i", str(index)))
        else:
            log_path = Path(tempfile.mkstemp(prefix="museum-worker-", suffix=".log")[1])
        log_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(log_path, "ab")
        name = f"w{index}-{os.getpid()}-{int(time.time() * 1000) % 100000}@%h"
        proc = subprocess.Popen(
            worker_command(queues, concurrency, name=name, pool=pool, loglevel=loglevel),
            cwd=BASE_DIR, env=full_env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_end_with_parent,
        )
        handle.close()
        proc.ready_file = ready  # type: ignore[attr-defined]
        proc.log_path = log_path  # type: ignore[attr-defined]
        procs.append(proc)
    if wait:
        for proc in procs:
            wait_ready(proc, timeout=timeout)
    return procs


def log_tail(proc: subprocess.Popen, lines: int = 40) -> str:
    path = getattr(proc, "log_path", None)
    if not path or not Path(path).exists():
        return ""
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


def wait_ready(proc: subprocess.Popen, timeout: float = 120.0) -> None:
    ready = getattr(proc, "ready_file")
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode} before it was ready:\n{log_tail(proc)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"worker not ready after {timeout:.0f}s:\n{log_tail(proc)}")
        time.sleep(0.2)


def kill_worker(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to the worker's process group (the worker and its pool children)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass


def stop_workers(procs: Iterable[subprocess.Popen], timeout: float = 20.0) -> None:
    """Warm shutdown (SIGTERM: finish the current batch), then SIGKILL what is left."""
    procs = list(procs)
    for proc in procs:
        kill_worker(proc, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            kill_worker(proc, signal.SIGKILL)
            proc.wait(timeout=10)
        ready = getattr(proc, "ready_file", None)
        if ready is not None and ready.exists():
            ready.unlink()
