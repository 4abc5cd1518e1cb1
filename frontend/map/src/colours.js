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
