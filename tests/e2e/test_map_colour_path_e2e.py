"""The map coloured by date and by dominant colour, and a path between two artworks drawn on it, in
headless Chromium (WebGL through SwiftShader).

The archive: the 60 real works of ``tests.explorer.archive_data`` (AIC paintings and culturecraft
details, real derivatives, embedded with the untrained test-tiny model) with palettes computed by
the real palette stage, plus synthetic catalogue works in clusters (a period per cluster, some
undated, catalogue records without images) so that the overview shows points rather than
thumbnails. Each synthetic work is given the stored palette of one real work; every tenth has none. The map's files are written by the real export code from the stored palettes.
The path is found by ``explorer.path`` and opened from the path page's "Show on the map".
An export made before the colour column is then served: the page loads it without the colour
choice. Screenshots: docs/screenshots/map_colour_date.png, map_colour_palette.png, map_path.png.
"""
from __future__ import annotations

import io
import json
import os
import time

import numpy as np
import pytest
from django.utils import timezone

from archive import colour, vectors
from archive.models import Artwork, ArtworkPalette
from tests.e2e.test_map_e2e import SHOTS, browser, open_map, status, wait_for  # noqa: F401 (browser: the WebGL fixture)
from tests.explorer.archive_data import build_archive
from workers.layouts import build, export

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

N_SYNTHETIC = int(os.environ.get("MAP_COLOUR_E2E_POINTS", 20_000))
CLUSTERS = 16
GREY = [120, 120, 128, 200]  # colours.js UNKNOWN


@pytest.fixture
def coloured_map(transactional_db, aic_dir, culturecraft_dir, live_media):
    from workers import palettes as stage

    data = build_archive(aic_dir, culturecraft_dir)
    real = data["artworks"]
    assert stage.process([a.pk for a in real], {}).done == [a.pk for a in real]
    stored = {p.artwork_id: p for p in ArtworkPalette.objects.filter(method=colour.METHOD)}
    signature = {a: np.asarray(p.vector, dtype=np.float32) for a, p in stored.items()}
    # Real works ordered by the hue of their dominant colour: each cluster borrows a few neighbours
    # in hue, so clusters lean to a colour.
    def hue(a):
        r, g, b = (c / 255 for c in colour.parse_hex(stored[a.pk].colours[0]["hex"]))
        import colorsys

        return colorsys.rgb_to_hsv(r, g, b)[0]

    by_hue = sorted(real, key=hue)
    rng = np.random.default_rng(11)
    component = rng.integers(0, CLUSTERS, N_SYNTHETIC)
    now = timezone.now()
    fields = [f for f in Artwork._meta.concrete_fields if not f.primary_key and not f.generated]
    borrowed = []

    def row(i):
        c = int(component[i])
        source = by_hue[(c * len(by_hue) // CLUSTERS + int(rng.integers(0, 4))) % len(by_hue)]
        borrowed.append(source)
        year = None if i % 13 == 0 else int(1300 + c * 40 + rng.integers(0, 40))
        values = {"source": "synthetic", "source_id": str(i), "title": f"Synthetic work {i}", "creator": f"Workshop {i % 97}",
                  "classification": "painting", "year_start": year, "status": "no_image", "created_at": now, "updated_at": now}
        out = []
        for f in fields:
            v = values.get(f.attname, None if f.null else f.get_default())
            out.append(json.dumps(v) if isinstance(v, (dict, list)) else v)
        return out

    vectors.copy_rows("archive_artwork", [f.column for f in fields], (row(i) for i in range(N_SYNTHETIC)))
    synthetic = list(Artwork.objects.filter(source="synthetic").order_by("id").values_list("id", flat=True))
    vectors.copy_rows(
        "archive_artworkpalette", ["artwork_id", "method", "colours", "vector", "derivative_size", "computed_at"],
        ((a, colour.METHOD, json.dumps(stored[src.pk].colours), signature[src.pk], 256, now)
         for k, (a, src) in enumerate(zip(synthetic, borrowed)) if k % 10),
    )
    centres = rng.uniform(-40, 40, (CLUSTERS, 2))
    coords = (centres[component] + rng.normal(0, 3.0, (N_SYNTHETIC, 2))).astype(np.float32)
    # The real works in their own patch, placed by their embeddings (first two principal components).
    m = data["matrix"] - data["matrix"].mean(0)
    pcs = m @ np.linalg.svd(m, full_matrices=False)[2][:2].T
    real_coords = (np.array([58.0, 58.0]) + 8 * pcs / np.abs(pcs).max()).astype(np.float32)
    ids = np.concatenate([synthetic, [a.pk for a in real]]).astype(np.int64)
    layout = build.get_layout("umap", {}, data["model"])
    build.save_layout(layout, ids, ids, np.concatenate([coords, real_coords]), model=data["model"], params={"untrained": True})
    layout.refresh_from_db()
    assert layout.point_count == N_SYNTHETIC + len(real)
    return layout, data


def shot(driver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def map_pixels(driver) -> np.ndarray:
    from PIL import Image

    el = driver.find_element("id", "map")
    return np.asarray(Image.open(io.BytesIO(el.screenshot_as_png)).convert("RGB")).astype(int)


def choose_colouring(driver, mode: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", "map-colour")).select_by_value(mode)
    wait_for(driver, f"window.__map.colourBy() === {json.dumps(mode)}")


def test_colour_by_date_and_dominant_colour_then_a_path_on_the_map(live_server, coloured_map, browser, monkeypatch):  # noqa: F811
    from selenium.webdriver.common.by import By

    from explorer import path as path_mod

    layout, data = coloured_map
    real = data["artworks"]
    base = live_server.url
    count = open_map(browser, f"{base}/map/")
    assert count == N_SYNTHETIC + len(real)
    assert browser.execute_script("return window.__map.colourBy()") == "cluster"
    assert not browser.find_element(By.ID, "map-legend").is_displayed()
    wait_for(browser, "window.__map.layerIds().includes('points')")
    cluster_pixels = map_pixels(browser)

    # By date: a sequential scale over the years, undated works grey, a legend with the range.
    choose_colouring(browser, "date")
    years = dict(Artwork.objects.filter(source="synthetic").values_list("pk", "year_start"))
    index = browser.execute_script("return Object.fromEntries(arguments[0].map((id) => [id, window.__map.indexOfId(id)]))",
                                   list(years)[:400])
    undated = [int(a) for a, i in index.items() if years[int(a)] is None]
    dated = sorted((years[int(a)], i) for a, i in index.items() if years[int(a)] is not None)
    assert undated and len(dated) > 100
    colour_of = lambda i: browser.execute_script("return window.__map.colourOf(arguments[0])", i)  # noqa: E731
    assert colour_of(index[str(undated[0])]) == GREY
    early, late = colour_of(dated[0][1]), colour_of(dated[-1][1])
    assert early != late and early != GREY and late != GREY
    assert late[1] > early[1] + 80  # viridis: the latest years are the brightest (yellow-green)
    scale = browser.execute_script("return window.__map.yearScale()")
    known = [y for y in Artwork.objects.filter(year_start__isnull=False).values_list("year_start", flat=True)]
    assert scale["min"] == min(known) and scale["max"] == max(known) and scale["lo"] <= scale["hi"]
    legend = browser.find_element(By.ID, "map-legend")
    assert legend.is_displayed() and str(scale["lo"]) in legend.text and "date unknown" in legend.text
    wait_for(browser, "location.hash.includes('colour=date')")  # the URL keeps the mode (written after 250 ms)
    time.sleep(0.5)  # the next animation frame draws the new colours
    date_pixels = map_pixels(browser)
    assert np.abs(date_pixels - cluster_pixels).sum(axis=2).astype(bool).mean() > 0.01  # the canvas was repainted
    shot(browser, "map_colour_date")

    # By dominant colour: each artwork's palette colour (RGB565 from the export), grey without one.
    choose_colouring(browser, "colour")
    palettes = {p.artwork_id: p.colours for p in ArtworkPalette.objects.filter(method=colour.METHOD)}
    sample = [a.pk for a in real] + list(years)[:200]
    idx = browser.execute_script("return arguments[0].map((id) => window.__map.indexOfId(id))", sample)
    got = browser.execute_script("return arguments[0].map((i) => window.__map.colourOf(i))", idx)
    without = 0
    for artwork_id, rgba in zip(sample, got):
        if artwork_id not in palettes:
            assert rgba == GREY
            without += 1
            continue
        packed = export.rgb565(colour.lab_to_rgb(np.array([palettes[artwork_id][0]["lab"]])))
        assert rgba[:3] == export.rgb565_to_rgb(packed)[0].tolist(), artwork_id
        assert np.abs(np.array(rgba[:3]) - colour.parse_hex(palettes[artwork_id][0]["hex"])).max() <= 8
    assert without > 0
    legend = browser.find_element(By.ID, "map-legend")
    assert "no palette" in legend.text
    wait_for(browser, "location.hash.includes('colour=colour')")
    shot(browser, "map_colour_palette")

    # The mode is in the URL: a reload keeps it.
    open_map(browser, browser.current_url)
    assert browser.execute_script("return window.__map.colourBy()") == "colour"

    # A path between two real works, from the path page to the map.
    ids = [a.pk for a in real]
    unit = data["matrix"] / np.linalg.norm(data["matrix"], axis=1, keepdims=True)
    start = ids[0]
    end = ids[int(np.argmin(unit @ unit[0]))]
    found = path_mod.find_path(start, end, data["model"])
    assert len(found.ids) >= 3
    browser.get(f"{base}/path/?from={start}&to={end}")
    link = browser.find_element(By.ID, "path-on-map")
    assert link.get_attribute("href").endswith(f"/map/?layout={layout.slug}#path={','.join(map(str, found.ids))}")
    link.click()
    wait_for(browser, "window.__map && window.__map.ready && window.__map.pathSteps().length > 0")
    steps = browser.execute_script("return window.__map.pathSteps()")
    assert [s[1] for s in steps] == found.ids and [s[0] for s in steps] == list(range(1, len(found.ids) + 1))
    assert browser.execute_script("return window.__map.pathMissing()") == []
    bar = browser.find_element(By.ID, "map-path")
    assert bar.is_displayed() and f"Path of {len(found.ids)} works" in bar.text
    layers = browser.execute_script("return window.__map.layerIds()")
    assert {"path-line", "path-steps", "path-numbers"} <= set(layers)
    # Flown to the path: every step is on screen, and the start's green ring is drawn there.
    time.sleep(1.5)  # the fly-to transition (600 ms) and the thumbnails after it
    el = browser.find_element(By.ID, "map")
    w, h = el.size["width"], el.size["height"]
    at = browser.execute_script("return arguments[0].map((s) => window.__map.screen(s[2]))", steps)
    assert all(0 <= x <= w and 0 <= y <= h for x, y in at), at
    pixels = map_pixels(browser)
    ratio = pixels.shape[1] / w
    x, y = (int(v * ratio) for v in at[0])
    px = browser.execute_script("return window.__map.thumbPx()")
    r = int(((0.72 * px + 12) if px else 20) * ratio)  # the ring around a thumbnail, or the marker
    patch = pixels[max(0, y - r): y + r, max(0, x - r): x + r].reshape(-1, 3)
    green = (patch[:, 1] > 180) & (patch[:, 0] < 140) & (patch[:, 2] < 170)
    assert green.sum() >= 5, "no green start marker around step 1"
    shot(browser, "map_path")

    # Works that are not on this map are skipped, and the bar says which steps.
    off_map = Artwork.objects.create(source="t", source_id="off-map", title="Not on the map")
    open_map(browser, f"{base}/map/#path={found.ids[0]},{off_map.pk},{found.ids[-1]}")
    steps = browser.execute_script("return window.__map.pathSteps()")
    assert [s[:2] for s in steps] == [[1, found.ids[0]], [3, found.ids[-1]]]
    assert browser.execute_script("return window.__map.pathMissing()") == [[2, off_map.pk]]
    assert "1 not on this map, skipped (step 2)" in browser.find_element(By.ID, "map-path").text
    browser.find_element(By.ID, "map-path-clear").click()
    wait_for(browser, "window.__map.pathSteps().length === 0 && !location.hash.includes('path=')")
    assert not browser.find_element(By.ID, "map-path").is_displayed()

    # An export made before the colour column still loads: the page offers region and date only.
    from django.core.cache import cache

    monkeypatch.setattr(export, "COLUMNS", [c for c in export.COLUMNS if c[0] != "colour"])
    build.export_layout(layout)
    monkeypatch.undo()
    cache.clear()
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})  # the manifest is cached for 60 s
    open_map(browser, f"{base}/map/#colour=colour")
    assert browser.execute_script("return window.__map.state.manifest.columns.map((c) => c.name)") == [
        c[0] for c in export.COLUMNS if c[0] != "colour"]
    assert browser.execute_script("return document.querySelector('#map-colour option[value=colour]').disabled") is True
    assert browser.execute_script("return window.__map.colourBy()") == "cluster"  # the asked-for mode is not available
    choose_colouring(browser, "date")
    assert "date unknown" in browser.find_element(By.ID, "map-legend").text
