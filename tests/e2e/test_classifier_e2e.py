"""A curator teaches the archive a label in headless Chromium: examples ticked on search results
and pasted ids, train, read the confusion matrix, apply, see the label; and a three-class
classifier whose examples come straight from map selections (a lasso and boxes), trained, its
3 x 3 confusion matrix on the page. Screenshots in docs/screenshots/explorer_classifier*.png."""
from __future__ import annotations

import time

import numpy as np
import pytest

from tests.e2e.conftest import wait_for
from tests.explorer.archive_data import build_archive

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_curator_trains_and_applies_a_classifier(browser, screenshot, live_server, transactional_db, aic_dir,
                                                 culturecraft_dir, live_media, monkeypatch):
    from django.contrib.auth.models import Group, User
    from selenium.webdriver.common.by import By

    from archive.models import ArtworkLabel, Classifier, Job
    from workers.celery import app

    archive = build_archive(aic_dir, culturecraft_dir)
    monkeypatch.setattr(app.conf, "task_always_eager", True)  # the jobs run inside the server
    base = live_server.url
    user = User.objects.create_user("rosa", password="correct-horse-42")
    user.groups.add(Group.objects.get_or_create(name="curator")[0])
    browser.get(base + "/accounts/login/?next=/curate/classifiers/")
    browser.find_element(By.ID, "id_username").send_keys("rosa")
    browser.find_element(By.ID, "id_password").send_keys("correct-horse-42")
    browser.find_element(By.CSS_SELECTOR, "form.stacked button").click()
    wait_for(browser, "location.pathname === '/curate/classifiers/'")

    browser.find_element(By.ID, "name").send_keys("Museum details")
    browser.find_element(By.CSS_SELECTOR, "form.stacked button").click()
    wait_for(browser, "document.getElementById('example-progress')")
    classifier = Classifier.objects.get(label__name="Museum details")

    # Positives: tick the culturecraft crops on a search page, add them from there.
    browser.get(base + "/search/?classification=detail")
    boxes = browser.find_elements(By.CSS_SELECTOR, 'input[name="artwork"][form="save-form"]')
    assert len(boxes) == 20
    for box in boxes:
        browser.execute_script("arguments[0].click()", box)
    browser.find_element(By.CSS_SELECTOR, "details.add-examples summary").click()
    screenshot("explorer_classifier_from_search")
    browser.find_element(By.CSS_SELECTOR, 'details.add-examples button[value="1"]').click()
    wait_for(browser, "document.querySelector('.message')")
    # Negatives: the paintings' ids, pasted as from a map selection.
    paintings = [a.pk for a in archive["artworks"] if a.source == "aic"]
    browser.get(base + f"/curate/classifiers/{classifier.pk}/")
    browser.find_element(By.ID, "ids").send_keys(" ".join(map(str, paintings)))
    browser.find_element(By.CSS_SELECTOR, '#add-examples button[value="0"]').click()
    wait_for(browser, "document.getElementById('example-progress').textContent.includes('20 positive, 40 negative')")

    # Train (the job runs in the server), read the figures.
    browser.find_element(By.CSS_SELECTOR, "#training button[type=submit]").click()
    wait_for(browser, "document.getElementById('confusion')")
    cells = browser.find_elements(By.CSS_SELECTOR, "#confusion td")
    assert sum(int(c.text) for c in cells) == 6  # the test part: 10% of 60
    assert browser.find_elements(By.CSS_SELECTOR, "#pr-curve polyline")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#example-grids .card")) == 40  # 20 of each side
    screenshot("explorer_classifier", full_page=True)

    # Apply, then the label is there like any other.
    browser.find_element(By.CSS_SELECTOR, "#versions form button").click()
    wait_for(browser, "document.querySelector('#versions .badge.ok')")
    job = Job.objects.get(kind="apply_classifier")
    assert job.state == "done", job.message
    classifier.label.refresh_from_db()
    assert classifier.label.published and ArtworkLabel.objects.filter(label=classifier.label).exists()
    browser.get(base + f"/labels/{classifier.label.slug}/")
    assert "trained by curators" in browser.page_source
    screenshot("explorer_classifier_label", full_page=True)


def _patch(centre, n: int) -> np.ndarray:
    """``n`` points on a loose 5-wide grid around ``centre`` (map units)."""
    grid = np.array([(i % 5, i // 5) for i in range(n)], dtype=np.float32)
    return (np.asarray(centre, dtype=np.float32) + grid - grid.mean(axis=0)).astype(np.float32)


def test_curator_adds_map_selections_to_a_three_class_classifier(live_server, transactional_db, aic_dir, culturecraft_dir,
                                                                  live_media, monkeypatch):
    """Three classes (earlier paintings, later paintings, crops), each added from the map in one
    action (a lasso, then Shift-drag boxes), trained, the 3 x 3 confusion matrix on the page."""
    from django.contrib.auth.models import Group, User
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    from archive.models import Classifier
    from tests.e2e.conftest import SCREENSHOTS, open_chromium
    from tests.e2e.test_map_e2e import draw, inside, lasso_outline
    from workers.celery import app
    from workers.layouts import build

    archive = build_archive(aic_dir, culturecraft_dir)
    monkeypatch.setattr(app.conf, "task_always_eager", True)
    aic = sorted((a for a in archive["artworks"] if a.source == "aic"), key=lambda a: (a.year_start or 0, a.pk))
    groups = {"earlier painting": [a.pk for a in aic[:20]], "later painting": [a.pk for a in aic[20:]],
              "crop": [a.pk for a in archive["artworks"] if a.source == "culturecraft"]}
    # A map with the three groups in three patches far apart.
    ids = np.asarray([i for g in groups.values() for i in g], dtype=np.int64)
    coords = np.concatenate([_patch((0, 0), 20), _patch((14, 0), 20), _patch((7, 12), 20)])
    layout = build.get_layout("umap", {}, archive["model"])
    build.save_layout(layout, ids, ids, coords, model=archive["model"], params={"untrained": True})
    user = User.objects.create_user("iris", password="correct-horse-43")
    user.groups.add(Group.objects.get_or_create(name="curator")[0])
    base = live_server.url
    driver = open_chromium("--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader")
    try:
        driver.get(base + "/accounts/login/?next=/curate/classifiers/")
        driver.find_element(By.ID, "id_username").send_keys("iris")
        driver.find_element(By.ID, "id_password").send_keys("correct-horse-43")
        driver.find_element(By.CSS_SELECTOR, "form.stacked button").click()
        wait_for(driver, "location.pathname === '/curate/classifiers/'")
        driver.find_element(By.ID, "name").send_keys("Kind of image")
        driver.find_element(By.ID, "classes").send_keys("earlier painting / later painting / crop")
        driver.find_element(By.CSS_SELECTOR, "form.stacked button").click()
        wait_for(driver, "document.getElementById('example-progress')")
        classifier = Classifier.objects.get(label__name="Kind of image")
        assert classifier.multiclass and classifier.classes.count() == 3

        driver.get("about:blank")
        driver.get(base + "/map/")
        wait_for(driver, "window.__map && window.__map.ready && window.__map.count === 60")
        el = driver.find_element(By.ID, "map")
        # Zoom out a little from the overview so that outlines around the patches stay inside the map.
        driver.execute_script("const v = window.__map.state.viewState; window.__map.setView(v.target[0], v.target[1], v.zoom - 1.2);")
        time.sleep(0.5)

        def screen(pks):
            return np.asarray([driver.execute_script(f"return window.__map.screen(window.__map.indexOfId({pk}));") for pk in pks])

        def add_to(option_text: str, count: int):
            wait_for(driver, f"document.getElementById('map-selection-count').textContent === '{count} selected'", 10)
            Select(driver.find_element(By.ID, "map-classifier")).select_by_visible_text(option_text)
            driver.find_element(By.ID, "map-selection-examples").click()
            wait_for(driver, f"document.getElementById('map-selection-result').textContent.includes('{count} added')", 20)

        # The crops with a lasso drawn around their patch.
        points = screen(groups["crop"])
        cx, cy = points.mean(axis=0)
        r = (float(np.hypot(*(points - [cx, cy]).T).max()) + 12) / 0.8  # the outline bulges in and out by 20%
        outline = lasso_outline(cx, cy, r)
        assert all(inside(x, y, outline) for x, y in points)
        assert not any(inside(x, y, outline) for g in ("earlier painting", "later painting") for x, y in screen(groups[g]))
        driver.find_element(By.ID, "map-lasso").click()
        draw(driver, el, outline)
        ActionChains(driver).send_keys(Keys.ESCAPE).perform()
        add_to("Kind of image: crop", 20)
        driver.save_screenshot(str(SCREENSHOTS / "explorer_classifier_map_selection.png"))
        # The paintings with Shift-drag boxes around each patch.
        w, h = el.size["width"], el.size["height"]
        for name in ("earlier painting", "later painting"):
            points = screen(groups[name])
            (x0, y0), (x1, y1) = points.min(axis=0) - 10, points.max(axis=0) + 10
            ActionChains(driver).move_to_element_with_offset(el, int(x0 - w / 2), int(y0 - h / 2)).key_down(Keys.SHIFT) \
                .click_and_hold().move_by_offset(int(x1 - x0), int(y1 - y0)).release().key_up(Keys.SHIFT).perform()
            add_to(f"Kind of image: {name}", 20)
        from workers.classifiers.curating import example_counts

        assert example_counts(classifier) == {"earlier painting": 20, "later painting": 20, "crop": 20}

        # Train on the classifier page: the 3 x 3 confusion matrix of the test part.
        driver.get(base + f"/curate/classifiers/{classifier.pk}/")
        assert "earlier painting 20, later painting 20, crop 20" in driver.find_element(By.ID, "example-progress").text
        driver.find_element(By.CSS_SELECTOR, "#training button[type=submit]").click()
        wait_for(driver, "document.getElementById('confusion')")
        rows = driver.find_elements(By.CSS_SELECTOR, "#confusion tbody tr")
        assert len(rows) == 3 and all(len(r.find_elements(By.TAG_NAME, "td")) == 3 for r in rows)
        assert sum(int(c.text) for c in driver.find_elements(By.CSS_SELECTOR, "#confusion td")) == 6
        assert len(driver.find_elements(By.CSS_SELECTOR, "#pr-curve polyline")) == 3
        names = [r.find_element(By.TAG_NAME, "th").text for r in driver.find_elements(By.CSS_SELECTOR, "#per-class tbody tr")]
        assert names == list(groups)  # in class order
        height = driver.execute_script("return Math.min(4000, document.documentElement.scrollHeight)")
        driver.set_window_size(1280, max(900, int(height)))
        time.sleep(0.3)
        driver.save_screenshot(str(SCREENSHOTS / "explorer_classifier_multiclass.png"))
        driver.set_window_size(1280, 900)

        # Label more: with six crops no longer examples, key 3 puts the focused card in class 3.
        classifier.examples.filter(artwork_id__in=groups["crop"][:6]).delete()
        driver.get(base + f"/curate/classifiers/{classifier.pk}/review/")
        wait_for(driver, "document.activeElement && document.activeElement.classList.contains('review-card')")
        first = int(driver.execute_script("return document.activeElement.dataset.id"))
        assert first in groups["crop"][:6]
        assert driver.find_elements(By.CSS_SELECTOR, '.review-card button[data-key="3"]')
        ActionChains(driver).send_keys("3").perform()
        wait_for(driver, "document.querySelector('.message')")
        assert classifier.examples.get(artwork_id=first).klass.label.name == "crop"
    finally:
        driver.quit()
