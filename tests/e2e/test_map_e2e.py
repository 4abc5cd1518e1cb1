"""The map in headless Chromium (WebGL through SwiftShader) with 100k+ points: overview with region
names, mouse-wheel zoom, text search kept in the URL across a reload, label and classification /
year filters, an artwork opened on the map from its page ("Show on map": flown to, highlighted,
with its title card and full-size thumbnails), lasso selection, hover, click through to the artwork
page, box selection, the layout switcher, and a shared view.

The layout is synthetic (a Gaussian mixture of 100,000 catalogue-only artworks written with COPY,
with machine labels per mixture component so the regions have names) plus 40 real AIC paintings
with images, in their own patch, so that zooming there shows real thumbnails. The point data and
atlases are exported by the real export code. Screenshots go to docs/screenshots/map_overview.png
and map_zoomed.png.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.utils import timezone

from archive import vectors
from archive.images import ImageLimits, ingest_location
from archive.models import Artwork, EmbeddingModel, Label
from workers.layouts import build

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
N_SYNTHETIC = int(os.environ.get("MAP_E2E_POINTS", 100_000))
REAL = 40
CLUSTERS = 24
TOPICS = ["portrait", "landscape", "seascape", "still life", "horse", "ship", "flowers", "church", "battle", "river",
          "mountain", "city view", "dog", "angel", "saint", "harbour", "forest", "ruins", "market", "winter",
          "garden", "musician", "bridge", "interior"]
CLASSES = ["painting", "print", "drawing", "photograph", "sculpture"]


def synthetic_artworks(n: int) -> np.ndarray:
    """Insert ``n`` catalogue-only artworks with COPY; returns their ids."""
    now = timezone.now()
    fields = [f for f in Artwork._meta.concrete_fields if not f.primary_key and not f.generated]

    def row(i):
        values = {"source": "synthetic", "source_id": str(i), "title": f"Synthetic work {i}", "creator": f"Workshop {i % 97}",
                  "classification": CLASSES[i % 5], "year_start": 1400 + i % 600, "status": "no_image",
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
def big_map(transactional_db, aic_dir, live_media):
    model = EmbeddingModel.objects.create(key="e2e-map/none", arch="test", dim=8, state="active", untrained=False)
    synthetic = synthetic_artworks(N_SYNTHETIC)
    real = real_artworks(aic_dir, REAL)
    rng = np.random.default_rng(7)
    centres = rng.uniform(-40, 40, (CLUSTERS, 2))
    component = rng.integers(0, CLUSTERS, N_SYNTHETIC)
    coords = (centres[component] + rng.normal(0, 2.5, (N_SYNTHETIC, 2))).astype(np.float32)
    # The real paintings: a loose grid in their own patch, like a contact sheet when zoomed in.
    grid = np.array([(i % 8, i // 8) for i in range(REAL)], dtype=np.float32) * 1.25
    real_coords = (np.array([60.0, 60.0]) + grid + rng.normal(0, 0.12, (REAL, 2))).astype(np.float32)
    # Machine labels: each mixture component has a topic (rank 1) and shares a second with a neighbour.
    labels = [Label.objects.create(name=t, slug=t.replace(" ", "-"), group="subjects") for t in TOPICS]
    boat = Label.objects.create(name="boat", slug="boat", group="objects")
    vectors.copy_rows(
        "archive_artworklabel", ["artwork_id", "label_id", "model_id", "score", "rank"],
        ((int(a), labels[(int(c) + r) % CLUSTERS].pk, model.pk, 0.3 - 0.1 * r, r + 1)
         for a, c in zip(synthetic, component) for r in range(2)),
    )
    vectors.copy_rows("archive_artworklabel", ["artwork_id", "label_id", "model_id", "score", "rank"],
                      [(a.pk, boat.pk, model.pk, 0.4, 1) for a in real[:10]])
    ids = np.concatenate([synthetic, [a.pk for a in real]]).astype(np.int64)
    layout = build.get_layout("umap", {}, model)
    build.save_layout(layout, ids, ids, np.concatenate([coords, real_coords]), model=model, params={"untrained": False})
    layout.refresh_from_db()
    assert layout.point_count == N_SYNTHETIC + REAL and layout.is_default
    # A second map (the switcher's other choice): the "boat" label's artworks, made with an untrained model.
    other = build.get_layout("tsne", {"label": "boat"}, model)
    boats = np.array([a.pk for a in real[:10]], dtype=np.int64)
    build.save_layout(other, boats, boats, rng.normal(0, 1, (10, 2)).astype(np.float32), model=model, params={"untrained": True})
    return layout, real


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException

    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        pytest.skip("chromium/chromedriver not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--use-gl=angle",
                "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--window-size=1400,1000", "--disable-dev-shm-usage",
                "--hide-scrollbars"):
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


def open_map(driver, url: str) -> int:
    """Load ``url`` as a fresh page (not a same-page hash change) and wait until the points are in."""
    driver.get("about:blank")
    driver.get(url)
    return wait_for(driver, "window.__map && window.__map.ready && window.__map.count")


def canvas_colours(driver) -> int:
    """Distinct colours in a screenshot of the map element (rendered WebGL, not a blank canvas)."""
    from PIL import Image

    el = driver.find_element("id", "map")
    im = np.asarray(Image.open(io.BytesIO(el.screenshot_as_png)).convert("RGB").resize((350, 250)))
    return len(np.unique(im.reshape(-1, 3), axis=0))


def status(driver) -> str:
    return driver.find_element("id", "map-status").text


def lasso_outline(cx: float, cy: float, r: float, steps: int = 36) -> list[tuple[int, int]]:
    """A closed, slightly irregular outline around (cx, cy), in whole pixels of the map element."""
    return [(round(cx + r * (1 + 0.2 * np.sin(3 * t)) * np.cos(t)), round(cy + r * np.sin(t)))
            for t in np.linspace(0, 2 * np.pi, steps, endpoint=False)]


def inside(x: float, y: float, polygon) -> bool:
    """Even-odd ray casting: whether (x, y) lies inside the polygon."""
    odd = False
    for (x1, y1), (x2, y2) in zip(polygon, polygon[-1:] + polygon[:-1]):
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            odd = not odd
    return odd


def draw(driver, el, outline) -> None:
    """A mouse drag through the outline's vertices (offsets from the element's top left corner)."""
    from selenium.webdriver.common.action_chains import ActionChains

    w, h = el.size["width"], el.size["height"]
    chain = ActionChains(driver).move_to_element_with_offset(el, int(outline[0][0] - w / 2), int(outline[0][1] - h / 2)).click_and_hold()
    for (x0, y0), (x1, y1) in zip(outline, outline[1:]):
        chain = chain.move_by_offset(x1 - x0, y1 - y0)
    chain.release().perform()


def wheel(driver, el, dy: int, times: int = 1) -> None:
    """Real mouse-wheel input over the middle of ``el`` (WebDriver wheel actions)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin

    for _ in range(times):
        ActionChains(driver).scroll_from_origin(ScrollOrigin.from_element(el), 0, dy).perform()
        time.sleep(0.3)


def test_map_in_browser(live_server, big_map, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    layout, real = big_map
    base = live_server.url
    assert open_map(browser, base + "/map/") == N_SYNTHETIC + REAL
    time.sleep(1.5)
    assert canvas_colours(browser) > 30, "the WebGL canvas looks blank"
    assert not browser.find_element("id", "map-notes").is_displayed()  # trained model, labelled regions
    assert browser.execute_script("return window.__map.thumbSheets().length") == 0  # dots only at the overview
    # Region names render, named by their topics, and none overlaps another.
    names = browser.execute_script("return window.__map.regionNames()")
    assert len(names) >= 6 and all(n.split(" · ")[0] in TOPICS for n in names), names
    boxes = browser.execute_script("return window.__map.state.nameBoxes")
    assert len(boxes) == len(names)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "map_overview.png"))

    # The mouse wheel zooms (real input events through deck.gl's controller); the view goes into the URL.
    el = browser.find_element("id", "map")
    w, h = el.size["width"], el.size["height"]
    z0 = browser.execute_script("return window.__map.state.viewState.zoom")
    wheel(browser, el, -300, times=3)
    z1 = wait_for(browser, f"window.__map.state.viewState.zoom > {z0 + 1} && window.__map.state.viewState.zoom", 20)
    wait_for(browser, f"location.hash.includes('view=') && location.hash.includes(',{z1:.2f}')", 10)

    # A text search flies to its matches and goes into the URL; a reload brings it back.
    browser.find_element("id", "map-q").send_keys("Art Institute of Chicago", Keys.ENTER)
    wait_for(browser, f"document.getElementById('map-status').textContent.startsWith('{REAL} artworks matching')", 30)
    time.sleep(1.0)  # fly-to transition
    assert browser.execute_script("return window.__map.state.viewState.zoom;") > 2
    wait_for(browser, "location.hash.includes('q=Art%20Institute%20of%20Chicago')", 10)
    # A box selection (Shift-drag) over the view selects the matches; an anonymous visitor gets a login link.
    ActionChains(browser).move_to_element_with_offset(el, -w // 2 + 5, -h // 2 + 5).key_down(Keys.SHIFT).click_and_hold() \
        .move_by_offset(w - 10, h - 10).release().key_up(Keys.SHIFT).perform()
    wait_for(browser, "!document.getElementById('map-selection').hidden", 10)
    assert browser.find_element("id", "map-selection-count").text == f"{REAL} selected"
    assert "/accounts/login/" in browser.find_element("id", "map-login").get_attribute("href")
    shared = browser.current_url
    zoom = browser.execute_script("return window.__map.state.viewState.zoom")
    browser.refresh()
    wait_for(browser, "window.__map && window.__map.ready")
    wait_for(browser, f"document.getElementById('map-status').textContent.startsWith('{REAL} artworks matching')", 30)
    assert browser.find_element("id", "map-q").get_attribute("value") == "Art Institute of Chicago"
    assert browser.current_url == shared
    assert abs(browser.execute_script("return window.__map.state.viewState.zoom") - zoom) < 0.01  # the view, not a new fly-to

    # The label filter replaces the text search, in the page and in the URL.
    Select(browser.find_element("id", "map-label")).select_by_value("boat")
    wait_for(browser, "document.getElementById('map-status').textContent.startsWith('10 artworks labelled “boat”')", 30)
    assert browser.find_element("id", "map-q").get_attribute("value") == ""
    wait_for(browser, "location.hash.includes('label=boat') && !location.hash.includes('q=')", 10)
    # A label in a shared URL is applied on load (and the map flies to its artworks).
    open_map(browser, base + "/map/#label=horse")
    horses = wait_for(browser, "/^([\\d,]+) artworks labelled “horse”/.exec(document.getElementById('map-status').textContent)", 30)
    assert int(horses[1].replace(",", "")) > 1000
    assert browser.find_element("id", "map-label").get_attribute("value") == "horse"
    assert browser.execute_script("return window.__map.state.shownCount") == int(horses[1].replace(",", ""))

    # Classification and year filters (on the exported columns, in the browser) combine with it.
    browser.find_element("id", "map-clear").click()
    Select(browser.find_element("id", "map-cls")).select_by_value("painting")
    paintings = N_SYNTHETIC // 5 + REAL
    wait_for(browser, f"document.getElementById('map-status').textContent.startsWith('{paintings:,} artworks classified “painting”')", 10)
    years = browser.find_element("id", "map-year-from")
    years.send_keys("1500", Keys.TAB)
    browser.find_element("id", "map-year-to").send_keys("1599", Keys.TAB)
    expected = sum(1 for i in range(N_SYNTHETIC) if i % 5 == 0 and 1500 <= 1400 + i % 600 <= 1599)
    wait_for(browser, f"document.getElementById('map-status').textContent.startsWith('{expected:,} artworks classified “painting”, dated 1500–1599')", 10)
    wait_for(browser, "location.hash.includes('cls=painting') && location.hash.includes('years=1500-1599')", 10)
    browser.find_element("id", "map-clear").click()
    wait_for(browser, f"document.getElementById('map-status').textContent.startsWith('{N_SYNTHETIC + REAL:,} artworks')", 10)

    # From an artwork's page, "Show on map" opens the map on it: flown to, highlighted, with its title card.
    target = real[13]
    browser.get(f"{base}/artworks/{target.pk}/")
    link = browser.find_element("id", "show-on-map")
    assert link.get_attribute("href").endswith(f"/map/?layout={layout.slug}#artwork={target.pk}")
    link.click()
    wait_for(browser, "window.__map && window.__map.ready")
    el = browser.find_element("id", "map")
    i = browser.execute_script(f"return window.__map.indexOfId({target.pk});")
    assert browser.execute_script("return window.__map.state.focus") == i >= 0
    wait_for(browser, f"document.querySelector('#map-card .map-card-title') && "
                      f"document.querySelector('#map-card .map-card-title').textContent === 'AIC painting {real[13].source_id}'", 20)
    sx, sy = browser.execute_script(f"return window.__map.screen({i});")
    assert abs(sx - w / 2) < 2 and abs(sy - h / 2) < 2  # centred on it
    # Zoomed in to the artwork's neighbours: the 256 px derivatives are drawn, not just atlas cells.
    wait_for(browser, f"window.__map.hiresCount() === {REAL}", 30)
    assert browser.execute_script("return window.__map.state.thumbPx") > 64  # larger than an atlas cell
    time.sleep(2.0)  # deck.gl packs the loaded derivatives into its texture
    browser.save_screenshot(str(SHOTS / "map_zoomed.png"))
    assert canvas_colours(browser) > 500, "no thumbnails visible when zoomed in"
    wait_for(browser, f"location.hash.includes('artwork={target.pk}')", 5)
    # Two wheel steps out the thumbnails are smaller and come from the atlas cells; back in, the derivatives.
    wheel(browser, el, 300, times=2)
    wait_for(browser, "window.__map.thumbSheets().length > 0 && window.__map.hiresCount() === 0", 20)
    assert browser.execute_script("return window.__map.thumbCount()") == REAL
    wheel(browser, el, -300, times=2)
    wait_for(browser, f"window.__map.hiresCount() === {REAL}", 20)

    # The lasso: a freehand outline drawn around the artwork in focus selects exactly the points inside it.
    browser.find_element("id", "map-lasso").click()
    assert browser.find_element("id", "map-lasso").get_attribute("aria-pressed") == "true"
    outline = lasso_outline(w / 2 + 10, h / 2 - 5, 150)
    expected = 0
    for k in range(REAL):
        px, py = browser.execute_script(f"return window.__map.screen(window.__map.indexOfId({real[k].pk}));")
        expected += inside(px, py, outline)
    assert 3 <= expected < REAL
    draw(browser, el, outline)
    wait_for(browser, "!document.getElementById('map-selection').hidden", 10)
    assert browser.find_element("id", "map-selection-count").text == f"{expected} selected"
    ActionChains(browser).send_keys(Keys.ESCAPE).perform()
    assert browser.find_element("id", "map-lasso").get_attribute("aria-pressed") == "false"

    # Hover shows the title; click opens the artwork page.
    other = real[14]
    j = browser.execute_script(f"return window.__map.indexOfId({other.pk});")
    sx, sy = browser.execute_script(f"return window.__map.screen({j});")
    ActionChains(browser).move_to_element_with_offset(el, int(sx - w / 2), int(sy - h / 2)).perform()
    wait_for(browser, "!document.getElementById('map-tooltip').hidden && "
                      f"document.getElementById('map-tooltip').textContent.includes('AIC painting {other.source_id}')", 20)
    ActionChains(browser).move_to_element_with_offset(el, int(sx - w / 2), int(sy - h / 2)).click().perform()
    wait_for(browser, "location.pathname.startsWith('/artworks/')", 20)
    assert int(browser.current_url.rstrip("/").split("/")[-1]) == other.pk

    # The layout switcher opens the other map (made with an untrained model, and it says so).
    open_map(browser, base + "/map/")
    Select(browser.find_element("id", "map-layout")).select_by_value("tsne-label-boat")
    wait_for(browser, "location.search === '?layout=tsne-label-boat' && window.__map && window.__map.ready && window.__map.count === 10", 30)
    assert "UNTRAINED" in browser.find_element("id", "map-notes").text

    # A shared URL restores the view (the older #x,y,zoom form too).
    x, y = 600.0, 500.0
    open_map(browser, base + f"/map/#view={x:.2f},{y:.2f},4.00")
    assert abs(browser.execute_script("return window.__map.state.viewState.zoom") - 4) < 1e-6
    open_map(browser, base + f"/map/#{x:.2f},{y:.2f},3.00")
    assert abs(browser.execute_script("return window.__map.state.viewState.zoom") - 3) < 1e-6
