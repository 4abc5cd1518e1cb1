"""gunicorn settings for ``./run serve`` (the explorer in production), from the environment:

* ``SERVE_BIND`` (default ``127.0.0.1:8000``; ``0.0.0.0:8000`` to listen on every interface),
* ``WEB_CONCURRENCY`` worker processes (default: 2 per core, at most 8),
* ``SERVE_THREADS`` threads per worker (default 4; the ``gthread`` worker, so a slow client or a
  search by image does not hold a whole process),
* ``SERVE_TIMEOUT`` seconds a request may take before its worker is restarted (default 60).

Anything else gunicorn knows can be given in ``GUNICORN_CMD_ARGS``. Access and error logs go to
stdout/stderr for the process manager to collect.
"""
import multiprocessing
import os

bind = os.environ.get("SERVE_BIND", "127.0.0.1:8000").split(",")
workers = int(os.environ.get("WEB_CONCURRENCY") or min(2 * multiprocessing.cpu_count(), 8))
worker_class = "gthread"
threads = int(os.environ.get("SERVE_THREADS") or 4)
timeout = int(os.environ.get("SERVE_TIMEOUT") or 60)
graceful_timeout = 30
keepalive = 5
backlog = 2048
# Each worker restarts after this many requests (with jitter), so a slow leak never grows unbounded.
max_requests = 5000
max_requests_jitter = 500
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Behind a proxy that sets X-Forwarded-For / -Proto: the addresses it may come from.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
wsgi_app = "museum.wsgi:application"
