"""Serve the explorer the way ``./run demo`` does: Django's threaded development server (static
files included), with a listen backlog large enough for a burst of visitors. ``runserver`` listens
with a backlog of 10, so 50 clients connecting at once saw some connections refused
(``bench/abuse.py``); :data:`BACKLOG` waiting connections are accepted here. For public use put a
production WSGI server behind a proxy instead (docs/security.md)."""
from __future__ import annotations

BACKLOG = 128


def serve(host: str, port: int, *, backlog: int = BACKLOG) -> None:
    from django.core.management import call_command
    from django.core.servers import basehttp

    basehttp.WSGIServer.request_queue_size = backlog
    call_command("runserver", f"{host}:{port}", use_reloader=False, insecure_serving=True)
