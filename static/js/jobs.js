// Live job progress: poll /api/v1/jobs/<id>/ every 2 s and update the bar, counts, rate and ETA.
(function () {
  'use strict';
  function duration(s) {
    if (s === null || s === undefined) return '–';
    s = Math.round(s);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    if (h) return h + ' h ' + String(m).padStart(2, '0') + ' min';
    if (m) return m + ' min ' + String(sec).padStart(2, '0') + ' s';
    return sec + ' s';
  }
  function get(id) {
    return fetch('/api/v1/jobs/' + id + '/', { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); });
  }
  function setText(el, text) { if (el) el.textContent = text; }
  function stateLabel(state) { return state.charAt(0).toUpperCase() + state.slice(1); }

  function updateButtons(state) {
    document.querySelectorAll('.job-actions [data-when]').forEach(function (b) {
      b.disabled = b.dataset.when.split(' ').indexOf(state) < 0;
    });
  }

  var live = document.getElementById('job-live');
  if (live) {
    var id = live.dataset.job;
    updateButtons((document.getElementById('job-state').className.match(/state-(\w+)/) || [])[1]);
    var tick = function () {
      get(id).then(function (j) {
        document.getElementById('job-bar').value = j.percent;
        var st = document.getElementById('job-state');
        st.textContent = stateLabel(j.state); st.className = 'state state-' + j.state;
        setText(document.getElementById('job-counts'), j.done + ' done, ' + j.failed + ' failed of ' + j.total);
        setText(document.getElementById('job-percent'), j.percent.toFixed(1) + '%');
        setText(document.getElementById('job-rate'), j.rate.toFixed(1) + ' items/s');
        setText(document.getElementById('job-eta'), duration(j.eta_seconds));
        document.getElementById('job-eta-label').hidden = !!j.waiting;
        document.getElementById('job-waiting').hidden = !j.waiting;
        setText(document.getElementById('job-elapsed'), duration(j.elapsed_seconds));
        setText(document.getElementById('job-message'), j.message);
        updateButtons(j.state);
        if (!j.is_final) setTimeout(tick, 2000);
      }).catch(function () { setTimeout(tick, 5000); });
    };
    if (live.dataset.final !== '1') setTimeout(tick, 2000);
  }

  var rows = document.querySelectorAll('#job-table tr[data-job][data-final="0"]');
  rows.forEach(function (row) {
    var tick = function () {
      get(row.dataset.job).then(function (j) {
        var f = function (n) { return row.querySelector('[data-field="' + n + '"]'); };
        f('bar').value = j.percent;
        f('state').textContent = stateLabel(j.state); f('state').className = 'state state-' + j.state;
        setText(f('counts'), (j.done + j.failed) + ' / ' + j.total);
        setText(f('failed'), j.failed);
        setText(f('rate'), j.rate.toFixed(1) + '/s');
        setText(f('eta'), j.waiting ? 'waiting for a worker' : duration(j.eta_seconds));
        if (!j.is_final) setTimeout(tick, 2000);
      }).catch(function () { setTimeout(tick, 5000); });
    };
    setTimeout(tick, 2000);
  });
})();
