// Wall display (/display/:board): keeps a TV's board live for months with
// nobody near it. Plain ES5 for a 2018 smart-TV browser: no arrow functions,
// no let/const, no template literals, no classes, no fetch, no framework.
//
// The page subscribes to its board ("board:<id>") on /ws. The server pushes
// the board's live part as rendered HTML ({"type":"html","id":"display-live"})
// on subscribing and after every change, and a heartbeat every few seconds;
// this script only swaps that HTML in. Durations, costs, ages and the clock
// tick once a second from data attributes, so nothing accumulates: no arrays
// grow, listeners are set once on long-lived objects, timers are single.
//
// Recovery: reconnect with exponential backoff and jitter (at once after a
// 1012 restart), resynchronise from the snapshot the server sends on
// subscribing, treat three missed heartbeats as a dead connection, reload
// when the server's version or the board changes or after a long outage.
// While the websocket is down the page polls the board's fragment over HTTP,
// which also tells it when its display link was revoked.
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

  var POLL_EVERY = 15000; // HTTP fallback while the websocket is down
  var LONG_OUTAGE = 10 * 60 * 1000; // reload after reconnecting from this
  var MAX_BACKOFF = 30000;
  var MISSED_BEATS = 3;

  var board = attr('data-board');
  var version = attr('data-version');
  var updated = attr('data-updated');
  var token = attr('data-token');
  var fragmentURL = attr('data-fragment');
  var tzOffsetMS = num('data-tz-offset', 0) * 60000;
  var staleMS = num('data-stale-ms', 45000);
  var heartbeat = num('data-heartbeat', 30000); // a machine's, for tile ages
  var rotateS = num('data-rotate', 0);
  var next = attr('data-next');
  // The server's clock, not the TV's: TVs are often minutes off.
  var skew = num('data-server-ms', Date.now()) - Date.now();

  var ws = null;
  var wsUp = false;
  var beatMS = 10000; // the server's heartbeat period, from its hello
  var lastBeat = 0; // client ms of the last frame of any kind
  var attempt = 0;
  var retryTimer = null;
  var downSince = 0; // client ms the connection went down; 0 while up
  var lastData = Date.now(); // client ms of the last board content
  var lastPollOK = 0; // client ms of the last good HTTP fallback
  var lastPoll = 0;
  var polling = false;
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

  // words mirrors views.FormatDuration: "4 min 05 s", "1 h 23 min".
  function words(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) {
      return s + ' s';
    }
    if (s < 3600) {
      return Math.floor(s / 60) + ' min ' + pad(s % 60) + ' s';
    }
    if (s < 86400) {
      return Math.floor(s / 3600) + ' h ' + Math.floor(s % 3600 / 60) + ' min';
    }
    return Math.floor(s / 86400) + ' d ' + Math.floor(s % 86400 / 3600) + ' h';
  }

  // age mirrors views.DisplayAge: "45 s", "7 min", "2 h 05 min", "3 d".
  function age(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) {
      return s + ' s';
    }
    if (s < 3600) {
      return Math.floor(s / 60) + ' min';
    }
    if (s < 86400) {
      return Math.floor(s / 3600) + ' h ' + pad(Math.floor(s % 3600 / 60)) + ' min';
    }
    return Math.floor(s / 86400) + ' d';
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

  function toggle(el, cls, on) {
    var has = (' ' + el.className + ' ').indexOf(' ' + cls + ' ') >= 0;
    if (on && !has) {
      el.className += ' ' + cls;
    } else if (!on && has) {
      el.className = (' ' + el.className + ' ').replace(' ' + cls + ' ', ' ').replace(/^\s+|\s+$/g, '');
    }
  }

  // tick updates the clock, ongoing stops, per-tile age and the banner, and
  // notices a connection that has gone quiet.
  function tick() {
    var now = serverNow();
    var i, el, els;
    if (ws && wsUp && Date.now() - lastBeat > MISSED_BEATS * beatMS + 2000) {
      // Open as far as the TV knows, but silent: a Wi-Fi drop or a proxy
      // that swallowed the close. Start over.
      lost(lastBeat);
    }
    setText(document.getElementById('display-clock'), hhmm(now));
    els = document.querySelectorAll('.d-dur[data-start]');
    for (i = 0; i < els.length; i++) {
      el = els[i];
      var ms = now - parseInt(el.getAttribute('data-start'), 10);
      setText(el, el.getAttribute('data-words') ? words(ms) : clock(ms));
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
    // A tile whose machines have not been heard of within the heartbeat is
    // stale, whatever the connection says: it greys out and says how long.
    els = document.querySelectorAll('[data-ts]');
    for (i = 0; i < els.length; i++) {
      el = els[i];
      var ts = parseInt(el.getAttribute('data-ts'), 10);
      var stale = !ts || now - ts > heartbeat;
      toggle(el, 'is-stale', stale);
      var ageEl = el.querySelector('.d-age');
      if (ageEl) {
        setText(ageEl, !stale ? '' : (ts ? 'no data for ' + age(now - ts) : 'no data yet'));
      }
    }
    var silent = revoked || (Date.now() - lastData > staleMS) ||
      (downSince && Date.now() - downSince > 5000 && Date.now() - lastPollOK > POLL_EVERY + 5000);
    toggle(body, 'is-stale', !!silent);
    toggle(body, 'is-revoked', revoked);
    var banner = document.getElementById('display-banner');
    if (banner) {
      if (silent) {
        setText(document.getElementById('display-since'), hhmm(lastData + skew));
      }
      banner.hidden = !silent;
    }
    if (!wsUp && Date.now() - lastPoll >= POLL_EVERY) {
      poll();
    }
  }

  // swap replaces #display-live with fresh HTML from the server.
  function swap(html) {
    var holder = document.createElement('div');
    holder.innerHTML = html;
    var fresh = holder.querySelector('#display-live');
    var old = document.getElementById('display-live');
    if (!fresh || !old) {
      return false;
    }
    if (fresh.getAttribute('data-updated') !== updated) {
      // An admin changed the board: its layout may be new.
      window.location.reload();
      return false;
    }
    var at = parseInt(fresh.getAttribute('data-now'), 10);
    if (!isNaN(at)) {
      skew = at - Date.now();
    }
    old.parentNode.replaceChild(fresh, old);
    revoked = false;
    lastData = Date.now();
    tick();
    return true;
  }

  // poll fetches the board over HTTP while the websocket is down: a proxy
  // that blocks websockets still gets a board, and a revoked link says so.
  function poll() {
    if (polling || !fragmentURL) {
      return;
    }
    polling = true;
    lastPoll = Date.now();
    var xhr = new XMLHttpRequest();
    xhr.open('GET', fragmentURL, true);
    xhr.timeout = 10000;
    xhr.onreadystatechange = function () {
      if (xhr.readyState !== 4) {
        return;
      }
      polling = false;
      if (xhr.status === 401 || xhr.status === 403) {
        revoked = true;
        tick();
        return;
      }
      if (xhr.status === 200 && !wsUp && swap(xhr.responseText)) {
        lastPollOK = Date.now();
      }
    };
    xhr.send();
  }

  function wsURL() {
    var proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    var u = proto + '//' + window.location.host + '/ws';
    if (token) {
      u += '?token=' + encodeURIComponent(token);
    }
    return u;
  }

  function onMessage(ev) {
    var msg, i;
    lastBeat = Date.now();
    try {
      msg = JSON.parse(ev.data);
    } catch (e) {
      return;
    }
    if (!msg) {
      return;
    }
    if (msg.type === 'hello' || msg.type === 'heartbeat') {
      if (msg.version !== version) {
        // A new server: its pages may have changed.
        window.location.reload();
        return;
      }
      if (typeof msg.server_ms === 'number') {
        skew = msg.server_ms - Date.now();
      }
      if (msg.type === 'hello') {
        if (downSince && Date.now() - downSince > LONG_OUTAGE) {
          // Back from a long outage: start afresh.
          window.location.reload();
          return;
        }
        if (typeof msg.beat_ms === 'number' && msg.beat_ms > 0) {
          beatMS = msg.beat_ms;
        }
        wsUp = true;
        attempt = 0;
        downSince = 0;
      }
      return;
    }
    if (!msg.length) {
      return;
    }
    for (i = 0; i < msg.length; i++) {
      if (msg[i] && msg[i].type === 'reload') {
        window.location.reload();
        return;
      }
      if (msg[i] && msg[i].type === 'html' && msg[i].id === 'display-live') {
        swap(msg[i].html);
      }
    }
  }

  function onOpen() {
    if (ws) {
      // Subscribing makes the server send the board at once: the resync.
      ws.send(JSON.stringify({ sub: ['board:' + board] }));
    }
  }

  function onClose(ev) {
    var code = ev && ev.code;
    if (code === 4401) {
      // The server closed us: the display link no longer grants this board.
      revoked = true;
    }
    lost(0);
    // 1012: the server is restarting; it is back within seconds.
    retry(code === 1012 ? 0 : attempt);
  }

  // lost forgets the connection; since is when it went quiet (0: now).
  function lost(since) {
    var old = ws;
    ws = null;
    wsUp = false;
    if (!downSince) {
      downSince = since || Date.now();
    }
    if (old) {
      // Handlers off first, so a late close event cannot start a second
      // connection beside the next one.
      old.onopen = null;
      old.onmessage = null;
      old.onclose = null;
      old.onerror = null;
      try {
        old.close();
      } catch (e) {
        // already closing
      }
      if (since) {
        retry(attempt);
      }
    }
    tick();
  }

  function connect() {
    retryTimer = null;
    if (ws) {
      return;
    }
    try {
      ws = new WebSocket(wsURL());
    } catch (e) {
      ws = null;
      retry(attempt);
      return;
    }
    ws.onopen = onOpen;
    ws.onmessage = onMessage;
    ws.onclose = onClose;
    ws.onerror = function () {
      // onclose follows.
    };
  }

  // retry reconnects after an exponential backoff with full jitter, so a
  // plant's worth of TVs do not all knock at once after a restart.
  function retry(n) {
    if (retryTimer) {
      return;
    }
    var cap = Math.min(MAX_BACKOFF, 1000 * Math.pow(2, Math.min(n, 5)));
    attempt = Math.min(n + 1, 10);
    retryTimer = setTimeout(connect, Math.floor(500 + Math.random() * cap));
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

  // For tests and for a look from the console: feed a frame as if it came
  // over the websocket.
  window.AndonDisplay = { receive: function (data) { onMessage({ data: data }); } };

  setInterval(tick, 1000);
  if (rotateS > 0 && next) {
    setTimeout(rotate, rotateS * 1000);
  }
  lastPoll = Date.now(); // the page itself is fresh
  tick();
  connect();
})();
