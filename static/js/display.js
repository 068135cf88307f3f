// Wall display (/display/:board): keeps a TV's board live for months with
// nobody near it. Plain ES5 for a 2018 smart-TV browser: no arrow functions,
// no let/const, no fetch, no framework.
//
// The page subscribes to "plant" on /ws; any update schedules a fetch of the
// board's server-rendered live part (at most every 2 s, and every 15 s
// anyway), which replaces #display-live whole. Durations, costs and the clock
// tick once a second from data attributes, so nothing accumulates: no arrays
// grow, listeners are set once, timers are single.
(function () {
  'use strict';

  var body = document.body;
  if (!body || body.getAttribute('data-testid') !== 'display') {
    return;
  }
  function attr(name) { return body.getAttribute(name) || ''; }
  function num(name, dflt) {
    var v = parseInt(attr(name), 10);
    return isNaN(v) ? dflt : v;
  }

  var MIN_FETCH_GAP = 2000; // ms between fragment fetches after updates
  var FETCH_EVERY = 15000; // a fetch at least this often, updates or not
  var LONG_OUTAGE = 10 * 60 * 1000; // reload after reconnecting from this
  var MAX_BACKOFF = 30000;

  var version = attr('data-version');
  var updated = attr('data-updated');
  var token = attr('data-token');
  var fragmentURL = attr('data-fragment');
  var tzOffsetMS = num('data-tz-offset', 0) * 60000;
  var staleMS = num('data-stale-ms', 45000);
  var heartbeat = num('data-heartbeat', 30000);
  var rotateS = num('data-rotate', 0);
  var next = attr('data-next');
  // The server's clock, not the TV's: TVs are often minutes off.
  var skew = num('data-server-ms', Date.now()) - Date.now();

  var ws = null;
  var wsUp = false;
  var attempt = 0;
  var downSince = 0; // client ms the connection went down; 0 while up
  var lastData = Date.now(); // client ms of the last good fragment or update
  var lastFetch = 0;
  var fetching = false;
  var fetchTimer = null;
  var revoked = false;

  function serverNow() { return Date.now() + skew; }

  function pad(n) { return n < 10 ? '0' + n : String(n); }

  // hhmm is a server time in the plant's zone: "14:05".
  function hhmm(serverMS) {
    var d = new Date(serverMS + tzOffsetMS);
    return pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes());
  }

  // clock mirrors views.DisplayClock: "4:07", "1:02:09".
  function clock(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s >= 3600) {
      return Math.floor(s / 3600) + ':' + pad(Math.floor(s % 3600 / 60)) + ':' + pad(s % 60);
    }
    return Math.floor(s / 60) + ':' + pad(s % 60);
  }

  function grouped(intPart) {
    return intPart.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  }

  // money mirrors views.Money: whole units from 100 on, cents below.
  function money(v, currency) {
    var s = Math.abs(v) >= 100 ? grouped(String(Math.round(v))) : v.toFixed(2);
    return currency ? currency + ' ' + s : s;
  }

  function setText(el, text) {
    if (el && el.textContent !== text) {
      el.textContent = text;
    }
  }

  // tick updates the clock, ongoing stops, per-tile age and the banner.
  function tick() {
    var now = serverNow();
    var i, el, els;
    setText(document.getElementById('display-clock'), hhmm(now));
    els = document.querySelectorAll('.d-dur[data-start]');
    for (i = 0; i < els.length; i++) {
      el = els[i];
      setText(el, clock(now - parseInt(el.getAttribute('data-start'), 10)));
    }
    els = document.querySelectorAll('.d-cost[data-cost-ms]');
    for (i = 0; i < els.length; i++) {
      el = els[i];
      var base = parseFloat(el.getAttribute('data-cost'));
      var perMS = parseFloat(el.getAttribute('data-cost-ms'));
      var at = parseInt(el.getAttribute('data-now'), 10);
      if (!isNaN(base) && !isNaN(perMS) && !isNaN(at)) {
        setText(el, money(base + perMS * Math.max(0, now - at), el.getAttribute('data-currency')));
      }
    }
    // A tile whose machine has not been heard of within the heartbeat is
    // stale, whatever the connection says.
    els = document.querySelectorAll('.d-tile[data-ts]');
    for (i = 0; i < els.length; i++) {
      el = els[i];
      var ts = parseInt(el.getAttribute('data-ts'), 10);
      toggle(el, 'is-stale', !ts || now - ts > heartbeat);
    }
    var stale = revoked || (Date.now() - lastData > staleMS) || (downSince && Date.now() - downSince > 5000);
    toggle(body, 'is-stale', !!stale);
    toggle(body, 'is-revoked', revoked);
    var banner = document.getElementById('display-banner');
    if (banner) {
      if (stale) {
        setText(document.getElementById('display-since'), hhmm(lastData + skew));
      }
      banner.hidden = !stale;
    }
  }

  function toggle(el, cls, on) {
    var has = (' ' + el.className + ' ').indexOf(' ' + cls + ' ') >= 0;
    if (on && !has) {
      el.className += ' ' + cls;
    } else if (!on && has) {
      el.className = (' ' + el.className + ' ').replace(' ' + cls + ' ', ' ').replace(/^\s+|\s+$/g, '');
    }
  }

  // fetchLive replaces #display-live with the server's current one.
  function fetchLive() {
    if (fetchTimer) {
      clearTimeout(fetchTimer);
      fetchTimer = null;
    }
    if (fetching || !fragmentURL) {
      return;
    }
    fetching = true;
    lastFetch = Date.now();
    var xhr = new XMLHttpRequest();
    xhr.open('GET', fragmentURL, true);
    xhr.timeout = 10000;
    xhr.onreadystatechange = function () {
      if (xhr.readyState !== 4) {
        return;
      }
      fetching = false;
      if (xhr.status === 401 || xhr.status === 403) {
        revoked = true;
        return;
      }
      if (xhr.status !== 200) {
        return;
      }
      var holder = document.createElement('div');
      holder.innerHTML = xhr.responseText;
      var fresh = holder.querySelector('#display-live');
      var old = document.getElementById('display-live');
      if (!fresh || !old) {
        return;
      }
      if (fresh.getAttribute('data-updated') !== updated) {
        // An admin changed the board: its layout may be new.
        window.location.reload();
        return;
      }
      var at = parseInt(fresh.getAttribute('data-now'), 10);
      if (!isNaN(at)) {
        skew = at - Date.now();
      }
      old.parentNode.replaceChild(fresh, old);
      revoked = false;
      lastData = Date.now();
      tick();
    };
    xhr.send();
  }

  // soon fetches after an update, at most every MIN_FETCH_GAP.
  function soon() {
    if (fetchTimer || fetching) {
      return;
    }
    var wait = Math.max(0, lastFetch + MIN_FETCH_GAP - Date.now());
    fetchTimer = setTimeout(fetchLive, wait);
  }

  function wsURL() {
    var proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    var u = proto + '//' + window.location.host + '/ws';
    if (token) {
      u += '?token=' + encodeURIComponent(token);
    }
    return u;
  }

  function connect() {
    try {
      ws = new WebSocket(wsURL());
    } catch (e) {
      retry(0);
      return;
    }
    ws.onopen = function () {
      ws.send(JSON.stringify({ sub: ['plant'] }));
    };
    ws.onmessage = function (ev) {
      var msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      if (msg && msg.type === 'hello') {
        if (msg.version !== version || (downSince && Date.now() - downSince > LONG_OUTAGE)) {
          // A new server, or back from a long outage: start afresh.
          window.location.reload();
          return;
        }
        wsUp = true;
        attempt = 0;
        downSince = 0;
        if (typeof msg.server_ms === 'number') {
          skew = msg.server_ms - Date.now();
        }
        // Resynchronise: whatever was missed is in the fresh fragment.
        fetchLive();
        return;
      }
      if (msg && msg.length) {
        var i;
        for (i = 0; i < msg.length; i++) {
          if (msg[i] && msg[i].type === 'reload') {
            window.location.reload();
            return;
          }
        }
        soon();
      }
    };
    ws.onclose = function (ev) {
      ws = null;
      wsUp = false;
      if (!downSince) {
        downSince = Date.now();
      }
      // 1012: the server is restarting; it is back within seconds.
      retry(ev && ev.code === 1012 ? 1 : attempt);
    };
    ws.onerror = function () {
      // onclose follows.
    };
  }

  // retry reconnects after an exponential backoff with full jitter, so a
  // plant's worth of TVs do not all knock at once after a restart.
  function retry(n) {
    var cap = Math.min(MAX_BACKOFF, 1000 * Math.pow(2, Math.min(n, 5)));
    attempt = Math.min(n + 1, 10);
    setTimeout(connect, Math.floor(500 + Math.random() * cap));
  }

  // rotate goes on to the next board of the playlist, but only while live:
  // navigating while the server is away would leave an error page nobody
  // can dismiss.
  function rotate() {
    if (wsUp && !revoked && Date.now() - lastData < staleMS) {
      window.location.href = next;
      return;
    }
    setTimeout(rotate, 10000);
  }

  setInterval(tick, 1000);
  setInterval(function () {
    if (Date.now() - lastFetch >= FETCH_EVERY - 500) {
      fetchLive();
    }
  }, FETCH_EVERY);
  if (rotateS > 0 && next) {
    setTimeout(rotate, rotateS * 1000);
  }
  tick();
  connect();
})();
