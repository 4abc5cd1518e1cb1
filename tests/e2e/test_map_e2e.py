"""The map in headless Chromium (WebGL through SwiftShader) with 100k+ points: overview, zoom to
thumbnails, hover, click through to the artwork page, search, box selection.

The layout is synthetic (a Gaussian mixture of 100,000 catalogue-only artworks written with COPY)
plus 40 real AIC paintings with images, placed in their own cluster, so that zooming there shows
real thumbnails from the atlas. The point data and atlases are exported by the real export code.
Screenshots go to docs/screenshots/map_overview.png and map_zoomed.png.
"""
from __future__ import annotations

import io
import os
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.utils import timezone

from archive import vectors
from archive.images import ImageLimits, ingest_location
from archive.models import Artwork, EmbeddingModel, Layout
from workers.layouts import build

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
N_SYNTHETIC = int(os.environ.get("MAP_E2E_POINTS", 100_000))
REAL = 40


def synthetic_artworks(n: int) -> np.ndarray:
    """Insert ``n`` catalogue-only artworks with COPY; returns their ids."""
    now = timezone.now()
    fields = [f for f in Artwork._meta.concrete_fields if not f.primary_key and not f.generated]
    classes = ["painting", "print", "drawing", "photograph", "sculpture"]

    def row(i):
        values = {"source": "synthetic", "source_id": str(i), "title": f"Synthetic work {i}", "creator": f"Workshop {i % 97}",
                  "classification": classes[i % 5], "year_start": 1400 + i % 600, "status": "no_image",
                  "created_at": now, "updated_at": now}
        out = []
        for f in fields:
            v = values.get(f.attname, None if f.null else f.get_default())
            out.append(json.dumps(v) if isinstance(v, (dict, list)) else v)
        return out

    vectors.copy_rows("archive_artwork", [f.column for f in fields], (row(i) for i in range(n)))
    return np.asarray(Artwork.objects.filter(source="synthetic").order_by("id").values_list("id", flat=True), dtype=np.int64)


def real_artworks(aic_dir: Path, n: int) -> list[Artwork]:
    limits = ImageLimits.from_settings()
    out = []
    for path in sorted((aic_dir / "images").glob("*.jpg"))[:n]:
        img = ingest_location(str(path), settings.DERIVATIVE_SIZES, Path(settings.MEDIA_ROOT), limits)
        out.append(Artwork.objects.create(source="aic", source_id=path.stem, title=f"AIC painting {path.stem}",
                                          creator="Art Institute of Chicago", classification="painting",
                                          status=Artwork.Status.OK, sha256=img.sha256, width=img.width, height=img.height))
    return out


@pytest.fixture
def big_map(transactional_db, aic_dir):
    model = EmbeddingModel.objects.create(key="e2e-map/none", arch="test", dim=8, state="active", untrained=True)
    synthetic = synthetic_artworks(N_SYNTHETIC)
    real = real_artworks(aic_dir, REAL)
    rng = np.random.default_rng(7)
    centres = rng.uniform(-40, 40, (24, 2))
    coords = (centres[rng.integers(0, 24, N_SYNTHETIC)] + rng.normal(0, 2.5, (N_SYNTHETIC, 2))).astype(np.float32)
    real_coords = (np.array([60.0, 60.0]) + rng.normal(0, 0.6, (REAL, 2))).astype(np.float32)
    ids = np.concatenate([synthetic, [a.pk for a in real]]).astype(np.int64)
    layout = build.get_layout("umap", {}, model)
    build.save_layout(layout, ids, ids, np.concatenate([coords, real_coords]), model=model, params={"untrained": True})
    layout.refresh_from_db()
    assert layout.point_count == N_SYNTHETIC + REAL
    return layout, real


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException

    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        pytest.skip("chromium/chromedriver not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--use-gl=angle",
                "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--window-size=1400,1000", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")), options=options)
    except WebDriverException as exc:
        pytest.skip(f"headless Chromium could not start: {exc.msg}")
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(driver, script: str, timeout: float = 90.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = driver.execute_script(f"return ({script});")
        if value:
            return value
        time.sleep(0.25)
    logs = "\n".join(str(e) for e in driver.get_log("browser"))
    raise AssertionError(f"timed out waiting for {script}; browser log:\n{logs}")


def canvas_colours(driver) -> int:
    """Distinct colours in a screenshot of the map element (rendered WebGL, not a blank canvas)."""
    from PIL import Image

    el = driver.find_element("id", "map")
    im = np.asarray(Image.open(io.BytesIO(el.screenshot_as_png)).convert("RGB").resize((350, 250)))
    return len(np.unique(im.reshape(-1, 3), axis=0))


def test_map_in_browser(live_server, big_map, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    layout, real = big_map
    browser.get(live_server.url + "/map/")
    count = wait_for(browser, "window.__map && window.__map.ready && window.__map.count")
    assert count == N_SYNTHETIC + REAL
    time.sleep(1.5)
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "map_overview.png"))
    assert canvas_colours(browser) > 30, "the WebGL canvas looks blank"
    assert "UNTRAINED" in browser.find_element("id", "map-notes").text
    assert browser.execute_script("return window.__map.thumbSheets().length") == 0  # dots only at the overview

    # Search flies to the matches; a box selection (Shift-drag) over the view selects them, and an
    # anonymous visitor is offered a login link to save it.
    browser.find_element("id", "map-q").send_keys("Art Institute of Chicago", Keys.ENTER)
    wait_for(browser, f"document.getElementById('map-status').textContent.startsWith('{REAL} matches')", 30)
    time.sleep(1.0)  # fly-to transition
    assert browser.execute_script("return window.__map.state.viewState.zoom;") > 2
    el = browser.find_element("id", "map")
    w, h = el.size["width"], el.size["height"]
    ActionChains(browser).move_to_element_with_offset(el, -w // 2 + 5, -h // 2 + 5).key_down(Keys.SHIFT).click_and_hold() \
        .move_by_offset(w - 10, h - 10).release().key_up(Keys.SHIFT).perform()
    wait_for(browser, "!document.getElementById('map-selection').hidden", 10)
    assert browser.find_element("id", "map-selection-count").text == f"{REAL} selected"
    assert "/accounts/login/" in browser.find_element("id", "map-login").get_attribute("href")
    browser.find_element("id", "map-clear").click()

    # Zoom to the real paintings: thumbnails come from the atlas sheets; the view goes into the URL.
    i = browser.execute_script(f"return window.__map.indexOfId({real[0].pk});")
    x, y = browser.execute_script(f"return window.__map.world({i});")
    browser.execute_script(f"window.__map.setView({x}, {y}, 4);")
    wait_for(browser, "window.__map.thumbSheets().length > 0", 30)
    time.sleep(2.5)  # atlas JPEGs load
    browser.save_screenshot(str(SHOTS / "map_zoomed.png"))
    assert canvas_colours(browser) > 200, "no thumbnails visible when zoomed in"
    wait_for(browser, "location.hash.endsWith(',4.00')", 5)

    # Hover shows the title; click opens the artwork page.
    sx, sy = browser.execute_script(f"return window.__map.screen({i});")
    ActionChains(browser).move_to_element_with_offset(el, int(sx - w / 2), int(sy - h / 2)).perform()
    wait_for(browser, "!document.getElementById('map-tooltip').hidden && "
                      "document.getElementById('map-tooltip').textContent.includes('AIC painting')", 20)
    ActionChains(browser).move_to_element_with_offset(el, int(sx - w / 2), int(sy - h / 2)).click().perform()
    wait_for(browser, "location.pathname.startsWith('/artworks/')", 20)
    clicked = int(browser.current_url.rstrip("/").split("/")[-1])
    assert clicked in {a.pk for a in real}

    # A shared URL restores the view.
    browser.get(live_server.url + f"/map/#{x:.2f},{y:.2f},4.00")
    wait_for(browser, "window.__map && window.__map.ready")
    assert abs(browser.execute_script("return window.__map.state.viewState.zoom") - 4) < 1e-6
