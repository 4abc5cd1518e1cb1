"""The label type-ahead in headless Chromium: typing in the search page's label box shows a few
matching labels, picking one (keyboard) fills the box and the search filters by that label."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import wait_for
from tests.explorer.archive_data import build_archive

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_label_box_suggests_and_filters(browser, screenshot, live_server, transactional_db, aic_dir, culturecraft_dir,
                                        live_media):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from archive.models import Label

    build_archive(aic_dir, culturecraft_dir)
    label = Label.objects.filter(published=True, artwork_labels__isnull=False).order_by("name").distinct().first()
    browser.get(live_server.url + "/search/?q=portrait")
    box = browser.find_element(By.CSS_SELECTOR, "input[data-label-suggest]")
    assert box.get_attribute("role") == "combobox" and "<optgroup" not in browser.page_source
    box.send_keys(label.name[:4])
    wait_for(browser, "document.querySelectorAll('.label-suggest li').length > 0", timeout=20)
    options = [li.text for li in browser.find_elements(By.CSS_SELECTOR, ".label-suggest li")]
    assert len(options) <= 12 and all(label.name[:4].lower() in o.lower() for o in options)
    screenshot("explorer_label_suggest")
    for _ in range(options.index(next(o for o in options if o.startswith(label.name))) + 1):
        box.send_keys(Keys.ARROW_DOWN)
    box.send_keys(Keys.ENTER)
    assert box.get_attribute("value") == label.name
    hidden = browser.find_element(By.CSS_SELECTOR, "input[type=hidden][name=label]")
    assert hidden.get_attribute("value") == label.slug
    box.submit()
    wait_for(browser, "location.search.includes('label=')", timeout=20)
    assert f"label={label.slug}" in browser.current_url
    assert browser.find_element(By.CSS_SELECTOR, "input[data-label-suggest]").get_attribute("value") == label.name
