// Thumbnails at two resolutions. Zoomed in far enough that at most THUMB_MAX_VISIBLE points are in
// view, each point is drawn as its 64 px cell of the layout's atlas sheets (one IconLayer per sheet,
// sheets load on demand). At the deepest zoom, when at most HIRES_MAX_VISIBLE points are in view
// and a thumbnail is drawn larger than its atlas cell, the 256 px derivatives of exactly those
// artworks are drawn instead (thumbs.json gives their URLs; each is drawn once the browser has
// loaded it, in place of its atlas cell; deck.gl packs them into one texture, reset once it holds
// HIRES_RESET images so it stays small).

export const THUMB_MAX_VISIBLE = 1500;
export const HIRES_MAX_VISIBLE = 120;
export const THUMB_MIN_PX = 44;
export const THUMB_MAX_PX = 160; // also the box a derivative is packed into
const HIRES_MIN_PX = 72; // below this the atlas cell (64 px) is sharp enough
const HIRES_RESET = 120;

// Thumbnail size on screen: the visible points share the screen area they spread over (their
// bounding box plus a margin, within the view), capped both ways. The thumbnails grow as you zoom
// in and the points move apart, and a small isolated clump stays small until you zoom on it.
export function thumbSize(visibleCount, spanX, spanY, width, height) {
  const pad = 0.25 * Math.min(width, height);
  const area = Math.min(spanX + pad, width) * Math.min(spanY + pad, height);
  const px = 0.85 * Math.sqrt(area / Math.max(visibleCount, 1));
  return Math.round(Math.max(THUMB_MIN_PX, Math.min(THUMB_MAX_PX, px)));
}

export class HiRes {
  constructor(url, onLoad) {
    this.url = url;
    this.onLoad = onLoad; // called when derivatives have loaded (debounced)
    this.known = new Map(); // artwork id -> [url, width, height] or null (no image)
    this.loaded = new Set(); // ids whose derivative the browser has loaded
    this.inflight = new Set();
    this.timer = 0;
    this.generation = 0;
    this.packed = new Set(); // ids packed into the current texture
  }

  wanted(px, visibleCount) {
    return Boolean(this.url) && px >= HIRES_MIN_PX && visibleCount <= HIRES_MAX_VISIBLE;
  }

  // Fetch the URLs of the ids not known yet (one request) and start loading the images.
  async fetch(ids) {
    const missing = ids.filter((id) => !this.known.has(id) && !this.inflight.has(id)).slice(0, 200);
    if (!missing.length) return false;
    missing.forEach((id) => this.inflight.add(id));
    try {
      const r = await fetch(`${this.url}?ids=${missing.join(",")}`);
      if (!r.ok) return false;
      const { thumbs } = await r.json();
      for (const id of missing) {
        const t = thumbs[String(id)] || null;
        this.known.set(id, t);
        if (t) this.preload(id, t[0]);
      }
      return true;
    } catch {
      return false;
    } finally {
      missing.forEach((id) => this.inflight.delete(id));
    }
  }

  preload(id, url) {
    const img = new Image();
    img.onload = () => {
      this.loaded.add(id);
      clearTimeout(this.timer);
      this.timer = setTimeout(this.onLoad, 50);
    };
    img.src = url;
  }

  // [{i, id, url, w, h}] for the visible points whose derivative has loaded.
  items(indices, ids) {
    const out = [];
    for (const i of indices) {
      const t = this.loaded.has(ids[i]) ? this.known.get(ids[i]) : null;
      if (t) out.push({ i, id: ids[i], url: t[0], w: t[1], h: t[2] });
    }
    const fresh = out.filter((o) => !this.packed.has(o.id));
    if (this.packed.size + fresh.length > HIRES_RESET) {
      this.generation++;
      this.packed = new Set();
    }
    out.forEach((o) => this.packed.add(o.id));
    return out;
  }
}
