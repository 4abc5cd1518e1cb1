// Load the layout's point chunks (gzipped typed-array columns, see workers/layouts/export.py) into
// one set of typed arrays. Chunks load in parallel; a server that sends them with
// Content-Encoding: gzip is handled (the browser has already inflated them) as well as one that
// sends the raw .gz bytes (inflated here with DecompressionStream).
const SIZES = { uint8: 1, int8: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4 };
const TYPES = { uint8: Uint8Array, int8: Int8Array, uint16: Uint16Array, int16: Int16Array, uint32: Uint32Array, int32: Int32Array, float32: Float32Array };

async function inflate(buffer) {
  const bytes = new Uint8Array(buffer);
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) return buffer;
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Response(stream).arrayBuffer();
}

export async function loadPoints(manifest, onProgress) {
  const n = manifest.count;
  const world = manifest.world;
  const scale = world / 65535;
  const positions = new Float32Array(n * 2);
  const columns = {};
  for (const c of manifest.columns) if (c.name !== "x" && c.name !== "y") columns[c.name] = new TYPES[c.type](n);
  let loaded = 0;
  await Promise.all(
    manifest.chunks.map(async (chunk) => {
      const r = await fetch(manifest.base_url + chunk.file);
      if (!r.ok) throw new Error(`${chunk.file}: HTTP ${r.status}`);
      const buffer = await inflate(await r.arrayBuffer());
      let offset = 0;
      const count = chunk.count;
      for (const c of manifest.columns) {
        const view = new TYPES[c.type](buffer, offset, count);
        offset += SIZES[c.type] * count;
        if (c.name === "x" || c.name === "y") {
          const k = c.name === "x" ? 0 : 1;
          for (let i = 0; i < count; i++) positions[2 * (chunk.start + i) + k] = view[i] * scale;
        } else columns[c.name].set(view, chunk.start);
      }
      if (offset !== buffer.byteLength) throw new Error(`${chunk.file}: ${buffer.byteLength} bytes, expected ${offset}`);
      loaded += count;
      onProgress(loaded);
    }),
  );
  const ids = columns.id;
  const sortedIndex = new Uint32Array(n);
  for (let i = 0; i < n; i++) sortedIndex[i] = i;
  sortedIndex.sort((a, b) => ids[a] - ids[b]);
  const sortedIds = new Uint32Array(n);
  for (let i = 0; i < n; i++) sortedIds[i] = ids[sortedIndex[i]];
  return { n, positions, ids, c0: columns.c0, c1: columns.c1, year: columns.year, cls: columns.cls, colour: columns.colour || null, sortedIds, sortedIndex };
}
