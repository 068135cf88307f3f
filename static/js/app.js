// Andon pages: the live connection, the plant clock and the "3 s ago" ages.
// Plain ES2017, no build step. Device text is only ever set with textContent;
// HTML from the server (templ-rendered and escaped) replaces whole elements.
(function () {
  'use strict';

  var body = document.body;
  var heartbeat = parseInt(body.dataset.heartbeat || '30000', 10);
  var tzName = body.dataset.tz || '';
  var tzOffset = parseInt(body.dataset.tzOffset || '0', 10);
  // skew is server time minus browser time, so ages use the server's clock.
  var skew = parseInt(body.dataset.serverMs || String(Date.now()), 10) - Date.now();

  function now() { return Date.now() + skew; }

  function pad2(n) { return n < 10 ? '0' + n : String(n); }

  // duration mirrors views.FormatDuration: "12 s", "4 min 05 s", "1 h 23 min", "2 d 3 h".
  function duration(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + pad2(s % 60) + ' s';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
    return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
  }

  // Shared with the other page scripts, which load after this one.
  window.Andon = { duration: duration, now: now };

  var clockFmt = null;
  try {
    clockFmt = new Intl.DateTimeFormat('en-GB', {
      hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
      timeZone: tzName || 'UTC'
    });
  } catch (e) {
    clockFmt = null;
  }

  function clockText() {
    var t = now();
    if (!tzName) t += tzOffset * 60000; // shift so that formatting in UTC shows plant time
    if (clockFmt) return clockFmt.format(new Date(t));
    var d = new Date(t);
    return pad2(d.getUTCHours()) + ':' + pad2(d.getUTCMinutes()) + ':' + pad2(d.getUTCSeconds());
  }

  var AGES = '.age[data-ts]';
  var FADES = '.tile[data-ts], .value-tile[data-ts], .machine-head[data-ts]';

  function matches(el, sel) {
    var m = el.matches || el.msMatchesSelector || el.webkitMatchesSelector;
    return m ? m.call(el, sel) : false;
  }

  // within: the elements matching sel in root, root itself included.
  function within(root, sel) {
    var list = Array.prototype.slice.call(root.querySelectorAll(sel));
    if (root !== document && matches(root, sel)) list.push(root);
    return list;
  }

  // tick brings ages and fading up to date in root (the whole page once a
  // second; just the elements a frame replaced, which may come fifty times a
  // second to a page of a thousand tiles).
  function tick(root) {
    if (!root || !root.querySelectorAll) root = document; // old browsers pass setInterval a number
    if (root === document) {
      var clock = document.getElementById('plant-clock');
      if (clock) clock.textContent = clockText();
    }
    var n = now();
    var ages = within(root, AGES);
    for (var i = 0; i < ages.length; i++) {
      var ts = parseInt(ages[i].dataset.ts, 10);
      var txt = ts ? duration(n - ts) + ' ago' : 'never';
      if (ages[i].textContent !== txt) ages[i].textContent = txt;
    }
    // Stale things fade: a tile or value not refreshed within the heartbeat.
    var items = within(root, FADES);
    for (var j = 0; j < items.length; j++) {
      var t = parseInt(items[j].dataset.ts, 10);
      items[j].classList.toggle('stale', !t || n - t > heartbeat);
    }
  }

  // Live connection.
  var sub = (body.dataset.sub || '').split(/\s+/).filter(Boolean);
  var status = document.getElementById('live-status');
  var ws = null;
  var attempt = 0;

  function setStatus(kind, text) {
    if (!status) return;
    status.className = 'live live-' + kind;
    var t = status.querySelector('.live-text');
    if (t) t.textContent = text;
    status.dataset.state = kind;
  }

  function replaceElement(id, html) {
    var el = document.getElementById(id);
    if (!el) return;
    var tpl = document.createElement('template');
    tpl.innerHTML = html; // server-rendered by templ, which escaped every device string
    var next = tpl.content.firstElementChild;
    if (next) el.replaceWith(next);
    return next;
  }

  var replaced = []; // elements the frame being handled put in

  function handle(msg) {
    switch (msg.type) {
      case 'hello':
        if (typeof msg.server_ms === 'number') skew = msg.server_ms - Date.now();
        break;
      case 'html':
        var next = replaceElement(msg.id, msg.html);
        if (next) replaced.push(next);
        break;
      case 'points':
        if (window.AndonCharts) window.AndonCharts.points(msg.tag, msg.t, msg.v);
        break;
      case 'reload':
        window.location.reload();
        break;
    }
  }

  function connect() {
    var proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    ws = new WebSocket(proto + '//' + window.location.host + '/ws');
    ws.onopen = function () {
      attempt = 0;
      setStatus('live', 'live');
      ws.send(JSON.stringify({ sub: sub }));
      // Charts refetch their range after every (re)subscribe and keep the
      // deltas that arrive meanwhile.
      if (window.AndonCharts) window.AndonCharts.resync();
    };
    ws.onmessage = function (ev) {
      var data;
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      var msgs = Array.isArray(data) ? data : [data];
      replaced = [];
      for (var i = 0; i < msgs.length; i++) handle(msgs[i]);
      for (var k = 0; k < replaced.length; k++) tick(replaced[k]);
      replaced = [];
      // Pages that render their own figures (reports) refresh on this.
      if (msgs.length && msgs[0].type !== 'hello') {
        var ev = document.createEvent('Event'); // CustomEvent is missing on old TV browsers
        ev.initEvent('andon:update', false, false);
        document.dispatchEvent(ev);
      }
    };
    ws.onclose = function (ev) {
      ws = null;
      // 4401: the login this page was opened with has ended (logout
      // elsewhere, a new password, a disabled user): reload, which leads
      // to the login page, rather than retry forever.
      if (ev && ev.code === 4401) { window.location.reload(); return; }
      setStatus('reconnecting', 'reconnecting…');
      // Exponential backoff from 1 s to 30 s with jitter, so a restarted
      // server is not hit by every screen at the same instant.
      var base = Math.min(30000, 1000 * Math.pow(2, attempt));
      attempt++;
      setTimeout(connect, base / 2 + Math.random() * base / 2);
    };
  }

  // The banner of what is wrong (a lost broker, a full disk). Nothing
  // arrives over the websocket to say so, so the page asks.
  var problems = document.getElementById('problems');
  function showProblems(list) {
    while (problems.firstChild) problems.removeChild(problems.firstChild);
    for (var i = 0; i < list.length; i++) {
      var p = document.createElement('p');
      p.textContent = list[i]; // text, never HTML: it may quote an error
      problems.appendChild(p);
    }
    problems.hidden = list.length === 0;
  }
  function pollProblems() {
    var req = new XMLHttpRequest();
    req.open('GET', '/api/v1/problems');
    req.onload = function () {
      if (req.status !== 200) return;
      try { showProblems(JSON.parse(req.responseText).problems || []); } catch (e) { /* keep the last */ }
    };
    req.send();
  }
  if (problems) setInterval(pollProblems, 15000);

  tick();
  setInterval(tick, 1000);
  if (window.AndonCharts) window.AndonCharts.init();
  if (sub.length && 'WebSocket' in window) connect();
})();
