"""The zoomable timeline in headless Chromium: every dated work drawn as a point at the overview,
then zoomed (mouse wheel over a work) until the viewport API's thumbnails replace the points.
Screenshots docs/screenshots/timeline_zoom_*.png."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import wait_for
from tests.e2e.test_discovery_e2e import colour_archive  # noqa: F401 (fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

THUMBS_AT = 6  # the small archive has a few dozen dated works: thumbnails once at most 6 are in view


def test_timeline_zooms_from_points_to_thumbnails(browser, screenshot, live_server, colour_archive):  # noqa: F811
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from archive.models import Artwork

    dated = Artwork.objects.exclude(status="duplicate").filter(year_start__isnull=False)
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": f"window.TIMELINE_THUMBS_AT = {THUMBS_AT}"})
    browser.get(f"{live_server.url}/timeline/")
    wait_for(browser, "document.getElementById('timeline-zoom').dataset.state === 'ready'")
    root = browser.find_element(By.ID, "timeline-zoom")
    wait_for(browser, "document.getElementById('timeline-zoom').dataset.inView !== undefined")
    # The overview: every dated work in view, drawn as points, no thumbnails yet.
    assert int(root.get_attribute("data-in-view")) == dated.count() > THUMBS_AT
    assert root.get_attribute("data-thumbs") == "0"
    assert "zoom in for thumbnails" in root.find_element(By.CSS_SELECTOR, ".timeline-zoom-status").text
    screenshot("timeline_zoom_overview")

    # Zoom with the wheel over one work (its place read from the payload the page decoded).
    target = browser.execute_async_script("""
        const done = arguments[0];
        fetch('/api/v1/timeline/points/').then(r => r.arrayBuffer().then(b => {
            const n = +r.headers.get('X-Timeline-Count');
            const i = Math.floor(n / 2);
            done([new Uint32Array(b, 0, n)[i], new Int16Array(b, 4 * n, n)[i], new Uint16Array(b, 6 * n, n)[i]]);
        }));""")
    canvas = root.find_element(By.TAG_NAME, "canvas")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    for _ in range(40):
        if int(root.get_attribute("data-thumbs") or 0) > 0:
            break
        x, y = browser.execute_script("return document.getElementById('timeline-zoom').timeline.screenOf(...arguments)", *target)
        size = canvas.size
        dx = max(2 - size["width"] // 2, min(size["width"] // 2 - 2, int(x - size["width"] / 2)))
        dy = max(2 - size["height"] // 2, min(size["height"] // 2 - 2, int(y - size["height"] / 2)))
        origin = ScrollOrigin.from_element(canvas, dx, dy)
        ActionChains(browser).scroll_from_origin(origin, 0, -250).perform()
        try:
            wait_for(browser, "+document.getElementById('timeline-zoom').dataset.thumbs > 0", timeout=1.0)
        except AssertionError:
            pass
    # Thumbnails count once their image has loaded: wait for the one zoomed on, not just the first.
    wait_for(browser, f"document.getElementById('timeline-zoom').timeline.thumbs().includes({int(target[0])})", timeout=20)
    thumbs = browser.execute_script("return document.getElementById('timeline-zoom').timeline.thumbs()")
    view = browser.execute_script("return document.getElementById('timeline-zoom').timeline.view")
    assert int(root.get_attribute("data-in-view")) <= THUMBS_AT
    assert int(target[0]) in thumbs  # the work zoomed on is among the thumbnails
    years = dict(dated.values_list("id", "year_start"))
    assert all(int(view["x0"]) - 1 <= years[i] <= int(view["x1"]) + 1 for i in thumbs)
    screenshot("timeline_zoom_thumbnails")
