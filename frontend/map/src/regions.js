// Region names without overlaps: the largest regions are placed first, and a name whose box
// (measured with the same font, plus a margin) would overlap one already placed, or fall outside
// the view, is left out at this zoom. Zooming in spreads the regions apart and brings names back.
// Returns the regions to draw and their boxes on screen ([x0, y0, x1, y1], margin included).

const MARGIN = 6; // px between two names

let context = null;
function measure(text, font) {
  if (!context) context = document.createElement("canvas").getContext("2d");
  context.font = font;
  return context.measureText(text).width;
}

export function placeNames(regions, project, { width, height, fontSize, fontFamily, fontWeight = 400, padding }) {
  const font = `${fontWeight} ${fontSize}px ${fontFamily}`;
  const placed = [];
  const boxes = [];
  const order = [...regions].sort((a, b) => b.size - a.size || a.cluster - b.cluster);
  for (const r of order) {
    if (!r.name) continue;
    const [sx, sy] = project([r.x, r.y]);
    const w = measure(r.name, font) + 2 * padding[0] + MARGIN;
    const h = fontSize * 1.2 + 2 * padding[1] + MARGIN;
    const box = [sx - w / 2, sy - h / 2, sx + w / 2, sy + h / 2];
    if (box[0] < 0 || box[1] < 0 || box[2] > width || box[3] > height) continue;
    if (boxes.some((b) => box[0] < b[2] && box[2] > b[0] && box[1] < b[3] && box[3] > b[1])) continue;
    boxes.push(box);
    placed.push(r);
  }
  return { placed, boxes };
}
