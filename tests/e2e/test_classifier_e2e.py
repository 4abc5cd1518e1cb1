"""A curator teaches the archive a label in headless Chromium: examples ticked on search results
and pasted (a map selection's ids), train, read the confusion matrix, apply, see the label; with
screenshots in docs/screenshots/explorer_classifier*.png."""
from __future__ import annotations

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
