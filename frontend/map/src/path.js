// A path between two artworks (explorer/path.py) drawn on the map: its works in order, joined by a
// line, each marked with its step number (1 is where the path starts). Works that are not on this
// map are skipped: the line joins the ones that are, and the numbers keep the path's own steps.
import { PathLayer, ScatterplotLayer, TextLayer } from "@deck.gl/layers";

const LINE = [255, 255, 255, 230];
const START = [80, 220, 120, 255];
const END = [255, 120, 80, 255];
const STEP = [255, 255, 255, 255];

export function resolvePath(ids, indexOfId) {
  const steps = []; // [{step (1-based), id, i}] of the works on this map
  const missing = []; // [{step, id}] of those that are not
  ids.forEach((id, k) => {
    const i = indexOfId(id);
    if (i >= 0) steps.push({ step: k + 1, id, i });
    else missing.push({ step: k + 1, id });
  });
  return { ids, steps, missing };
}

export function pathBounds(path, positions) {
  if (!path.steps.length) return null;
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const { i } of path.steps) {
    const x = positions[2 * i], y = positions[2 * i + 1];
    x0 = Math.min(x0, x); x1 = Math.max(x1, x);
    y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  const pad = Math.max(x1 - x0, y1 - y0, 4) * 0.15;
  return [x0 - pad, y0 - pad, x1 + pad, y1 + pad];
}

export function describePath(path) {
  const total = path.ids.length;
  if (!path.steps.length) return `None of the path's ${total} works is on this map`;
  let text = `Path of ${total} works, from 1 (green) to ${total} (orange)`;
  if (path.missing.length) {
    const steps = path.missing.map((m) => m.step).join(", ");
    text += `; ${path.missing.length} not on this map, skipped (step${path.missing.length > 1 ? "s" : ""} ${steps})`;
  }
  return text;
}

export function pathLayers(path, positions, thumbPx) {
  if (!path || !path.steps.length) return [];
  const at = (s) => [positions[2 * s.i], positions[2 * s.i + 1]];
  const last = path.ids.length;
  const colour = (s) => (s.step === 1 ? START : s.step === last ? END : STEP);
  // Over thumbnails the works stay visible: a ring around each thumbnail, its number in a badge at
  // the corner. Over points: a marker with the number in it.
  const radius = thumbPx ? thumbPx * 0.72 + 4 : 11;
  const badge = thumbPx ? [-thumbPx / 2, -thumbPx / 2] : [0, 0];
  return [
    new PathLayer({
      id: "path-line",
      data: [path.steps],
      getPath: (steps) => steps.map(at),
      getColor: LINE,
      getWidth: 3,
      widthUnits: "pixels",
      capRounded: true,
      jointRounded: true,
    }),
    new ScatterplotLayer({
      id: "path-steps",
      data: path.steps,
      getPosition: at,
      getRadius: radius,
      radiusUnits: "pixels",
      stroked: true,
      filled: !thumbPx,
      getFillColor: [20, 20, 24, 235],
      getLineColor: colour,
      lineWidthUnits: "pixels",
      getLineWidth: 3,
      updateTriggers: { getRadius: radius },
    }),
    new TextLayer({
      id: "path-numbers",
      data: path.steps,
      getPosition: at,
      getText: (s) => String(s.step),
      getSize: 13,
      getColor: colour,
      getPixelOffset: badge,
      background: Boolean(thumbPx),
      getBackgroundColor: [20, 20, 24, 235],
      backgroundPadding: [5, 2],
      fontWeight: 700,
      fontFamily: "system-ui, sans-serif",
      characterSet: "0123456789",
      getTextAnchor: "middle",
      getAlignmentBaseline: "center",
      updateTriggers: { getPixelOffset: thumbPx },
    }),
  ];
}
