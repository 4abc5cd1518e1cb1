// Filters on the exported columns, computed in the browser: classification (uint8 code into the
// manifest's list, 255 other) and year range (int16, year_none for unknown). Returns a mask of the
// points that pass, or null when no filter is set.

export function facetMask(points, manifest, { cls, years }) {
  const [from, to] = years || [null, null];
  const code = cls ? manifest.classifications.indexOf(cls) : -1;
  if (!cls && from == null && to == null) return null;
  const { n } = points;
  const mask = new Uint8Array(n);
  if (cls && code < 0) return mask; // a classification this map does not have: nothing passes
  const none = manifest.year_none;
  const lo = from == null ? -Infinity : from;
  const hi = to == null ? Infinity : to;
  const byYear = from != null || to != null;
  for (let i = 0; i < n; i++) {
    if (cls && points.cls[i] !== code) continue;
    if (byYear) {
      const y = points.year[i];
      if (y === none || y < lo || y > hi) continue;
    }
    mask[i] = 1;
  }
  return mask;
}

export function yearRange(points, manifest) {
  let lo = Infinity;
  let hi = -Infinity;
  const none = manifest.year_none;
  for (let i = 0; i < points.n; i++) {
    const y = points.year[i];
    if (y === none) continue;
    if (y < lo) lo = y;
    if (y > hi) hi = y;
  }
  return Number.isFinite(lo) ? [lo, hi] : null;
}
