// The archive map: every artwork as a point (deck.gl ScatterplotLayer, WebGL), thumbnails when
// zoomed in (atlas cells, then 256 px derivatives at the deepest zoom), region names without
// overlaps (TextLayer), hover titles, click to the artwork, search / label / classification / year
// filters, points coloured by region, date or dominant colour, an artwork brought into focus from
// its page (#artwork=ID), a path between two artworks drawn on the map (#path=ID,ID,...), box or
// lasso selection saved as a collection (or, for curators, added to a classifier's examples), and
// all of it in the URL hash (see hash.js).
import { Deck, OrthographicView } from "@deck.gl/core";
import { IconLayer, ScatterplotLayer, TextLayer } from "@deck.gl/layers";
import { loadPoints } from "./points.js";
import { DIM, HIGHLIGHT, SELECTED } from "./colours.js";
import { baseColours, colouredCount, drawLegend, yearScale } from "./colouring.js";
import { describePath, pathBounds, pathLayers, resolvePath } from "./path.js";
import { formatHash, parseHash, parseYears } from "./hash.js";
import { placeNames } from "./regions.js";
import { facetMask, yearRange } from "./facets.js";
import { HiRes, THUMB_MAX_PX, THUMB_MAX_VISIBLE, thumbSize } from "./thumbs.js";
import { selectInBox, selectInPolygon } from "./selection.js";

const MIN_ZOOM = -4;
const MAX_ZOOM = 10;
const FONT = "system-ui, sans-serif";
const NAME_SIZE = [16, 13]; // px: coarse, fine region names
const NAME_PADDING = [5, 2];
const NAME_WEIGHT = 600;
const FOCUS_NEIGHBOURS = 25; // zoom on a focused artwork until about this many neighbours are around it

const $ = (id) => document.getElementById(id);
const config = JSON.parse($("map-config").textContent);
const csrfToken = (document.querySelector("input[name=csrfmiddlewaretoken]") || {}).value || "";

const state = {
  manifest: null,
  points: null, // {n, positions Float32Array(2n), ids, c0, c1, year, cls, sortedIds, sortedIndex}
  baseColours: null,
  colourBy: "cluster", // "cluster", "date" or "colour"
  yearScale: null,
  coloured: 0, // points with a dominant colour
  path: null, // {ids, steps: [{step, id, i}], missing} from #path=, or null
  colours: null,
  colourVersion: 0,
  match: null, // Uint8Array(n) from a search or label, or null
  facet: null, // Uint8Array(n) from the classification / year filters, or null
  shown: null, // match AND facet, or null when nothing filters
  shownCount: 0,
  selection: null,
  selectionCount: 0,
  viewState: null,
  overviewZoom: 0,
  hover: -1,
  filter: { q: "", label: "", cls: "", years: [null, null] },
  focus: -1, // index of the artwork in focus (from #artwork=ID), -1 none
  tool: null, // "box" or "lasso" while a selection tool is on (Shift-drag draws a box in any case)
  thumbs: [], // [[sheet, indices]]
  thumbPx: 0,
  hires: [], // [{i, id, url, w, h}]
  names: [], // regions whose names are drawn
  nameBoxes: [], // their boxes on screen
  ready: false,
};
const hiRes = new HiRes(config.thumbsUrl, () => {
  updateThumbs();
  render();
});

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
  return { target: [(x0 + x1) / 2, (y0 + y1) / 2, 0], zoom: Math.min(zoom, 9) };
}

let hashTimer = 0;
function writeHash() {
  clearTimeout(hashTimer);
  hashTimer = setTimeout(() => {
    const v = state.viewState;
    if (!v) return;
    const hash = formatHash({
      ...state.filter,
      view: { x: v.target[0], y: v.target[1], zoom: v.zoom },
      artwork: state.focus >= 0 ? state.points.ids[state.focus] : null,
      colour: state.colourBy,
      path: state.path ? state.path.ids : [],
    });
    history.replaceState(null, "", `${location.pathname}${location.search}${hash ? `#${hash}` : ""}`);
  }, 250);
}

// --- colours and filters -------------------------------------------------------------------------

function setColourBy(mode) {
  const select = $("map-colour");
  const option = [...select.options].find((o) => o.value === mode);
  if (!option || option.disabled) mode = "cluster";
  state.colourBy = mode;
  select.value = mode;
  state.baseColours = baseColours(state.points, mode, { scale: state.yearScale, none: state.manifest.year_none });
  drawLegend($("map-legend"), mode, { scale: state.yearScale, coloured: state.coloured, n: state.points.n });
  paint();
  writeHash();
  render();
}

function paint() {
  const { n } = state.points;
  const out = new Uint8Array(state.baseColours);
  if (state.shown) {
    for (let i = 0; i < n; i++) {
      if (!state.shown[i]) out.set(DIM, i * 4);
      // Matches are yellow over the region colours; by date or colour they keep their colour.
      else if (state.match && state.colourBy === "cluster") out.set(HIGHLIGHT, i * 4);
    }
  }
  if (state.selection) {
    for (let i = 0; i < n; i++) if (state.selection[i]) out.set(SELECTED, i * 4);
  }
  state.colours = out;
  state.colourVersion++;
}

function combine() {
  const { match, facet } = state;
  if (!match && !facet) {
    state.shown = null;
    state.shownCount = 0;
    return;
  }
  const n = state.points.n;
  const out = new Uint8Array(n);
  let count = 0;
  for (let i = 0; i < n; i++) {
    if ((!match || match[i]) && (!facet || facet[i])) {
      out[i] = 1;
      count++;
    }
  }
  state.shown = out;
  state.shownCount = count;
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
  for (const id of ids) {
    const i = indexOfId(id);
    if (i >= 0) mask[i] = 1;
  }
  return mask;
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

function describeFilter() {
  const f = state.filter;
  const parts = [];
  if (f.q) parts.push(`matching “${f.q}”`);
  if (f.label) parts.push(`labelled “${(state.manifest.labels.find((l) => l.slug === f.label) || { name: f.label }).name}”`);
  if (f.cls) parts.push(`classified “${f.cls}”`);
  const [a, b] = f.years;
  if (a != null || b != null) parts.push(a != null && b != null ? `dated ${a}–${b}` : a != null ? `dated from ${a}` : `dated up to ${b}`);
  return parts.join(", ");
}

function showStatus(truncated = false) {
  if (!state.shown) status(`${state.points.n.toLocaleString()} artworks · ${state.manifest.layout.name}`);
  else status(`${state.shownCount.toLocaleString()} artworks ${describeFilter()}${truncated ? " (first matches only)" : ""}`);
}

// After any filter change: recolour, report, and (unless restoring a shared view) fly to the result.
function filtersChanged({ fly = true, truncated = false } = {}) {
  combine();
  paint();
  showStatus(truncated);
  writeHash();
  const b = fly && state.shown && state.shownCount ? boundsOfMask(state.shown) : null;
  if (b) flyTo(b);
  else render();
}

async function search(params) {
  status("Searching…");
  const r = await fetch(`${config.searchUrl}?${new URLSearchParams(params)}`);
  if (!r.ok) {
    status(r.status === 404 ? "No such label on this map" : "Search failed");
    return null;
  }
  return r.json();
}

async function setQuery(q, opts = {}) {
  q = q.trim();
  // A text search replaces a label filter (one or the other, as in the URL).
  state.filter.q = q;
  state.filter.label = "";
  $("map-label").value = "";
  $("map-q").value = q;
  if (!q) {
    state.match = null;
    return filtersChanged({ fly: false });
  }
  const data = await search({ q });
  if (!data || state.filter.q !== q) return;
  state.match = maskFromIds(data.ids);
  filtersChanged({ ...opts, truncated: data.truncated });
}

async function setLabel(slug, opts = {}) {
  state.filter.label = slug;
  state.filter.q = "";
  $("map-q").value = "";
  $("map-label").value = slug;
  if (!slug) {
    state.match = null;
    return filtersChanged({ fly: false });
  }
  const data = await search({ label: slug });
  if (state.filter.label !== slug) return;
  if (!data) {
    state.match = new Uint8Array(state.points.n);
    return filtersChanged({ fly: false });
  }
  state.match = maskFromIds(data.ids);
  filtersChanged({ ...opts, truncated: data.truncated });
}

function setFacets(cls, years, opts = {}) {
  state.filter.cls = cls;
  state.filter.years = years;
  $("map-cls").value = cls;
  $("map-year-from").value = years[0] ?? "";
  $("map-year-to").value = years[1] ?? "";
  state.facet = facetMask(state.points, state.manifest, { cls, years });
  filtersChanged(opts);
}

function clearAll() {
  state.match = null;
  state.facet = null;
  state.selection = null;
  state.selectionCount = 0;
  state.filter = { q: "", label: "", cls: "", years: [null, null] };
  for (const id of ["map-label", "map-q", "map-cls", "map-year-from", "map-year-to"]) $(id).value = "";
  $("map-selection").hidden = true;
  showPath([], { fly: false });
  setFocus(-1);
  filtersChanged({ fly: false });
}

// --- focus: one artwork highlighted with its title card (from its page's "Show on map") ------------

function focusView(i) {
  // Zoom until about FOCUS_NEIGHBOURS points are within the shorter half-side of the view.
  const { n, positions: p } = state.points;
  const x = p[2 * i], y = p[2 * i + 1];
  const d2 = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    const dx = p[2 * j] - x, dy = p[2 * j + 1] - y;
    d2[j] = dx * dx + dy * dy;
  }
  d2.sort();
  const r = Math.sqrt(d2[Math.min(FOCUS_NEIGHBOURS, n - 1)]) || 1e-3;
  const el = $("map");
  const zoom = Math.log2(Math.min(el.clientWidth, el.clientHeight) / (2 * r));
  return { target: [x, y, 0], zoom: Math.max(state.overviewZoom, Math.min(zoom, MAX_ZOOM - 0.5)) };
}

async function setFocus(i) {
  state.focus = i;
  const card = $("map-card");
  if (i < 0) {
    card.hidden = true;
    writeHash();
    render();
    return;
  }
  const id = state.points.ids[i];
  card.hidden = false;
  card.querySelector(".map-card-body").replaceChildren(document.createTextNode("…"));
  writeHash();
  render();
  const data = await info(id);
  if (state.focus !== i) return;
  const body = card.querySelector(".map-card-body");
  body.replaceChildren();
  if (data && data.thumbnail) {
    const img = document.createElement("img");
    img.src = data.thumbnail;
    img.alt = "";
    body.append(img);
  }
  const title = document.createElement("a");
  title.className = "map-card-title";
  title.href = (data && data.url) || config.artworkUrl.replace("{id}", id);
  title.textContent = data ? data.title : `Artwork ${id}`;
  body.append(title);
  const meta = data ? [data.creator, data.date].filter(Boolean).join(", ") : "";
  if (meta) {
    const span = document.createElement("span");
    span.textContent = meta;
    body.append(span);
  }
}

// --- a path between two artworks (from the path page's "Show on the map") -------------------------

function showPath(ids, { fly = true } = {}) {
  state.path = ids.length ? resolvePath(ids, indexOfId) : null;
  const bar = $("map-path");
  bar.hidden = !state.path;
  $("map-path-text").textContent = state.path ? describePath(state.path) : "";
  writeHash();
  const b = fly && state.path ? pathBounds(state.path, state.points.positions) : null;
  if (b) flyTo(b);
  else render();
}

// --- thumbnails --------------------------------------------------------------------------------------

function viewBox() {
  const viewport = deck.getViewports()[0];
  if (!viewport) return null;
  const [x0, y0] = viewport.unproject([0, 0]);
  const [x1, y1] = viewport.unproject([viewport.width, viewport.height]);
  return [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1), viewport.width, viewport.height];
}

function visibleIndices(limit) {
  const box = viewBox();
  if (!box) return null;
  const [minX, minY, maxX, maxY] = box;
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
  const visible = present.size || state.manifest.hires ? visibleIndices(THUMB_MAX_VISIBLE) : null;
  if (!visible || !visible.length) {
    state.thumbs = [];
    state.hires = [];
    state.thumbPx = 0;
    return;
  }
  // A path's works are drawn over their neighbours, and the artwork in focus over everything.
  if (state.path) {
    const on = new Set(state.path.steps.map((st) => st.i));
    visible.sort((a, b) => on.has(a) - on.has(b));
  }
  if (state.focus >= 0) {
    const at = visible.indexOf(state.focus);
    if (at >= 0) visible.push(...visible.splice(at, 1));
  }
  const box = viewBox();
  const p = state.points.positions;
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const i of visible) {
    x0 = Math.min(x0, p[2 * i]);
    x1 = Math.max(x1, p[2 * i]);
    y0 = Math.min(y0, p[2 * i + 1]);
    y1 = Math.max(y1, p[2 * i + 1]);
  }
  const scale = box[4] / Math.max(box[2] - box[0], 1e-9); // px per world unit
  state.thumbPx = thumbSize(visible.length, (x1 - x0) * scale, (y1 - y0) * scale, box[4], box[5]);
  state.hires = [];
  if (state.manifest.hires && hiRes.wanted(state.thumbPx, visible.length)) {
    state.hires = hiRes.items(visible, state.points.ids);
    hiRes.fetch(visible.map((i) => state.points.ids[i]));
  }
  // Atlas cells for the rest (a point drawn from its derivative needs no cell under it).
  const sharp = new Set(state.hires.map((o) => o.i));
  const bySheet = new Map();
  for (const i of visible) {
    const s = Math.floor(i / atlas.per_sheet);
    if (!present.has(s) || sharp.has(i)) continue;
    if (!bySheet.has(s)) bySheet.set(s, []);
    bySheet.get(s).push(i);
  }
  state.thumbs = [...bySheet.entries()];
}

// --- layers ------------------------------------------------------------------------------------------

const OPAQUE = [255, 255, 255, 255];
const FADED = [255, 255, 255, 70];

// Thumbnails cover their points' colours, so a selection shows as the others fading.
function thumbColour(i) {
  return state.selection && !state.selection[i] ? FADED : OPAQUE;
}

function layers() {
  const { n, positions: p } = state.points;
  const m = state.manifest;
  const zoom = state.viewState.zoom;
  const spacing = m.world / Math.sqrt(Math.max(n, 1));
  const px = state.thumbPx;
  const out = [
    new ScatterplotLayer({
      id: "points",
      data: { length: n, attributes: { getPosition: { value: p, size: 2 }, getFillColor: { value: state.colours, size: 4, normalized: true } } },
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
  const atlas = m.atlas;
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
        getColor: thumbColour,
        sizeUnits: "pixels",
        pickable: true,
        updateTriggers: { getSize: px, getColor: state.colourVersion },
      }),
    );
  }
  if (state.hires.length) {
    out.push(
      new IconLayer({
        id: `hires-${hiRes.generation}`,
        data: state.hires,
        getIcon: (o) => ({ url: o.url, id: String(o.id), width: THUMB_MAX_PX, height: THUMB_MAX_PX }),
        getPosition: (o) => [p[2 * o.i], p[2 * o.i + 1]],
        // Fit the image in the same square as its atlas cell: the size is the height.
        getSize: (o) => px * Math.min(1, o.h / Math.max(o.w, 1)),
        getColor: (o) => thumbColour(o.i),
        sizeUnits: "pixels",
        pickable: true,
        updateTriggers: { getSize: px, getColor: state.colourVersion },
      }),
    );
  }
  if (state.focus >= 0) {
    const i = state.focus;
    out.push(
      new ScatterplotLayer({
        id: "focus",
        data: [i],
        getPosition: (j) => [p[2 * j], p[2 * j + 1]],
        radiusUnits: "pixels",
        getRadius: px ? px * 0.72 + 4 : 14,
        stroked: true,
        filled: false,
        getLineColor: HIGHLIGHT,
        lineWidthUnits: "pixels",
        getLineWidth: 4,
        updateTriggers: { getRadius: px },
      }),
    );
  }
  out.push(...pathLayers(state.path, p, px));
  state.names = [];
  state.nameBoxes = [];
  const level = pickLevel(zoom);
  if (level) {
    const size = NAME_SIZE[level.level === 0 ? 0 : 1];
    const viewport = deck.getViewports()[0];
    if (viewport) {
      const { placed, boxes } = placeNames(level.regions, (xy) => viewport.project(xy), {
        width: viewport.width, height: viewport.height, fontSize: size, fontFamily: FONT, fontWeight: NAME_WEIGHT, padding: NAME_PADDING,
      });
      state.names = placed;
      state.nameBoxes = boxes;
    }
    out.push(
      new TextLayer({
        id: `regions-${level.level}`,
        data: state.names,
        getPosition: (r) => [r.x, r.y],
        getText: (r) => r.name,
        getSize: size,
        getColor: [255, 255, 255, 255],
        background: true,
        getBackgroundColor: [20, 20, 24, 200],
        backgroundPadding: NAME_PADDING,
        fontFamily: FONT,
        fontWeight: NAME_WEIGHT,
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
  if (!levels.length || state.thumbs.length || state.hires.length) return null;
  // Coarse names at the overview, finer ones once zoomed in by 1.5 steps.
  const fine = zoom > state.overviewZoom + 1.5 && levels.length > 1;
  return levels[fine ? levels.length - 1 : 0];
}

function render() {
  if (!state.ready) return;
  deck.setProps({ layers: layers() });
}

function setView(v) {
  state.viewState = { ...v, minZoom: MIN_ZOOM, maxZoom: MAX_ZOOM };
  deck.setProps({ viewState: state.viewState });
  afterViewChange();
}

function flyTo(bounds) {
  setView({ ...fitView(bounds), transitionDuration: 600 });
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
  if (pick.layer && pick.layer.id.startsWith("hires-")) return pick.object.i;
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
    if (e.target.closest && e.target.closest(".map-card")) return;
    const r = el.getBoundingClientRect();
    onClick(deck.pickObject({ x: e.clientX - r.left, y: e.clientY - r.top, radius: 4 }));
  });
}

function onClick(pick) {
  const i = indexFromPick(pick);
  if (i < 0 || state.tool) return;
  const url = config.artworkUrl.replace("{id}", state.points.ids[i]);
  window.__map.lastClick = url;
  window.location.assign(url);
}

// --- box and lasso selection ------------------------------------------------------------------------

const SVG_NS = "http://www.w3.org/2000/svg";

function setupSelection() {
  const el = $("map");
  const box = document.createElement("div");
  box.className = "map-box";
  box.hidden = true;
  const lasso = document.createElementNS(SVG_NS, "svg");
  lasso.setAttribute("class", "map-lasso");
  lasso.setAttribute("aria-hidden", "true");
  const outline = document.createElementNS(SVG_NS, "polygon");
  lasso.append(outline);
  lasso.style.display = "none";
  el.append(box, lasso);
  let start = null; // where the drag began (screen px inside the map)
  let tool = null; // the tool of this drag
  let path = []; // the lasso's points so far
  const at = (e) => {
    const r = el.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  };
  el.addEventListener(
    "pointerdown",
    (e) => {
      if (e.button !== 0 || e.target.closest("#map-selection, #map-card, #map-path, #map-legend")) return; // the bars over the map keep their clicks
      tool = e.shiftKey ? "box" : state.tool;
      if (!tool) return;
      e.preventDefault();
      e.stopPropagation();
      start = at(e);
      deck.setProps({ controller: false });
      if (tool === "box") {
        box.hidden = false;
        Object.assign(box.style, { left: `${start[0]}px`, top: `${start[1]}px`, width: "0px", height: "0px" });
      } else {
        path = [start];
        outline.setAttribute("points", "");
        lasso.style.display = "";
      }
      el.setPointerCapture(e.pointerId);
    },
    true,
  );
  el.addEventListener("pointermove", (e) => {
    if (!start) return;
    const [x, y] = at(e);
    if (tool === "box") {
      Object.assign(box.style, {
        left: `${Math.min(x, start[0])}px`, top: `${Math.min(y, start[1])}px`,
        width: `${Math.abs(x - start[0])}px`, height: `${Math.abs(y - start[1])}px`,
      });
      return;
    }
    const last = path[path.length - 1];
    if (Math.hypot(x - last[0], y - last[1]) < 3) return; // a vertex every 3 px is plenty
    path.push([x, y]);
    outline.setAttribute("points", path.map((p) => p.join(",")).join(" "));
  });
  el.addEventListener("pointerup", (e) => {
    if (!start) return;
    if (tool === "box") selectBox(start, at(e));
    else selectLasso([...path, at(e)]);
    start = null;
    box.hidden = true;
    lasso.style.display = "none";
    deck.setProps({ controller: true });
  });
}

function selectBox(a, b) {
  const viewport = deck.getViewports()[0];
  const [x0, y0] = viewport.unproject([Math.min(a[0], b[0]), Math.min(a[1], b[1])]);
  const [x1, y1] = viewport.unproject([Math.max(a[0], b[0]), Math.max(a[1], b[1])]);
  const { n, positions } = state.points;
  showSelection(selectInBox(positions, n, [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)], state.shown));
}

function selectLasso(path) {
  if (path.length < 3) return showSelection({ mask: null, count: 0 });
  const viewport = deck.getViewports()[0];
  const { n, positions } = state.points;
  showSelection(selectInPolygon(positions, n, path.map((p) => viewport.unproject(p)), state.shown));
}

function showSelection({ mask, count }) {
  state.selection = count ? mask : null;
  state.selectionCount = count;
  paint();
  render();
  $("map-selection").hidden = !count;
  $("map-selection-count").textContent = `${count.toLocaleString()} selected`;
  $("map-selection-result").textContent = "";
}

function setTool(tool) {
  state.tool = state.tool === tool ? null : tool;
  $("map-select").setAttribute("aria-pressed", String(state.tool === "box"));
  $("map-lasso").setAttribute("aria-pressed", String(state.tool === "lasso"));
}

function selectedIds() {
  const ids = [];
  for (let i = 0; i < state.points.n; i++) if (state.selection && state.selection[i]) ids.push(state.points.ids[i]);
  return ids;
}

// Curators: the selection as examples of a classifier (a side, or a class), through the classifiers API.
async function addSelectionToClassifier() {
  const out = $("map-selection-result");
  const option = $("map-classifier").selectedOptions[0];
  const ids = selectedIds();
  out.replaceChildren();
  if (!option || !ids.length) return;
  if (ids.length > config.classifierLimit) {
    out.textContent = `${ids.length.toLocaleString()} selected: at most ${config.classifierLimit.toLocaleString()} can be added at once; select fewer`;
    return;
  }
  const body = { artwork_ids: ids };
  if (option.dataset.class != null) body.class = option.dataset.class;
  else body.positive = option.dataset.positive === "true";
  const r = await fetch(config.classifierExamplesUrl.replace("{id}", option.value), {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
    credentials: "same-origin",
    body: JSON.stringify(body),
  });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    const reasons = Object.values(data).flat().filter((v) => typeof v === "string");
    out.textContent = reasons.join(" ") || `Could not add the examples (${r.status})`;
    return;
  }
  const a = document.createElement("a");
  a.href = `/curate/classifiers/${option.value}/`;
  a.textContent = `${option.textContent.trim()}: ${data.added} added, ${data.changed} changed, ${data.unchanged} unchanged`;
  out.append(a);
}

async function saveSelection() {
  const ids = selectedIds();
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

// The tooltip, the title card, the selection and path bars and the legend live inside the map
// element so picking coordinates place them.
$("map").append($("map-tooltip"), $("map-card"), $("map-selection"), $("map-path"), $("map-legend"));

const deck = new Deck({
  parent: $("map"),
  views: new OrthographicView({ id: "map", flipY: true }),
  controller: true,
  initialViewState: { target: [512, 512, 0], zoom: 0 },
  layers: [],
  getCursor: ({ isHovering }) => (state.tool ? "crosshair" : isHovering ? "pointer" : "grab"),
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

function fillSelect(select, items) {
  for (const [value, text] of items) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    select.append(o);
  }
}

function readYears() {
  const value = (id) => {
    const v = $(id).value.trim();
    return v === "" || !Number.isFinite(Number(v)) ? null : Math.round(Number(v));
  };
  return [value("map-year-from"), value("map-year-to")];
}

function setupControls() {
  $("map-label").addEventListener("change", (e) => setLabel(e.target.value));
  $("map-q").addEventListener("keydown", (e) => {
    if (e.key === "Enter") setQuery(e.target.value);
  });
  $("map-cls").addEventListener("change", (e) => setFacets(e.target.value, state.filter.years));
  for (const id of ["map-year-from", "map-year-to"]) $(id).addEventListener("change", () => setFacets(state.filter.cls, readYears()));
  $("map-clear").addEventListener("click", clearAll);
  $("map-colour").addEventListener("change", (e) => setColourBy(e.target.value));
  $("map-path-clear").addEventListener("click", () => showPath([], { fly: false }));
  $("map-card-close").addEventListener("click", () => setFocus(-1));
  $("map-select").addEventListener("click", () => setTool("box"));
  $("map-lasso").addEventListener("click", () => setTool("lasso"));
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && state.tool) setTool(state.tool); // back to panning
  });
  const layoutSelect = $("map-layout");
  if (layoutSelect) {
    // Another map has other coordinates: keep the filters and the artwork in focus, not the view.
    layoutSelect.addEventListener("change", () => {
      const hash = formatHash({
        ...state.filter, artwork: state.focus >= 0 ? state.points.ids[state.focus] : null,
        colour: state.colourBy, path: state.path ? state.path.ids : [],
      });
      location.assign(`?layout=${encodeURIComponent(layoutSelect.value)}${hash ? `#${hash}` : ""}`);
    });
  }
  const save = $("map-selection-save");
  if (save) save.addEventListener("click", saveSelection);
  const toClassifier = $("map-selection-examples");
  if (toClassifier) toClassifier.addEventListener("click", addSelectionToClassifier);
  setupSelection();
  setupClicks();
  // A link pasted into the address bar of the open page changes only the hash: apply it as on load.
  // (The page's own updates use history.replaceState, which fires no hashchange.)
  window.addEventListener("hashchange", () => location.reload());
}

async function restore(h) {
  let view = h.view ? { target: [h.view.x, h.view.y, 0], zoom: h.view.zoom } : null;
  const focus = h.artwork != null ? indexOfId(h.artwork) : -1;
  if (focus >= 0 && !view) view = focusView(focus);
  // A shared view is restored as it was; without one, the map flies to what the filters show.
  const path = h.path.length > 0;
  const fly = !view && !path; // a path is flown to after the filters are applied
  setView(view || state.overview);
  if (h.colour) setColourBy(h.colour);
  if (focus >= 0) setFocus(focus);
  const facets = Boolean(h.cls) || h.years[0] != null || h.years[1] != null;
  if (facets) setFacets(h.cls, h.years, { fly: fly && !h.label && !h.q });
  if (h.label) await setLabel(h.label, { fly });
  else if (h.q) await setQuery(h.q, { fly });
  else if (!facets) showStatus();
  if (h.artwork != null && focus < 0) status(`Artwork ${h.artwork} is not on this map`);
  if (path) showPath(h.path, { fly: !view });
}

async function main() {
  const m = await (await fetch(config.manifestUrl)).json();
  state.manifest = m;
  notes(m);
  fillSelect($("map-label"), m.labels.map((l) => [l.slug, l.count == null ? l.name : `${l.name} (${l.count.toLocaleString()})`]));
  fillSelect($("map-cls"), m.classifications.map((c) => [c, c]));
  state.points = await loadPoints(m, (loaded) => status(`Loading ${loaded.toLocaleString()} / ${m.count.toLocaleString()} points…`));
  const years = yearRange(state.points, m);
  if (years) {
    for (const id of ["map-year-from", "map-year-to"]) Object.assign($(id), { min: years[0], max: years[1] });
    $("map-year-from").placeholder = String(years[0]);
    $("map-year-to").placeholder = String(years[1]);
  }
  $("map-facets").hidden = !m.classifications.length && !years;
  state.yearScale = yearScale(state.points, m.year_none);
  state.coloured = colouredCount(state.points);
  const byColour = $("map-colour").querySelector("option[value=colour]");
  if (!state.points.colour) {
    byColour.disabled = true;
    byColour.title = "This map's files were exported before dominant colours: its next export (build_map) adds them";
  }
  $("map-colour").querySelector("option[value=date]").disabled = !state.yearScale;
  state.baseColours = baseColours(state.points, "cluster", {});
  paint();
  const span = Math.max(m.bounds[2] - m.bounds[0], m.bounds[3] - m.bounds[1], 1e-9);
  const ext = [0, 0, (m.world * (m.bounds[2] - m.bounds[0])) / span, (m.world * (m.bounds[3] - m.bounds[1])) / span];
  state.overview = fitView(ext);
  state.overviewZoom = state.overview.zoom;
  state.ready = true;
  setupControls();
  await restore(parseHash(location.hash));
  window.__map.ready = true;
  window.__map.count = state.points.n;
  window.__map.world = (i) => [state.points.positions[2 * i], state.points.positions[2 * i + 1]];
  window.__map.screen = (i) => deck.getViewports()[0].project(window.__map.world(i));
  window.__map.indexOfId = indexOfId;
  window.__map.thumbSheets = () => state.thumbs.map(([s]) => s);
  window.__map.thumbCount = () => state.thumbs.reduce((sum, [, indices]) => sum + indices.length, 0) + state.hires.length;
  window.__map.hiresCount = () => state.hires.length;
  window.__map.regionNames = () => state.names.map((r) => r.name);
  window.__map.parseYears = parseYears;
  window.__map.colourBy = () => state.colourBy;
  window.__map.thumbPx = () => state.thumbPx;
  window.__map.colourOf = (i) => Array.from(state.colours.slice(4 * i, 4 * i + 4));
  window.__map.yearScale = () => state.yearScale;
  window.__map.pathSteps = () => (state.path ? state.path.steps.map((s) => [s.step, s.id, s.i]) : []);
  window.__map.pathMissing = () => (state.path ? state.path.missing.map((s) => [s.step, s.id]) : []);
  window.__map.layerIds = () => deck.props.layers.map((l) => l.id);
}

main().catch((err) => {
  console.error(err);
  status(`The map could not be loaded: ${err.message}`);
});
