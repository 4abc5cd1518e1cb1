"""The doppelganger page in headless Chromium against a live server: choose a photo, see the
matches appear in place (fetch), pick another face in a group photo, take a photo with the
(fake) camera, and a screenshot for the docs.

The screenshot uses only public-domain material (an AIC portrait as the "visitor"), since the face
photos under shared/data are for internal testing only and must not be published."""
from __future__ import annotations

import json
import time

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.test import Client

from tests.e2e.conftest import SCREENSHOTS, wait_for
from tests.explorer.test_doppelganger_support import AIC_PORTRAITS, QUERY, TWO_PEOPLE, build_archive, deepface_dir

pytestmark = [pytest.mark.e2e]

PAGE = "/doppelganger/"
# For the screenshot: a public-domain portrait as the visitor, more portraits as the collection.
VISITOR_PAINTING = "15698"  # Follower of Peter Paul Rubens, Portrait of Isabella of Bourbon
MORE_PORTRAITS = ["59874", "75974", "80540", "59907", "36678", "20556", "16622", "80535"]


def choose(browser, path) -> None:
    browser.find_element("id", "dg-photo").send_keys(str(path))


def match_titles(browser) -> list[str]:
    return [el.text for el in browser.find_elements("css selector", ".dg-match .dg-title")]


def test_upload_shows_the_same_person_first(live_server, live_media, transactional_db, browser, shared_data, tmp_path):
    made = build_archive(shared_data, paintings=AIC_PORTRAITS[:8], landscape=False, people=TWO_PEOPLE)
    browser.get(live_server.url + PAGE)
    assert "never saved, logged or shared" in browser.find_element("id", "dg-consent").text
    assert browser.find_element("id", "dg-camera-start").is_displayed()  # getUserMedia is offered
    choose(browser, deepface_dir(shared_data) / QUERY["person01"])  # choosing a photo sends it
    wait_for(browser, "document.querySelectorAll('.dg-match').length >= 5")
    assert match_titles(browser)[0] == made["people"]["person01"].title
    assert browser.current_url.endswith(PAGE)  # updated in place, no navigation
    # Both crops loaded: the visitor's (inline data: URL) and the painted face (from MEDIA).
    loaded = browser.execute_script(
        "return [...document.querySelectorAll('.dg-match:first-child img')].map(i => [i.src.slice(0, 11), i.naturalWidth])")
    assert loaded[0] == ["data:image/", 224] and loaded[1][1] == 224
    # ... and the whole artwork (its 256 px thumbnail) beside them.
    wait_for(browser, "[...document.querySelectorAll('.dg-match .dg-thumb img')].every(i => i.complete && i.naturalWidth > 0)")
    assert browser.execute_script(
        "var i = document.querySelector('.dg-match:first-child .dg-thumb img'); return Math.max(i.naturalWidth, i.naturalHeight)") == 256
    browser.save_screenshot(str(tmp_path / "doppelganger-real-photo.png"))  # for review only, never published

    # A group photo: boxes to choose from; choosing another face re-sends the photo with its index.
    choose(browser, deepface_dir(shared_data) / "couple.jpg")
    wait_for(browser, "document.querySelectorAll('.dg-box').length >= 2 && !document.querySelector('.dg-results.loading')")
    assert browser.find_element("css selector", ".dg-box.chosen").get_attribute("data-face") == "0"
    browser.find_elements("css selector", ".dg-box")[1].click()
    wait_for(browser, "document.querySelector('.dg-box.chosen') && document.querySelector('.dg-box.chosen').dataset.face === '1'")
    assert len(match_titles(browser)) >= 5
    browser.save_screenshot(str(tmp_path / "doppelganger-pick-face.png"))  # for review only


def test_camera_capture_is_sent_and_answered(live_server, live_media, transactional_db, browser, shared_data):
    build_archive(shared_data, paintings=AIC_PORTRAITS[:3], landscape=False, people={})
    browser.get(live_server.url + PAGE)
    browser.find_element("id", "dg-camera-start").click()
    wait_for(browser, "document.getElementById('dg-video').videoWidth > 0")
    browser.find_element("id", "dg-snap").click()
    # Chromium's fake camera shows a test pattern, not a face: the visitor gets the clear message.
    wait_for(browser, "document.querySelector('.dg-error') && document.querySelector('.dg-error').textContent.includes('could not find a face')")
    assert "taken with your camera" in browser.find_element("id", "dg-chosen").text
    assert browser.execute_script("return document.getElementById('dg-camera').hidden")  # camera stopped


def test_failures_are_shown_as_friendly_messages(live_server, live_media, transactional_db, browser, shared_data, settings, tmp_path):
    """The server cannot match (model files missing): its 503 message is shown. An answer that is
    not the page's own (a 404 page here, a proxy's error page in real life) is never pasted into
    the page: the script shows its own message. A photo over the limit is not even sent."""
    build_archive(shared_data, paintings=AIC_PORTRAITS[:2], landscape=False, people={})
    photo = deepface_dir(shared_data) / QUERY["person01"]
    browser.get(live_server.url + PAGE)
    settings.FACE_MODELS_DIR = str(tmp_path)  # empty: the dlib models cannot be loaded
    choose(browser, photo)
    wait_for(browser, "document.querySelector('.dg-error') && !document.querySelector('.dg-results.loading')")
    assert "went wrong while matching your photo" in browser.find_element("css selector", ".dg-error").text

    browser.get(live_server.url + PAGE)
    browser.execute_script("document.getElementById('dg-form').action = '/doppelganger-no-such-page/'")
    choose(browser, photo)
    wait_for(browser, "document.querySelector('.dg-error') && !document.querySelector('.dg-results.loading')")
    text = browser.find_element("id", "dg-results").text
    assert "not available right now (error 404)" in text and "Not Found" not in text

    browser.get(live_server.url + PAGE)
    browser.execute_script("document.getElementById('dg-form').dataset.maxBytes = '1000'")
    choose(browser, photo)
    wait_for(browser, "document.querySelector('.dg-error')")
    assert "too large" in browser.find_element("css selector", ".dg-error").text


def test_screenshot_with_public_domain_portraits(live_server, live_media, transactional_db, browser, screenshot, shared_data, aic_dir):
    made = build_archive(shared_data, paintings=AIC_PORTRAITS + MORE_PORTRAITS, landscape=False, people={})
    assert not made["result"].errors
    browser.get(live_server.url + PAGE)
    choose(browser, aic_dir / "images" / f"{VISITOR_PAINTING}.jpg")
    wait_for(browser, "document.querySelectorAll('.dg-match').length >= 6 && [...document.querySelectorAll('.dg-match img')].every(i => i.complete && i.naturalWidth > 0)")
    titles = match_titles(browser)
    assert len(titles) == len(set(titles)) == 6
    browser.execute_script("document.activeElement.blur()")
    thumbs = browser.execute_script("return [...document.querySelectorAll('.dg-match .dg-thumb img')].map(i => i.naturalWidth)")
    assert len(thumbs) == 6 and all(w > 0 for w in thumbs)  # every match shows its artwork
    path = screenshot("doppelganger", full_page=True)
    assert path.stat().st_size > 50_000
    # Mobile width: the matches stack in one column, nothing overflows sideways.
    browser.set_window_size(390, 844)
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, json.dumps({"overflow": overflow})
    columns = browser.execute_script(
        "return new Set([...document.querySelectorAll('.dg-match')].map(m => Math.round(m.getBoundingClientRect().left))).size")
    assert columns == 1
    browser.execute_script("document.getElementById('dg-results').scrollIntoView()")
    time.sleep(0.3)
    browser.save_screenshot(str(SCREENSHOTS / "doppelganger_mobile.png"))  # a phone's view of the results
    browser.set_window_size(1280, 900)

    # The faces panel of the first match's artwork page, as a curator sees it.
    first = browser.find_element("css selector", ".dg-match .dg-title").get_attribute("href")
    user = User.objects.create_user("e2e-curator", password="e2e-curator-pw-123")
    user.groups.add(Group.objects.get_or_create(name="curator")[0])
    client = Client()
    client.force_login(user)
    browser.add_cookie({"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value})
    browser.get(first)
    panel = browser.find_element("id", "faces")
    assert panel.find_elements("css selector", ".face-box") and panel.find_elements("css selector", "button.danger")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", panel)
    wait_for(browser, "[...document.querySelectorAll('#faces img')].every(i => i.complete && i.naturalWidth > 0)")
    screenshot("doppelganger_faces_panel")
    panel.find_element("css selector", "button.danger").click()  # "Not a face": back on the page, marked
    wait_for(browser, "document.querySelector('#faces .badge') !== null && document.querySelector('#faces .face-box.rejected') !== null")
