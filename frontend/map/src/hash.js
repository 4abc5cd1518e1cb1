// The map's shareable state in the URL hash:
//   #view=x,y,zoom&q=text&label=slug&cls=classification&years=1500-1700&artwork=id&colour=date&path=3,9,4
// (every part optional; colour: "date" or "colour", the cluster colours when absent; path: the
// artwork ids of a path between two artworks, in order). The older form #x,y,zoom[,label] is still read.

export function parseHash(hash) {
  const raw = (hash || "").replace(/^#/, "");
  const out = { view: null, q: "", label: "", cls: "", years: [null, null], artwork: null, colour: "", path: [] };
  if (!raw) return out;
  if (!raw.includes("=")) {
    // Legacy: x,y,zoom[,label]
    const parts = decodeURIComponent(raw).split(",");
    out.view = parseView(parts.slice(0, 3).join(","));
    out.label = parts[3] || "";
    return out;
  }
  const p = new URLSearchParams(raw);
  out.view = parseView(p.get("view") || "");
  out.q = (p.get("q") || "").trim();
  out.label = (p.get("label") || "").trim();
  out.cls = p.get("cls") || "";
  out.years = parseYears(p.get("years") || "");
  const id = Number(p.get("artwork"));
  out.artwork = Number.isInteger(id) && id > 0 ? id : null;
  const colour = p.get("colour") || "";
  out.colour = COLOUR_MODES.includes(colour) ? colour : "";
  out.path = parseIds(p.get("path") || "");
  return out;
}

export const COLOUR_MODES = ["cluster", "date", "colour"];
const MAX_PATH = 100;

export function parseIds(text) {
  const out = [];
  for (const part of String(text).split(",")) {
    const id = Number(part.trim());
    if (Number.isInteger(id) && id > 0 && out.length < MAX_PATH) out.push(id);
  }
  return out;
}

function parseView(text) {
  const parts = text.split(",");
  if (parts.length !== 3) return null;
  const [x, y, zoom] = parts.map(Number);
  if (![x, y, zoom].every(Number.isFinite)) return null;
  return { x, y, zoom };
}

export function parseYears(text) {
  const m = /^\s*(-?\d+)?\s*-\s*(-?\d+)?\s*$/.exec(text || "");
  if (!m) return [null, null];
  return [m[1] == null ? null : Number(m[1]), m[2] == null ? null : Number(m[2])];
}

export function formatHash({ view, q, label, cls, years, artwork, colour, path }) {
  const parts = [];
  const add = (key, value) => parts.push(`${key}=${encodeURIComponent(value).replace(/%2C/g, ",")}`);
  if (view) add("view", [view.x.toFixed(2), view.y.toFixed(2), view.zoom.toFixed(2)].join(","));
  if (q) add("q", q);
  if (label) add("label", label);
  if (cls) add("cls", cls);
  if (years && (years[0] != null || years[1] != null)) add("years", `${years[0] ?? ""}-${years[1] ?? ""}`);
  if (artwork) add("artwork", String(artwork));
  if (colour && colour !== "cluster") add("colour", colour);
  if (path && path.length) add("path", path.join(","));
  return parts.join("&");
}
