"""Colour, the path and the timeline in headless Chromium: an artwork's swatches -> "more in these colours" ->
the colour search with a filter; "path from here" -> the path between two works; the timeline. Screenshots in
docs/screenshots/discovery_*.png."""
from __future__ import annotations

import numpy as np
import pytest

from tests.e2e.conftest import wait_for
from tests.explorer.archive_data import build_archive

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def colour_archive(transactional_db, aic_dir, culturecraft_dir, live_media):
    from workers import palettes as stage

    data = build_archive(aic_dir, culturecraft_dir)
    ids = [a.pk for a in data["artworks"]]
    assert stage.process(ids, {}).done == ids
    return data


def test_colour_search_and_path(browser, screenshot, live_server, colour_archive):
    from selenium.webdriver.common.by import By

    from archive.models import ArtworkPalette

    base = live_server.url
    rows = {r.artwork_id: r.colours for r in ArtworkPalette.objects.all()}
    start = max(rows, key=lambda a: rows[a][0]["share"])
    browser.get(f"{base}/artworks/{start}/")
    swatches = browser.find_elements(By.CSS_SELECTOR, "#palette .swatch")
    assert len(swatches) == len(rows[start])
    screenshot("discovery_artwork_palette")

    browser.find_element(By.ID, "more-in-colours").click()
    wait_for(browser, "document.querySelectorAll('#colour-results li.card').length > 0")
    first = browser.find_element(By.CSS_SELECTOR, "#colour-results li.card a").get_attribute("href")
    assert first.endswith(f"/artworks/{start}/")
    wait_for(browser, "Array.from(document.querySelectorAll('#colour-results img')).slice(0, 12).every(i => i.complete)")
    screenshot("discovery_colour_search")

    # The same colours within a filter: only works passing it.
    browser.find_element(By.CSS_SELECTOR, "select[name=classification] option[value=detail], select[name=classification] option:not([value=''])").click()
    browser.find_element(By.CSS_SELECTOR, "#colour-form button[type=submit]").click()
    # (waiting on the new page: the old one has a result count too)
    wait_for(browser, "location.search.includes('classification=') && document.readyState === 'complete'"
                      " && document.body.innerText.includes('within the filters')")

    # The path from the first artwork to the one least like it.
    ids = [a.pk for a in colour_archive["artworks"]]
    unit = colour_archive["matrix"] / np.linalg.norm(colour_archive["matrix"], axis=1, keepdims=True)
    end = ids[int(np.argmin(unit @ unit[ids.index(start)]))]
    browser.get(f"{base}/artworks/{start}/")
    browser.find_element(By.ID, "path-from-here").click()
    box = browser.find_element(By.CSS_SELECTOR, "input[name=to]")
    box.send_keys(f"{base}/artworks/{end}/")
    browser.find_element(By.CSS_SELECTOR, ".path-form button[type=submit]").click()
    wait_for(browser, "document.querySelectorAll('#path-strip li.path-step').length >= 2")
    cards = browser.find_elements(By.CSS_SELECTOR, "#path-strip li.card a")
    assert cards[0].get_attribute("href").endswith(f"/artworks/{start}/")
    assert cards[-1].get_attribute("href").endswith(f"/artworks/{end}/")
    browser.execute_script("document.querySelectorAll('#path-strip img').forEach(i => i.loading = 'eager')")
    wait_for(browser, "Array.from(document.querySelectorAll('#path-strip img')).every(i => i.complete)")
    screenshot("discovery_path")

    # The timeline: every dated work in its column, a few thumbnails each.
    browser.get(f"{base}/timeline/")
    wait_for(browser, "document.querySelectorAll('#timeline li.timeline-bin').length > 0")
    browser.execute_script("document.querySelectorAll('#timeline img').forEach(i => i.loading = 'eager')")
    wait_for(browser, "Array.from(document.querySelectorAll('#timeline img')).every(i => i.complete)")
    counts = browser.execute_script("return Array.from(document.querySelectorAll('.timeline-count')).map(e => +e.textContent)")
    from archive.models import Artwork

    assert sum(counts) == Artwork.objects.filter(year_start__isnull=False).exclude(status="duplicate").count()
    screenshot("discovery_timeline", full_page=True)
