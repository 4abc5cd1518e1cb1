"""Where the references in a source (image paths, child manifests, sidecars) may point.

A source an operator gives on the command line is *local*: its root is its folder (a folder
import's folder, a metadata file's or a local manifest's folder), and its references may name
files inside that root, or inside an extra root the ``IMPORT_ALLOWED_ROOTS`` setting lists.
Paths are resolved first (symlinks followed, ``..`` collapsed), so a symlink or a path that leaves
the root is refused. A *remote* source (a manifest or metadata file fetched over HTTP, the AIC
API) has no root: its references may only be http(s) URLs, which :mod:`archive.fetch` fetches
with its own address checks. ``file://`` URLs count as local paths; any other scheme is refused.

The dashboard and the API may start imports too (``open_source(..., operator=False)``): their
location must then lie inside ``IMPORT_ALLOWED_ROOTS``, or be an http(s) URL.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_WEB = ("http://", "https://")


class Refused(ValueError):
    """A reference the source policy does not allow; ``str(exc)`` says why and what to change."""


def extra_roots() -> list[Path]:
    from django.conf import settings

    return [Path(os.path.realpath(r)) for r in getattr(settings, "IMPORT_ALLOWED_ROOTS", ()) or () if str(r).strip()]


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def local_path(reference: str) -> str | None:
    """The local path a reference names ("" scheme or file://), or None for http(s) URLs.
    Refused for any other scheme (ftp:, data:, gopher:, ...)."""
    if reference.startswith(_WEB):
        return None
    if reference.startswith("file://"):
        return reference[7:] or "/"
    match = _SCHEME.match(reference)
    if match and len(match.group(1)) > 1:  # one letter: a Windows drive, i.e. a path
        raise Refused(f"only http(s) URLs and files are read, not {match.group(1)}: URLs ({reference[:200]})")
    return reference


class SourcePolicy:
    """The rule for one source. ``roots`` empty: a remote source (only http(s) references)."""

    def __init__(self, roots: list[str] | tuple[str, ...] | None = None):
        self.roots = [Path(os.path.realpath(r)) for r in roots or ()]

    @classmethod
    def for_root(cls, root: str | Path) -> "SourcePolicy":
        return cls([str(root)])

    @property
    def is_local(self) -> bool:
        return bool(self.roots)

    def root_list(self) -> list[str]:
        """What a Record carries so the reading step applies the same rule."""
        return [str(r) for r in self.roots]

    def check(self, reference: str, *, base: str | Path | None = None) -> str:
        """The location to read for ``reference``: an http(s) URL unchanged, a local path resolved
        (relative ones against ``base``, else the first root). Refused when the rule forbids it."""
        path = local_path(reference)
        if path is None:
            return reference
        if not self.roots:
            raise Refused(
                f"a remote source may reference only http(s) URLs, not the local file {reference[:200]!r}"
            )
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = Path(base or self.roots[0]) / candidate
        resolved = Path(os.path.realpath(candidate))
        allowed = self.roots + extra_roots()
        if not _inside(resolved, allowed):
            via = f" (it resolves to {resolved})" if str(resolved) != os.path.normpath(str(candidate)) else ""
            raise Refused(
                f"{reference[:200]} is outside the source's folder {self.roots[0]}{via}; "
                "only files inside it are read (add a folder to IMPORT_ALLOWED_ROOTS to allow it)"
            )
        return str(resolved)


def check_operator_location(location: str, operator: bool) -> None:
    """An import started from the dashboard or the API (``operator`` False) may name a local path
    only inside ``IMPORT_ALLOWED_ROOTS``; the command line may name any."""
    if operator or location.startswith(_WEB):
        return
    path = local_path(location)
    resolved = Path(os.path.realpath(path))
    if not _inside(resolved, extra_roots()):
        raise Refused(
            f"{location} is a local path: imports started from the dashboard or the API read local files only "
            "inside IMPORT_ALLOWED_ROOTS (or import it on the command line: manage.py import PATH)"
        )
