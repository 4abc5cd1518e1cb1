"""Export a layout as immutable static files for the browser.

Under ``MEDIA_ROOT/maps/<slug>/<version>/`` (a new version number for every export, so every file
can be cached forever):

* ``points-NNN.bin.gz`` — row-group chunks of up to CHUNK_ROWS points, each the columns one after
  another as little-endian typed arrays (4-byte columns first, so every column is aligned):
  ``id`` uint32 (artwork id), ``x``/``y`` uint16 (quantised to the layout's bounds), ``year``
  int16 (-32768: unknown), ``c0``/``c1`` uint8 (region at the coarse/fine level), ``cls`` uint8
  (classification code into ``files.json``'s list; 255: other/none). Gzipped.
  Rows are in Z-order (Morton) of their coordinates at build time, so a chunk and an atlas sheet
  cover a compact patch of the map; points placed later are appended at the end.
* ``atlas-NNNN.jpg`` — thumbnail sprite sheets: SHEET px square, CELL px cells, row i of the point
  data is cell ``i % PER_SHEET`` of sheet ``i // PER_SHEET``. Sheets with no image are not written.
* ``files.json`` — what the above are (the manifest endpoint serves it with the layout's regions).
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

CHUNK_ROWS = 131_072
CELL = 64
SHEET = 1024
PER_ROW = SHEET // CELL
PER_SHEET = PER_ROW * PER_ROW
WORLD = 1024.0  # the browser's world coordinates span [0, WORLD] on the longer axis
YEAR_NONE = -32768
CLS_OTHER = 255
COLUMNS = [("id", "uint32"), ("x", "uint16"), ("y", "uint16"), ("year", "int16"), ("c0", "uint8"), ("c1", "uint8"), ("cls", "uint8")]
BACKGROUND = (34, 34, 34)


@dataclass
class PointTable:
    """Everything exported per point, in export order."""

    artwork_ids: np.ndarray  # int64
    x: np.ndarray  # float32
    y: np.ndarray
    c0: np.ndarray  # int
    c1: np.ndarray
    year: np.ndarray  # int, YEAR_NONE for unknown
    classification: list[str]
    thumbs: list[str]  # absolute image path per point, "" for none

    def __len__(self) -> int:
        return len(self.artwork_ids)


def maps_root(media_root=None) -> Path:
    if media_root is None:
        from django.conf import settings

        media_root = settings.MEDIA_ROOT
    return Path(media_root) / "maps"


def version_dir(slug: str, version: int, media_root=None) -> Path:
    return maps_root(media_root) / slug / str(version)


def morton_order(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices sorting points along a Z-order curve of their (quantised) coordinates."""
    qx, qy, _ = quantise(x, y)

    def spread(v: np.ndarray) -> np.ndarray:
        v = v.astype(np.uint32)
        v = (v | (v << 8)) & 0x00FF00FF
        v = (v | (v << 4)) & 0x0F0F0F0F
        v = (v | (v << 2)) & 0x33333333
        v = (v | (v << 1)) & 0x55555555
        return v

    return np.argsort(spread(qx) | (spread(qy) << 1), kind="stable")


def bounds_of(x: np.ndarray, y: np.ndarray) -> list[float]:
    if not len(x):
        return [0.0, 0.0, 1.0, 1.0]
    return [float(x.min()), float(y.min()), float(x.max()), float(y.max())]


def quantise(x: np.ndarray, y: np.ndarray, bounds: list[float] | None = None):
    """uint16 coordinates over the bounds with a common scale (the aspect ratio is kept)."""
    b = bounds or bounds_of(x, y)
    span = max(b[2] - b[0], b[3] - b[1], 1e-9)
    qx = np.clip(np.rint((x - b[0]) / span * 65535.0), 0, 65535).astype(np.uint16)
    qy = np.clip(np.rint((y - b[1]) / span * 65535.0), 0, 65535).astype(np.uint16)
    return qx, qy, b


def classification_codes(values: list[str]) -> tuple[np.ndarray, list[str]]:
    """uint8 codes for the 255 most common classifications (255: other or none)."""
    from collections import Counter

    common = [v for v, _ in Counter(v for v in values if v).most_common(CLS_OTHER)]
    index = {v: i for i, v in enumerate(common)}
    return np.fromiter((index.get(v, CLS_OTHER) for v in values), dtype=np.uint8, count=len(values)), common


def encode_chunk(columns: dict[str, np.ndarray]) -> bytes:
    return b"".join(np.ascontiguousarray(columns[name], dtype=np.dtype(dtype).newbyteorder("<")).tobytes() for name, dtype in COLUMNS)


def decode_chunk(data: bytes, count: int) -> dict[str, np.ndarray]:
    """Inverse of :func:`encode_chunk` (after gunzip); used by tests and the benchmark."""
    out, offset = {}, 0
    for name, dtype in COLUMNS:
        dt = np.dtype(dtype).newbyteorder("<")
        out[name] = np.frombuffer(data, dtype=dt, count=count, offset=offset)
        offset += dt.itemsize * count
    if offset != len(data):
        raise ValueError(f"chunk has {len(data)} bytes, expected {offset}")
    return out


def _cell_image(path: str) -> Image.Image | None:
    try:
        with Image.open(path) as im:
            im.draft("RGB", (CELL, CELL))
            im = im.convert("RGB")
            im.thumbnail((CELL, CELL))
            return im
    except (OSError, ValueError):
        return None


def write_sheet(paths: list[str], target: Path, quality: int = 75) -> bool:
    """One sprite sheet from up to PER_SHEET image paths; False (nothing written) if none loads."""
    sheet = None
    for i, path in enumerate(paths):
        if not path:
            continue
        im = _cell_image(path)
        if im is None:
            continue
        if sheet is None:
            sheet = Image.new("RGB", (SHEET, SHEET), BACKGROUND)
        col, row = i % PER_ROW, i // PER_ROW
        sheet.paste(im, (col * CELL + (CELL - im.width) // 2, row * CELL + (CELL - im.height) // 2))
    if sheet is None:
        return False
    rows_used = (len(paths) + PER_ROW - 1) // PER_ROW
    sheet = sheet.crop((0, 0, SHEET, rows_used * CELL)) if rows_used < PER_ROW else sheet
    sheet.save(target, "JPEG", quality=quality, optimize=True)
    return True


def export_points(table: PointTable, slug: str, version: int, *, reuse: tuple[Path, int] | None = None,
                  media_root=None, atlases: bool = True, progress=None, threads: int = 2, extra: dict | None = None) -> dict:
    """Write one immutable version of a layout's files; returns the ``files.json`` content.

    ``reuse=(previous version dir, rows unchanged)`` hard-links atlas sheets whose rows did not
    change (incremental placement only appends rows).
    """
    final = version_dir(slug, version, media_root)
    tmp = final.with_name(f".{version}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    n = len(table)
    qx, qy, bounds = quantise(table.x, table.y)
    cls, cls_names = classification_codes(table.classification)
    columns = {
        "id": table.artwork_ids.astype(np.uint32),
        "x": qx,
        "y": qy,
        "year": np.clip(table.year, -32768, 32767).astype(np.int16),
        "c0": np.clip(table.c0, 0, 255).astype(np.uint8),
        "c1": np.clip(table.c1, 0, 255).astype(np.uint8),
        "cls": cls,
    }
    chunks = []
    for i, start in enumerate(range(0, n, CHUNK_ROWS)):
        end = min(start + CHUNK_ROWS, n)
        part = {k: v[start:end] for k, v in columns.items()}
        name = f"points-{i:03d}.bin.gz"
        with open(tmp / name, "wb") as fh:
            fh.write(gzip.compress(encode_chunk(part), compresslevel=9, mtime=0))
        chunks.append({
            "file": name,
            "start": start,
            "count": end - start,
            "bytes": (tmp / name).stat().st_size,
            "bounds": [int(part["x"].min()), int(part["y"].min()), int(part["x"].max()), int(part["y"].max())],
        })
    sheets: list[int] = []
    if atlases and n:
        n_sheets = (n + PER_SHEET - 1) // PER_SHEET
        reuse_dir, reuse_rows = reuse if reuse else (None, 0)
        full_reusable = reuse_rows // PER_SHEET

        def one(s: int) -> int | None:
            target = tmp / f"atlas-{s:04d}.jpg"
            if reuse_dir is not None and s < full_reusable:
                source = reuse_dir / target.name
                if source.exists():
                    os.link(source, target)
                    return s
                if not any(table.thumbs[s * PER_SHEET : (s + 1) * PER_SHEET]):
                    return None
            ok = write_sheet(table.thumbs[s * PER_SHEET : (s + 1) * PER_SHEET], target)
            return s if ok else None

        with ThreadPoolExecutor(max_workers=threads) as pool:
            for s in pool.map(one, range(n_sheets)):
                if s is not None:
                    sheets.append(s)
                if progress:
                    progress()
    files = {
        "version": version,
        "count": n,
        "bounds": bounds,
        "world": WORLD,
        "columns": [{"name": name, "type": dtype} for name, dtype in COLUMNS],
        "chunks": chunks,
        "atlas": {"cell": CELL, "sheet": SHEET, "per_row": PER_ROW, "per_sheet": PER_SHEET, "sheets": sorted(sheets),
                  "pattern": "atlas-{sheet:04d}.jpg"},
        "classifications": cls_names,
        "year_none": YEAR_NONE,
        "cls_other": CLS_OTHER,
        **(extra or {}),
    }
    (tmp / "files.json").write_text(json.dumps(files, separators=(",", ":")))
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    return files


def prune_versions(slug: str, keep: list[int], media_root=None) -> None:
    """Delete export versions other than ``keep`` (clients holding an older manifest may still
    fetch the previous version, so callers keep the current and the previous one)."""
    root = maps_root(media_root) / slug
    if not root.exists():
        return
    for child in root.iterdir():
        if child.is_dir() and child.name.isdigit() and int(child.name) not in keep:
            shutil.rmtree(child, ignore_errors=True)


def read_files(slug: str, version: int, media_root=None) -> dict | None:
    path = version_dir(slug, version, media_root) / "files.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
