"""Stream raw records out of CSV, JSON Lines and JSON files (optionally gzip-compressed).

Each reader yields ``(position, record_dict)`` for good rows and :class:`Problem` for rows that
cannot be read, and never stops early because of one bad row. ``position`` is the row's ordinal
(CSV data row, JSONL line, JSON list index), so a single row can be read again for a retry.
CSV and JSONL are streamed; a JSON document is parsed whole (use JSON Lines for huge exports).
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import re
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass
class Problem:
    position: int | None  # None: the whole file
    where: str  # 'row 12 (line 13)', 'line 7', 'record 3', 'file'
    reason: str


def format_of(path: Path) -> str:
    """'csv', 'jsonl' or 'json' from the file name (a trailing .gz is ignored)."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for ext, fmt in ((".csv", "csv"), (".tsv", "tsv"), (".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json")):
        if name.endswith(ext):
            return fmt
    raise ValueError(f"cannot tell the format of {path.name}: expected .csv, .tsv, .json, .jsonl or .ndjson (optionally .gz)")


def _open_binary(path: Path):
    handle = open(path, "rb")
    if path.name.lower().endswith(".gz"):
        return gzip.GzipFile(fileobj=handle, mode="rb")
    return handle


_READ_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error, OSError)


def _describe_read_error(exc: BaseException, after: str) -> str:
    if isinstance(exc, EOFError):
        return f"the compressed file ends early (truncated) after {after}; the rest of the file cannot be read"
    if isinstance(exc, (gzip.BadGzipFile, zlib.error)):
        return f"the compressed data is corrupt after {after}: {exc}"
    return f"cannot read the file after {after}: {exc}"


_BAD_BYTES = re.compile("[\udc80-\udcff]")


def _has_bad_bytes(text: str) -> bool:
    """Undecodable bytes survive as lone surrogates (errors='surrogateescape')."""
    return not text.isascii() and _BAD_BYTES.search(text) is not None


def iter_csv(path: Path, *, encoding: str = "utf-8", delimiter: str = ",") -> Iterator[tuple[int, dict] | Problem]:
    """Rows as dicts keyed by the (stripped) header. Rows with the wrong number of columns, with bytes
    that are not valid in ``encoding`` or that the csv module cannot parse become Problems."""
    try:
        raw = _open_binary(path)
    except OSError as exc:
        yield Problem(None, "file", f"cannot open {path}: {exc.strerror or exc}")
        return
    enc = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    text = io.TextIOWrapper(raw, encoding=enc, errors="surrogateescape", newline="")
    reader = csv.reader(text, delimiter=delimiter)
    ordinal = 0
    with text:
        try:
            header = next(reader)
        except StopIteration:
            yield Problem(None, "file", "the CSV file is empty (no header row)")
            return
        except (csv.Error, *_READ_ERRORS) as exc:
            yield Problem(None, "file", f"cannot read the CSV header: {exc}")
            return
        header = [h.replace("\x00", "").strip() for h in header]
        if _has_bad_bytes("".join(header)):
            yield Problem(None, "file", f"the header row is not valid {encoding} text; pass --encoding (e.g. cp1252)")
            return
        if len(set(header)) != len(header) or not any(header):
            yield Problem(None, "file", f"the header row has empty or repeated column names: {header}")
            return
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                ordinal += 1
                yield Problem(ordinal, f"row {ordinal} (line {reader.line_num})", f"unreadable CSV: {exc}")
                continue
            except _READ_ERRORS as exc:
                yield Problem(None, "file", _describe_read_error(exc, f"row {ordinal}"))
                return
            if not row or not any(cell.strip() for cell in row):
                continue  # blank line
            ordinal += 1
            where = f"row {ordinal} (line {reader.line_num})"
            if len(row) != len(header):
                yield Problem(ordinal, where, f"has {len(row)} columns, the header has {len(header)}")
                continue
            bad = [name for name, cell in zip(header, row) if _has_bad_bytes(cell)]
            if bad:
                yield Problem(
                    ordinal, where,
                    f"column {bad[0]!r} is not valid {encoding} text (bad encoding); save the file as UTF-8 or pass --encoding",
                )
                continue
            yield ordinal, dict(zip(header, row))


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict] | Problem]:
    try:
        raw = _open_binary(path)
    except OSError as exc:
        yield Problem(None, "file", f"cannot open {path}: {exc.strerror or exc}")
        return
    line_no = 0
    with raw:
        while True:
            try:
                line = raw.readline()
            except _READ_ERRORS as exc:
                yield Problem(None, "file", _describe_read_error(exc, f"line {line_no}"))
                return
            if not line:
                return
            line_no += 1
            if not line.strip():
                continue
            try:
                record = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError as exc:
                yield Problem(line_no, f"line {line_no}", f"not valid UTF-8 text (bad encoding at byte {exc.start})")
                continue
            except json.JSONDecodeError as exc:
                yield Problem(line_no, f"line {line_no}", f"not valid JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(record, dict):
                yield Problem(line_no, f"line {line_no}", f"expected a JSON object, found {type(record).__name__}")
                continue
            yield line_no, record


def load_json(path: Path) -> Any:
    """The whole JSON document; raises ValueError with a readable reason."""
    try:
        with _open_binary(path) as raw:
            data = raw.read()
    except _READ_ERRORS as exc:
        raise ValueError(_describe_read_error(exc, "the start")) from None
    if not data.strip():
        raise ValueError("the file is empty")
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid UTF-8 text (bad encoding at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def records_in(document: Any, keys: list[str]) -> list:
    """The list of records in a JSON document: the document itself, or the first of ``keys`` present."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        for key in keys:
            if key in document:
                value = document[key]
                if not isinstance(value, list):
                    raise ValueError(f"expected a list of records under {key!r}, found {type(value).__name__}")
                return value
        raise ValueError(
            "found no list of records: expected a JSON list or an object with "
            + (" or ".join(repr(k) for k in keys) if keys else "a list")
        )
    raise ValueError(f"expected a JSON list or object, found {type(document).__name__}")


def iter_json(path: Path, keys: list[str]) -> Iterator[tuple[int, dict] | Problem]:
    try:
        document = load_json(path)
        rows = records_in(document, keys)
    except ValueError as exc:
        yield Problem(None, "file", str(exc))
        return
    for index, record in enumerate(rows, start=1):
        if not isinstance(record, dict):
            yield Problem(index, f"record {index}", f"expected a JSON object, found {type(record).__name__}")
            continue
        yield index, record


def count_rows(path: Path, fmt: str, keys: list[str] | None = None) -> int | None:
    """How many records a file holds (a cheap pass for the progress bar); None if unknown."""
    try:
        if fmt in ("csv", "tsv"):
            return sum(1 for item in iter_csv(path, delimiter="\t" if fmt == "tsv" else ",") if not (isinstance(item, Problem) and item.position is None))
        if fmt == "jsonl":
            with _open_binary(path) as raw:
                return sum(1 for line in raw if line.strip())
        if fmt == "json":
            return len(records_in(load_json(path), keys or []))
    except (ValueError, *_READ_ERRORS, csv.Error):
        return None
    return None
