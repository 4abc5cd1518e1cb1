"""Substring search on titles and makers (pg_trgm, archive/substring.py): parts of words find the
works whole-word search cannot, from the trigram indexes, after the whole-word matches."""
import pytest
from django.db import connection

from archive import substring
from archive.models import Artwork
from explorer import search

pytestmark = pytest.mark.django_db


def _plan(sql_params):
    sql, params = sql_params
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("SET enable_indexscan = off")  # a tiny table: make the planner show the bitmap path
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
        cursor.execute("RESET enable_indexscan")
    return plan


@pytest.fixture
def trigram(archive):
    substring._ready.clear()
    if not substring.ready():
        pytest.skip("this PostgreSQL server has no pg_trgm: substring search is off (documented)")
    return archive


def _inner_part():
    """A part from inside a long word of a real title that full-text search cannot find."""
    for artwork in Artwork.objects.order_by("pk"):
        for word in artwork.title.split():
            part = word[2:7].lower()
            if len(word) >= 8 and part.isalpha():
                fts = search.SearchQuery(part, search_type="websearch", config="english")
                if not Artwork.objects.filter(search_document=fts).exists():
                    return artwork, part
    pytest.fail("no title of the test archive has a long word")


def test_part_of_a_word_finds_the_work(trigram):
    artwork, part = _inner_part()
    ranked = search.metadata_ranking(part, search.base_queryset())
    assert artwork.pk in ranked
    for found in Artwork.objects.filter(pk__in=ranked):
        assert part in found.title.lower() or part in (found.creator or "").lower()
    assert search.metadata_ranking(part.upper(), search.base_queryset()) == ranked  # case-insensitive


def test_whole_word_matches_come_before_substring_matches(trigram):
    ranked = search.metadata_ranking("portrait", search.base_queryset())
    whole = set(Artwork.objects.filter(search_document=search.SearchQuery("portrait", search_type="websearch",
                                                                            config="english")).values_list("pk", flat=True))
    assert whole and set(ranked[: len(whole)]) == whole


def test_substring_match_reads_the_trigram_index(trigram):
    qs = substring.matches(Artwork.objects.all(), "andsca")
    plan = _plan(qs.values("id").query.sql_with_params())
    assert "artwork_title_trgm" in plan and "artwork_creator_trgm" in plan


def test_short_text_and_no_index_fall_back_to_whole_words(trigram, monkeypatch):
    assert substring.matches(Artwork.objects.all(), "ab") is None
    monkeypatch.setitem(substring._ready, connection.settings_dict["NAME"], False)
    artwork, part = _inner_part()
    assert substring.matches(Artwork.objects.all(), part) is None
    assert artwork.pk not in search.metadata_ranking(part, search.base_queryset())
