// "Label more": keyboard review of a classifier's suggestions. y / n answer the focused card
// (submitting its form); for a multi-class classifier the digits 1..9 put it in that class;
// s skips it, j / k move. Without JS each card's buttons do the same.
(function () {
  'use strict';
  var cards = Array.prototype.slice.call(document.querySelectorAll('.review-card'));
  if (!cards.length) return;
  function focusAt(i) { if (cards[i]) cards[i].focus(); }
  function current() { return cards.indexOf(document.activeElement.closest ? document.activeElement.closest('.review-card') : null); }
  focusAt(0);
  document.addEventListener('keydown', function (e) {
    if (e.target.matches && e.target.matches('input, textarea, select')) return;
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    var i = current();
    if (i < 0) i = 0;
    var key = e.key.toLowerCase();
    if (key === 'y' || key === 'n' || /^[1-9]$/.test(key)) {
      var button = cards[i].querySelector('button[data-key="' + key + '"]');
      if (button) { e.preventDefault(); button.click(); }
    } else if (key === 's' || key === 'j') {
      e.preventDefault(); focusAt(Math.min(cards.length - 1, i + 1));
    } else if (key === 'k') {
      e.preventDefault(); focusAt(Math.max(0, i - 1));
    }
  });
})();
