"""The explorer in headless Chromium: a visitor's walk (home -> label -> artwork -> similar -> map,
search, search by image) and a curator's (log in -> reject a label -> create a prompt label ->
publish -> save a collection -> export), with screenshots in docs/screenshots/explorer_*.png."""
from __future__ import annotations

import json
import time

import pytest

from tests.e2e.conftest import wait_for
from tests.explorer.archive_data import build_archive

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def small_archive(transactional_db, aic_dir, culturecraft_dir, live_media, monkeypatch):
    from explorer import browse

    monkeypatch.setattr(browse, "PAGE_SIZE", 8)  # several keyset pages, so infinite scroll runs
    return build_archive(aic_dir, culturecraft_dir)


def _by(browser):
    from selenium.webdriver.common.by import By

    return By


def test_visitor_walk(browser, screenshot, live_server, small_archive):
    By = _by(browser)
    base = live_server.url
    browser.get(base + "/")
    assert "Explore 60 artworks" in browser.page_source
    wait_for(browser, "Array.from(document.images).every(i => i.complete)")
    screenshot("explorer_home", full_page=True)

    # The label browser: every label with its count, by group.
    browser.get(base + "/labels/")
    assert browser.find_elements(By.CSS_SELECTOR, ".label-group a.chip .count")
    screenshot("explorer_labels", full_page=True)
    browser.get(base + "/")

    # Home -> a label (the biggest one has several keyset pages).
    from archive.models import ArtworkLabel
    from django.db.models import Count

    top = ArtworkLabel.objects.values("label__slug").annotate(n=Count("id")).order_by("-n").first()
    browser.find_element(By.CSS_SELECTOR, f'a.chip[href="/labels/{top["label__slug"]}/"]').click()
    wait_for(browser, "document.querySelectorAll('#results li.card').length >= 8")
    first = browser.execute_script("return document.querySelectorAll('#results li.card').length")
    # Infinite scroll: scrolling to the end fetches the next keyset pages.
    for _ in range(20):
        browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
        time.sleep(0.3)
        if not browser.execute_script("return document.querySelector('#results li.sentinel')"):
            break
    total = browser.execute_script("return document.querySelectorAll('#results li.card').length")
    assert total > first and total == top["n"]
    browser.execute_script("window.scrollTo(0, 0)")
    screenshot("explorer_label")

    # -> an artwork: large image, labels, similar works, show on map.
    browser.find_element(By.CSS_SELECTOR, "#results li.card a").click()
    wait_for(browser, "document.querySelector('.artwork-image') && document.querySelector('.artwork-image').complete")
    assert browser.find_elements(By.CSS_SELECTOR, ".label-row")
    assert len(browser.find_elements(By.CSS_SELECTOR, ".similar li.card")) >= 6
    screenshot("explorer_artwork", full_page=True)
    # Deep zoom: the IIIF server is unreachable offline, so OpenSeadragon falls back to the 1024 px derivative.
    browser.find_element(By.ID, "zoom-button").click()
    wait_for(browser, "document.querySelector('#viewer canvas')")
    time.sleep(1.5)
    screenshot("explorer_artwork_zoom")

    # -> a similar artwork -> the map ("Show on map" appears once the artwork is on a ready map).
    from workers.layouts import build as map_build

    map_build.run_job(map_build.request("tsne", {}).pk)
    current = browser.current_url
    browser.find_element(By.CSS_SELECTOR, ".similar li.card a").click()
    wait_for(browser, f"location.href !== {json.dumps(current)} && document.querySelector('#show-on-map')")
    href = browser.find_element(By.ID, "show-on-map").get_attribute("href")
    artwork_id = int(browser.current_url.rstrip("/").split("/")[-1])
    assert href.endswith(f"/map/?layout=tsne#artwork={artwork_id}")
    browser.get(href)
    wait_for(browser, "window.__map && window.__map.ready")
    assert browser.execute_script(f"return window.__map.state.focus === window.__map.indexOfId({artwork_id})")

    # Search by words and filters.
    browser.get(base + "/search/?q=portrait&institution=Art+Institute+of+Chicago")
    wait_for(browser, "document.querySelectorAll('ul.grid li.card').length > 0")
    assert "untrained" in browser.page_source.lower()
    screenshot("explorer_search", full_page=True)

    # Search by image: upload a real image file.
    artwork = small_archive["artworks"][4]
    browser.get(base + "/search/image/")
    browser.find_element(By.ID, "image").send_keys(artwork.original_location)
    browser.find_element(By.CSS_SELECTOR, ".upload-form button").click()
    wait_for(browser, "document.querySelectorAll('ul.grid li.card').length > 0")
    first_link = browser.find_element(By.CSS_SELECTOR, "ul.grid li.card a").get_attribute("href")
    assert first_link.endswith(f"/artworks/{artwork.pk}/")
    screenshot("explorer_search_image", full_page=True)

    # A friendly 404 and 400.
    browser.get(base + "/artworks/987654321/")
    assert "Page not found" in browser.page_source
    browser.get(base + "/labels/" + top["label__slug"] + "/?cursor=garbage")
    assert "Bad request" in browser.page_source and "bad cursor" in browser.page_source.lower()
    screenshot("explorer_400")

    # A phone: no page is wider than the screen.
    for name, url in (("home", "/"), ("artwork", f"/artworks/{artwork.pk}/"), ("search", "/search/?q=portrait&institution=Art+Institute+of+Chicago"),
                      ("labels", "/labels/")):
        browser.get(base + url)
        wait_for(browser, "document.readyState === 'complete'")
        browser.set_window_size(390, 844)
        time.sleep(0.3)
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (name, overflow)
        screenshot(f"explorer_mobile_{name}", full_page=True, width=390)


def test_curator_walk(browser, screenshot, live_server, small_archive, monkeypatch):
    from django.contrib.auth.models import Group, User

    from workers.celery import app

    # Publishing starts a score_label job; run its tasks inside the server instead of on a broker.
    monkeypatch.setattr(app.conf, "task_always_eager", True)

    from archive.models import ArtworkLabel, Collection, Job, JobError, Label, LabelDecision

    By = _by(browser)
    base = live_server.url
    user = User.objects.create_user("curie", password="correct-horse-42")
    user.groups.add(Group.objects.get_or_create(name="curator")[0], Group.objects.get_or_create(name="operator")[0])

    browser.get(base + "/accounts/login/?next=/")
    screenshot("explorer_login")
    browser.find_element(By.ID, "id_username").send_keys("curie")
    browser.find_element(By.ID, "id_password").send_keys("correct-horse-42")
    browser.find_element(By.CSS_SELECTOR, "form.stacked button").click()
    wait_for(browser, "document.querySelector('.account .who')")

    # Reject a machine label on an artwork.
    artwork = small_archive["artworks"][2]
    row = ArtworkLabel.objects.filter(artwork=artwork).order_by("rank").first()
    browser.get(base + f"/artworks/{artwork.pk}/")
    browser.find_element(By.CSS_SELECTOR, f'button[aria-label="Reject {row.label.name}"]').click()
    wait_for(browser, "document.querySelector('.message')")
    assert LabelDecision.objects.get(artwork=artwork, label=row.label).decision == "rejected"
    assert browser.find_elements(By.CSS_SELECTOR, ".label-row.rejected")
    screenshot("explorer_artwork_curator", full_page=True)

    # Create a label from a prompt, review it, untick one, publish.
    browser.get(base + "/curate/labels/new/")
    browser.find_element(By.ID, "name").send_keys("Quiet interiors")
    browser.find_element(By.ID, "prompt").send_keys("a quiet room interior with a window")
    browser.find_element(By.CSS_SELECTOR, "form.stacked button").click()
    wait_for(browser, "document.querySelectorAll('#review-form input.keep').length >= 10")
    boxes = browser.find_elements(By.CSS_SELECTOR, "#review-form input.keep")
    dropped = int(boxes[1].get_attribute("data-id"))
    boxes[1].click()
    screenshot("explorer_prompt_review")
    browser.find_element(By.ID, "publish").click()
    wait_for(browser, "location.pathname.startsWith('/labels/')")
    label = Label.objects.get(name="Quiet interiors")
    assert label.published and label.created_by == user
    assert LabelDecision.objects.get(label=label, artwork_id=dropped).decision == "rejected"
    scored = Job.objects.get(kind="score_label", params__label_id=label.pk)
    assert scored.state == "done" and scored.done == 60, scored.message
    assert ArtworkLabel.objects.filter(label=label).exists()
    assert browser.find_elements(By.CSS_SELECTOR, f'.message a[href="/jobs/{scored.pk}/"]')

    # Save a collection from a label page.
    from django.db.models import Count

    biggest = ArtworkLabel.objects.values("label__slug").annotate(n=Count("id")).order_by("-n").first()["label__slug"]
    browser.get(base + f"/labels/{biggest}/")
    browser.find_element(By.CSS_SELECTOR, ".save-collection summary").click()
    browser.find_element(By.CSS_SELECTOR, ".save-collection input[name=title]").send_keys("Portraits to review")
    browser.find_element(By.CSS_SELECTOR, ".save-collection button").click()
    wait_for(browser, "location.pathname.startsWith('/collections/') && location.pathname !== '/collections/save/'")
    collection = Collection.objects.get(title="Portraits to review")
    assert collection.items.count() >= 1
    wait_for(browser, "document.images.length && document.images[0].complete")
    time.sleep(1)
    screenshot("explorer_collection", full_page=True)

    # Export: fetch the three exports as the browser would download them.
    csv_text = browser.execute_async_script(
        "const done = arguments[0]; fetch(document.getElementById('export-csv').href).then(r => r.text()).then(done);")
    assert csv_text.splitlines()[0].startswith("id,title,creator") and len(csv_text.splitlines()) == collection.items.count() + 1
    iiif = json.loads(browser.execute_async_script(
        "const done = arguments[0]; fetch(document.getElementById('export-iiif').href).then(r => r.text()).then(done);"))
    assert iiif["type"] == "Collection" and len(iiif["items"]) == collection.items.count()

    # Job dashboard: a running job's progress updates live from the JSON endpoint.
    job = Job.objects.create(kind="embed", state="running", total=1000, done=420, failed=3, rate=12.5, created_by=user,
                             message="embedding with test-tiny")
    from django.utils import timezone

    Job.objects.filter(pk=job.pk).update(started_at=timezone.now())
    JobError.objects.create(job=job, item=f"artwork {artwork.pk}", reason="image file missing on disk", artwork=artwork)
    browser.get(base + f"/jobs/{job.pk}/")
    Job.objects.filter(pk=job.pk).update(done=640)
    wait_for(browser, "document.getElementById('job-counts').textContent.startsWith('640')", timeout=15)
    screenshot("explorer_job")
    browser.find_element(By.CSS_SELECTOR, "form[action$='/pause/'] button").click()
    wait_for(browser, "document.getElementById('job-state').textContent.trim() === 'Paused'")
    job.refresh_from_db()
    assert job.state == "paused"
    browser.get(base + "/jobs/")
    screenshot("explorer_jobs")
    browser.get(base + "/api/v1/docs/")
    wait_for(browser, "document.querySelector('.swagger-ui .opblock')", timeout=30)
    screenshot("explorer_api_docs")
