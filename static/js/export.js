// Download links export what the page shows. The machine page's charts
// change their range without a reload (and may be zoomed), so a readings
// link takes the charts' current window at the moment it is clicked:
// data-from/data-to on #charts (epoch ms) when set, else the last
// data-range-ms up to now. Without this script the link's own range still
// matches the range the page was loaded with.
(function () {
  'use strict';
  document.addEventListener('click', function (ev) {
    var a = ev.target && ev.target.closest ? ev.target.closest('a[data-export="readings"]') : null;
    var section = document.getElementById('charts');
    if (!a || !section) return;
    var from = parseInt(section.dataset.from || '', 10);
    var to = parseInt(section.dataset.to || '', 10);
    if (!(from < to)) {
      var ms = parseInt(section.dataset.rangeMs || '', 10);
      if (!(ms > 0)) return;
      to = Date.now() + 1;
      from = to - 1 - ms;
    }
    var url = new URL(a.getAttribute('href'), window.location.href);
    url.searchParams.delete('range');
    url.searchParams.set('from', String(from));
    url.searchParams.set('to', String(to));
    a.setAttribute('href', url.pathname + url.search);
  });
})();
