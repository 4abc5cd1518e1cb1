import pytest

from archive.dates import parse_date, year_range


@pytest.mark.parametrize(
    "text, expected",
    [
        ("c. 1895", (1895, 1895)),
        ("c.1895", (1895, 1895)),
        ("1650-55", (1650, 1655)),
        ("1650–1655", (1650, 1655)),
        ("1650 - 1655", (1650, 1655)),
        ("1690/95", (1690, 1695)),
        ("c.1823–4", (1823, 1824)),
        ("1899-01", (1899, 1901)),
        ("17th century", (1600, 1699)),
        ("late 18th century", (1767, 1799)),
        ("early 16th century", (1500, 1532)),
        ("mid-19th century", (1833, 1866)),
        ("12th–13th century", (1100, 1299)),
        ("late 18th C", (1767, 1799)),
        ("18th cent.", (1700, 1799)),
        ("17th-18th C", (1600, 1799)),
        ("first half of the 19th century", (1800, 1849)),
        ("5th century BC", (-500, -401)),
        ("1890s", (1890, 1899)),
        ("1800s", (1800, 1899)),
        ("before 1600", (None, 1600)),
        ("after c.1830", (1830, None)),
        ("date not known", (None, None)),
        ("Date unknown", (None, None)),
        ("n.d.", (None, None)),
        ("", (None, None)),
        (None, (None, None)),
        ("500 BC", (-500, -500)),
        ("300–250 BCE", (-300, -250)),
        ("700–850", (700, 850)),
        ("1789, reprinted 1831 or later", (1789, 1789)),
        ("1976–7, enlarged version 2007", (1976, 1977)),
        ("exhibited 1868", (1868, 1868)),
        ("circa 1810–11", (1810, 1811)),
        ("1895-03-12", (1895, 1895)),
        ("March 1895", (1895, 1895)),
        ("no legible date", (None, None)),
        (1901, (1901, 1901)),
    ],
)
def test_year_range(text, expected):
    assert year_range(text) == expected


def test_approximate_flag():
    assert parse_date("c. 1895").approximate
    assert parse_date("?1837").approximate
    assert not parse_date("1895").approximate
    assert not parse_date("18th c.").approximate


def test_every_tate_date_parses_without_error(tate_dir):
    import gzip
    import json

    unknown = total = 0
    with gzip.open(tate_dir / "artworks.jsonl.gz", "rt") as handle:
        for line in handle:
            text = json.loads(line)["dateText"]
            total += 1
            d = parse_date(text)
            if d.start is None and d.end is None:
                unknown += 1
            elif d.start is not None and d.end is not None:
                assert d.start <= d.end, text
    # Only the records that really have no date ("date not known") stay unknown.
    assert unknown / total < 0.1
