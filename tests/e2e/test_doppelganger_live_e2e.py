"""The live mirror in headless Chromium with a fake camera playing a face video written at test time
(tests/e2e/fake_camera.py): the matches update while the "visitor" moves, the best match holds
(no flicker) and changes when another person steps in; the kiosk shows the match with its QR code
and resets when nobody is there. Screenshots of both use only public-domain paintings (AIC
portraits play the visitors): the face photos are for internal testing and never published."""
from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import SCREENSHOTS, open_chromium, wait_for
from tests.e2e.fake_camera import blank_frames, face_frames, write_y4m
from tests.explorer.test_doppelganger_support import AIC_PORTRAITS, QUERY, TWO_PEOPLE, build_archive, deepface_dir

pytestmark = [pytest.mark.e2e]

PAGE = "/doppelganger/"
KIOSK = "/doppelganger/kiosk/"
VISITOR_PAINTINGS = ["15698", "59874"]  # public-domain portraits as the two visitors of the screenshots
MORE_PORTRAITS = ["75974", "80540", "59907", "36678", "20556", "16622", "80535"]


@pytest.fixture
def camera_browser():
    """``open(video)``: a headless Chromium whose camera plays ``video`` (a .y4m file)."""
    drivers = []

    def open_with(video):
        driver = open_chromium(f"--use-file-for-fake-video-capture={video}", "--autoplay-policy=no-user-gesture-required")
        drivers.append(driver)
        return driver

    yield open_with
    for driver in drivers:
        driver.quit()


@pytest.fixture
def live_budget(settings):
    settings.DOPPELGANGER_LIVE_RATE = "100/second"  # one address (the test's) runs every visitor


def stats(browser) -> dict:
    return browser.execute_script("return window.dgLive ? Object.assign({}, window.dgLive.stats) : null")


def top_title(browser) -> str:
    return browser.execute_script("var t = document.querySelector('#dg-live-matches .dg-live-title'); return t ? t.textContent : ''")


def test_live_mode_follows_the_visitor_without_flicker(live_server, live_media, transactional_db, camera_browser, shared_data,
                                                       tmp_path, live_budget):
    made = build_archive(shared_data, paintings=AIC_PORTRAITS[:6], landscape=False, people=TWO_PEOPLE)
    photos = deepface_dir(shared_data)
    video = write_y4m(face_frames(photos / QUERY["person01"], 6) + face_frames(photos / QUERY["person02"], 6),
                      tmp_path / "visitors.y4m")
    browser = camera_browser(video)
    browser.get(live_server.url + PAGE)
    start = browser.find_element("id", "dg-live-start")
    assert start.is_displayed() and browser.find_element("id", "dg-photo")  # the snapshot stays beside it
    start.click()
    wait_for(browser, "window.dgLive && window.dgLive.stats.updates >= 3", timeout=90)
    # The face box is drawn on the mirror, in the video's pixels.
    box = browser.execute_script("var b = window.dgLive.box; return b && [b.x, b.y, b.w, b.h]")
    assert box and 120 < box[2] < 320 and browser.execute_script("return document.getElementById('dg-live-canvas').width") == 640
    first, second = made["people"]["person01"].title, made["people"]["person02"].title
    wait_for(browser, f"document.querySelector('#dg-live-matches .dg-live-title') && "
                      f"document.querySelector('#dg-live-matches .dg-live-title').textContent === {first!r}", timeout=90)
    # The video moves on to the second person: the best match follows, after a few frames.
    wait_for(browser, f"document.querySelector('#dg-live-matches .dg-live-title').textContent === {second!r}", timeout=90)
    wait_for(browser, f"document.querySelector('#dg-live-matches .dg-live-title').textContent === {first!r}", timeout=90)
    s = stats(browser)
    assert s["errors"] == 0 and s["updates"] >= 10, s
    # No flicker: the best match changed about once per person seen, not on every frame.
    assert s["switches"] <= max(6, s["updates"] // 4), s
    assert s["sent"] > s["answered"] - 1 >= 0
    modes = browser.execute_script("return window.dgLive.stats.mode")
    assert modes in ("crop", "frame")
    browser.find_element("id", "dg-live-stop").click()
    assert browser.execute_script("return document.getElementById('dg-live').hidden")


def test_kiosk_shows_the_match_with_its_qr_code_and_resets_when_nobody_is_there(
        live_server, live_media, transactional_db, camera_browser, shared_data, tmp_path, live_budget, settings):
    settings.DOPPELGANGER_KIOSK_IDLE_SECONDS = 2
    made = build_archive(shared_data, paintings=AIC_PORTRAITS[:4], landscape=False, people=TWO_PEOPLE)
    photos = deepface_dir(shared_data)
    video = write_y4m(face_frames(photos / QUERY["person01"], 5) + blank_frames(5), tmp_path / "kiosk.y4m")
    browser = camera_browser(video)
    browser.get(live_server.url + KIOSK)
    assert "never saved, logged or shared" in browser.find_element("id", "kiosk-privacy").text
    assert not browser.find_elements("css selector", "button, input:not([type=hidden]), nav, a[href]:not(#kiosk-nocamera a)")  # no controls
    wait_for(browser, "!document.getElementById('kiosk-best').hidden", timeout=90)
    art = made["people"]["person01"]
    assert browser.find_element("id", "kiosk-title").text == art.title
    wait_for(browser, "document.getElementById('kiosk-qr').complete && document.getElementById('kiosk-qr').naturalWidth > 0")
    assert browser.find_element("id", "kiosk-url").text == f"{live_server.url}/artworks/{art.pk}/"
    assert browser.find_element("id", "kiosk-qr").get_attribute("src").endswith(f"/doppelganger/qr/{art.pk}.svg")
    # The empty wall for longer than the idle time: back to the invitation.
    wait_for(browser, "document.getElementById('kiosk-best').hidden && !document.getElementById('kiosk-idle').hidden", timeout=60)
    # ... and the next visitor (the video loops) gets a match again.
    wait_for(browser, "!document.getElementById('kiosk-best').hidden", timeout=60)
    assert stats(browser)["errors"] == 0


def test_screenshots_of_live_mode_and_kiosk(live_server, live_media, transactional_db, camera_browser, shared_data, aic_dir,
                                            tmp_path, live_budget, screenshot_dir=SCREENSHOTS):
    paintings = [p for p in AIC_PORTRAITS + MORE_PORTRAITS if p not in VISITOR_PAINTINGS]
    made = build_archive(shared_data, paintings=paintings, landscape=False, people={})
    assert not made["result"].errors
    visitor = aic_dir / "images" / f"{VISITOR_PAINTINGS[0]}.jpg"
    video = write_y4m(face_frames(visitor, 8, face_width=190), tmp_path / "painting.y4m")
    browser = camera_browser(video)
    browser.get(live_server.url + PAGE)
    browser.find_element("id", "dg-live-start").click()
    wait_for(browser, "window.dgLive && window.dgLive.stats.updates >= 4 && document.querySelectorAll('#dg-live-matches .dg-live-match').length >= 3 "
                      "&& [...document.querySelectorAll('#dg-live-matches img')].every(i => i.complete && i.naturalWidth > 0)", timeout=90)
    browser.execute_script("document.getElementById('dg-live').scrollIntoView()")
    time.sleep(0.5)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(screenshot_dir / "doppelganger_live.png"))
    browser.get(live_server.url + KIOSK)
    wait_for(browser, "!document.getElementById('kiosk-best').hidden && document.getElementById('kiosk-qr').naturalWidth > 0 "
                      "&& document.getElementById('kiosk-thumb').naturalWidth > 0 "
                      "&& document.querySelectorAll('#kiosk-more img').length >= 2", timeout=90)
    time.sleep(0.8)
    browser.save_screenshot(str(screenshot_dir / "doppelganger_kiosk.png"))
    assert (screenshot_dir / "doppelganger_kiosk.png").stat().st_size > 50_000


def test_without_a_camera_the_snapshot_remains(live_server, live_media, transactional_db, browser):
    """A browser without getUserMedia (an old phone, a page not served over https): no live button,
    the photo upload as before; the kiosk says it needs a camera and points to the page."""
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                            {"source": "Object.defineProperty(navigator, 'mediaDevices', {value: undefined});"})
    browser.get(live_server.url + PAGE)
    assert browser.execute_script("return navigator.mediaDevices") is None
    assert not browser.find_element("id", "dg-live-start").is_displayed()
    assert not browser.find_element("id", "dg-camera-start").is_displayed()
    assert browser.find_element("id", "dg-photo").is_enabled()
    browser.get(live_server.url + KIOSK)
    wait_for(browser, "!document.getElementById('kiosk-nocamera').hidden")
    link = browser.find_element("css selector", "#kiosk-nocamera a")
    assert link.get_attribute("href").endswith(PAGE)
