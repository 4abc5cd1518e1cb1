"""An Iconclass subject's page in headless Chromium: notation linked to iconclass.org, the broader
chain, the narrower subjects and the artworks rolled up from the labels mapped below it; a
vocabulary label's page links to its subject. Screenshot: docs/screenshots/explorer_iconclass.png."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import wait_for
from tests.explorer.archive_data import build_archive

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_iconclass_subject_page(browser, screenshot, live_server, transactional_db, aic_dir, culturecraft_dir, live_media):
    from selenium.webdriver.common.by import By

    from archive import iconclass_rows
    from archive.models import ArtworkLabel, Label
    from workers.labeling.vocabulary import load_iconclass
    from workers.vocabulary import iconclass_notations

    data = build_archive(aic_dir, culturecraft_dir)
    load_iconclass()
    notations = iconclass_notations()
    for name in ("horse", "dog", "bird"):
        Label.objects.filter(slug=name).update(notation=notations[name])
    iconclass_rows.derive(data["model"].pk)
    animals = Label.objects.get(group="iconclass", notation="25F")
    shown = ArtworkLabel.objects.filter(label=animals).count()
    assert shown > 0

    browser.get(f"{live_server.url}/labels/{animals.slug}/")
    assert browser.find_element(By.CSS_SELECTOR, "#iconclass a.notation").get_attribute("href") == "https://iconclass.org/25F"
    crumbs = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#iconclass nav.crumbs a")]
    assert crumbs == ["2 Nature", "25 earth, world as celestial body"]
    children = browser.find_elements(By.CSS_SELECTOR, "#iconclass .label-children a")
    assert any(a.text.startswith("25F3 ") for a in children)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#results .card, #results li")) >= 1
    wait_for(browser, "Array.from(document.images).filter(i => i.getBoundingClientRect().top < innerHeight).every(i => i.complete)")
    screenshot("explorer_iconclass", full_page=True)

    # Down to birds, and across to the vocabulary label mapped there.
    next(a for a in children if a.text.startswith("25F3 ")).click()
    wait_for(browser, "document.querySelector('#iconclass a.notation').textContent === '25F3'")
    browser.find_element(By.CSS_SELECTOR, '#iconclass a.chip[href="/labels/bird/"]').click()
    wait_for(browser, "location.pathname === '/labels/bird/'")
    link = browser.find_element(By.CSS_SELECTOR, "#iconclass a.notation")
    assert link.text == "25F3" and link.get_attribute("href") == "https://iconclass.org/25F3"
