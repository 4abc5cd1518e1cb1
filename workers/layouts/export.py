"""Export a layout as immutable static files for the browser.

Under ``maps/<slug>/<version>/`` of the public store (:mod:`archive.storage`; a new version number
for every export, so every file can be cached forever). Every file of a version is written through
the storage seam, ``files.json`` last; a version is never renamed or rewritten once the layout
serves it (``Layout.export_version`` says which one it serves):

* ``points-NNN.bin.gz`` — row-group chunks of up to CHUNK_ROWS points, each the columns one after
  another as little-endian typed arrays (4-byte columns first, so every column is aligned):
  ``id`` uint32 (artwork id), ``x``/``y`` uint16 (quantised to the layout's bounds), ``year``
  int16 (-32768: unknown), ``colour`` uint16 (the artwork's dominant colour, the largest of its
  stored palette, as sRGB in RGB565: 5 bits red, 6 green, 5 blue; 0: no palette, so a true black
  is written as 1), ``c0``/``c1`` uint8 (region at the coarse/fine level), ``cls`` uint8
  (classification code into ``files.json``'s list; 255: other/none). Gzipped.
  ``files.json`` lists the columns with their types, and the browser reads the columns it is
  given: an export made before the ``colour`` column simply has no colour to show.
  Rows are in Z-order (Morton) of their coordinates at build time, so a chunk and an atlas sheet
  cover a compact patch of the map; points placed later are appended at the end.
* ``atlas-NNNN.jpg`` — thumbnail sprite sheets: SHEET px square, CELL px cells, row i of the point
  data is cell ``i % PER_SHEET`` of sheet ``i // PER_SHEET``. Sheets with no image are not written.
* ``files.json`` — what the above are (the manifest endpoint serves it with the layout's regions).
"""
from __future__ import annotations

import gzip
import io
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from archive import storage

CHUNK_ROWS = 131_072
CELL = 64
SHEET = 1024
PER_ROW = SHEET // CELL
PER_SHEET = PER_ROW * PER_ROW
WORLD = 1024.0  # the browser's world coordinates span [0, WORLD] on the longer axis
YEAR_NONE = -32768
CLS_OTHER = 255
COLOUR_NONE = 0
COLUMNS = [("id", "uint32"), ("x", "uint16"), ("y", "uint16"), ("year", "int16"), ("colour", "uint16"),
           ("c0", "uint8"), ("c1", "uint8"), ("cls", "uint8")]
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
    thumbs: list[str]  # image per point, a name in the thumbnails' store ("" for none)
    colour: np.ndarray | None = None  # uint16 RGB565 dominant colour per point (COLOUR_NONE: no palette)

    def __len__(self) -> int:
        return len(self.artwork_ids)


MAPS_DIR = "maps"


def version_prefix(slug: str, version: int) -> str:
    """The store prefix of one export version: ``maps/<slug>/<version>``."""
    return f"{MAPS_DIR}/{slug}/{int(version)}"


def version_dir(slug: str, version: int, media_root=None) -> Path | None:
    """The local folder of an export version where the store is a local folder (else None)."""
    return storage.local_path(storage.resolve(media_root), version_prefix(slug, version))


def base_url(slug: str, version: int) -> str:
    """The URL the browser fetches a version's files under (ends with "/")."""
    return storage.url(storage.public(), version_prefix(slug, version) + "/")


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


def rgb565(rgb) -> np.ndarray:
    """sRGB uint8 colours (shape (n, 3)) packed as RGB565 uint16, never COLOUR_NONE (a true black
    becomes 1, a blue one step above black: no eye tells them apart)."""
    rgb = np.asarray(rgb, dtype=np.uint16).reshape(-1, 3)
    packed = ((rgb[:, 0] >> 3) << 11) | ((rgb[:, 1] >> 2) << 5) | (rgb[:, 2] >> 3)
    return np.where(packed == COLOUR_NONE, 1, packed).astype(np.uint16)


def rgb565_to_rgb(packed) -> np.ndarray:
    """Inverse of :func:`rgb565` as sRGB uint8 (n, 3), each channel's bits repeated into the low
    bits (31 -> 255), as the browser decodes them."""
    v = np.asarray(packed, dtype=np.uint16).astype(np.uint32)
    r, g, b = (v >> 11) & 31, (v >> 5) & 63, v & 31
    return np.stack([(r << 3) | (r >> 2), (g << 2) | (g >> 4), (b << 3) | (b >> 2)], axis=-1).astype(np.uint8)


def encode_chunk(columns: dict[str, np.ndarray]) -> bytes:
    return b"".join(np.ascontiguousarray(columns[name], dtype=np.dtype(dtype).newbyteorder("<")).tobytes() for name, dtype in COLUMNS)


def decode_chunk(data: bytes, count: int, columns: list | None = None) -> dict[str, np.ndarray]:
    """Inverse of :func:`encode_chunk` (after gunzip); used by tests and the benchmark.
    ``columns``: the ``files.json`` column list of the version read (COLUMNS by default)."""
    out, offset = {}, 0
    pairs = COLUMNS if columns is None else [(c["name"], c["type"]) if isinstance(c, dict) else tuple(c) for c in columns]
    for name, dtype in pairs:
        dt = np.dtype(dtype).newbyteorder("<")
        out[name] = np.frombuffer(data, dtype=dt, count=count, offset=offset)
        offset += dt.itemsize * count
    if offset != len(data):
        raise ValueError(f"chunk has {len(data)} bytes, expected {offset}")
    return out


def _cell_image(store, name: str) -> Image.Image | None:
    try:
        with storage.open(store, name) as handle, Image.open(handle) as im:
            im.draft("RGB", (CELL, CELL))
            im = im.convert("RGB")
            im.thumbnail((CELL, CELL))
            return im
    except (OSError, ValueError):
        return None


def make_sheet(names: list[str], store=None, quality: int = 75) -> bytes | None:
    """One sprite sheet (JPEG bytes) from up to PER_SHEET images of ``store`` (the public one by
    default); None if none loads."""
    store = storage.resolve(store)
    sheet = None
    for i, name in enumerate(names):
        if not name:
            continue
        im = _cell_image(store, name)
        if im is None:
            continue
        if sheet is None:
            sheet = Image.new("RGB", (SHEET, SHEET), BACKGROUND)
        col, row = i % PER_ROW, i // PER_ROW
        sheet.paste(im, (col * CELL + (CELL - im.width) // 2, row * CELL + (CELL - im.height) // 2))
    if sheet is None:
        return None
    rows_used = (len(names) + PER_ROW - 1) // PER_ROW
    sheet = sheet.crop((0, 0, SHEET, rows_used * CELL)) if rows_used < PER_ROW else sheet
    out = io.BytesIO()
    sheet.save(out, "JPEG", quality=quality, optimize=True)
    return out.getvalue()


def export_points(table: PointTable, slug: str, version: int, *, reuse: tuple[int, int] | None = None,
                  media_root=None, thumbs_store=None, atlases: bool = True, progress=None, threads: int = 2,
                  extra: dict | None = None) -> dict:
    """Write one immutable version of a layout's files; returns the ``files.json`` content.

    ``media_root``: the store (or local folder) written to, the public store by default;
    ``thumbs_store``: where ``table.thumbs`` are, the public store by default.
    ``reuse=(previous version, rows unchanged)`` copies (hard-links, on a local folder) atlas
    sheets whose rows did not change (incremental placement only appends rows). What a crashed
    earlier attempt at this version left (never served: the layout still names the previous one)
    is removed first; ``files.json`` is written last, so a version with a manifest is complete.
    """
    store = storage.resolve(media_root)
    thumbs = storage.resolve(thumbs_store)
    prefix = version_prefix(slug, version)
    storage.delete_prefix(store, prefix)

    def write(name: str, data: bytes) -> int:
        storage.save(store, f"{prefix}/{name}", data)
        return len(data)

    n = len(table)
    qx, qy, bounds = quantise(table.x, table.y)
    cls, cls_names = classification_codes(table.classification)
    columns = {
        "id": table.artwork_ids.astype(np.uint32),
        "x": qx,
        "y": qy,
        "year": np.clip(table.year, -32768, 32767).astype(np.int16),
        "colour": np.zeros(n, np.uint16) if table.colour is None else np.asarray(table.colour, dtype=np.uint16),
        "c0": np.clip(table.c0, 0, 255).astype(np.uint8),
        "c1": np.clip(table.c1, 0, 255).astype(np.uint8),
        "cls": cls,
    }
    chunks = []
    for i, start in enumerate(range(0, n, CHUNK_ROWS)):
        end = min(start + CHUNK_ROWS, n)
        part = {k: v[start:end] for k, v in columns.items()}
        name = f"points-{i:03d}.bin.gz"
        size = write(name, gzip.compress(encode_chunk(part), compresslevel=9, mtime=0))
        chunks.append({
            "file": name,
            "start": start,
            "count": end - start,
            "bytes": size,
            "bounds": [int(part["x"].min()), int(part["y"].min()), int(part["x"].max()), int(part["y"].max())],
        })
    sheets: list[int] = []
    if atlases and n:
        n_sheets = (n + PER_SHEET - 1) // PER_SHEET
        reuse_version, reuse_rows = reuse if reuse else (None, 0)
        full_reusable = reuse_rows // PER_SHEET

        def one(s: int) -> int | None:
            name = f"atlas-{s:04d}.jpg"
            if reuse_version is not None and s < full_reusable:
                source = f"{version_prefix(slug, reuse_version)}/{name}"
                if storage.exists(store, source):
                    storage.copy(store, source, store, f"{prefix}/{name}")
                    return s
                if not any(table.thumbs[s * PER_SHEET : (s + 1) * PER_SHEET]):
                    return None
            data = make_sheet(table.thumbs[s * PER_SHEET : (s + 1) * PER_SHEET], thumbs)
            if data is None:
                return None
            write(name, data)
            return s

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
    write("files.json", json.dumps(files, separators=(",", ":")).encode())
    return files


def prune_versions(slug: str, keep: list[int], media_root=None) -> None:
    """Delete export versions other than ``keep`` (clients holding an older manifest may still
    fetch the previous version, so callers keep the current and the previous one), and what an
    older version's interrupted export left (``.<n>.tmp<pid>`` folders)."""
    store = storage.resolve(media_root)
    folders, _ = storage.listdir(store, f"{MAPS_DIR}/{slug}")
    for child in folders:
        if (child.isdigit() and int(child) not in keep) or (child.startswith(".") and ".tmp" in child):
            storage.delete_prefix(store, f"{MAPS_DIR}/{slug}/{child}")


def read_files(slug: str, version: int, media_root=None) -> dict | None:
    """A version's ``files.json``, or None when it has none (not exported, or not finished)."""
    try:
        return json.loads(storage.read(storage.resolve(media_root), f"{version_prefix(slug, version)}/files.json"))
    except FileNotFoundError:
        return None
