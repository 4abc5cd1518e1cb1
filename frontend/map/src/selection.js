// Which points a box or a freehand lasso encloses. Shapes are in world coordinates (the map's
// orthographic view maps screen to world linearly, so a polygon drawn on screen stays a polygon).

// A mask (1 = selected) of the points inside the axis-aligned box, among those `shown` (or all).
export function selectInBox(positions, n, [minX, minY, maxX, maxY], shown) {
  const mask = new Uint8Array(n);
  let count = 0;
  for (let i = 0; i < n; i++) {
    if (shown && !shown[i]) continue;
    const x = positions[2 * i], y = positions[2 * i + 1];
    if (x >= minX && x <= maxX && y >= minY && y <= maxY) {
      mask[i] = 1;
      count++;
    }
  }
  return { mask, count };
}

// The same for a closed polygon ([[x, y], ...], even-odd rule): a bounding-box test first, so a
// small lasso over a million points costs one comparison per point outside it.
export function selectInPolygon(positions, n, polygon, shown) {
  const xs = Float64Array.from(polygon, (p) => p[0]);
  const ys = Float64Array.from(polygon, (p) => p[1]);
  const bounds = [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
  const { mask, count: inBox } = selectInBox(positions, n, bounds, shown);
  let count = 0;
  if (inBox) {
    for (let i = 0; i < n; i++) {
      if (!mask[i]) continue;
      if (inside(positions[2 * i], positions[2 * i + 1], xs, ys)) count++;
      else mask[i] = 0;
    }
  }
  return { mask, count };
}

// Ray casting: a horizontal ray from (x, y) crosses the polygon's edges an odd number of times
// when the point is inside.
function inside(x, y, xs, ys) {
  let odd = false;
  for (let i = 0, j = xs.length - 1; i < xs.length; j = i++) {
    if (ys[i] > y !== ys[j] > y && x < ((xs[j] - xs[i]) * (y - ys[i])) / (ys[j] - ys[i]) + xs[i]) odd = !odd;
  }
  return odd;
}
