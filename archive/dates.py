"""Turn a museum's display date ("c. 1895", "1650-55", "17th century", "1890s", "before 1600",
"date not known", ...) into a ``(year_start, year_end)`` range for sorting and filtering.

The first date expression in the text wins ("1789, reprinted 1831" is 1789); words around it
("c.", "circa", "?", "exhibited", "published") mark it approximate but do not change the years.
Open-ended phrases give an open range: "before 1600" is ``(None, 1600)``, "after 1830" is
``(1830, None)``. Text without a recognisable date gives ``(None, None)``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class DateRange:
    start: int | None
    end: int | None
    approximate: bool = False

    @property
    def known(self) -> bool:
        return self.start is not None or self.end is not None


UNKNOWN = DateRange(None, None)

_DASH = r"\s*(?:-|–|—|‒|/|to|until|or)\s*"
_ERA = r"(?:\s*(?P<era{n}>b\.?\s?c\.?(?:e\.?)?|a\.?\s?d\.?|c\.?e\.?))?"
_ORD = r"(?:st|nd|rd|th)"
_QUALIFIER = r"(?:(?P<q{n}>early|mid|middle|late|first half of|second half of|first quarter of|last quarter of|end of|beginning of)[\s-]+(?:the\s+)?)?"

_CENT = r"\s*(?:century|cent\.?|c\.?)(?![a-z])"
_CENTURY = re.compile(
    _QUALIFIER.format(n=1) + r"(?P<c1>\d{1,2})" + _ORD + r"(?:" + _CENT + r")?"
    + r"(?:" + _DASH + _QUALIFIER.format(n=2) + r"(?P<c2>\d{1,2})" + _ORD + r")?"
    + _CENT + _ERA.format(n=1),
    re.IGNORECASE,
)
_CENTURY_SINGLE = re.compile(
    _QUALIFIER.format(n=1) + r"(?P<c1>\d{1,2})" + _ORD + r"(?:[\s-]+century|\s*cent\.?(?![a-z])|\s*c\.?(?![a-z]))" + _ERA.format(n=1), re.IGNORECASE
)
_DECADE = re.compile(r"(?<!\d)(?P<d>\d{3}0)'?s(?:" + _DASH + r"(?P<d2>\d{2,4})'?s)?(?![a-z])", re.IGNORECASE)
_RANGE = re.compile(
    r"(?<!\d)(?P<y1>\d{1,4})" + _ERA.format(n=1) + _DASH + r"(?:c\.?\s*|circa\s+)?(?P<y2>\d{1,4})(?![\d])" + _ERA.format(n=2),
    re.IGNORECASE,
)
_YEAR = re.compile(r"(?<!\d)(?P<y>\d{3,4})(?![\d])" + _ERA.format(n=1), re.IGNORECASE)
_YEAR_BC = re.compile(r"(?<!\d)(?P<y>\d{1,4})" + r"\s*(?P<era1>b\.?\s?c\.?(?:e\.?)?)", re.IGNORECASE)
_ISO = re.compile(r"(?P<y>\d{4})-[01]\d-[0-3]\d(?:[T ]|$)")
# An ISO 8601 interval ("1883-01-01/1885-12-31", "1883/1885", "1883-05--1884"), as open-access dumps give ranges.
_ISO_DATE = r"(?P<{n}>-?\d{{4}})(?:-[01]\d(?:-[0-3]\d)?)?(?:T[0-9:.]*(?:Z|[+-]\d\d:?\d\d)?)?"
_ISO_INTERVAL = re.compile(r"^" + _ISO_DATE.format(n="y1") + r"\s*(?:/|--)\s*" + _ISO_DATE.format(n="y2") + r"$")
_UNKNOWN = re.compile(r"^\W*(date\s+)?(not\s+known|unknown|undated|n\.?\s?d\.?|no\s+date|s\.\s?d\.|sans\s+date|\?)\W*$", re.IGNORECASE)
_APPROX = re.compile(r"\b(c\.|ca\.|circa|about|around|approx\.?|approximately|probably|possibly)|\?|\bc\s?\d", re.IGNORECASE)
_BEFORE = re.compile(r"\b(before|by|until|not after|ante)\s*(?:c\.?\s*|circa\s+)?$", re.IGNORECASE)
_AFTER = re.compile(r"\b(after|from|since|not before|post)\s*(?:c\.?\s*|circa\s+)?$", re.IGNORECASE)


def _bc(era: str | None) -> bool:
    return bool(era) and era.strip().lower().startswith("b")


def _expand_short(start: int, end_text: str) -> int:
    """'1650-55' -> 1655, '1823-4' -> 1824, '1899-1901' -> 1901."""
    if len(end_text) >= len(str(start)):
        return int(end_text)
    prefix = str(start)[: len(str(start)) - len(end_text)]
    end = int(prefix + end_text)
    if end < start:  # '1899-01' means 1901
        end += 10 ** len(end_text)
    return end


def _century_span(century: int, qualifier: str | None, bc: bool) -> tuple[int, int]:
    if bc:
        start, end = -century * 100, -(century - 1) * 100 - 1
    else:
        start, end = (century - 1) * 100, century * 100 - 1
    q = (qualifier or "").lower()
    if q in ("early", "beginning of"):
        end = start + 32
    elif q in ("mid", "middle"):
        start, end = start + 33, start + 66
    elif q in ("late", "end of"):
        start = start + 67
    elif q == "first half of":
        end = start + 49
    elif q == "second half of":
        start = start + 50
    elif q == "first quarter of":
        end = start + 24
    elif q == "last quarter of":
        start = start + 75
    return start, end


def _open_ended(text: str, match_start: int, start: int, end: int) -> tuple[int | None, int | None]:
    before = text[:match_start]
    if _BEFORE.search(before):
        return None, end
    if _AFTER.search(before):
        return start, None
    return start, end


def parse_date(text: str | int | None) -> DateRange:
    """Normalise one display date. Never raises."""
    if text is None:
        return UNKNOWN
    if isinstance(text, int):
        return DateRange(text, text)
    text = str(text).strip()
    if not text or _UNKNOWN.match(text):
        return UNKNOWN
    approximate = bool(_APPROX.search(re.sub(r"(?i)(\d(?:st|nd|rd|th))\s*c\.?(?![a-z])", r"\1 century", text)))
    interval = _ISO_INTERVAL.match(text)
    if interval:
        start, end = int(interval.group("y1")), int(interval.group("y2"))
        return DateRange(min(start, end), max(start, end), approximate)
    iso = _ISO.match(text)
    if iso:
        year = int(iso.group("y"))
        return DateRange(year, year, approximate)
    candidates = []
    for pattern in (_CENTURY, _CENTURY_SINGLE, _DECADE, _RANGE, _YEAR_BC, _YEAR):
        m = pattern.search(text)
        if m:
            candidates.append((m.start(), -len(m.group(0)), pattern, m))
    if not candidates:
        return DateRange(None, None, approximate)
    _, _, pattern, m = min(candidates, key=lambda c: (c[0], c[1]))
    groups = m.groupdict()
    if pattern in (_CENTURY, _CENTURY_SINGLE):
        bc = _bc(groups.get("era1"))
        c1 = int(groups["c1"])
        start, end = _century_span(c1, groups.get("q1"), bc)
        if groups.get("c2"):
            s2, e2 = _century_span(int(groups["c2"]), groups.get("q2"), bc)
            start, end = min(start, s2), max(end, e2)
    elif pattern is _DECADE:
        d = int(groups["d"])
        start, end = (d, d + 99) if d % 100 == 0 else (d, d + 9)
        if groups.get("d2"):
            d2 = _expand_short(d, groups["d2"])
            end = d2 + 9
    elif pattern is _RANGE:
        y1 = int(groups["y1"])
        bc1, bc2 = _bc(groups.get("era1")), _bc(groups.get("era2"))
        era1, era2 = groups.get("era1"), groups.get("era2")
        if bc1 or bc2:
            start = -y1 if (bc1 or (bc2 and not era1)) else y1
            y2 = int(groups["y2"])
            end = -y2 if (bc2 or (bc1 and not era2)) else y2
        else:
            if y1 < 100 and len(groups["y1"]) < 3:  # '12-15' is not a year range we trust
                return DateRange(None, None, approximate)
            start, end = y1, _expand_short(y1, groups["y2"])
        if start > end:
            start, end = end, start
    else:
        y = int(groups["y"])
        start = end = -y if _bc(groups.get("era1")) else y
    start, end = _open_ended(text, m.start(), start, end)
    return DateRange(start, end, approximate)


def year_range(text: str | int | None) -> tuple[int | None, int | None]:
    d = parse_date(text)
    return d.start, d.end
