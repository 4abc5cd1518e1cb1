// Find your doppelganger: progressive enhancement of a plain upload form.
// Without JavaScript the form posts and the server renders the page. With it: the photo (chosen
// or taken with the camera) is posted with fetch, results replace #dg-results in place, and a
// tap on a face box re-sends the same photo with that face's index. The photo never leaves the
// page except in that request; nothing is kept in storage.
(function () {
  "use strict";
  var form = document.getElementById("dg-form");
  if (!form || !window.fetch || !window.FormData) return;
  var fileInput = document.getElementById("dg-photo");
  var faceInput = document.getElementById("dg-face");
  var results = document.getElementById("dg-results");
  var chosen = document.getElementById("dg-chosen");
  var startCam = document.getElementById("dg-camera-start");
  var camera = document.getElementById("dg-camera");
  var video = document.getElementById("dg-video");
  var snap = document.getElementById("dg-snap");
  var stopCam = document.getElementById("dg-camera-stop");
  var captured = null; // a Blob from the camera
  var stream = null;

  function showError(message) {
    var box = document.createElement("div");
    box.className = "dg-error";
    box.setAttribute("role", "alert");
    var p = document.createElement("p");
    p.textContent = message;
    box.appendChild(p);
    results.innerHTML = "";
    results.appendChild(box);
  }

  function currentPhoto() {
    if (captured) return { blob: captured, name: "camera.jpg" };
    if (fileInput.files && fileInput.files[0]) return { blob: fileInput.files[0], name: fileInput.files[0].name };
    return null;
  }

  function send(faceIndex) {
    var photo = currentPhoto();
    if (!photo) {
      showError("Please choose a photo of your face (or take one with your camera).");
      return;
    }
    var maxBytes = parseInt(form.getAttribute("data-max-bytes"), 10) || 0; // the server's limit, in bytes
    if (maxBytes && photo.blob.size > maxBytes) {
      showError("That photo is too large. Please use one under " + form.getAttribute("data-max-mb") + " MB.");
      return;
    }
    var data = new FormData();
    data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    data.append("photo", photo.blob, photo.name);
    if (faceIndex !== null && faceIndex !== undefined && faceIndex !== "") data.append("face", String(faceIndex));
    results.classList.add("loading");
    var status = document.createElement("p");
    status.className = "muted";
    status.innerHTML = '<span class="dg-busy" aria-hidden="true"></span> Looking for your face…';
    results.insertBefore(status, results.firstChild);
    fetch(form.action, { method: "POST", body: data, credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        // The page's own answers (results, or a refusal with a friendly message) carry this header;
        // anything else (a proxy's error page, a server error) must not be shown as it is.
        var ours = response.headers.get("X-Doppelganger") === "results";
        if (!ours) {
          var error = new Error("unexpected answer " + response.status);
          error.status = response.ok ? "unexpected" : response.status;
          throw error;
        }
        return response.text(); // results (response.ok), or a refusal the page explains (4xx, 503)
      })
      .then(function (html) { results.innerHTML = html; })
      .catch(function (error) {
        if (error && error.status) {
          showError(error.status === 413
            ? "That photo is too large to send. Please use a smaller one."
            : "Sorry, matching is not available right now" + (error.status === "unexpected" ? "" : " (error " + error.status + ")") +
              ". Please try again in a moment.");
        } else {
          showError("The photo could not be sent. Please check your connection and try again.");
        }
      })
      .then(function () {
        results.classList.remove("loading");
        var heading = results.querySelector("h2, .dg-error");
        if (heading && heading.scrollIntoView) heading.scrollIntoView({ behavior: "smooth", block: "start" });
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var submitter = event.submitter;
    send(submitter && submitter.name === "face" ? submitter.value : faceInput.value);
  });

  // Face boxes live in the results and are re-rendered; listen once on the container.
  results.addEventListener("click", function (event) {
    var box = event.target.closest("[data-face]");
    if (!box) return;
    event.preventDefault();
    send(box.getAttribute("data-face"));
  });

  fileInput.addEventListener("change", function () {
    captured = null;
    faceInput.value = "";
    if (fileInput.files && fileInput.files[0]) {
      chosen.textContent = "Photo chosen: " + fileInput.files[0].name;
      send(null);
    }
  });

  // Camera: only where the browser offers it (and on a secure origin).
  function stopStream() {
    if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
    stream = null;
    camera.hidden = true;
  }
  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia && startCam) {
    startCam.hidden = false;
    startCam.addEventListener("click", function () {
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "user", width: { ideal: 1280 } }, audio: false })
        .then(function (s) {
          stream = s;
          video.srcObject = s;
          camera.hidden = false;
          snap.focus();
        })
        .catch(function () {
          chosen.textContent = "The camera is not available here; please choose a photo instead.";
        });
    });
    stopCam.addEventListener("click", stopStream);
    snap.addEventListener("click", function () {
      if (!video.videoWidth) return;
      var canvas = document.createElement("canvas");
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      var ctx = canvas.getContext("2d");
      ctx.translate(canvas.width, 0); // store the mirror image the visitor saw
      ctx.scale(-1, 1);
      ctx.drawImage(video, 0, 0);
      canvas.toBlob(function (blob) {
        if (!blob) return;
        captured = blob;
        fileInput.value = "";
        faceInput.value = "";
        chosen.textContent = "Photo taken with your camera.";
        stopStream();
        send(null);
      }, "image/jpeg", 0.92);
    });
  }
})();
