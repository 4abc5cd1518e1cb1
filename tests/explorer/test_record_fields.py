"""Museum fields kept in metadata are shown on the artwork page and in the API, with where they came from."""
from __future__ import annotations

import pytest

from archive.models import Artwork

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogued():
    original = Artwork.objects.create(
        source="folder", source_id="scans/INV-0.jpg", title="The Harbour", creator="Jane Doe",
        credit_line="Gift of the artist", rights="CC0", source_url="https://museum.example/objects/A1",
        metadata={
            "file_name": "INV-0.jpg", "accession_number": "1916.1044", "department": "Prints and Drawings",
            "provenance": [{"description": "Durand-Ruel, Paris", "date": "1872"}, {"description": "Mrs. Cannon", "date": "1916"}],
            "wall_text": "Painted in a storm.",
            "field_sources": {"title": "metadata:catalogue.csv:A1"},
            "enriched_from": [{"source": "metadata:catalogue.csv", "source_id": "A1", "item": "catalogue.csv row 1",
                               "matched_by": "image bytes", "fields": ["title", "creator"], "replaced": {"title": "INV-0"}}],
        },
    )
    copy = Artwork.objects.create(source="folder", source_id="scans/copy.jpg", title="copy", status="duplicate", duplicate_of=original)
    return original, copy


def test_artwork_page_shows_the_museum_fields_and_their_sources(client, catalogued):
    original, copy = catalogued
    html = client.get(f"/artworks/{original.pk}/").content.decode()
    for text in ("Accession number", "1916.1044", "Prints and Drawings", "Durand-Ruel, Paris", "Gift of the artist", "CC0",
                 "https://museum.example/objects/A1", "Painted in a storm.", "matched by image bytes"):
        assert text in html, text
    assert "{'" not in html  # no Python repr of the provenance list
    dup = client.get(f"/artworks/{copy.pk}/").content.decode()
    assert 'id="duplicate-reason"' in dup and f"/artworks/{original.pk}/" in dup and "same image bytes" in dup
    assert "has no image, so it has no visual neighbours" in dup


def test_api_detail_has_the_museum_fields(client, catalogued):
    original, copy = catalogued
    data = client.get(f"/api/v1/artworks/{original.pk}/").json()
    assert data["accession_number"] == "1916.1044" and data["department"] == "Prints and Drawings"
    assert data["provenance"].startswith("Durand-Ruel, Paris") and data["credit_line"] == "Gift of the artist"
    assert data["source_url"] == "https://museum.example/objects/A1" and data["metadata"]["wall_text"] == "Painted in a storm."
    assert data["record_sources"]["enriched_from"][0]["matched_by"] == "image bytes"
    assert data["record_sources"]["field_sources"]["title"] == "metadata:catalogue.csv:A1"
    dup = client.get(f"/api/v1/artworks/{copy.pk}/").json()
    assert dup["duplicate_of"] == original.pk and "same image bytes" in dup["record_sources"]["duplicate_of"]["reason"]


def test_api_root_lists_every_endpoint(client):
    data = client.get("/api/v1/").json()
    for key in ("artworks", "labels", "collections", "jobs", "search", "search/image", "search/facets", "stats",
                "decisions", "doppelganger", "schema", "docs"):
        assert key in data, key
    assert data["doppelganger"].endswith("/api/v1/doppelganger/") and data["search/image"].endswith("/api/v1/search/image/")
