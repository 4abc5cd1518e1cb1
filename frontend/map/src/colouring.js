// The points' colours by the chosen mode: their region (cluster), their date (a sequential scale
// over the map's years, unknown years grey) or their artwork's dominant colour (the export's
// "colour" column, from the stored palettes; grey without one). And the small legend that says so.
import { clusterColour, packedColour, UNKNOWN, yearColour, yearGradient } from "./colours.js";

export const MODES = { cluster: "Region", date: "Date", colour: "Dominant colour" };

// The scale's ends: the 1st and 99th percentiles of the known years (a few very early or late
// works would otherwise squeeze everything else into one colour), or null without any year.
export function yearScale(points, none) {
  const known = [];
  for (let i = 0; i < points.n; i++) if (points.year[i] !== none) known.push(points.year[i]);
  if (!known.length) return null;
  const years = Int16Array.from(known).sort();
  const at = (q) => years[Math.min(years.length - 1, Math.max(0, Math.round(q * (years.length - 1))))];
  const lo = at(0.01);
  const hi = Math.max(at(0.99), lo + 1);
  return { lo, hi, min: years[0], max: years[years.length - 1], known: years.length };
}

export function colouredCount(points) {
  if (!points.colour) return 0;
  let count = 0;
  for (let i = 0; i < points.n; i++) if (points.colour[i]) count++;
  return count;
}

export function baseColours(points, mode, { scale, none }) {
  const { n, c0 } = points;
  const out = new Uint8Array(n * 4);
  if (mode === "date" && scale) {
    const span = scale.hi - scale.lo;
    for (let i = 0; i < n; i++) {
      const y = points.year[i];
      out.set(y === none ? UNKNOWN : yearColour((y - scale.lo) / span), i * 4);
    }
  } else if (mode === "colour" && points.colour) {
    for (let i = 0; i < n; i++) out.set(packedColour(points.colour[i]), i * 4);
  } else {
    for (let i = 0; i < n; i++) out.set(clusterColour(c0[i]), i * 4);
  }
  return out;
}

function swatch(colour, text) {
  const item = document.createElement("span");
  item.className = "map-legend-item";
  const box = document.createElement("span");
  box.className = "map-legend-swatch";
  box.style.background = `rgb(${colour.slice(0, 3).join(",")})`;
  item.append(box, document.createTextNode(text));
  return item;
}

export function drawLegend(el, mode, { scale, coloured, n }) {
  el.replaceChildren();
  el.dataset.mode = mode;
  if (mode === "date" && scale) {
    const title = document.createElement("strong");
    title.textContent = "Date";
    const bar = document.createElement("span");
    bar.className = "map-legend-bar";
    bar.style.background = yearGradient();
    const ends = document.createElement("span");
    ends.className = "map-legend-ends";
    const from = document.createElement("span");
    from.textContent = `${scale.min < scale.lo ? "≤ " : ""}${scale.lo}`;
    const to = document.createElement("span");
    to.textContent = `${scale.max > scale.hi ? "≥ " : ""}${scale.hi}`;
    ends.append(from, to);
    el.append(title, bar, ends, swatch(UNKNOWN, `date unknown (${(n - scale.known).toLocaleString()})`));
  } else if (mode === "colour") {
    const title = document.createElement("strong");
    title.textContent = "Dominant colour";
    const text = document.createElement("span");
    text.textContent = coloured ? "each artwork in the largest colour of its palette" : "no palettes yet: the palette job computes them";
    el.append(title, text, swatch(UNKNOWN, `no palette (${(n - coloured).toLocaleString()})`));
  }
  el.hidden = mode === "cluster";
}
