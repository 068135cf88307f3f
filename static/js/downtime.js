// Downtime pages: ongoing stops' durations and costs tick once a second.
// Everything is read from data attributes the server rendered (data-start,
// data-end, data-cost-ms, data-currency) each tick, so cards the live
// connection replaces keep ticking and nothing accumulates in memory.
(function () {
  'use strict';

  // Time and duration formatting are app.js's (loaded first), so every page
  // shows server time and durations the same way.
  var duration = window.Andon.duration;
  var serverNow = window.Andon.now;

  function grouped(intPart) {
    return intPart.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  }

  // money mirrors the server: whole units from 100 on, cents below.
  function money(v, currency) {
    var s = Math.abs(v) >= 100 ? grouped(String(Math.round(v))) : v.toFixed(2);
    return currency ? currency + ' ' + s : s;
  }

  function tick() {
    var now = serverNow();
    var items = document.querySelectorAll('[data-start][data-end="0"]');
    for (var i = 0; i < items.length; i++) {
      var el = items[i];
      var start = parseInt(el.dataset.start, 10);
      if (!start) continue;
      var ms = Math.max(0, now - start);
      var d = el.querySelector('.stop-dur');
      if (d) {
        var txt = duration(ms);
        if (d.textContent !== txt) d.textContent = txt;
      }
      var rate = parseFloat(el.dataset.costMs || '');
      var c = el.querySelector('.stop-cost');
      if (c && isFinite(rate)) {
        var m = money(rate * ms, el.dataset.currency || '');
        if (c.textContent !== m) c.textContent = m;
      }
    }
  }

  // Only pages with stops tick; a list that is empty now may get an ongoing
  // stop over the live connection, so it ticks too.
  if (document.querySelector('#stop-list, #op-stop, #machine-downtime, [data-start]')) {
    tick();
    setInterval(tick, 1000);
  }
})();
