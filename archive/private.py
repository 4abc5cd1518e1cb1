"""Files the server keeps for itself: never under ``MEDIA_ROOT`` (served publicly) nor the static
files. Fetched metadata files and API exports live here (``PRIVATE_ROOT``, default ``var/private``),
readable by the server's user only."""
from __future__ import annotations

import os
from pathlib import Path


def folder(name: str) -> Path:
    """``PRIVATE_ROOT/name``, created with mode 0700 (and the root too)."""
    from django.conf import settings

    root = Path(settings.PRIVATE_ROOT)
    path = root / name
    for part in (root, path):
        part.mkdir(parents=True, exist_ok=True)
        os.chmod(part, 0o700)
    return path
