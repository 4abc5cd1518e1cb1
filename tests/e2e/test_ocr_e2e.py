"""In headless Chromium: search for a word that is only in an artwork's image, open the result,
and see the word marked on the still image and on the deep-zoom viewer
(docs/screenshots/ocr_highlight.png, ocr_highlight_zoom.png)."""
from __future__ import annotations

import time

import pytest
from PIL import Image

from tests.e2e.conftest import wait_for
from tests.explorer.test_doppelganger_support import add_artwork
from tests.workers.text_images import fonts_available, inscribe

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_searched_word_is_marked_on_the_artwork(browser, screenshot, live_server, live_media, aic_dir, tmp_path):
    from selenium.webdriver.common.by import By

    from workers.ocr import engine, stage

    try:
        engine.check_languages("eng")
    except engine.EngineMissing as exc:
        pytest.skip(f"needs Tesseract: {exc}")
    if "DejaVuSerif.ttf" not in fonts_available():
        pytest.skip("needs the DejaVu fonts (fonts-dejavu-core)")
    with Image.open(aic_dir / "images" / "100026.jpg") as im:
        rendered = inscribe(im.convert("RGB"), "The winter festival of lanterns", "DejaVuSerif.ttf", 30, top=0.72)
    path = tmp_path / "festival.jpg"
    rendered.image.save(path, quality=92)
    art = add_artwork(path, source="ocr-e2e", source_id="festival", title="Studies of figures", creator="Test painter")
    assert stage.process([art.pk], stage.prepare({})).done == [art.pk]

    browser.get(live_server.url + "/search/?q=lanterns")
    link = browser.find_element(By.CSS_SELECTOR, "li.card a")
    assert link.get_attribute("href").endswith(f"/artworks/{art.pk}/?q=lanterns")
    link.click()
    wait_for(browser, "document.querySelector('.artwork-image') && document.querySelector('.artwork-image').complete")
    hits = browser.find_elements(By.CSS_SELECTOR, ".image-frame .text-hit")
    assert len(hits) == 1 and hits[0].get_attribute("title") == "lanterns"
    # The mark sits on the word: its box against the rendered word's box, scaled to the shown image.
    image = browser.find_element(By.CSS_SELECTOR, ".artwork-image").rect
    mark = hits[0].rect
    x, y, w, h = next(box for text, box in rendered.words if text == "lanterns")
    scale = image["width"] / art.width
    assert abs(mark["x"] - (image["x"] + x * scale)) < 0.3 * w * scale + 2
    assert abs(mark["y"] - (image["y"] + y * scale)) < 0.6 * h * scale + 2
    browser.execute_script("document.getElementById('viewer').scrollIntoView()")
    screenshot("ocr_highlight")
    browser.find_element(By.ID, "zoom-button").click()
    wait_for(browser, "document.querySelector('#viewer canvas') && document.querySelector('#viewer .text-hit')")
    time.sleep(1.5)
    assert browser.execute_script("return document.querySelector('#viewer .text-hit').getBoundingClientRect().width") > 5
    screenshot("ocr_highlight_zoom")
