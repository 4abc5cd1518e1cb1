// Cluster colours: a qualitative palette (Tableau 20), readable on the dark map background.
const PALETTE = [
  [78, 121, 167], [242, 142, 43], [225, 87, 89], [118, 183, 178], [89, 161, 79], [237, 201, 72],
  [176, 122, 161], [255, 157, 167], [156, 117, 95], [186, 176, 172], [160, 203, 232], [255, 190, 125],
  [140, 209, 125], [182, 153, 45], [134, 188, 182], [250, 191, 210], [212, 166, 200], [215, 181, 166],
  [157, 118, 201], [121, 112, 110],
];
export const DIM = [90, 90, 96, 70];
export const HIGHLIGHT = [255, 230, 0, 255];
export const SELECTED = [0, 220, 255, 255];

export function clusterColour(c) {
  const [r, g, b] = PALETTE[c % PALETTE.length];
  return [r, g, b, 220];
}

// Colouring by date: a sequential scale (viridis, from its 12% point so the earliest years stay
// visible on the dark background) over the map's year range; unknown years are grey.
const VIRIDIS = [
  [72, 36, 117], [65, 68, 135], [53, 95, 141], [42, 120, 142], [33, 145, 140], [34, 168, 132], [68, 191, 112],
  [122, 209, 81], [189, 223, 38], [253, 231, 37],
];
export const UNKNOWN = [120, 120, 128, 200];

export function yearColour(t) {
  const u = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const k = Math.min(VIRIDIS.length - 2, Math.floor(u));
  const f = u - k;
  const a = VIRIDIS[k];
  const b = VIRIDIS[k + 1];
  return [Math.round(a[0] + (b[0] - a[0]) * f), Math.round(a[1] + (b[1] - a[1]) * f), Math.round(a[2] + (b[2] - a[2]) * f), 230];
}

// The CSS gradient of the date scale, for its legend.
export function yearGradient() {
  return `linear-gradient(to right, ${VIRIDIS.map((c) => `rgb(${c.join(",")})`).join(", ")})`;
}

// The export's "colour" column: the artwork's dominant colour as RGB565 (0: no palette).
export function packedColour(v) {
  if (!v) return UNKNOWN;
  const r = (v >> 11) & 31;
  const g = (v >> 5) & 63;
  const b = v & 31;
  return [(r << 3) | (r >> 2), (g << 2) | (g >> 4), (b << 3) | (b >> 2), 235];
}
