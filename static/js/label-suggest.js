// Label type-ahead for inputs marked data-label-suggest="<url>": asks the server for a few labels
// matching what is typed (the vocabulary has thousands; none are shipped with the page). Picking a
// suggestion keeps its name in the box and sends its slug (or its id, with data-label-value="id")
// in a hidden field; typed text without a pick is sent as is and the server resolves it by name.
(function () {
  'use strict';
  var counter = 0;

  function setup(input) {
    var url = input.getAttribute('data-label-suggest');
    var useId = input.getAttribute('data-label-value') === 'id';
    var hidden = document.createElement('input');
    hidden.type = 'hidden';
    hidden.name = input.name;
    hidden.value = input.value;
    input.removeAttribute('name');
    input.parentNode.insertBefore(hidden, input.nextSibling);

    var list = document.createElement('ul');
    var listId = 'label-suggest-' + (++counter);
    list.id = listId;
    list.className = 'label-suggest';
    list.setAttribute('role', 'listbox');
    list.hidden = true;
    input.parentNode.insertBefore(list, hidden.nextSibling);
    input.setAttribute('role', 'combobox');
    input.setAttribute('aria-autocomplete', 'list');
    input.setAttribute('aria-expanded', 'false');
    input.setAttribute('aria-controls', listId);

    var rows = [], active = -1, timer = null, pending = null;

    function close() {
      list.hidden = true; list.innerHTML = ''; rows = []; active = -1;
      input.setAttribute('aria-expanded', 'false');
      input.removeAttribute('aria-activedescendant');
    }
    function pick(row) {
      input.value = row.name;
      hidden.value = useId ? String(row.id) : row.slug;
      close();
    }
    function highlight(index) {
      var items = list.children;
      if (active >= 0 && items[active]) items[active].removeAttribute('aria-selected');
      active = index;
      if (active >= 0 && items[active]) {
        items[active].setAttribute('aria-selected', 'true');
        input.setAttribute('aria-activedescendant', items[active].id);
      }
    }
    function show(found) {
      list.innerHTML = ''; rows = found; active = -1;
      if (!found.length) { close(); return; }
      found.forEach(function (row, i) {
        var li = document.createElement('li');
        li.id = listId + '-' + i;
        li.setAttribute('role', 'option');
        li.textContent = row.name;
        var group = document.createElement('span');
        group.className = 'muted';
        group.textContent = ' ' + row.group + (row.draft ? ' (draft)' : '');
        li.appendChild(group);
        li.addEventListener('mousedown', function (event) { event.preventDefault(); pick(row); });
        list.appendChild(li);
      });
      list.hidden = false;
      input.setAttribute('aria-expanded', 'true');
    }
    function ask() {
      var text = input.value.trim();
      if (!text) { close(); return; }
      if (pending) pending.abort();
      pending = new AbortController();
      fetch(url + '?q=' + encodeURIComponent(text), {signal: pending.signal, headers: {Accept: 'application/json'}})
        .then(function (r) { return r.ok ? r.json() : {labels: []}; })
        .then(function (data) { if (input.value.trim() === text) show(data.labels || []); })
        .catch(function () { /* aborted by a newer request, or offline: the typed text still works */ });
    }
    input.addEventListener('input', function () {
      hidden.value = input.value;
      clearTimeout(timer);
      timer = setTimeout(ask, 120);
    });
    input.addEventListener('keydown', function (event) {
      if (list.hidden) return;
      if (event.key === 'ArrowDown') { event.preventDefault(); highlight(Math.min(active + 1, rows.length - 1)); }
      else if (event.key === 'ArrowUp') { event.preventDefault(); highlight(Math.max(active - 1, 0)); }
      else if (event.key === 'Enter' && active >= 0) { event.preventDefault(); pick(rows[active]); }
      else if (event.key === 'Escape') { close(); }
    });
    input.addEventListener('blur', function () { setTimeout(close, 100); });
  }

  document.querySelectorAll('input[data-label-suggest]').forEach(setup);
})();
