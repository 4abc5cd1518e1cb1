// The archive map: every artwork as a point (deck.gl ScatterplotLayer, WebGL), thumbnails from
// sprite atlases when zoomed in (IconLayer per atlas sheet), region names (TextLayer), hover
// titles, click to the artwork, search / label filter, box selection saved as a collection, and
// the view in the URL hash (#x,y,zoom[,label]).
import { Deck, OrthographicView } from "@deck.gl/core";
import { IconLayer, ScatterplotLayer, TextLayer } from "@deck.gl/layers";
import { loadPoints } from "./points.js";
import { clusterColour, DIM, HIGHLIGHT, SELECTED } from "./colours.js";

const THUMB_MAX_VISIBLE = 1500; // thumbnails are drawn when at most this many points are in view
const THUMB_PX = 56; // thumbnail size on screen at the zoom where they first appear

const $ = (id) => document.getElementById(id);
const config = JSON.parse($("map-config").textContent);
const csrfToken = (document.querySelector("input[name=csrfmiddlewaretoken]") || {}).value || "";

const state = {
  manifest: null,
  points: null, // {n, positions Float32Array(2n), ids, c0, c1, year, cls, sortedIds, sortedIndex}
  colours: null,
  match: null, // Uint8Array(n) or null
  matchCount: 0,
  selection: null, // Uint8Array(n) or null
  selectionCount: 0,
  viewState: null,
  hover: -1,
  label: "",
  selecting: false,
  thumbs: [],
  ready: false,
};

const status = (text) => {
  $("map-status").textContent = text;
};

// --- view -----------------------------------------------------------------------------------------

function fitView(bounds) {
  const el = $("map");
  const [x0, y0, x1, y1] = bounds;
  const w = Math.max(x1 - x0, 1e-6);
  const h = Math.max(y1 - y0, 1e-6);
  const zoom = Math.log2(Math.min(el.clientWidth / w, el.clientHeight / h) * 0.9);
  return { target: [(x0 + x1) / 2, (y0 + y1) / 2, 0], zoom: Math.min(zoom, 9), minZoom: -4, maxZoom: 10 };
}

function parseHash() {
  const parts = decodeURIComponent(location.hash.replace(/^#/, "")).split(",");
  if (parts.length < 3) return null;
  const [x, y, z] = parts.slice(0, 3).map(Number);
  if (![x, y, z].every(Number.isFinite)) return null;
  return { view: { target: [x, y, 0], zoom: z, minZoom: -4, maxZoom: 10 }, label: parts[3] || "" };
}

let hashTimer = 0;
function writeHash() {
  clearTimeout(hashTimer);
  hashTimer = setTimeout(() => {
    const v = state.viewState;
    if (!v) return;
    const parts = [v.target[0].toFixed(2), v.target[1].toFixed(2), v.zoom.toFixed(2)];
    if (state.label) parts.push(state.label);
    history.replaceState(null, "", `${location.pathname}${location.search}#${parts.join(",")}`);
  }, 250);
}

// --- data -------------------------------------------------------------------------------------------

function baseColours() {
  const { n, c0 } = state.points;
  const colours = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    const c = clusterColour(c0[i]);
    colours.set(c, i * 4);
  }
  return colours;
}

function paint() {
  const { n } = state.points;
  const base = state.baseColours;
  const out = new Uint8Array(base);
  if (state.match) {
    for (let i = 0; i < n; i++) {
      if (!state.match[i]) out.set(DIM, i * 4);
      else out.set(HIGHLIGHT, i * 4);
    }
  }
  if (state.selection) {
    for (let i = 0; i < n; i++) if (state.selection[i]) out.set(SELECTED, i * 4);
  }
  state.colours = out;
}

function indexOfId(id) {
  const { sortedIds, sortedIndex } = state.points;
  let lo = 0;
  let hi = sortedIds.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = sortedIds[mid];
    if (v === id) return sortedIndex[mid];
    if (v < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

function maskFromIds(ids) {
  const mask = new Uint8Array(state.points.n);
  let count = 0;
  for (const id of ids) {
    const i = indexOfId(id);
    if (i >= 0 && !mask[i]) {
      mask[i] = 1;
      count++;
    }
  }
  return [mask, count];
}

function boundsOfMask(mask) {
  const p = state.points.positions;
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    const x = p[2 * i], y = p[2 * i + 1];
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  if (!Number.isFinite(x0)) return null;
  const pad = Math.max(x1 - x0, y1 - y0, 4) * 0.1;
  return [x0 - pad, y0 - pad, x1 + pad, y1 + pad];
}

function flyTo(bounds) {
  const v = fitView(bounds);
  setView({ ...v, transitionDuration: 600 });
}

// --- thumbnails --------------------------------------------------------------------------------------

function visibleIndices(limit) {
  const viewport = deck.getViewports()[0];
  if (!viewport) return null;
  const [x0, y0] = viewport.unproject([0, 0]);
  const [x1, y1] = viewport.unproject([viewport.width, viewport.height]);
  const minX = Math.min(x0, x1), maxX = Math.max(x0, x1), minY = Math.min(y0, y1), maxY = Math.max(y0, y1);
  const p = state.points.positions;
  const out = [];
  for (let i = 0; i < state.points.n; i++) {
    const x = p[2 * i], y = p[2 * i + 1];
    if (x >= minX && x <= maxX && y >= minY && y <= maxY) {
      out.push(i);
      if (out.length > limit) return null;
    }
  }
  return out;
}

let iconMapping = null;
function mapping(atlas) {
  if (iconMapping) return iconMapping;
  iconMapping = {};
  for (let c = 0; c < atlas.per_sheet; c++) {
    iconMapping[c] = { x: (c % atlas.per_row) * atlas.cell, y: Math.floor(c / atlas.per_row) * atlas.cell, width: atlas.cell, height: atlas.cell };
  }
  return iconMapping;
}

function updateThumbs() {
  const atlas = state.manifest.atlas;
  const present = new Set(atlas.sheets);
  const visible = present.size ? visibleIndices(THUMB_MAX_VISIBLE) : null;
  if (!visible) {
    state.thumbs = [];
    state.thumbZoom = null;
    return;
  }
  if (state.thumbZoom == null) state.thumbZoom = state.viewState.zoom;
  const bySheet = new Map();
  for (const i of visible) {
    const s = Math.floor(i / atlas.per_sheet);
    if (!present.has(s)) continue;
    if (!bySheet.has(s)) bySheet.set(s, []);
    bySheet.get(s).push(i);
  }
  state.thumbs = [...bySheet.entries()];
}

// --- layers ------------------------------------------------------------------------------------------

function layers() {
  const { n, positions } = state.points;
  const m = state.manifest;
  const zoom = state.viewState.zoom;
  const spacing = m.world / Math.sqrt(Math.max(n, 1));
  const out = [
    new ScatterplotLayer({
      id: "points",
      data: { length: n, attributes: { getPosition: { value: positions, size: 2 }, getFillColor: { value: state.colours, size: 4, normalized: true } } },
      radiusUnits: "common",
      getRadius: spacing * 0.3,
      radiusMinPixels: 1.2,
      radiusMaxPixels: 10,
      pickable: true,
      autoHighlight: true,
      highlightColor: [255, 255, 255, 255],
      updateTriggers: { getFillColor: state.colourVersion },
    }),
  ];
  if (state.thumbs.length) {
    const atlas = m.atlas;
    const px = Math.min(160, THUMB_PX * Math.pow(2, zoom - state.thumbZoom));
    const p = positions;
    for (const [sheet, indices] of state.thumbs) {
      out.push(
        new IconLayer({
          id: `thumbs-${sheet}`,
          data: indices,
          iconAtlas: m.base_url + atlas.pattern.replace("{sheet:04d}", String(sheet).padStart(4, "0")),
          iconMapping: mapping(atlas),
          getIcon: (i) => String(i % atlas.per_sheet),
          getPosition: (i) => [p[2 * i], p[2 * i + 1]],
          getSize: px,
          sizeUnits: "pixels",
          pickable: true,
          updateTriggers: { getSize: px },
        }),
      );
    }
  }
  const level = pickLevel(zoom);
  if (level) {
    out.push(
      new TextLayer({
        id: `regions-${level.level}`,
        data: level.regions,
        getPosition: (r) => [r.x, r.y],
        getText: (r) => r.name,
        getSize: level.level === 0 ? 15 : 13,
        getColor: [255, 255, 255, 255],
        background: true,
        getBackgroundColor: [20, 20, 24, 190],
        backgroundPadding: [4, 2],
        fontFamily: "system-ui, sans-serif",
        characterSet: "auto",
        getTextAnchor: "middle",
        getAlignmentBaseline: "center",
      }),
    );
  }
  return out;
}

function pickLevel(zoom) {
  const levels = state.manifest.regions.levels;
  if (!levels.length || state.thumbs.length) return null;
  // Coarse names at the overview, finer ones once zoomed in by 1.5 steps.
  const fine = zoom > state.overviewZoom + 1.5 && levels.length > 1;
  return levels[fine ? levels.length - 1 : 0];
}

function render() {
  if (!state.ready) return;
  deck.setProps({ layers: layers() });
}

function setView(v) {
  state.viewState = { ...v, minZoom: -4, maxZoom: 10 };
  deck.setProps({ viewState: state.viewState });
  afterViewChange();
}

let thumbTimer = 0;
function afterViewChange() {
  writeHash();
  clearTimeout(thumbTimer);
  thumbTimer = setTimeout(() => {
    updateThumbs();
    render();
  }, 80);
  render();
}

// --- hover, click ---------------------------------------------------------------------------------

const infoCache = new Map();
async function info(id) {
  if (!infoCache.has(id)) {
    infoCache.set(id, fetch(config.infoUrl.replace("{id}", id)).then((r) => (r.ok ? r.json() : null)).catch(() => null));
  }
  return infoCache.get(id);
}

function indexFromPick(pick) {
  if (!pick || pick.index < 0) return -1;
  if (pick.layer && pick.layer.id.startsWith("thumbs-")) return pick.object;
  return pick.index;
}

async function onHover(pick) {
  const tip = $("map-tooltip");
  const i = indexFromPick(pick);
  state.hover = i;
  if (i < 0) {
    tip.hidden = true;
    return;
  }
  const id = state.points.ids[i];
  tip.style.left = `${pick.x + 14}px`;
  tip.style.top = `${pick.y + 14}px`;
  tip.hidden = false;
  tip.textContent = "…";
  const data = await info(id);
  if (state.hover !== i) return;
  tip.replaceChildren();
  if (!data) {
    tip.textContent = `Artwork ${id}`;
    return;
  }
  if (data.thumbnail) {
    const img = document.createElement("img");
    img.src = data.thumbnail;
    img.alt = "";
    tip.append(img);
  }
  const title = document.createElement("strong");
  title.textContent = data.title;
  tip.append(title);
  const meta = [data.creator, data.date].filter(Boolean).join(", ");
  if (meta) {
    const span = document.createElement("span");
    span.textContent = meta;
    tip.append(span);
  }
}

// Clicks are handled on the DOM (not by deck's tap gesture, which gives up when a slow software-GL
// frame delays pointerup): a press and release within a few pixels is a click.
function setupClicks() {
  const el = $("map");
  let down = null;
  el.addEventListener("pointerdown", (e) => {
    down = [e.clientX, e.clientY];
  });
  el.addEventListener("click", (e) => {
    if (!down || Math.hypot(e.clientX - down[0], e.clientY - down[1]) > 4 || e.shiftKey) return;
    const r = el.getBoundingClientRect();
    onClick(deck.pickObject({ x: e.clientX - r.left, y: e.clientY - r.top, radius: 4 }));
  });
}

function onClick(pick) {
  const i = indexFromPick(pick);
  if (i < 0 || state.selecting) return;
  const url = config.artworkUrl.replace("{id}", state.points.ids[i]);
  window.__map.lastClick = url;
  window.location.assign(url);
}

// --- search and label filter --------------------------------------------------------------------

async function applyFilter(params, describe) {
  status("Searching…");
  const r = await fetch(`${config.searchUrl}?${new URLSearchParams(params)}`);
  if (!r.ok) {
    status("Search failed");
    return;
  }
  const data = await r.json();
  const [mask, count] = maskFromIds(data.ids);
  state.match = mask;
  state.matchCount = count;
  paint();
  state.colourVersion++;
  status(`${count.toLocaleString()} ${describe(data)}${data.truncated ? " (first matches only)" : ""}`);
  const b = count ? boundsOfMask(mask) : null;
  if (b) flyTo(b);
  else render();
}

function clearFilter() {
  state.match = null;
  state.selection = null;
  state.selectionCount = 0;
  state.label = "";
  $("map-label").value = "";
  $("map-q").value = "";
  $("map-selection").hidden = true;
  paint();
  state.colourVersion++;
  status(`${state.points.n.toLocaleString()} artworks`);
  writeHash();
  render();
}

function setLabel(slug) {
  state.label = slug;
  $("map-label").value = slug;
  writeHash();
  if (!slug) return clearFilter();
  const name = (state.manifest.labels.find((l) => l.slug === slug) || { name: slug }).name;
  return applyFilter({ label: slug }, () => `artworks labelled “${name}”`);
}

// --- box selection --------------------------------------------------------------------------------

function setupSelection() {
  const el = $("map");
  const box = document.createElement("div");
  box.className = "map-box";
  box.hidden = true;
  el.append(box);
  let start = null;
  el.addEventListener(
    "pointerdown",
    (e) => {
      if (!(e.shiftKey || state.selecting) || e.button !== 0) return;
      e.preventDefault();
      e.stopPropagation();
      const r = el.getBoundingClientRect();
      start = [e.clientX - r.left, e.clientY - r.top];
      deck.setProps({ controller: false });
      box.hidden = false;
      Object.assign(box.style, { left: `${start[0]}px`, top: `${start[1]}px`, width: "0px", height: "0px" });
      el.setPointerCapture(e.pointerId);
    },
    true,
  );
  el.addEventListener("pointermove", (e) => {
    if (!start) return;
    const r = el.getBoundingClientRect();
    const x = e.clientX - r.left, y = e.clientY - r.top;
    Object.assign(box.style, {
      left: `${Math.min(x, start[0])}px`, top: `${Math.min(y, start[1])}px`,
      width: `${Math.abs(x - start[0])}px`, height: `${Math.abs(y - start[1])}px`,
    });
  });
  el.addEventListener("pointerup", (e) => {
    if (!start) return;
    const r = el.getBoundingClientRect();
    selectBox(start, [e.clientX - r.left, e.clientY - r.top]);
    start = null;
    box.hidden = true;
    deck.setProps({ controller: true });
  });
}

function selectBox(a, b) {
  const viewport = deck.getViewports()[0];
  const [x0, y0] = viewport.unproject([Math.min(a[0], b[0]), Math.min(a[1], b[1])]);
  const [x1, y1] = viewport.unproject([Math.max(a[0], b[0]), Math.max(a[1], b[1])]);
  const minX = Math.min(x0, x1), maxX = Math.max(x0, x1), minY = Math.min(y0, y1), maxY = Math.max(y0, y1);
  const { n, positions: p } = state.points;
  const mask = new Uint8Array(n);
  let count = 0;
  for (let i = 0; i < n; i++) {
    const x = p[2 * i], y = p[2 * i + 1];
    if (x >= minX && x <= maxX && y >= minY && y <= maxY && (!state.match || state.match[i])) {
      mask[i] = 1;
      count++;
    }
  }
  state.selection = count ? mask : null;
  state.selectionCount = count;
  paint();
  state.colourVersion++;
  render();
  $("map-selection").hidden = !count;
  $("map-selection-count").textContent = `${count.toLocaleString()} selected`;
  $("map-selection-result").textContent = "";
}

async function saveSelection() {
  const ids = [];
  for (let i = 0; i < state.points.n; i++) if (state.selection && state.selection[i]) ids.push(state.points.ids[i]);
  const title = $("map-selection-title").value.trim();
  const r = await fetch(config.collectionUrl, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
    credentials: "same-origin",
    body: JSON.stringify({ title, ids }),
  });
  const data = await r.json().catch(() => ({}));
  const out = $("map-selection-result");
  out.replaceChildren();
  if (r.status === 401) {
    const a = document.createElement("a");
    a.href = config.loginUrl;
    a.textContent = "Log in to save";
    out.append(a);
    return;
  }
  if (!r.ok) {
    out.textContent = data.error || "Could not save";
    return;
  }
  if (data.url) {
    const a = document.createElement("a");
    a.href = data.url;
    a.textContent = `Saved “${data.title}” (${data.count})`;
    out.append(a);
  } else out.textContent = `Saved “${data.title}” (${data.count})`;
}

// --- start --------------------------------------------------------------------------------------------

// The tooltip lives inside the map element so picking coordinates (relative to the canvas) place it.
$("map").append($("map-tooltip"));

const deck = new Deck({
  parent: $("map"),
  views: new OrthographicView({ id: "map", flipY: true }),
  controller: true,
  initialViewState: { target: [512, 512, 0], zoom: 0 },
  layers: [],
  getCursor: ({ isHovering }) => (state.selecting ? "crosshair" : isHovering ? "pointer" : "grab"),
  onViewStateChange: ({ viewState }) => {
    state.viewState = viewState;
    deck.setProps({ viewState });
    afterViewChange();
  },
  onHover,
});

window.__map = { ready: false, state, setView: (x, y, zoom) => setView({ target: [x, y, 0], zoom }), lastClick: null };

function notes(m) {
  const out = [];
  if (m.layout.untrained) out.push("This map was made with an UNTRAINED (random-weights) embedding model: neighbourhoods are not meaningful.");
  const from = m.regions.names_from;
  if (from && from !== "labels") {
    out.push(from === "none" ? "Regions are unnamed: there are no machine labels or catalogue classifications yet."
      : `Region names come from the catalogue's ${from} field: there are no machine labels yet.`);
  }
  $("map-notes").textContent = out.join(" ");
  $("map-notes").hidden = !out.length;
}

async function main() {
  const m = await (await fetch(config.manifestUrl)).json();
  state.manifest = m;
  notes(m);
  const select = $("map-label");
  for (const l of m.labels) {
    const o = document.createElement("option");
    o.value = l.slug;
    o.textContent = l.count == null ? l.name : `${l.name} (${l.count.toLocaleString()})`;
    select.append(o);
  }
  state.points = await loadPoints(m, (loaded) => status(`Loading ${loaded.toLocaleString()} / ${m.count.toLocaleString()} points…`));
  state.baseColours = baseColours();
  state.colourVersion = 0;
  paint();
  const ext = [0, 0, m.world, m.world * ((m.bounds[3] - m.bounds[1]) / Math.max(m.bounds[2] - m.bounds[0], m.bounds[3] - m.bounds[1], 1e-9))];
  if (m.bounds[2] - m.bounds[0] < m.bounds[3] - m.bounds[1]) {
    ext[2] = m.world * ((m.bounds[2] - m.bounds[0]) / (m.bounds[3] - m.bounds[1]));
    ext[3] = m.world;
  }
  const overview = fitView(ext);
  state.overviewZoom = overview.zoom;
  const fromHash = parseHash();
  state.ready = true;
  setView(fromHash ? fromHash.view : overview);
  status(`${m.count.toLocaleString()} artworks · ${m.layout.name}`);
  if (fromHash && fromHash.label) await setLabel(fromHash.label);

  select.addEventListener("change", () => setLabel(select.value));
  $("map-q").addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    const q = e.target.value.trim();
    if (q) applyFilter({ q }, () => `matches for “${q}”`);
    else clearFilter();
  });
  $("map-clear").addEventListener("click", clearFilter);
  $("map-select").addEventListener("click", () => {
    state.selecting = !state.selecting;
    $("map-select").setAttribute("aria-pressed", String(state.selecting));
  });
  const layoutSelect = $("map-layout");
  if (layoutSelect) layoutSelect.addEventListener("change", () => location.assign(`?layout=${encodeURIComponent(layoutSelect.value)}`));
  const save = $("map-selection-save");
  if (save) save.addEventListener("click", saveSelection);
  setupSelection();
  setupClicks();
  window.__map.ready = true;
  window.__map.count = state.points.n;
  window.__map.world = (i) => [state.points.positions[2 * i], state.points.positions[2 * i + 1]];
  window.__map.screen = (i) => deck.getViewports()[0].project(window.__map.world(i));
  window.__map.indexOfId = indexOfId;
  window.__map.thumbSheets = () => state.thumbs.map(([s]) => s);
}

main().catch((err) => {
  console.error(err);
  status(`The map could not be loaded: ${err.message}`);
});
