// The doppelganger page's "Live mirror": shown where the browser offers a camera; the snapshot
// (choose a photo, or take one) stays for everyone else.
(function () {
  "use strict";
  var start = document.getElementById("dg-live-start");
  var panel = document.getElementById("dg-live");
  if (!start || !panel || !window.DoppelgangerLive || !window.fetch) return;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return; // no camera: snapshot only
  var status = document.getElementById("dg-live-status");
  var list = document.getElementById("dg-live-matches");
  var csrf = document.querySelector("#dg-form [name=csrfmiddlewaretoken]");
  var mirror = null;
  start.hidden = false;

  function stop() {
    if (mirror) mirror.stop();
    mirror = null;
    window.dgLive = null;
    panel.hidden = true;
    start.disabled = false;
  }

  start.addEventListener("click", function () {
    if (mirror) return;
    start.disabled = true;
    panel.hidden = false;
    status.textContent = "Starting the camera…";
    mirror = new window.DoppelgangerLive.LiveMirror({
      endpoint: panel.getAttribute("data-endpoint"),
      csrf: csrf ? csrf.value : "",
      maxFps: parseFloat(panel.getAttribute("data-max-fps")) || 7,
      video: document.getElementById("dg-live-video"),
      canvas: document.getElementById("dg-live-canvas"),
      onMatches: function (matches) {
        status.textContent = "Matching live: move a little, the closest painted faces follow.";
        window.DoppelgangerLive.renderMatches(list, matches);
      },
      onNoFace: function (ms) {
        if (ms > 1500) status.textContent = "Looking for a face: face the camera, in good light.";
      },
      onError: function (error) { status.textContent = "Matching paused: " + error.message; },
    });
    window.dgLive = mirror; // for the page's tests: mirror.stats
    mirror.start().then(function () {
      status.textContent = "Looking for a face…";
      panel.scrollIntoView({ behavior: "smooth", block: "start" });
    }).catch(function () {
      stop();
      document.getElementById("dg-chosen").textContent = "The camera is not available here; please choose a photo instead.";
    });
  });
  document.getElementById("dg-live-stop").addEventListener("click", stop);
})();
