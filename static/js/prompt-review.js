// The prompt label review: unticked artworks are sent as "exclude" when the label is published.
document.getElementById('review-form').addEventListener('submit', function () {
  var box = this.querySelector('.excluded');
  this.querySelectorAll('input.keep').forEach(function (c) {
    if (!c.checked) { var i = document.createElement('input'); i.type = 'hidden'; i.name = 'exclude'; i.value = c.dataset.id; box.appendChild(i); }
  });
});
