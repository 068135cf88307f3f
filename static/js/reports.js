// Reports and line pages: re-fetch the content fragment every 15 s so the
// figures stay live without a reload. The server renders the fragment with
// templ (every device string escaped); it replaces the element whole.
(function () {
  'use strict';

  var EVERY_MS = 15000;
  var busy = false;

  function refresh() {
    var el = document.getElementById('report');
    if (!el || busy || document.hidden) return;
    var url = el.dataset.refresh;
    if (!url) return;
    busy = true;
    fetch(url, { headers: { Accept: 'text/html' }, credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var tpl = document.createElement('template');
        tpl.innerHTML = html;
        var next = tpl.content.firstElementChild;
        if (next && next.id === 'report') el.replaceWith(next);
      })
      .catch(function () { /* offline for a moment: try again next time */ })
      .then(function () { busy = false; });
  }

  // Live: the page's websocket (app.js) says when readings or stops were
  // committed; refresh then, at most once every few seconds, so a busy plant
  // does not turn into a request per reading.
  var SOON_MS = 3000;
  var last = 0;
  var timer = null;
  document.addEventListener('andon:update', function () {
    if (timer) return;
    var wait = Math.max(0, last + SOON_MS - Date.now());
    timer = setTimeout(function () {
      timer = null;
      last = Date.now();
      refresh();
    }, wait);
  });

  setInterval(refresh, EVERY_MS);
  document.addEventListener('visibilitychange', function () {
    if (!document.hidden) refresh();
  });
})();
