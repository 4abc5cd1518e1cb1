"""The IIIF viewer in headless Chromium: an artwork's manifest (linked from its page) opens in
/iiif/viewer/ with its image drawn by OpenSeadragon (the source's image service is unreachable
here, so the viewer falls back to the image the manifest paints), its metadata and its machine
labels. Screenshot: docs/screenshots/iiif_viewer.png."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import wait_for
from tests.explorer.archive_data import build_archive

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Whether the viewer's canvas shows a picture: the drawn pixels vary (not one flat colour).
DRAWN = """(() => {
  const c = document.querySelector('#iiif-image canvas');
  if (!c || !c.width) return false;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let min = 255, max = 0;
  for (let i = 0; i < d.length; i += 4 * 97) { const v = d[i] + d[i + 1] + d[i + 2]; min = Math.min(min, v); max = Math.max(max, v); }
  return max - min > 60;
})()"""


def test_manifest_opens_in_the_viewer(browser, screenshot, live_server, transactional_db, aic_dir, culturecraft_dir, live_media):
    from selenium.webdriver.common.by import By

    data = build_archive(aic_dir, culturecraft_dir)
    artwork = data["artworks"][0]
    base = live_server.url
    browser.get(f"{base}/artworks/{artwork.pk}/")
    link = browser.find_element(By.ID, "iiif-manifest-link").get_attribute("href")
    assert link == f"{base}/iiif/artwork/{artwork.pk}/manifest.json"

    browser.find_element(By.ID, "iiif-viewer-link").click()
    wait_for(browser, "location.pathname === '/iiif/viewer/'")
    assert browser.find_element(By.ID, "manifest-url").get_attribute("value") == link
    wait_for(browser, "document.getElementById('iiif-image').dataset.opened")
    opened = browser.execute_script("return document.getElementById('iiif-image').dataset.opened")
    assert opened == f"{base}{artwork.derivative_url_1024}"
    wait_for(browser, DRAWN)
    assert browser.find_element(By.ID, "iiif-label").text == artwork.title
    facts = browser.find_element(By.ID, "iiif-metadata").text
    assert artwork.creator in facts and f"aic:{artwork.source_id}" in facts
    chips = browser.find_elements(By.CSS_SELECTOR, "#iiif-labels .chip.machine")
    assert chips and all(c.get_attribute("title").startswith("Machine label by test-tiny") for c in chips)
    assert "untrained" in browser.find_element(By.ID, "iiif-labels-note").text
    screenshot("iiif_viewer", full_page=True)

    # A URL that is not a manifest says why.
    browser.get(f"{base}/iiif/viewer/?manifest={base}/iiif/collection.json")
    wait_for(browser, "document.getElementById('iiif-status').textContent.includes('not a IIIF Presentation 3 Manifest')")
