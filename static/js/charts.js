// Charts of the machine page: one uPlot per numeric tag, sized to its
// container, fed by the series API and then by live points from /ws.
// Drag across a chart to zoom: it fetches the zoomed range again, so the
// server answers from a finer resolution (raw, 1m or 1h, chosen by the
// range); double-click goes back to the live range.
// Exposes window.AndonCharts for app.js.
(function () {
  'use strict';

  var charts = [];
  var section = null;
  var rangeMS = 3600000;

  function cssVar(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name);
    return (v && v.trim()) || fallback;
  }

  function pad2(n) { return n < 10 ? '0' + n : String(n); }

  var numFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });

  function tzDateFn() {
    var tz = document.body.dataset.tz || '';
    var off = parseInt(document.body.dataset.tzOffset || '0', 10);
    if (tz && window.uPlot && uPlot.tzDate) {
      return function (ts) { return uPlot.tzDate(new Date(ts * 1e3), tz); };
    }
    // Without a zone name, shift by the plant's offset so the browser's
    // local formatting shows plant time.
    return function (ts) {
      var d = new Date(ts * 1e3);
      return new Date(d.getTime() + (off + d.getTimezoneOffset()) * 60000);
    };
  }

  function setMessage(c, text) {
    var p = c.el.querySelector('.chart-msg');
    if (!text) {
      if (p) p.remove();
      return;
    }
    if (!p) {
      p = document.createElement('p');
      p.className = 'chart-msg';
      c.el.appendChild(p);
    }
    p.textContent = text;
  }

  function make(c) {
    var unit = c.el.dataset.unit || '';
    var stroke = cssVar('--changeover', '#1a63c7');
    var opts = {
      width: Math.max(200, c.el.clientWidth),
      height: Math.max(150, c.el.clientHeight),
      tzDate: tzDateFn(),
      legend: { show: false },
      // The selection is ours to handle (setSelect below): uPlot must not
      // zoom into the coarse points it holds.
      cursor: { drag: { x: true, y: false, setScale: false } },
      hooks: {
        setSelect: [function (u) {
          var sel = u.select;
          if (sel.width < 3) return;
          var lo = u.posToVal(sel.left, 'x'), hi = u.posToVal(sel.left + sel.width, 'x');
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          zoomTo(c, Math.round(lo * 1000), Math.round(hi * 1000));
        }]
      },
      scales: { x: { time: true } },
      series: [
        {},
        {
          label: c.el.dataset.metric || '',
          stroke: stroke,
          width: 2,
          fill: 'rgba(26, 99, 199, 0.08)',
          points: { show: false },
          spanGaps: false
        }
      ],
      axes: [
        {
          stroke: cssVar('--muted', '#5f6770'),
          grid: { stroke: cssVar('--border', '#d5d9de'), width: 1 },
          // 24-hour plant time; dates only when the ticks are days apart.
          values: function (u, splits, ax, space, incr) {
            var toDate = tzDateFn();
            return splits.map(function (ts) {
              var d = toDate(ts);
              var hm = pad2(d.getHours()) + ':' + pad2(d.getMinutes());
              if (incr < 60) return hm + ':' + pad2(d.getSeconds());
              if (incr >= 86400) return d.getFullYear() + '-' + pad2(d.getMonth() + 1) + '-' + pad2(d.getDate());
              return hm;
            });
          }
        },
        {
          label: unit,
          stroke: cssVar('--muted', '#5f6770'),
          grid: { stroke: cssVar('--border', '#d5d9de'), width: 1 },
          size: 64,
          values: function (u, splits) { return splits.map(function (v) { return numFmt.format(v); }); }
        }
      ]
    };
    c.plot = new uPlot(opts, c.data, c.el);
    c.plot.over.addEventListener('dblclick', function () { zoomTo(c, 0, 0); });
    if ('ResizeObserver' in window) {
      new ResizeObserver(function () {
        if (c.plot) c.plot.setSize({ width: Math.max(200, c.el.clientWidth), height: Math.max(150, c.el.clientHeight) });
      }).observe(c.el);
    }
  }

  // zoomTo shows [fromMS, toMS] with data fetched for it; (0, 0) goes back
  // to the live range. A zoom narrower than ten seconds is a stray click.
  function zoomTo(c, fromMS, toMS) {
    if (fromMS || toMS) {
      if (toMS - fromMS < 10000) return;
      c.zoom = { from: fromMS, to: toMS };
    } else {
      if (!c.zoom) return;
      c.zoom = null;
    }
    c.el.dataset.zoomed = c.zoom ? '1' : '';
    fetchSeries(c);
  }

  function redraw(c) {
    if (c.zoom) {
      // A zoomed chart is a still picture of its range: no trimming, no
      // live points, until it goes back.
      c.el.dataset.points = String(c.data[0].length);
      if (!c.plot) return;
      c.plot.batch(function () {
        c.plot.setData(c.data, false);
        c.plot.setScale('x', { min: c.zoom.from / 1000, max: c.zoom.to / 1000 });
        c.plot.setScale('y', yRange(c.data[1]));
      });
      return;
    }
    // Trim what fell out of the range, so memory stays flat on a wall screen.
    var min = Date.now() / 1000 - rangeMS / 1000;
    var t = c.data[0], v = c.data[1];
    var cut = 0;
    while (cut < t.length && t[cut] < min) cut++;
    if (cut > 0) {
      c.data = [t.slice(cut), v.slice(cut)];
    }
    // How many points the chart holds, for tests and for a look in devtools.
    c.el.dataset.points = String(c.data[0].length);
    if (!c.plot) return;
    c.plot.batch(function () {
      c.plot.setData(c.data, false);
      c.plot.setScale('x', { min: min, max: Date.now() / 1000 });
      c.plot.setScale('y', yRange(c.data[1]));
    });
  }

  function yRange(v) {
    var lo = Infinity, hi = -Infinity;
    for (var i = 0; i < v.length; i++) {
      if (v[i] == null) continue;
      if (v[i] < lo) lo = v[i];
      if (v[i] > hi) hi = v[i];
    }
    if (lo === Infinity) return { min: 0, max: 1 };
    var pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.05 || 1;
    return { min: lo - pad, max: hi + pad };
  }

  function append(c, t, v) {
    var last = c.data[0].length ? c.data[0][c.data[0].length - 1] : -Infinity;
    var added = false;
    for (var i = 0; i < t.length; i++) {
      if (t[i] > last) {
        c.data[0].push(t[i]);
        c.data[1].push(v[i]);
        last = t[i];
        added = true;
      }
    }
    return added;
  }

  function fetchSeries(c) {
    var gen = ++c.gen;
    c.fetching = true;
    c.buffer = [];
    var to = Date.now(), from = to - rangeMS;
    if (c.zoom) {
      from = c.zoom.from;
      to = c.zoom.to;
    }
    var url = '/api/v1/tags/' + encodeURIComponent(c.tag) + '/series?from=' + from + '&to=' + to + '&max=2000';
    fetch(url, { credentials: 'same-origin' })
      .then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      })
      .then(function (d) {
        if (gen !== c.gen) return;
        c.data = [d.t || [], d.v || []];
        // Which resolution answered, for tests and a look in devtools.
        c.el.dataset.res = d.res || '';
        c.el.dataset.fetches = String((parseInt(c.el.dataset.fetches || '0', 10)) + 1);
        for (var i = 0; i < c.buffer.length; i++) append(c, c.buffer[i][0], c.buffer[i][1]);
        c.buffer = [];
        c.fetching = false;
        setMessage(c, c.data[0].length ? '' : 'No values in this range yet');
        if (!c.plot) make(c);
        redraw(c);
      })
      .catch(function () {
        if (gen !== c.gen) return;
        c.fetching = false;
        setMessage(c, 'Could not load this chart; it retries on reconnect.');
      });
  }

  function setRange(key, ms, push) {
    rangeMS = ms;
    charts.forEach(function (c) { c.zoom = null; c.el.dataset.zoomed = ''; });
    if (section) {
      section.dataset.range = key;
      section.dataset.rangeMs = String(ms);
    }
    var links = document.querySelectorAll('.range[data-range]');
    for (var i = 0; i < links.length; i++) {
      var on = links[i].dataset.range === key;
      links[i].classList.toggle('current', on);
      if (on) links[i].setAttribute('aria-current', 'true'); else links[i].removeAttribute('aria-current');
    }
    if (push) history.pushState({ range: key }, '', '?range=' + encodeURIComponent(key));
    charts.forEach(fetchSeries);
  }

  window.AndonCharts = {
    init: function () {
      section = document.getElementById('charts');
      if (!section || !window.uPlot) return;
      rangeMS = parseInt(section.dataset.rangeMs || '3600000', 10);
      var els = section.querySelectorAll('.chart[data-tag]');
      for (var i = 0; i < els.length; i++) {
        charts.push({ tag: parseInt(els[i].dataset.tag, 10), el: els[i], plot: null, data: [[], []], buffer: [], fetching: false, gen: 0, zoom: null });
      }
      var links = document.querySelectorAll('.range[data-range]');
      for (var j = 0; j < links.length; j++) {
        links[j].addEventListener('click', function (ev) {
          ev.preventDefault();
          setRange(this.dataset.range, parseInt(this.dataset.rangeMs, 10), true);
        });
      }
      window.addEventListener('popstate', function () {
        var key = new URLSearchParams(window.location.search).get('range') || '1h';
        var link = document.querySelector('.range[data-range="' + key.replace(/[^a-z0-9]/gi, '') + '"]');
        if (link) setRange(key, parseInt(link.dataset.rangeMs, 10), false);
      });
      charts.forEach(fetchSeries);
    },
    resync: function () { charts.forEach(fetchSeries); },
    points: function (tag, t, v) {
      for (var i = 0; i < charts.length; i++) {
        var c = charts[i];
        if (c.tag !== tag) continue;
        if (c.zoom) {
          continue;
        } else if (c.fetching) {
          c.buffer.push([t, v]);
        } else if (append(c, t, v)) {
          setMessage(c, '');
          if (!c.plot) make(c);
          redraw(c);
        }
      }
    }
  };
})();
