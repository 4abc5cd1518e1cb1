// The live mirror: the camera stream matched continuously (the doppelganger page's "Live mirror"
// and the gallery kiosk). The video is drawn mirrored on a canvas with the face box; small frames
// are posted to the frame endpoint with at most one request in flight: the whole picture
// downscaled to FRAME_SIDE px while no face is known, else only the region around the last face
// (the face at about CROP_FACE px). The best match shown holds until a new one wins HOLD_FRAMES
// frames in a row, or is closer by MARGIN: no flicker while the visitor moves. Frames exist only
// in memory and in the request; nothing is stored.
(function () {
  "use strict";
  var FRAME_SIDE = 320; // px, long side of a whole-picture frame
  var CROP_FACE = 110; // px, the face's width in a face-region frame
  var CROP_PAD = 0.7; // the region around the face: the box widened by this much on each side
  var CROP_MAX = 260; // px, largest side of a face-region frame
  var HOLD_FRAMES = 3; // frames in a row a new best match must win to replace the one shown
  var MARGIN = 0.05; // ... or by this much descriptor distance at once
  var LOST_MS = 900; // a box not confirmed for this long is no longer drawn nor cropped to

  function LiveMirror(opts) {
    this.opts = opts;
    this.endpoint = opts.endpoint;
    this.csrf = opts.csrf;
    this.maxFps = opts.maxFps || 7;
    this.idleFps = opts.idleFps || this.maxFps;
    this.running = false;
    this.inFlight = false;
    this.box = null; // {x, y, w, h, at} in video pixels
    this.shownBox = null; // drawn box (eased towards this.box)
    this.held = null; // the best match shown
    this.candidate = null;
    this.candidateCount = 0;
    this.lastFaceAt = 0;
    this.stats = { sent: 0, answered: 0, faces: 0, updates: 0, switches: 0, errors: 0, mode: "", held: null, lastTop: null };
    this.grab = document.createElement("canvas");
  }

  LiveMirror.prototype.start = function () {
    var self = this;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return Promise.reject(new Error("no camera"));
    return navigator.mediaDevices.getUserMedia({ video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } }, audio: false })
      .then(function (stream) {
        self.stream = stream;
        var video = self.opts.video;
        video.srcObject = stream;
        video.muted = true;
        video.setAttribute("playsinline", "");
        var played = video.play();
        return (played && played.then ? played : Promise.resolve()).then(function () {
          self.running = true;
          self.lastFaceAt = Date.now();
          self.draw();
          self.loop();
        });
      });
  };

  LiveMirror.prototype.stop = function () {
    this.running = false;
    if (this.stream) this.stream.getTracks().forEach(function (t) { t.stop(); });
    this.stream = null;
    if (this.raf) cancelAnimationFrame(this.raf);
  };

  // The frame to send: the face region when a face is known, else the whole picture.
  LiveMirror.prototype.frameRegion = function (vw, vh) {
    var now = Date.now();
    if (this.box && now - this.box.at < LOST_MS) {
      var b = this.box, pad = CROP_PAD * b.w;
      var x0 = Math.max(0, b.x - pad), y0 = Math.max(0, b.y - pad * 1.1);
      var x1 = Math.min(vw, b.x + b.w + pad), y1 = Math.min(vh, b.y + b.h + pad * 1.1);
      var scale = Math.min(CROP_FACE / b.w, CROP_MAX / Math.max(x1 - x0, y1 - y0), 1.5);
      return { mode: "crop", sx: x0, sy: y0, sw: x1 - x0, sh: y1 - y0, scale: scale };
    }
    var s = Math.min(1, FRAME_SIDE / Math.max(vw, vh));
    return { mode: "frame", sx: 0, sy: 0, sw: vw, sh: vh, scale: s };
  };

  LiveMirror.prototype.loop = function () {
    var self = this;
    if (!self.running || self.inFlight) return;
    var video = self.opts.video;
    var vw = video.videoWidth, vh = video.videoHeight;
    if (!vw || !vh) { setTimeout(function () { self.loop(); }, 100); return; }
    var r = self.frameRegion(vw, vh);
    var cw = Math.max(1, Math.round(r.sw * r.scale)), ch = Math.max(1, Math.round(r.sh * r.scale));
    self.grab.width = cw;
    self.grab.height = ch;
    self.grab.getContext("2d").drawImage(video, r.sx, r.sy, r.sw, r.sh, 0, 0, cw, ch);
    var began = Date.now();
    self.inFlight = true;
    self.grab.toBlob(function (blob) {
      if (!blob || !self.running) {
        self.inFlight = false;
        if (self.running) setTimeout(function () { self.loop(); }, 200);
        return;
      }
      self.stats.sent += 1;
      self.stats.mode = r.mode;
      fetch(self.endpoint, {
        method: "POST", body: blob, credentials: "same-origin",
        headers: { "Content-Type": "image/jpeg", "X-CSRFToken": self.csrf, "X-Requested-With": "fetch" },
      })
        .then(function (response) {
          if (response.status === 429) {
            var wait = parseInt(response.headers.get("Retry-After"), 10) || 1;
            return { pause: wait * 1000 };
          }
          return response.json().then(function (data) {
            if (!response.ok) throw new Error(data.detail || ("error " + response.status));
            return data;
          });
        })
        .then(function (data) {
          if (data.pause) return data.pause;
          self.stats.answered += 1;
          self.answer(data, r);
          return 0;
        })
        .catch(function (error) {
          self.stats.errors += 1;
          if (self.opts.onError) self.opts.onError(error);
          return 1000;
        })
        .then(function (pause) {
          self.inFlight = false;
          var idle = Date.now() - self.lastFaceAt > 3000;
          var interval = 1000 / (idle ? self.idleFps : self.maxFps);
          setTimeout(function () { self.loop(); }, Math.max(pause || 0, interval - (Date.now() - began)));
        });
    }, "image/jpeg", 0.8);
  };

  LiveMirror.prototype.answer = function (data, r) {
    var now = Date.now();
    if (!data.face) {
      if (this.box && now - this.box.at >= LOST_MS) this.box = null;
      if (this.opts.onNoFace) this.opts.onNoFace(now - this.lastFaceAt);
      return;
    }
    var b = data.face.box, k = 1 / r.scale;
    this.box = { x: r.sx + b[0] * k, y: r.sy + b[1] * k, w: b[2] * k, h: b[3] * k, at: now };
    this.lastFaceAt = now;
    this.stats.faces += 1;
    if (!data.matches.length) return;
    this.stats.updates += 1;
    this.choose(data.matches);
  };

  // Hysteresis: the best match shown changes only when a new one is stable or clearly closer.
  LiveMirror.prototype.choose = function (matches) {
    var top = matches[0];
    this.stats.lastTop = top.face_id;
    var held = this.held;
    if (held) {
      var again = matches.filter(function (m) { return m.face_id === held.face_id; })[0];
      var heldDistance = again ? again.distance : held.distance + 0.02;
      if (top.face_id === held.face_id) {
        this.candidate = null;
        this.candidateCount = 0;
        this.show(matches, false);
        return;
      }
      if (this.candidate === top.face_id) this.candidateCount += 1;
      else { this.candidate = top.face_id; this.candidateCount = 1; }
      if (this.candidateCount < HOLD_FRAMES && top.distance > heldDistance - MARGIN) {
        if (again) this.show([again].concat(matches.filter(function (m) { return m.face_id !== held.face_id; })), false);
        return;
      }
    }
    this.candidate = null;
    this.candidateCount = 0;
    this.held = top;
    this.stats.switches += 1;
    this.stats.held = top.face_id;
    this.show(matches, true);
  };

  LiveMirror.prototype.show = function (matches, changed) {
    if (!changed) this.held = matches[0];
    if (this.opts.onMatches) this.opts.onMatches(matches, changed);
  };

  // The mirror: the video drawn mirrored, the face box eased towards the last one found.
  LiveMirror.prototype.draw = function () {
    var self = this;
    if (!self.running) return;
    var canvas = self.opts.canvas, video = self.opts.video;
    var vw = video.videoWidth, vh = video.videoHeight;
    if (vw && vh) {
      if (canvas.width !== vw || canvas.height !== vh) { canvas.width = vw; canvas.height = vh; }
      var ctx = canvas.getContext("2d");
      ctx.save();
      ctx.translate(vw, 0);
      ctx.scale(-1, 1);
      ctx.drawImage(video, 0, 0, vw, vh);
      var b = self.box && Date.now() - self.box.at < LOST_MS ? self.box : null;
      if (b) {
        var s = self.shownBox;
        self.shownBox = s ? { x: s.x + (b.x - s.x) * 0.4, y: s.y + (b.y - s.y) * 0.4, w: s.w + (b.w - s.w) * 0.4, h: s.h + (b.h - s.h) * 0.4 } : b;
        s = self.shownBox;
        ctx.lineWidth = Math.max(2, vw / 160);
        ctx.strokeStyle = "rgba(217, 139, 58, 0.95)";
        ctx.shadowColor = "rgba(0, 0, 0, 0.5)";
        ctx.shadowBlur = 4;
        ctx.strokeRect(s.x, s.y, s.w, s.h);
      } else {
        self.shownBox = null;
      }
      ctx.restore();
    }
    self.raf = requestAnimationFrame(function () { self.draw(); });
  };

  // The matches as cards, kept by face id: a card that stays is only updated (no image reload),
  // a new card's image is loaded before the card is shown.
  function renderMatches(list, matches, opts) {
    opts = opts || {};
    var wanted = matches.slice(0, opts.count || matches.length);
    var keep = {};
    wanted.forEach(function (m) { keep[m.face_id] = true; });
    Array.prototype.slice.call(list.children).forEach(function (li) {
      if (!keep[li.getAttribute("data-face-id")]) list.removeChild(li);
    });
    wanted.forEach(function (m, i) {
      var li = list.querySelector('[data-face-id="' + m.face_id + '"]');
      if (!li) {
        li = document.createElement("li");
        li.className = "dg-live-match";
        li.setAttribute("data-face-id", String(m.face_id));
        var a = document.createElement("a");
        a.href = m.artwork.url;
        var img = new Image();
        img.alt = "Face in " + m.artwork.title;
        img.width = 160;
        img.height = 160;
        img.className = "dg-live-crop";
        var meta = document.createElement("div");
        meta.className = "dg-live-meta";
        var title = document.createElement("span");
        title.className = "dg-live-title";
        title.textContent = m.artwork.title;
        var who = document.createElement("span");
        who.className = "dg-live-creator small muted";
        who.textContent = [m.artwork.creator, m.artwork.date].filter(Boolean).join(", ");
        var pct = document.createElement("span");
        pct.className = "dg-live-pct";
        meta.appendChild(title);
        meta.appendChild(who);
        meta.appendChild(pct);
        a.appendChild(img);
        a.appendChild(meta);
        li.appendChild(a);
        li.style.visibility = "hidden";
        img.onload = img.onerror = function () { li.style.visibility = ""; };
        img.src = m.crop_url;
      }
      li.querySelector(".dg-live-pct").textContent = m.similarity + "% alike";
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    });
  }

  window.DoppelgangerLive = { LiveMirror: LiveMirror, renderMatches: renderMatches };
})();
