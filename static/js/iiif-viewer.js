// The IIIF viewer page: fetch a Presentation 3 manifest (?manifest=URL), show its first canvas's
// image in OpenSeadragon (the image service when it answers, else the image itself), its metadata
// and its tagging annotations (the labels; machine ones name the model and score). Everything
// from the manifest is written as text, never as HTML.
(function () {
  'use strict';
  var status = document.getElementById('iiif-status');
  var input = document.getElementById('manifest-url');
  var url = input && input.value;
  if (!url || typeof OpenSeadragon === 'undefined') return;

  function text(map) {
    if (!map || typeof map !== 'object') return typeof map === 'string' ? map : '';
    var values = map.en || map.none || map[Object.keys(map)[0]] || [];
    return values.join('; ');
  }
  function list(value) { return Array.isArray(value) ? value : (value ? [value] : []); }
  function add(parent, tag, content, cls) {
    var el = document.createElement(tag);
    el.textContent = content;
    if (cls) el.className = cls;
    parent.appendChild(el);
    return el;
  }

  function show(manifest) {
    document.getElementById('iiif-label').textContent = text(manifest.label);
    document.getElementById('iiif-summary').textContent = text(manifest.summary);
    var facts = document.getElementById('iiif-metadata');
    list(manifest.metadata).forEach(function (pair) {
      add(facts, 'dt', text(pair.label));
      add(facts, 'dd', text(pair.value));
    });
    var rights = document.getElementById('iiif-rights');
    if (manifest.rights) {
      var link = add(rights, 'a', manifest.rights);
      if (/^https?:\/\//.test(manifest.rights)) link.href = manifest.rights;
      link.rel = 'license';
    }
    if (manifest.requiredStatement) add(rights, 'span', ' ' + text(manifest.requiredStatement.value), 'muted');

    var canvas = list(manifest.items)[0] || {};
    var painting = (list(canvas.items)[0] || {}).items || [];
    var body = list((painting[0] || {}).body)[0];
    var labels = document.getElementById('iiif-labels');
    var untrained = false;
    list(canvas.annotations).forEach(function (page) {
      list(page.items).forEach(function (annotation) {
        var bodies = list(annotation.body).filter(function (b) { return b.type === 'TextualBody'; });
        if (!bodies.length) return;
        var chip = add(labels, 'li', bodies[0].value, 'chip');
        var creator = annotation.creator;
        if (creator && creator.type === 'Software') {
          chip.classList.add('machine');
          chip.title = 'Machine label by ' + text(creator.label);
          if (typeof annotation.score === 'number') add(chip, 'span', annotation.score.toFixed(3), 'count');
          if (creator.untrained) untrained = true;
        } else if (annotation.curated) {
          chip.title = 'Decided by a curator';
          add(chip, 'span', 'curator', 'count');
        }
      });
    });
    document.getElementById('iiif-labels-note').textContent = !labels.children.length ? 'No labels.'
      : untrained ? 'Machine labels from an untrained model (random weights): not meaningful.' : 'Machine labels show their score.';
    document.getElementById('iiif-manifest').hidden = false;

    if (!body) { status.textContent = 'The manifest has no image.'; return; }
    var box = document.getElementById('iiif-image');
    box.style.height = '560px';
    var service = list(body.service)[0];
    var fallback = { type: 'image', url: body.id };
    var viewer = OpenSeadragon({
      element: box, prefixUrl: box.dataset.osd, showNavigator: true, maxZoomPixelRatio: 3, crossOriginPolicy: false,
      tileSources: [service ? (service.id || service['@id']).replace(/\/$/, '') + '/info.json' : fallback]
    });
    viewer.addHandler('open', function () { status.textContent = 'Opened ' + url; box.dataset.opened = body.id; });
    viewer.addHandler('open-failed', function () {
      if (service) { service = null; viewer.open(fallback); }  // image service unreachable: the image itself
      else status.textContent = 'The image could not be opened.';
    });
  }

  fetch(url, { headers: { Accept: 'application/ld+json, application/json' } })
    .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
    .then(function (manifest) {
      if (manifest.type !== 'Manifest') throw new Error('not a IIIF Presentation 3 Manifest');
      show(manifest);
    })
    .catch(function (err) { status.textContent = 'Cannot open ' + url + ': ' + err.message; });
})();
