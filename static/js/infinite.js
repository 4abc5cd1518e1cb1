// Infinite scroll for label pages: when the sentinel nears the viewport, fetch the next keyset
// page (server-rendered cards) and append it. Without JS the "Load more" link does the same.
(function () {
  'use strict';
  var list = document.getElementById('results');
  var more = document.getElementById('load-more');
  if (!list) return;
  var loading = false;

  function sentinel() { return list.querySelector('li.sentinel'); }

  function loadNext() {
    var s = sentinel();
    if (!s || loading) return;
    loading = true;
    if (more) more.textContent = 'Loading…';
    fetch(s.dataset.next, { headers: { 'X-Requested-With': 'fetch' }, credentials: 'same-origin' })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.text(); })
      .then(function (html) {
        s.remove();
        list.insertAdjacentHTML('beforeend', html);
        var next = sentinel();
        if (more) {
          if (next) { more.href = next.dataset.next.replace('&partial=1', ''); more.textContent = 'Load more'; }
          else { more.parentNode.remove(); more = null; }
        }
        loading = false;
        if (next) observe(next);
      })
      .catch(function () { loading = false; if (more) more.textContent = 'Load more (retry)'; });
  }

  var observer = 'IntersectionObserver' in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (e) { if (e.isIntersecting) loadNext(); });
  }, { rootMargin: '800px 0px' }) : null;

  function observe(el) { if (observer) { observer.disconnect(); el.hidden = false; observer.observe(el); } }

  if (more) more.addEventListener('click', function (e) { e.preventDefault(); loadNext(); });
  var first = sentinel();
  if (first) observe(first);
})();
