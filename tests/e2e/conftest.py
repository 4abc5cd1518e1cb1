"""Fixtures for browser tests: headless Chromium through selenium, screenshots into
docs/screenshots/, and media served from the test session's MEDIA_ROOT by the live server.

Tests skip with a clear reason where selenium, chromium or chromedriver are missing
(``apt-get install -y chromium chromium-driver``; ``pip install selenium``)."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WINDOW = (1280, 900)


def _binaries() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)
    if not chromium or not driver:
        pytest.skip("headless browser tests need chromium and chromedriver (apt-get install -y chromium chromium-driver)")
    return chromium, driver


def open_chromium(*extra_args: str):
    """A headless Chromium webdriver, window 1280x900, with ``extra_args``; the test is skipped
    when selenium or Chromium is missing or will not start. The camera is a fake device that needs
    no permission prompt, so getUserMedia can be exercised."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.common.exceptions import WebDriverException

    chromium, driver_path = _binaries()
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-dev-shm-usage", "--hide-scrollbars", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", *extra_args):
        options.add_argument(arg)
    options.binary_location = chromium
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
    except WebDriverException as exc:
        pytest.skip(f"headless Chromium could not start: {exc.msg}")
    driver.set_window_size(*WINDOW)
    driver.set_page_load_timeout(60)
    return driver


@pytest.fixture
def browser():
    """A headless Chromium webdriver (:func:`open_chromium`)."""
    driver = open_chromium()
    yield driver
    driver.quit()


@pytest.fixture
def screenshot(browser):
    """``screenshot(name, full_page=False, width=None)`` writes docs/screenshots/<name>.png and
    returns its path. With ``full_page`` the window is stretched to the page's height (up to
    4000 px) for the shot; ``width`` (e.g. 390, a phone) shoots the page at that window width."""

    def take(name: str, full_page: bool = False, width: int | None = None) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        if width:
            browser.set_window_size(width, WINDOW[1])
            time.sleep(0.3)
        if full_page:
            browser.execute_script("window.scrollTo(0, 0)")
            height = browser.execute_script("return Math.min(4000, document.documentElement.scrollHeight)")
            browser.set_window_size(width or WINDOW[0], max(WINDOW[1], int(height)))
            time.sleep(0.3)
        browser.save_screenshot(str(path))
        if full_page or width:
            browser.set_window_size(*WINDOW)
        return path

    return take


@pytest.fixture
def live_media(settings):
    """Serve MEDIA_URL from the current (temporary) MEDIA_ROOT in the live server."""
    settings.ROOT_URLCONF = "tests.e2e.urls"
    return settings.MEDIA_ROOT


def wait_for(driver, script: str, timeout: float = 60.0):
    """Poll a JavaScript expression until it is truthy; fail with the browser's console log."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = driver.execute_script(f"return ({script});")
        if value:
            return value
        time.sleep(0.2)
    logs = "\n".join(str(e) for e in driver.get_log("browser"))
    raise AssertionError(f"timed out waiting for {script}; browser log:\n{logs}")
