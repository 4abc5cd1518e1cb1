// Forms that only drive the page's script (the map's toolbar) never submit: kept out of inline
// handlers so the Content-Security-Policy can forbid inline scripts.
document.querySelectorAll('form[data-no-submit]').forEach(function (form) {
  form.addEventListener('submit', function (event) { event.preventDefault(); });
});
