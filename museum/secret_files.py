"""Secrets kept in files under var/ (the generated SECRET_KEY, the demo curator's password):
created readable by the server's user only (mode 0600, in a 0700 folder), and an older file that
was left world-readable is tightened when it is read."""
from __future__ import annotations

import os
import stat
from pathlib import Path


def write_secret(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the first byte (never readable by others)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_secret(path: Path) -> str | None:
    """The secret in ``path`` (None when absent), after making sure only its owner can read it."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if stat.S_IMODE(mode) & 0o077:
        os.chmod(path, 0o600)
    return path.read_text().strip()
