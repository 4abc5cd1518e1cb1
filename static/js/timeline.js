// The zoomable timeline (/timeline/): every dated artwork as a point at (year, band) on a canvas,
// coloured by its dominant colour like the map; zoomed in until a few hundred works are in view,
// their thumbnails are fetched from the viewport API (year range x band, with the filters) and
// drawn in place of the points. Wheel or the buttons zoom, dragging pans; a thumbnail opens its
// artwork. Points payload and viewport API: explorer/timeline_points.py.
(function () {
  "use strict";
  const root = document.getElementById("timeline-zoom");
  if (!root) return;
  const canvas = root.querySelector("canvas");
  const status = root.querySelector(".timeline-zoom-status");
  const ctx = canvas.getContext("2d");
  const BANDS = 65536;
  // Thumbnails once at most this many works are in view (window.TIMELINE_THUMBS_AT: a browser test
  // on a small archive lowers it to see the switch).
  const THUMBS_AT = window.TIMELINE_THUMBS_AT || 150;
  let ids, years, bands, colours, n = 0;
  let dataFrom = 0, dataTo = 0;
  let view = null; // {x0, x1, y0, y1}: years (fractional) and bands
  let thumbs = []; // [{id, x, y, img, url, title}]
  let thumbKey = "", thumbTimer = null, drag = null;
  const images = new Map();

  function jitter(id) { // a fixed place within the year, from the id
    return (Math.imul(id, 2654435761) >>> 0) / 4294967296;
  }
  function rgb(c) {
    if (!c) return [150, 150, 150];
    return [((c >> 11) & 31) * 255 / 31 | 0, ((c >> 5) & 63) * 255 / 63 | 0, (c & 31) * 255 / 31 | 0];
  }
  function size() {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
      canvas.width = Math.round(w * ratio);
      canvas.height = Math.round(h * ratio);
    }
    return [canvas.width, canvas.height, ratio];
  }
  function lowerBound(year) { // first row with years[i] >= year (rows are sorted by year)
    let lo = 0, hi = n;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (years[mid] < year) lo = mid + 1; else hi = mid; }
    return lo;
  }
  function visible() { // row indices in view
    const out = [];
    const start = lowerBound(Math.floor(view.x0)), stop = lowerBound(Math.floor(view.x1) + 1);
    for (let i = start; i < stop; i++) {
      const x = years[i] + jitter(ids[i]);
      if (x >= view.x0 && x <= view.x1 && bands[i] >= view.y0 && bands[i] <= view.y1) out.push(i);
    }
    return out;
  }
  const PAD_TOP = 10, PAD_BOTTOM = 26; // CSS px above the plot and below it (the year axis)
  function toScreen(x, band, w, h) {
    const ratio = window.devicePixelRatio || 1, top = PAD_TOP * ratio, plot = h - (PAD_TOP + PAD_BOTTOM) * ratio;
    return [(x - view.x0) / (view.x1 - view.x0) * w, top + (1 - (band - view.y0) / (view.y1 - view.y0)) * plot];
  }
  function plotFraction(clientY, rect) { // 0 at the plot's top, 1 at its bottom
    return (clientY - rect.top - PAD_TOP) / Math.max(1, rect.height - PAD_TOP - PAD_BOTTOM);
  }

  function drawAxis(w, h, ratio) {
    const span = view.x1 - view.x0;
    const steps = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000];
    const step = steps.find((s) => span / s <= w / (90 * ratio)) || 1000;
    ctx.fillStyle = "rgba(0,0,0,.7)";
    ctx.fillRect(0, h - PAD_BOTTOM * ratio, w, ratio);
    ctx.font = `${11 * ratio}px system-ui, sans-serif`;
    ctx.textAlign = "center";
    for (let y = Math.ceil(view.x0 / step) * step; y <= view.x1; y += step) {
      const [sx] = toScreen(y, 0, w, h);
      ctx.fillRect(sx, h - PAD_BOTTOM * ratio, ratio, 6 * ratio);
      ctx.fillText(String(y), sx, h - 6 * ratio);
    }
  }

  function draw() {
    const [w, h, ratio] = size();
    ctx.clearRect(0, 0, w, h);
    if (!n) return;
    const rows = visible();
    if (rows.length > 20000) { // density: each pixel the mean colour of its points, opacity by count
      const sums = new Float32Array(w * h * 4);
      for (const i of rows) {
        const [sx, sy] = toScreen(years[i] + jitter(ids[i]), bands[i], w, h);
        if (sx < 0 || sx >= w || sy < 0 || sy >= h) continue;
        const p = ((sy | 0) * w + (sx | 0)) * 4;
        const c = rgb(colours[i]);
        sums[p] += c[0]; sums[p + 1] += c[1]; sums[p + 2] += c[2]; sums[p + 3] += 1;
      }
      const image = ctx.createImageData(w, h);
      for (let p = 0; p < sums.length; p += 4) {
        const k = sums[p + 3];
        if (!k) continue;
        image.data[p] = sums[p] / k; image.data[p + 1] = sums[p + 1] / k; image.data[p + 2] = sums[p + 2] / k;
        image.data[p + 3] = Math.min(255, 110 + 45 * Math.log2(1 + k));
      }
      ctx.putImageData(image, 0, 0);
    } else if (!thumbs.length) { // points, larger as fewer are in view
      const side = Math.max(2 * ratio, Math.min(10 * ratio, Math.sqrt(w * h / Math.max(1, rows.length)) / 4));
      for (const i of rows) {
        const [sx, sy] = toScreen(years[i] + jitter(ids[i]), bands[i], w, h);
        const c = rgb(colours[i]);
        ctx.fillStyle = `rgb(${c[0]},${c[1]},${c[2]})`;
        ctx.fillRect(sx - side / 2, sy - side / 2, side, side);
      }
    }
    let drawn = 0;
    if (thumbs.length) {
      const side = Math.max(44 * ratio, Math.min(140 * ratio, Math.sqrt(w * h / thumbs.length) * 0.8));
      for (const t of thumbs) {
        const [sx, sy] = toScreen(t.x, t.y, w, h);
        t.box = [sx - side / 2, sy - side / 2, side, side];
        if (t.img && t.img.complete && t.img.naturalWidth) {
          const scale = side / Math.max(t.img.naturalWidth, t.img.naturalHeight);
          const iw = t.img.naturalWidth * scale, ih = t.img.naturalHeight * scale;
          ctx.drawImage(t.img, sx - iw / 2, sy - ih / 2, iw, ih);
          drawn++;
        } else {
          const c = rgb(t.colour);
          ctx.fillStyle = `rgb(${c[0]},${c[1]},${c[2]})`;
          ctx.fillRect(sx - side / 4, sy - side / 4, side / 2, side / 2);
        }
      }
    }
    drawAxis(w, h, ratio);
    root.dataset.inView = String(rows.length);
    root.dataset.thumbs = String(drawn);
    const years0 = Math.max(dataFrom, Math.floor(view.x0)), years1 = Math.min(dataTo, Math.floor(view.x1));
    status.textContent = `${rows.length.toLocaleString()} work${rows.length === 1 ? "" : "s"} in view, ${years0}–${years1}` +
      (thumbs.length ? ` · ${drawn} thumbnail${drawn === 1 ? "" : "s"}` : rows.length > THUMBS_AT ? " · zoom in for thumbnails" : "");
    scheduleThumbs(rows.length);
  }

  function scheduleThumbs(count) {
    if (count > THUMBS_AT || !count) {
      if (thumbs.length) { thumbs = []; thumbKey = ""; requestAnimationFrame(draw); }
      return;
    }
    const y0 = Math.max(dataFrom, Math.floor(view.x0)), y1 = Math.min(dataTo, Math.floor(view.x1));
    const b0 = Math.max(0, Math.floor(view.y0)), b1 = Math.min(BANDS - 1, Math.ceil(view.y1));
    const key = `${y0},${y1},${b0},${b1}`;
    if (key === thumbKey) return;
    clearTimeout(thumbTimer);
    thumbTimer = setTimeout(() => loadThumbs(key, y0, y1, b0, b1), 200);
  }

  async function loadThumbs(key, y0, y1, b0, b1) {
    // The window is whole years, the view a fraction of them: ask for the most the API gives (the
    // window holds more works than the view) and keep those in view.
    const url = `${root.dataset.viewport}&year_from=${y0}&year_to=${y1}&band_from=${b0}&band_to=${b1}&limit=200`;
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) { status.textContent = body.detail || "Could not load the works in view"; return; }
    thumbKey = key;
    const inView = (r) => {
      const x = r.year + jitter(r.artwork.id);
      return x >= view.x0 && x <= view.x1 && r.band >= view.y0 && r.band <= view.y1;
    };
    thumbs = body.results.filter(inView).map((r) => {
      const t = { id: r.artwork.id, x: r.year + jitter(r.artwork.id), y: r.band, colour: r.colour,
                  url: r.artwork.page_url, title: r.artwork.title || "Untitled" };
      if (r.artwork.thumbnail_url) {
        let img = images.get(r.artwork.thumbnail_url);
        if (!img) {
          img = new Image();
          img.onload = () => requestAnimationFrame(draw);
          img.src = r.artwork.thumbnail_url;
          images.set(r.artwork.thumbnail_url, img);
        }
        t.img = img;
      }
      return t;
    });
    requestAnimationFrame(draw);
  }

  function zoom(factor, fx = 0.5, fy = 0.5) { // factor < 1 zooms in, around (fx, fy) of the view
    const cx = view.x0 + fx * (view.x1 - view.x0), cy = view.y0 + (1 - fy) * (view.y1 - view.y0);
    let wx = (view.x1 - view.x0) * factor, wy = (view.y1 - view.y0) * factor;
    wx = Math.min(Math.max(wx, 0.25), dataTo + 1 - dataFrom);
    wy = Math.min(Math.max(wy, 16), BANDS);
    view.x0 = cx - fx * wx; view.x1 = view.x0 + wx;
    view.y0 = cy - (1 - fy) * wy; view.y1 = view.y0 + wy;
    clamp();
    draw();
  }
  function clamp() {
    const wx = view.x1 - view.x0, wy = view.y1 - view.y0;
    view.x0 = Math.min(Math.max(view.x0, dataFrom), dataTo + 1 - wx); view.x1 = view.x0 + wx;
    view.y0 = Math.min(Math.max(view.y0, 0), BANDS - wy); view.y1 = view.y0 + wy;
  }
  function reset() { view = { x0: dataFrom, x1: dataTo + 1, y0: 0, y1: BANDS }; draw(); }

  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = canvas.getBoundingClientRect();
    zoom(Math.exp(e.deltaY * 0.002), (e.clientX - r.left) / r.width, Math.min(1, Math.max(0, plotFraction(e.clientY, r))));
  }, { passive: false });
  canvas.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX, y: e.clientY, view: { ...view }, moved: false };
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag || !view) return;
    const r = canvas.getBoundingClientRect();
    const dx = (e.clientX - drag.x) / r.width * (drag.view.x1 - drag.view.x0);
    const dy = (e.clientY - drag.y) / Math.max(1, r.height - PAD_TOP - PAD_BOTTOM) * (drag.view.y1 - drag.view.y0);
    if (Math.abs(e.clientX - drag.x) + Math.abs(e.clientY - drag.y) > 3) drag.moved = true;
    view.x0 = drag.view.x0 - dx; view.x1 = drag.view.x1 - dx;
    view.y0 = drag.view.y0 + dy; view.y1 = drag.view.y1 + dy;
    clamp();
    draw();
  });
  canvas.addEventListener("pointerup", (e) => {
    const moved = drag && drag.moved;
    drag = null;
    if (moved) return;
    const r = canvas.getBoundingClientRect(), ratio = window.devicePixelRatio || 1;
    const px = (e.clientX - r.left) * ratio, py = (e.clientY - r.top) * ratio;
    const hit = thumbs.find((t) => t.box && px >= t.box[0] && px <= t.box[0] + t.box[2] && py >= t.box[1] && py <= t.box[1] + t.box[3]);
    if (hit) window.location.href = hit.url;
  });
  root.querySelector("[data-zoom=in]").addEventListener("click", () => zoom(0.5));
  root.querySelector("[data-zoom=out]").addEventListener("click", () => zoom(2));
  root.querySelector("[data-zoom=reset]").addEventListener("click", reset);
  window.addEventListener("resize", () => view && draw());

  async function load() {
    status.textContent = "Loading the works…";
    const response = await fetch(root.dataset.points);
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      status.textContent = body.detail || "Could not load the timeline";
      root.dataset.state = "error";
      return;
    }
    const buffer = await response.arrayBuffer();
    n = Number(response.headers.get("X-Timeline-Count") || 0);
    ids = new Uint32Array(buffer, 0, n);
    years = new Int16Array(buffer, 4 * n, n);
    bands = new Uint16Array(buffer, 6 * n, n);
    colours = new Uint16Array(buffer, 8 * n, n);
    [dataFrom, dataTo] = n ? [years[0], years[n - 1]] : [0, 0];
    root.dataset.band = response.headers.get("X-Timeline-Band") || "";
    root.dataset.state = "ready";
    reset();
  }
  // For the browser test and the console: the view, and where a work is drawn (CSS px in the canvas).
  root.timeline = {
    get view() { return { ...view }; },
    screenOf(id, year, band) {
      const [w, h, ratio] = size();
      const [sx, sy] = toScreen(year + jitter(id), band, w, h);
      return [sx / ratio, sy / ratio];
    },
    thumbs() { return thumbs.filter((t) => t.img && t.img.complete && t.img.naturalWidth).map((t) => t.id); },
  };
  load();
})();
