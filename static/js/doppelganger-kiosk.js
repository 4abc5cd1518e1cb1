// The gallery kiosk: the live mirror full screen with no controls. The camera starts at once
// (give the kiosk browser camera permission for this site, e.g. Chromium's --kiosk with
// --use-fake-ui-for-media-stream or a site setting); a tap or key asks for full screen. After
// data-idle-seconds without a face the screen resets to its invitation, and frames slow down.
(function () {
  "use strict";
  var root = document.getElementById("kiosk");
  if (!root || !window.DoppelgangerLive) return;
  var idleSeconds = parseFloat(root.getAttribute("data-idle-seconds")) || 10;
  var qrPattern = root.getAttribute("data-qr");
  var best = document.getElementById("kiosk-best");
  var idle = document.getElementById("kiosk-idle");
  var hint = document.getElementById("kiosk-hint");
  var more = document.getElementById("kiosk-more");
  var csrf = document.querySelector("[name=csrfmiddlewaretoken]");
  var shownId = null;

  function text(id, value) { document.getElementById(id).textContent = value; }

  function reset() {
    shownId = null;
    mirror.held = null;
    best.hidden = true;
    idle.hidden = false;
    hint.hidden = false;
    more.innerHTML = "";
    root.classList.remove("has-match");
  }

  function showBest(m) {
    var url = new URL(m.artwork.url, window.location.href).href;
    if (shownId !== m.face_id) {
      var crop = document.getElementById("kiosk-crop"), thumb = document.getElementById("kiosk-thumb");
      var pending = new Image();
      pending.onload = pending.onerror = function () {  // swap only once the new face has loaded
        crop.src = m.crop_url;
        crop.alt = "Face in " + m.artwork.title;
        thumb.src = m.image_url || m.crop_url;
        thumb.alt = m.artwork.title;
        text("kiosk-title", m.artwork.title);
        text("kiosk-creator", [m.artwork.creator, m.artwork.date].filter(Boolean).join(", "));
        document.getElementById("kiosk-qr").src = qrPattern.replace("/0.svg", "/" + m.artwork.id + ".svg");
        text("kiosk-url", url);
        best.hidden = false;
        idle.hidden = true;
        hint.hidden = true;
        root.classList.add("has-match");
      };
      pending.src = m.crop_url;
      shownId = m.face_id;
    }
    text("kiosk-pct", m.similarity + "% alike");
  }

  var mirror = new window.DoppelgangerLive.LiveMirror({
    endpoint: root.getAttribute("data-endpoint"),
    csrf: csrf ? csrf.value : "",
    maxFps: parseFloat(root.getAttribute("data-max-fps")) || 7,
    idleFps: 2,
    video: document.getElementById("kiosk-video"),
    canvas: document.getElementById("kiosk-canvas"),
    onMatches: function (matches) {
      showBest(matches[0]);
      window.DoppelgangerLive.renderMatches(more, matches.slice(1), { count: 3 });
    },
    onNoFace: function (ms) {
      if (shownId !== null && ms > idleSeconds * 1000) reset();
    },
  });
  window.dgLive = mirror; // for tests: mirror.stats
  window.dgKiosk = { reset: reset, idleSeconds: idleSeconds };
  mirror.start().catch(function () {
    document.getElementById("kiosk-nocamera").hidden = false;
    hint.textContent = "No camera";
  });
  function fullscreen() {
    var el = document.documentElement;
    if (!document.fullscreenElement && el.requestFullscreen) el.requestFullscreen().catch(function () {});
  }
  document.addEventListener("click", fullscreen);
  document.addEventListener("keydown", fullscreen);
})();
