"""Text and JSON that PostgreSQL accepts.

PostgreSQL text and jsonb cannot hold NUL characters, and UTF-8 cannot encode the lone surrogates
Python uses for undecodable bytes (a file name that is not valid UTF-8 arrives as
``'caf\\udce9.jpg'``). Values read from sources are checked with :func:`problem`; values written
to error records (which must never fail to be stored) are cleaned with :func:`text` and
:func:`json_value`.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

_SURROGATES = re.compile("[\ud800-\udfff]")


def has_surrogates(value: str) -> bool:
    return not value.isascii() and _SURROGATES.search(value) is not None


def text(value: Any) -> str:
    """``value`` as text without NUL characters; undecodable bytes shown as U+FFFD."""
    value = str(value).replace("\x00", "")
    return _SURROGATES.sub("\ufffd", value) if has_surrogates(value) else value


def json_value(value: Any) -> Any:
    """A copy of a JSON value with every string (and key) made storable by :func:`text` and
    NaN/infinity as null."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        return {text(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def problem(value: Any) -> str:
    """Why a JSON value cannot be stored as is ("" when it can): undecodable text, NUL characters,
    or numbers JSON has no words for (NaN, infinity)."""
    try:
        dumped = json.dumps(value, ensure_ascii=False, default=str, allow_nan=False)
    except ValueError:
        return "contains NaN or infinity"
    try:
        dumped.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid UTF-8 text"
    if "\\u0000" in dumped:
        return "contains a NUL character"
    return ""
