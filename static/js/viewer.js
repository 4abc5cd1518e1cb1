// Deep zoom on the artwork page with the vendored OpenSeadragon: the IIIF image service where the
// artwork has one, else the 1024 px derivative as a single zoomable image. The plain <img> stays
// until the visitor asks to zoom, so the page works without JS or when the IIIF server is offline.
// Words of the visitor's search found in the image (OCR) are marked on the still image by the
// page itself and, once zoomed, as OpenSeadragon overlays (boxes in full-image pixels).
(function () {
  'use strict';
  var box = document.getElementById('viewer');
  var button = document.getElementById('zoom-button');
  if (!box || !button || typeof OpenSeadragon === 'undefined') return;
  button.hidden = false;
  var viewer = null;
  var still = box.querySelector('.image-frame') || box.querySelector('img');
  var hitsData = document.getElementById('text-highlights');
  var hits = hitsData ? JSON.parse(hitsData.textContent) : null;

  function addHits() {
    if (!hits || !hits.width) return;
    // Viewport coordinates: the image's width is 1, whatever size of the image was opened.
    hits.boxes.forEach(function (b) {
      var el = document.createElement('div');
      el.className = 'text-hit';
      el.title = b.text;
      viewer.addOverlay({ element: el, location: new OpenSeadragon.Rect(b.x / hits.width, b.y / hits.width, b.w / hits.width, b.h / hits.width) });
    });
  }

  function open() {
    var img = box.querySelector('img');
    var height = img ? Math.max(img.clientHeight, 420) : 600;
    box.style.height = height + 'px';
    box.classList.add('zooming');
    var fallback = { type: 'image', url: box.dataset.image };
    viewer = OpenSeadragon({
      element: box,
      prefixUrl: box.dataset.osd,
      tileSources: box.dataset.iiif ? [box.dataset.iiif] : [fallback],
      showNavigator: true,
      gestureSettingsMouse: { clickToZoom: true },
      maxZoomPixelRatio: 3,
      crossOriginPolicy: false
    });
    viewer.addHandler('open', addHits);
    viewer.addHandler('open-failed', function () {
      // IIIF server unreachable: zoom into the local derivative instead.
      if (box.dataset.iiif) { box.dataset.iiif = ''; viewer.open(fallback); }
    });
    if (still) still.remove();
    button.textContent = 'Close zoom';
  }

  function close() {
    viewer.destroy();
    viewer = null;
    box.classList.remove('zooming');
    box.style.height = '';
    box.innerHTML = '';
    if (still) box.appendChild(still);
    button.textContent = 'Zoom in';
  }

  button.addEventListener('click', function () { if (viewer) close(); else open(); });
})();
