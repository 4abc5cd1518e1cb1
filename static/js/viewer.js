// Deep zoom on the artwork page with the vendored OpenSeadragon: the IIIF image service where the
// artwork has one, else the 1024 px derivative as a single zoomable image. The plain <img> stays
// until the visitor asks to zoom, so the page works without JS or when the IIIF server is offline.
(function () {
  'use strict';
  var box = document.getElementById('viewer');
  var button = document.getElementById('zoom-button');
  if (!box || !button || typeof OpenSeadragon === 'undefined') return;
  button.hidden = false;
  var viewer = null;

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
    viewer.addHandler('open-failed', function () {
      // IIIF server unreachable: zoom into the local derivative instead.
      if (box.dataset.iiif) { box.dataset.iiif = ''; viewer.open(fallback); }
    });
    if (img) img.remove();
    button.textContent = 'Close zoom';
  }

  function close() {
    viewer.destroy();
    viewer = null;
    box.classList.remove('zooming');
    box.style.height = '';
    box.innerHTML = '';
    var img = document.createElement('img');
    img.src = box.dataset.image;
    img.alt = button.dataset.alt || document.title;
    img.className = 'artwork-image';
    box.appendChild(img);
    button.textContent = 'Zoom in';
  }

  button.addEventListener('click', function () { if (viewer) close(); else open(); });
})();
