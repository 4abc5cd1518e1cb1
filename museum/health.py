"""Liveness and readiness for a process manager or load balancer.

``/healthz`` answers 200 while the process serves requests (it touches nothing). ``/readyz`` checks
what a request needs: the database, the broker (jobs started from the dashboard are sent there)
and the public store (images are read from it); 200 when all answer, else 503. Both return JSON
``{"ok": bool, "checks": {name: "ok" | error}}``, so an operator sees which service is missing.
"""
from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.cache import never_cache

TIMEOUT = 3  # seconds each check may take


def _database() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker() -> None:
    from workers.jobs.app import app

    with app.connection_for_write(connect_timeout=TIMEOUT) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=TIMEOUT)


def _store() -> None:
    from archive import storage

    storage.public().exists("readyz-probe")


CHECKS = {"database": _database, "broker": _broker, "store": _store}


@never_cache
def healthz(request):
    return JsonResponse({"ok": True})


@never_cache
def readyz(request):
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # any failure means not ready; say which and why
            results[name] = f"{exc.__class__.__name__}: {str(exc)[:300]}"
    ok = all(value == "ok" for value in results.values())
    return JsonResponse({"ok": ok, "checks": results}, status=200 if ok else 503)
