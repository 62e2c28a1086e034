/*
 * cometbox.js: the browser client of cometboxd (WebSocket, fetch stream, SSE,
 * long-poll).
 * A classic script (global `cometbox`) and a CommonJS module; ES modules import
 * cometbox.mjs. Not for publishing: that is the web application's job.
 * API and behaviour: clients/js/README.md. Wire protocol: docs/PROTOCOL.md.
 */
(function (root, factory) {
  'use strict';
  var api = factory(root);
  if (typeof module === 'object' && module && module.exports) {
    module.exports = api;
  } else if (root) {
    root.cometbox = api;
  }
})(typeof globalThis !== 'undefined' ? globalThis :
  typeof self !== 'undefined' ? self : this, function (G) {
  'use strict';

  var VERSION = '1.0.0';
  var QUEUE_RE = /^[A-Za-z0-9._:@-]{1,128}$/;
  var MAX_QUEUES = 16;
  var MAX_ID = 9007199254740992; /* 2^53 */
  var STOP_STATUSES = { 400: 1, 401: 1, 403: 1, 404: 1, 410: 1 };
  /* What a request the browser itself failed (fetch rejected, no status) means:
   * scripts cannot tell a CORS refusal from a network error, so say both. */
  var UNREACHABLE = 'the server refused or could not be reached: a CORS refusal ' +
    '(is this page\'s origin in cors-origins?) or a network error';

  /* Every timing is in milliseconds except `hold` (seconds, as the server's
   * `timeout=` parameter). Tests shrink them; production keeps these. */
  var DEFAULTS = {
    transport: 'auto',       /* auto | websocket | stream | sse | longpoll */
    token: null,             /* sent as ?token= */
    heartbeat: 15000,        /* the server's heartbeat */
    watchdog: 0,             /* 0: 2 * heartbeat + 5000 */
    firstLineTimeout: 5000,  /* buffering probe: headers to first line */
    connectTimeout: 15000,   /* request sent to response headers (stream, SSE) */
    hold: 0,                 /* server hold in s; 0: do not send timeout=, assume 25 */
    pollTimeout: 0,          /* 0: (hold || 25) s + 10 s */
    backoffMin: 500,
    backoffMax: 20000,
    bufferedRetry: 600000,   /* try streaming (or WebSocket) again 10 min after a proxy broke it */
    muteLimit: 3,            /* mute streams in a row before long-poll */
    tick: 1000,              /* how often the watchdog looks at Date.now() */
    shared: false,           /* share one connection between tabs */
    leaderBeat: 5000,        /* leader says "alive" to followers this often */
    withCredentials: false,  /* send cookies cross-origin */
    closeWhenHidden: false,  /* abort while the page is hidden */
    storage: undefined,      /* default: sessionStorage; null: none */
    fetch: undefined,        /* injectable for tests */
    EventSource: undefined,
    WebSocket: undefined     /* injectable for tests; null: none */
  };

  /* ---------------------------------------------------------------- helpers */

  function now() { return Date.now(); }

  function merge(base, extra) {
    var out = {}, k;
    for (k in base) if (Object.prototype.hasOwnProperty.call(base, k)) out[k] = base[k];
    if (extra) {
      for (k in extra) {
        if (Object.prototype.hasOwnProperty.call(extra, k) && extra[k] !== undefined) out[k] = extra[k];
      }
    }
    return out;
  }

  /* Reports an exception thrown by application code without breaking ours. */
  function report(err) {
    if (G && typeof G.reportError === 'function') G.reportError(err);
    else setTimeout(function () { throw err; }, 0);
  }

  function safeCall(fn, self, args) {
    if (typeof fn !== 'function') return;
    try {
      fn.apply(self, args);
    } catch (err) {
      report(err);
    }
  }

  /* Full jitter (centrifuge-js): min + random(0, min(max, min * 2^attempt)),
   * capped at max. Never below min, so never a tight loop. */
  function backoffDelay(attempt, min, max, random) {
    var r = (random || Math.random)();
    var step = Math.min(Math.max(attempt, 0), 30);
    var span = Math.min(max, min * Math.pow(2, step));
    return Math.min(max, min + Math.floor(r * span));
  }

  /* Retry-After: delta seconds or an HTTP date. Returns ms, or 0 when absent
   * or unreadable. Capped at one hour so a typo cannot park a client forever. */
  function parseRetryAfter(value, nowMs) {
    if (value === null || value === undefined) return 0;
    var s = String(value).trim();
    var ms;
    if (/^\d+$/.test(s)) {
      ms = parseInt(s, 10) * 1000;
    } else {
      var t = Date.parse(s);
      if (isNaN(t)) return 0;
      ms = t - (nowMs === undefined ? now() : nowMs);
    }
    if (!(ms > 0)) return 0;
    return Math.min(ms, 3600000);
  }

  /* Returns a fresh array of queue names, or throws a TypeError naming the
   * first problem. Rules: docs/PROTOCOL.md, "Queues and ids". */
  function validateQueues(queues) {
    var list = typeof queues === 'string' ? queues.split(',') : queues;
    if (!list || typeof list.length !== 'number' || list.length === 0) {
      throw new TypeError('cometbox: queues must be a name or a non-empty array of names');
    }
    var seen = {}, out = [], i;
    for (i = 0; i < list.length; i++) {
      var q = list[i];
      if (typeof q !== 'string' || !QUEUE_RE.test(q)) {
        throw new TypeError('cometbox: bad queue name ' + JSON.stringify(q) +
          ' (1 to 128 of A-Z a-z 0-9 . _ : @ -)');
      }
      if (seen[q]) throw new TypeError('cometbox: queue ' + q + ' named twice');
      seen[q] = true;
      out.push(q);
    }
    if (out.length > MAX_QUEUES) {
      throw new TypeError('cometbox: at most ' + MAX_QUEUES + ' queues per page and server');
    }
    return out;
  }

  function validId(id) {
    return typeof id === 'number' && id >= 0 && id < MAX_ID && Math.floor(id) === id;
  }

  /* The base URL without a trailing slash, absolute when a page location is known. */
  function normalizeBase(url) {
    var s = url === undefined || url === null ? '' : String(url);
    if (G && G.location && typeof G.URL === 'function') {
      try { s = new G.URL(s || '/', G.location.href).href; } catch (e) { /* keep s */ }
    }
    return s.replace(/\/+$/, '');
  }

  /* Builds a transport URL. `since` null means "no cursor". */
  function buildUrl(base, path, queues, since, extra) {
    var url = base + '/' + path + '/' + queues.join(',');
    var params = [];
    if (since !== null && since !== undefined) params.push('since=' + since);
    if (extra) {
      for (var k in extra) {
        if (extra[k] !== null && extra[k] !== undefined && extra[k] !== '') {
          params.push(k + '=' + encodeURIComponent(extra[k]));
        }
      }
    }
    return params.length ? url + '?' + params.join('&') : url;
  }

  /* Splits a byte stream into lines. A chunk is not a line: bytes are decoded
   * with a streaming TextDecoder (a UTF-8 sequence may straddle chunks) and a
   * line is complete only at its '\n'. Blank lines are dropped. */
  function LineSplitter() {
    this.decoder = typeof TextDecoder === 'function' ? new TextDecoder('utf-8') : null;
    this.buf = '';
  }

  LineSplitter.prototype.push = function (chunk) {
    if (typeof chunk === 'string') {
      this.buf += chunk;
    } else if (chunk) {
      this.buf += this.decoder.decode(chunk, { stream: true });
    }
    var lines = [], start = 0, nl;
    while ((nl = this.buf.indexOf('\n', start)) >= 0) {
      var line = this.buf.slice(start, nl);
      if (line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1);
      if (/\S/.test(line)) lines.push(line);
      start = nl + 1;
    }
    if (start) this.buf = this.buf.slice(start);
    return lines;
  };

  /* Bytes after the last '\n' when the stream ends: an incomplete line. */
  LineSplitter.prototype.rest = function () {
    if (this.decoder) this.buf += this.decoder.decode();
    var r = this.buf;
    this.buf = '';
    return r;
  };

  /* Default storage, or a no-op one when the page forbids it. */
  function pickStorage(opt) {
    if (opt === null) return null;
    if (opt) return opt;
    try {
      if (G && G.sessionStorage) {
        var k = 'cometbox:probe';
        G.sessionStorage.setItem(k, '1');
        G.sessionStorage.removeItem(k);
        return G.sessionStorage;
      }
    } catch (e) { /* private mode or disabled */ }
    return null;
  }

  function storeGet(storage, key) {
    if (!storage) return null;
    try { return storage.getItem(key); } catch (e) { return null; }
  }

  function storeSet(storage, key, value) {
    if (!storage) return;
    try {
      if (value === null) storage.removeItem(key);
      else storage.setItem(key, String(value));
    } catch (e) { /* quota: the cursor is only an optimisation across reloads */ }
  }

  /* Remembers the last id per queue, in memory and in storage, and decides
   * which messages are new.
   *
   * Ids come from one counter for the whole daemon, and an answer lists the
   * lowest ids first across all the queues of a request. So when an answer
   * for queues Q ends at id M, every message <= M of every queue in Q has been
   * seen, and `seen(Q, M)` raises all their cursors to M. The `since` of a
   * request is then the lowest cursor of its queues; when one of them has no
   * cursor at all (first visit), the request carries no `since` and gets
   * every pending message, and the duplicates it may bring are dropped here. */
  function Tracker(storage, prefix) {
    this.storage = storage;
    this.prefix = prefix;
    this.last = {};
  }

  Tracker.prototype.key = function (queue) {
    return this.prefix + queue;
  };

  Tracker.prototype.get = function (queue) {
    if (!Object.prototype.hasOwnProperty.call(this.last, queue)) {
      var v = storeGet(this.storage, this.key(queue));
      var n = v === null ? NaN : Number(v);
      this.last[queue] = validId(n) ? n : null;
    }
    return this.last[queue];
  };

  /* Forces a cursor (the `since` option). */
  Tracker.prototype.set = function (queue, id) {
    this.last[queue] = id;
    storeSet(this.storage, this.key(queue), id);
  };

  Tracker.prototype.since = function (queues) {
    var min = null;
    for (var i = 0; i < queues.length; i++) {
      var v = this.get(queues[i]);
      if (v === null) return null;
      if (min === null || v < min) min = v;
    }
    return min;
  };

  /* Takes `id` as the cursor of each queue that has none yet (a stream's
   * Cometbox-Cursor head), in memory and in storage. */
  Tracker.prototype.adopt = function (queues, id) {
    for (var i = 0; i < queues.length; i++)
      if (this.get(queues[i]) === null) this.set(queues[i], id);
  };

  /* A `restart` gap (docs/PROTOCOL.md, "Gaps"): the daemon's ids may have
   * restarted below this cursor (a clock stepped back), and the messages
   * after the gap are new even where their ids are not above it. The cursor
   * becomes min(cursor, from - 1), in memory and in storage, so accept()
   * takes them. No cursor stays no cursor. */
  Tracker.prototype.rewind = function (queue, from) {
    var v = this.get(queue);
    var id = from - 1;
    if (v === null || v <= id) return;
    this.set(queue, id);
  };

  /* True when message `id` of `queue` was not delivered yet; records it. */
  Tracker.prototype.accept = function (queue, id) {
    var v = this.get(queue);
    if (v !== null && id <= v) return false;
    this.last[queue] = id;
    return true;
  };

  Tracker.prototype.seen = function (queues, id) {
    for (var i = 0; i < queues.length; i++) {
      var v = this.get(queues[i]);
      if (v === null || id > v) this.last[queues[i]] = id;
    }
  };

  Tracker.prototype.save = function (queues) {
    for (var i = 0; i < queues.length; i++) {
      var v = this.last[queues[i]];
      if (v !== null && v !== undefined) storeSet(this.storage, this.key(queues[i]), v);
    }
  };

  /* --------------------------------------------------------- page helpers */

  function doc() { return G && G.document ? G.document : null; }

  function isVisible() {
    var d = doc();
    return !d || d.visibilityState === undefined || d.visibilityState === 'visible';
  }

  function isOffline() {
    return !!(G && G.navigator && G.navigator.onLine === false);
  }

  function listen(target, type, fn, list) {
    if (!target || typeof target.addEventListener !== 'function') return;
    target.addEventListener(type, fn);
    list.push(function () { target.removeEventListener(type, fn); });
  }

  function HttpError(status, detail) {
    var e = new Error('cometbox: HTTP ' + status + (detail ? ': ' + detail : ''));
    e.status = status;
    return e;
  }

  /* ----------------------------------------------------------- connection */

  /* One held request at a time for every subscription of a page that shares
   * base URL, token, transport and sharing mode: the union of their queues
   * is multiplexed onto it (browsers allow six connections per host). */
  function Connection(base, opts, key, onEmpty) {
    this.base = base;
    this.opts = opts;
    this.key = key;
    this.onEmpty = onEmpty;
    this.storage = pickStorage(opts.storage);
    this.tracker = new Tracker(this.storage, 'cometbox:last:' + base + '|');
    this.bufferedKey = 'cometbox:buffered:' + base;
    this.noWsKey = 'cometbox:nowebsocket:' + base;
    this.fetchFn = opts.fetch || (G && G.fetch ? G.fetch.bind(G) : null);
    this.ES = opts.EventSource || (G && G.EventSource) || null;
    this.WS = opts.WebSocket !== undefined ? opts.WebSocket : (G && G.WebSocket) || null;
    this.subs = [];
    this.queues = [];
    this.status = 'idle';
    this.statusMessage = '';  /* why we are retrying; '' otherwise */
    this.warned = false;      /* UNREACHABLE went to the console since the last open */
    this.transport = null;
    this.req = null;
    this.gen = 0;
    this.attempt = 0;
    this.mute = 0;
    this.wsWorked = false;    /* a WebSocket of this connection brought a frame */
    this.wsFails = 0;         /* ... and failures before a first frame since */
    this.retryTimer = null;
    this.retryAt = 0;
    this.ticker = null;
    this.lastByte = 0;
    this.running = false;
    this.suspended = false;
    this.restartPending = false;
    this.unlisten = [];
    /* tab sharing */
    this.role = 'solo';
    this.channel = null;
    this.lockAbort = null;
    this.releaseLock = null;
    this.leaderSeen = 0;
    this.lastBeat = 0;
    this.independent = false;
  }

  Connection.prototype.watchdogMs = function () {
    return this.opts.watchdog || 2 * this.opts.heartbeat + 5000;
  };

  Connection.prototype.pollTimeoutMs = function () {
    return this.opts.pollTimeout || ((this.opts.hold || 25) * 1000 + 10000);
  };

  Connection.prototype.union = function () {
    var seen = {}, out = [];
    for (var i = 0; i < this.subs.length; i++) {
      for (var j = 0; j < this.subs[i].queues.length; j++) {
        var q = this.subs[i].queues[j];
        if (!seen[q]) { seen[q] = true; out.push(q); }
      }
    }
    return out;
  };

  Connection.prototype.add = function (sub) {
    var probe = this.subs.concat([sub]);
    var seen = {}, n = 0;
    for (var i = 0; i < probe.length; i++) {
      for (var j = 0; j < probe[i].queues.length; j++) {
        if (!seen[probe[i].queues[j]]) { seen[probe[i].queues[j]] = true; n++; }
      }
    }
    if (n > MAX_QUEUES) {
      throw new TypeError('cometbox: at most ' + MAX_QUEUES + ' queues per page and server');
    }
    if (sub.since !== null) {
      for (var k = 0; k < sub.queues.length; k++) this.tracker.set(sub.queues[k], sub.since);
    }
    this.subs.push(sub);
    if (this.status !== 'idle') safeCall(sub.onStatus, sub, [this.status, { message: this.statusMessage }]);
    this.queuesChanged();
  };

  Connection.prototype.remove = function (sub) {
    var i = this.subs.indexOf(sub);
    if (i < 0) return;
    this.subs.splice(i, 1);
    if (!this.subs.length) {
      this.close();
      this.onEmpty(this);
      return;
    }
    this.queuesChanged();
  };

  /* Several subscribe() calls in one task become one request. */
  Connection.prototype.queuesChanged = function () {
    var self = this;
    if (this.restartPending) return;
    this.restartPending = true;
    Promise.resolve().then(function () {
      self.restartPending = false;
      if (!self.subs.length) return;
      var u = self.union();
      if (u.join(',') === self.queues.join(',') && self.running) return;
      self.queues = u;
      if (!self.running) {
        self.start();
      } else if (self.opts.shared && self.channel) {
        self.stopSharing();
        self.abortRequest();
        self.startSharing();
      } else {
        self.abortRequest();
        self.connect();
      }
    });
  };

  Connection.prototype.start = function () {
    var self = this;
    this.running = true;
    this.setStatus('connecting');
    var w = G && G.addEventListener ? G : null;
    var d = doc();
    listen(w, 'online', function () { self.onOnline(); }, this.unlisten);
    listen(w, 'offline', function () { self.onOffline(); }, this.unlisten);
    listen(w, 'pagehide', function () { self.onPageHide(); }, this.unlisten);
    listen(w, 'pageshow', function (e) { self.onPageShow(e); }, this.unlisten);
    listen(d, 'visibilitychange', function () { self.onVisibility(); }, this.unlisten);
    listen(d, 'resume', function () { self.check(true); }, this.unlisten);
    this.ticker = setInterval(function () { self.tick(); }, this.opts.tick);
    if (this.ticker && this.ticker.unref) this.ticker.unref();
    if (this.opts.shared && this.canShare()) {
      this.startSharing();
    } else {
      this.connect();
    }
  };

  Connection.prototype.close = function () {
    this.running = false;
    this.abortRequest();
    this.clearRetry();
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
    this.stopSharing();
    for (var i = 0; i < this.unlisten.length; i++) this.unlisten[i]();
    this.unlisten = [];
    this.status = 'stopped';
  };

  /* Tells the subscribers, once per change of status or of its message
   * (info.message: why a `retrying` retries; '' when there is nothing to say). */
  Connection.prototype.setStatus = function (status, info) {
    info = info || {};
    var message = info.message ? String(info.message) : '';
    if (status === this.status && message === this.statusMessage) return;
    this.status = status;
    this.statusMessage = message;
    info.message = message;
    var subs = this.subs.slice();
    for (var i = 0; i < subs.length; i++) {
      subs[i].status = status;
      subs[i].statusMessage = message;
      safeCall(subs[i].onStatus, subs[i], [status, info]);
    }
    if (this.role === 'leader') this.post({ t: 'status', status: status, message: message });
  };

  Connection.prototype.setTransport = function (t) {
    this.transport = t;
    for (var i = 0; i < this.subs.length; i++) this.subs[i].transport = t;
  };

  /* Stops every subscription for good (kick, 401/403/404/410). */
  Connection.prototype.fail = function (kind, detail) {
    var subs = this.subs.slice();
    this.subs = [];
    this.close();
    this.onEmpty(this);
    for (var i = 0; i < subs.length; i++) {
      var s = subs[i];
      s.active = false;
      s.status = 'stopped';
      if (kind === 'kick') safeCall(s.onKick, s, [detail.reason || '', detail]);
      else safeCall(s.onError, s, [detail]);
      safeCall(s.onStatus, s, ['stopped', { reason: kind, detail: detail }]);
    }
  };

  /* -------------------------------------------------------- transport choice */

  Connection.prototype.bufferedSince = function () {
    var v = Number(storeGet(this.storage, this.bufferedKey));
    if (!v) return 0;
    if (now() - v >= this.opts.bufferedRetry) {
      storeSet(this.storage, this.bufferedKey, null);
      return 0;
    }
    return v;
  };

  Connection.prototype.markBuffered = function () {
    storeSet(this.storage, this.bufferedKey, now());
  };

  /* A WebSocket that did not work while plain HTTP did (a proxy that refuses
   * or breaks upgrades): the other transports for bufferedRetry ms, in
   * storage so that the next page of the session knows it too. */
  Connection.prototype.noWebSocketSince = function () {
    var v = Number(storeGet(this.storage, this.noWsKey));
    if (!v) return 0;
    if (now() - v >= this.opts.bufferedRetry) {
      storeSet(this.storage, this.noWsKey, null);
      return 0;
    }
    return v;
  };

  Connection.prototype.markNoWebSocket = function () {
    storeSet(this.storage, this.noWsKey, now());
  };

  /* With `auto`, does this failure before a first frame (while HTTP works)
   * mean that WebSockets do not get through? Yes when no socket of this
   * connection ever worked (a proxy that breaks upgrades breaks them all);
   * after one did, only muteLimit failures in a row (a server that restarts
   * or sheds load refuses a few handshakes). */
  Connection.prototype.wsBroken = function () {
    if (this.opts.transport !== 'auto') return false;
    return !this.wsWorked || ++this.wsFails >= this.opts.muteLimit;
  };

  Connection.prototype.canStream = function () {
    return !!(this.fetchFn && typeof G.ReadableStream === 'function' &&
      typeof TextDecoder === 'function' && typeof AbortController === 'function');
  };

  Connection.prototype.chooseTransport = function () {
    var t = this.opts.transport;
    if (t === 'websocket' || t === 'stream' || t === 'sse' || t === 'longpoll') return t;
    if (typeof this.WS === 'function' && !this.noWebSocketSince()) return 'websocket';
    if (this.bufferedSince()) return 'longpoll';
    if (this.canStream()) return 'stream';
    if (this.ES) return 'sse';
    return 'longpoll';
  };

  /* ---------------------------------------------------------- request cycle */

  Connection.prototype.extraParams = function () {
    return { token: this.opts.token };
  };

  Connection.prototype.connect = function () {
    this.clearRetry();
    if (!this.running || this.suspended || !this.subs.length) return;
    if (this.role === 'follower' && !this.independent) return;
    if (this.req) this.abortRequest();
    var t = this.chooseTransport();
    this.setTransport(t);
    var req = {
      gen: ++this.gen,
      transport: t,
      start: now(),
      headersAt: 0,
      firstLineAt: 0,
      probeStart: 0,
      fresh: 0,
      empty: true,
      queues: this.queues.slice(),
      abort: function () {}
    };
    this.req = req;
    if (t === 'websocket') this.openWebSocket(req);
    else if (t === 'stream') this.openStream(req);
    else if (t === 'sse') this.openSse(req);
    else this.openPoll(req);
  };

  Connection.prototype.abortRequest = function () {
    var req = this.req;
    this.req = null;
    if (req) {
      req.dead = true;
      try { req.abort(); } catch (e) { /* already closed */ }
    }
  };

  Connection.prototype.clearRetry = function () {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.retryAt = 0;
  };

  Connection.prototype.scheduleRetry = function (minDelay) {
    var self = this;
    var delay = backoffDelay(this.attempt++, this.opts.backoffMin, this.opts.backoffMax);
    if (minDelay > delay) delay = minDelay;
    this.clearRetry();
    this.retryAt = now() + delay;
    this.retryTimer = setTimeout(function () {
      self.retryTimer = null;
      self.retryAt = 0;
      self.connect();
    }, delay);
    return delay;
  };

  /* The response headers arrived. */
  Connection.prototype.onHeaders = function (req) {
    req.headersAt = now();
    this.lastByte = req.headersAt;
    if (isVisible()) req.probeStart = req.headersAt;
  };

  /* The connection delivered its first line: it works, so forget failures. */
  Connection.prototype.onFirstLine = function (req) {
    if (req.firstLineAt) return;
    req.firstLineAt = now();
    this.attempt = 0;
    this.mute = 0;
    this.warned = false;
    this.setStatus('open', { transport: req.transport });
  };

  /* Every way a request ends comes here once. `o.kind`: 'end' (clean end or
   * a long-poll answer), 'error' (network, timeout, watchdog, 5xx), 'http'
   * (status in o.status), 'buffered', 'nowebsocket', 'kick'. */
  Connection.prototype.finish = function (req, o) {
    if (req !== this.req || req.dead) return;
    this.req = null;
    req.dead = true;
    try { req.abort(); } catch (e) { /* closed */ }
    if (!this.running) return;
    if (o.kind === 'http' && STOP_STATUSES[o.status]) {
      this.fail('http', HttpError(o.status, o.detail));
      return;
    }
    if (o.kind === 'buffered') {
      this.markBuffered();
      this.mute = 0;
      this.connect();
      return;
    }
    if (o.kind === 'nowebsocket') {
      /* At once, as after a buffering proxy: the server answers over HTTP. */
      this.markNoWebSocket();
      this.connect();
      return;
    }
    if (!req.firstLineAt && req.open && req.transport !== 'websocket' && this.opts.transport === 'auto') {
      /* Open but mute: a buffering proxy or a dying server (windmill's rule). */
      if (++this.mute >= this.opts.muteLimit) {
        this.markBuffered();
        this.mute = 0;
      }
    }
    var lived = now() - req.start;
    var progress = req.firstLineAt &&
      (req.fresh > 0 || req.quick || !req.empty || lived >= 1000);
    if (o.kind === 'end' && progress && !isOffline()) {
      this.connect();
      return;
    }
    if (o.kind === 'end' && req.firstLineAt && !isOffline()) {
      /* A good but empty answer that came back at once (a hold of 0, a
       * proxy): ask again after a pause, not in a loop; still open. */
      this.scheduleRetry(0);
      return;
    }
    var unreachable = !req.headersAt && o.kind === 'error' && !!o.error && o.error.name === 'TypeError';
    var message = unreachable ? UNREACHABLE : o.error && o.error.message ? String(o.error.message) : '';
    if (unreachable && !this.warned && G && G.console && typeof G.console.warn === 'function') {
      /* Once until a connection works again: the page keeps retrying. */
      this.warned = true;
      G.console.warn('cometbox: ' + this.base + ': ' + UNREACHABLE);
    }
    this.setStatus('retrying', {
      error: o.error || null, status: o.status || 0, reason: unreachable ? 'unreachable' : o.kind, message: message
    });
    this.scheduleRetry(o.retryAfter || 0);
  };

  /* Handles a non-200 answer: reads the error body for the detail. */
  Connection.prototype.httpFailure = function (req, res) {
    var self = this;
    var retryAfter = parseRetryAfter(res.headers && res.headers.get('Retry-After'));
    var done = function (detail) {
      self.finish(req, {
        kind: 'http', status: res.status, retryAfter: retryAfter, detail: detail,
        error: HttpError(res.status, detail)
      });
    };
    var p;
    try { p = res.text(); } catch (e) { p = null; }
    if (!p) { done(''); return; }
    p.then(function (text) {
      var detail = '';
      try {
        var j = JSON.parse(text);
        detail = j && (j.detail || j.error) ? String(j.detail || j.error) : '';
      } catch (e) { detail = ''; }
      done(detail);
    }, function () { done(''); });
  };

  /* Delivers one answer (a JSON array of messages and control objects) to
   * the subscribers, in order, each message once. Returns false when the
   * answer stopped the connection (kick) or is malformed. */
  Connection.prototype.deliver = function (req, items, fromLeader) {
    if (!Array.isArray(items)) return false;
    var queues = req ? req.queues : this.queues;
    var maxId = 0, i, j, o, out = [], kick = null;
    for (i = 0; i < items.length; i++) {
      o = items[i];
      if (!o || typeof o !== 'object') continue;
      if (o.type === 'kick') { kick = o; break; }
      if (o.type === 'gap') {
        if (o.reason === 'restart' && typeof o.queue === 'string' && validId(o.from) && o.from >= 1) {
          this.tracker.rewind(o.queue, o.from);
        }
        out.push(o);
        continue;
      }
      if (o.type !== undefined || !validId(o.id) || typeof o.queue !== 'string') continue;
      if (o.id > maxId) maxId = o.id;
      if (this.tracker.accept(o.queue, o.id)) {
        out.push(o);
        if (req) req.fresh++;
      }
    }
    if (req && items.length) req.empty = false;
    if (req && maxId > (req.maxId || 0)) req.maxId = maxId;
    if (maxId) this.tracker.seen(queues, maxId);
    if (maxId || out.length) this.tracker.save(queues);
    if (this.role === 'leader' && !fromLeader && (out.length || kick || maxId)) {
      this.post({ t: 'items', items: kick ? out.concat([kick]) : out, queues: queues, max: maxId });
    }
    for (i = 0; i < out.length; i++) {
      o = out[i];
      var subs = this.subs.slice();
      for (j = 0; j < subs.length; j++) {
        var s = subs[j];
        if (!s.active || s.queues.indexOf(o.queue) < 0) continue;
        if (o.type === 'gap') safeCall(s.onGap, s, [o]);
        else safeCall(s.onMessage, s, [o]);
      }
    }
    if (kick) {
      this.fail('kick', kick);
      return false;
    }
    return true;
  };

  Connection.prototype.url = function (path, req, extra) {
    var since = this.tracker.since(req.queues);
    var params = this.extraParams();
    if (extra) for (var k in extra) params[k] = extra[k];
    return buildUrl(this.base, path, req.queues, since, params);
  };

  Connection.prototype.credentials = function () {
    return this.opts.withCredentials ? 'include' : 'same-origin';
  };

  /* The WebSocket URL of a request: the base with ws: for http:, wss: for https:. */
  Connection.prototype.wsUrl = function (req) {
    var u = this.url('ws', req);
    return u.replace(/^http(s?):/i, 'ws$1:');
  };

  /* WebSocket on /ws (docs/PROTOCOL.md). The first frame carries the cursor
   * ({"type":"cursor","id":C}, taken as a stream's Cometbox-Cursor head) and
   * the pending messages; each later frame is a batch. Unlike a stream, the
   * server acknowledges nothing on delivery: after a frame that had messages
   * the client sends {"ack":MAX}, MAX the highest id this socket brought.
   * Close 4000 is a kick; any other close reconnects with backoff and since=.
   * The server's pings are answered by the browser and invisible here, so
   * there is no watchdog: a dead peer is found by the server (a missed pong,
   * then it closes), by the browser's own TCP errors, or on wake-up. */
  Connection.prototype.openWebSocket = function (req) {
    var self = this;
    var ws;
    try {
      ws = new this.WS(this.wsUrl(req));
    } catch (err) {
      /* A bad URL or a blocked port: as a socket that never opened. */
      this.wsFailed(req, 0, err && err.message ? String(err.message) : '');
      return;
    }
    var connectTimer;
    req.maxId = 0;
    req.acked = 0;
    req.abort = function () {
      clearTimeout(connectTimer);
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(1000); } catch (e) { /* closing already */ }
    };
    connectTimer = setTimeout(function () {
      if (!req.headersAt && !req.dead) self.wsFailed(req, 0, 'no answer from the server');
    }, this.opts.connectTimeout);
    ws.onopen = function () {
      clearTimeout(connectTimer);
      if (req.dead) return;
      self.onHeaders(req);
      req.open = true;
    };
    ws.onmessage = function (e) {
      if (req.dead) return;
      self.lastByte = now();
      if (typeof e.data !== 'string') {
        self.finish(req, { kind: 'error', error: new Error('cometbox: binary frame from server') });
        return;
      }
      var lines = e.data.split('\n');
      for (var i = 0; i < lines.length; i++) {
        if (!/\S/.test(lines[i])) continue;
        var items;
        try { items = JSON.parse(lines[i]); } catch (err) { items = null; }
        if (!Array.isArray(items)) {
          self.finish(req, { kind: 'error', error: new Error('cometbox: bad frame from server') });
          return;
        }
        if (!req.firstLineAt && items.length && items[0] && items[0].type === 'cursor' && validId(items[0].id)) {
          self.tracker.adopt(req.queues, items[0].id);
        }
        self.wsWorked = true;
        self.wsFails = 0;
        self.onFirstLine(req);
        if (!self.deliver(req, items)) return;
        if (req.dead) return;
      }
      if (req.maxId > req.acked) {
        req.acked = req.maxId;
        try { ws.send(JSON.stringify({ ack: req.maxId })); } catch (err) { /* closing: since= acks it */ }
      }
      if (self.role === 'leader') self.beat();
    };
    ws.onerror = function () { /* a close event follows, with the code */ };
    ws.onclose = function (e) {
      clearTimeout(connectTimer);
      if (req.dead) return;
      var code = e && typeof e.code === 'number' ? e.code : 0;
      var reason = e && e.reason ? String(e.reason) : '';
      if (code === 4000) {
        /* A kick whose frame did not come first: the same end. */
        self.deliver(req, [{ type: 'kick', reason: reason }]);
        return;
      }
      if (!req.firstLineAt) {
        self.wsFailed(req, code, reason);
        return;
      }
      self.finish(req, {
        kind: 'error',
        error: new Error('cometbox: the server closed the WebSocket (' + code + (reason ? ' ' + reason : '') + ')')
      });
    };
  };

  /* The socket closed (or never opened) before its first frame. Browsers hide
   * the handshake's status, so ask /poll as after an SSE failure: a final
   * status stops us, a network failure retries, and a 200 means HTTP works
   * where the WebSocket does not (a proxy that refuses upgrades): `auto`
   * falls back and remembers it, `websocket` retries and says why. */
  Connection.prototype.wsFailed = function (req, code, reason) {
    var self = this;
    if (req.failing || req.dead) return;
    req.failing = true;
    try { req.abort(); } catch (e) { /* closed */ }
    var what = 'cometbox: the WebSocket closed before its first frame (' +
      (code ? code + (reason ? ' ' + reason : '') : reason || 'no close code') + ')';
    this.probeStatus(req, function () {
      if (self.wsBroken()) {
        self.finish(req, { kind: 'nowebsocket' });
      } else {
        self.finish(req, { kind: 'error', error: new Error(what + (self.opts.transport === 'auto' ? ''
          : ' while HTTP works: does a proxy refuse upgrades?')) });
      }
    }, function (err) {
      self.finish(req, { kind: 'error', error: req.headersAt || !err ? new Error(what) : err });
    });
  };

  /* fetch + ReadableStream on /stream. */
  Connection.prototype.openStream = function (req) {
    var self = this;
    var ctrl = new AbortController();
    var reader = null;
    var connectTimer;
    req.abort = function () {
      clearTimeout(connectTimer);
      try { ctrl.abort(); } catch (e) { /* */ }
      if (reader) reader.cancel().catch(function () {});
    };
    connectTimer = setTimeout(function () {
      if (!req.headersAt) self.finish(req, { kind: 'error', error: new Error('cometbox: no answer from the server') });
    }, this.opts.connectTimeout);
    this.fetchFn(this.url('stream', req), {
      cache: 'no-store', credentials: this.credentials(), signal: ctrl.signal
    }).then(function (res) {
      clearTimeout(connectTimer);
      if (req.dead) return;
      self.onHeaders(req);
      if (res.status !== 200) { self.httpFailure(req, res); return; }
      var type = (res.headers.get('Content-Type') || '').toLowerCase();
      if (type.indexOf('ndjson') < 0) {
        self.finish(req, { kind: 'error', error: new Error('cometbox: unexpected Content-Type ' + type) });
        return;
      }
      if (!res.body || typeof res.body.getReader !== 'function') {
        self.opts.transport = self.ES ? 'sse' : 'longpoll';
        self.finish(req, { kind: 'error', error: new Error('cometbox: no streaming fetch here') });
        return;
      }
      /* The stream acknowledges what it hands over. Should its lines never
       * reach us (a buffering proxy), a request from this cursor gets them
       * back; a first visit has no cursor of its own. */
      var cursor = res.headers.get('Cometbox-Cursor');
      if (cursor !== null && /^\d+$/.test(cursor) && validId(Number(cursor))) {
        self.tracker.adopt(req.queues, Number(cursor));
      }
      req.open = true;
      reader = res.body.getReader();
      var split = new LineSplitter();
      var pump = function () {
        return reader.read().then(function (r) {
          if (req.dead) return;
          if (r.done) {
            var rest = split.rest();
            if (/\S/.test(rest)) {
              self.finish(req, { kind: 'error', error: new Error('cometbox: stream ended inside a line') });
            } else {
              self.finish(req, { kind: 'end' });
            }
            return;
          }
          self.lastByte = now();
          var lines = split.push(r.value);
          for (var i = 0; i < lines.length; i++) {
            var items;
            try { items = JSON.parse(lines[i]); } catch (e) { items = null; }
            if (!Array.isArray(items)) {
              self.finish(req, { kind: 'error', error: new Error('cometbox: bad line from server') });
              return;
            }
            self.onFirstLine(req);
            if (!self.deliver(req, items)) return;
            if (req.dead) return;
          }
          if (self.role === 'leader') self.beat();
          return pump();
        });
      };
      return pump();
    }).catch(function (err) {
      clearTimeout(connectTimer);
      self.finish(req, { kind: 'error', error: err });
    });
  };

  /* EventSource on /events. Its own retry is switched off: on any error we
   * close it and reconnect ourselves with since= (a new EventSource cannot
   * send Last-Event-ID). Comments (heartbeats) and the retry: field are not
   * visible to JavaScript, so the watchdog cannot run on SSE; a connection
   * that stays open firstLineTimeout ms counts as delivered. */
  Connection.prototype.openSse = function (req) {
    var self = this;
    var es;
    try {
      es = new this.ES(this.url('events', req), { withCredentials: !!this.opts.withCredentials });
    } catch (err) {
      this.finish(req, { kind: 'error', error: err });
      return;
    }
    var connectTimer;
    req.abort = function () { clearTimeout(connectTimer); es.close(); };
    connectTimer = setTimeout(function () {
      if (!req.headersAt) self.finish(req, { kind: 'error', error: new Error('cometbox: no answer from the server') });
    }, this.opts.connectTimeout);
    var onItem = function (e) {
      if (req.dead) return;
      self.lastByte = now();
      var o;
      try { o = JSON.parse(e.data); } catch (err) { o = null; }
      if (!o || typeof o !== 'object') return;
      self.onFirstLine(req);
      self.deliver(req, [o]);
      if (self.role === 'leader') self.beat();
    };
    es.onopen = function () {
      clearTimeout(connectTimer);
      if (req.dead) return;
      self.onHeaders(req);
      req.open = true;
      self.setStatus('open', { transport: 'sse' });
    };
    es.onmessage = onItem;
    es.addEventListener('gap', onItem);
    es.addEventListener('kick', onItem);
    es.onerror = function () {
      clearTimeout(connectTimer);
      if (req.dead) return;
      var neverOpened = !req.headersAt;
      es.close();
      if (!neverOpened) {
        /* A clean end (stream-max-bytes) looks the same as a cut here. */
        self.finish(req, { kind: req.firstLineAt ? 'end' : 'error' });
        return;
      }
      /* EventSource hides the status: ask the poll endpoint (no cursor, so
       * it acknowledges nothing; timeout=0, so it is not held) so that
       * 401/403/404/410 stop us as on the other transports. */
      self.probeStatus(req);
    };
  };

  /* onOk(): the poll answered 200 (default: an error, retried with backoff);
   * onFail(err): it failed without a status (default: that error). */
  Connection.prototype.probeStatus = function (req, onOk, onFail) {
    var self = this;
    var ok = onOk || function () { self.finish(req, { kind: 'error' }); };
    var failed = onFail || function (err) { self.finish(req, { kind: 'error', error: err }); };
    if (!this.fetchFn) { failed(null); return; }
    var url = buildUrl(this.base, 'poll', req.queues, null,
      merge(this.extraParams(), { timeout: 0 }));
    this.fetchFn(url, { cache: 'no-store', credentials: this.credentials() })
      .then(function (res) {
        if (req.dead) return;
        if (res.status !== 200) {
          self.httpFailure(req, res);
        } else {
          if (res.body && res.body.cancel) res.body.cancel().catch(function () {});
          ok();
        }
      }, function (err) { if (!req.dead) failed(err); });
  };

  /* Long-poll on /poll: the client gives up hold + 10 s after sending. */
  Connection.prototype.openPoll = function (req) {
    var self = this;
    var ctrl = typeof AbortController === 'function' ? new AbortController() : null;
    var timer;
    req.abort = function () { clearTimeout(timer); if (ctrl) ctrl.abort(); };
    timer = setTimeout(function () {
      self.finish(req, { kind: 'error', error: new Error('cometbox: long-poll timed out') });
    }, this.pollTimeoutMs());
    /* Until a poll has answered, ask for an answer at once (timeout=0): the
     * page learns that the server is reachable instead of waiting a hold. */
    req.quick = this.status !== 'open';
    var extra = req.quick ? { timeout: 0 } : this.opts.hold ? { timeout: this.opts.hold } : null;
    this.fetchFn(this.url('poll', req, extra), {
      cache: 'no-store', credentials: this.credentials(), signal: ctrl ? ctrl.signal : undefined
    }).then(function (res) {
      if (req.dead) return;
      self.onHeaders(req);
      if (res.status !== 200) { clearTimeout(timer); self.httpFailure(req, res); return; }
      return res.text().then(function (text) {
        clearTimeout(timer);
        if (req.dead) return;
        self.lastByte = now();
        var items;
        try { items = JSON.parse(text); } catch (e) { items = null; }
        if (!Array.isArray(items)) {
          self.finish(req, { kind: 'error', error: new Error('cometbox: bad answer from server') });
          return;
        }
        self.onFirstLine(req);
        if (!self.deliver(req, items)) return;
        if (self.role === 'leader') self.beat();
        self.finish(req, { kind: 'end' });
      });
    }).catch(function (err) {
      clearTimeout(timer);
      self.finish(req, { kind: 'error', error: err });
    });
  };

  /* ------------------------------------------------------------ watchdogs */

  Connection.prototype.tick = function () {
    if (!this.running) return;
    var t = now();
    var req = this.req;
    var probed = req && !req.failing && (req.transport === 'stream' || req.transport === 'websocket');
    if (probed && req.headersAt && !req.firstLineAt) {
      /* Counted while visible only: hidden tabs run timers late. */
      if (!isVisible()) {
        req.probeStart = 0;
      } else if (!req.probeStart) {
        req.probeStart = t;
      } else if (t - req.probeStart >= this.opts.firstLineTimeout && this.opts.transport === 'auto') {
        if (req.transport === 'stream') this.finish(req, { kind: 'buffered' });
        else if (this.wsBroken()) this.finish(req, { kind: 'nowebsocket' });
        else this.finish(req, { kind: 'error', error: new Error('cometbox: no first frame from the server') });
        return;
      }
    }
    if (req && req.transport === 'websocket' && !req.failing && req.headersAt && !req.firstLineAt &&
        t - req.headersAt > this.watchdogMs()) {
      /* Forced WebSocket: open but mute. (Once frames came, no watchdog.) */
      this.finish(req, { kind: 'error', error: new Error('cometbox: no first frame from the server') });
      return;
    }
    if (req && req.transport === 'sse' && req.headersAt && !req.firstLineAt &&
        t - req.headersAt >= this.opts.firstLineTimeout) {
      this.onFirstLine(req);
    }
    if (req && req.transport === 'stream' && req.headersAt && t - this.lastByte > this.watchdogMs()) {
      this.finish(req, { kind: 'error', error: new Error('cometbox: no heartbeat from the server') });
      return;
    }
    /* A retry timer a background tab throttled fires late: catch up. */
    if (this.retryTimer && this.retryAt && t >= this.retryAt + this.opts.tick) {
      this.connect();
      return;
    }
    if (this.role === 'follower' && !this.independent &&
        t - this.leaderSeen > this.watchdogMs()) {
      this.independent = true;
      this.setStatus('connecting');
      this.connect();
    }
    if (this.role === 'leader' && t - this.lastBeat >= this.opts.leaderBeat) this.beat();
  };

  /* After the page slept or came back: reconnect when the last byte is old
   * (Safari kills background sockets while still reporting them open), and
   * cut a backoff wait short. */
  Connection.prototype.check = function (woke) {
    if (!this.running || this.suspended) return;
    if (this.role === 'follower' && !this.independent) return;
    if (this.retryTimer) { this.connect(); return; }
    var req = this.req;
    if (!req) { this.connect(); return; }
    /* A live stream brings a byte at least every heartbeat. */
    var stale = now() - this.lastByte > this.opts.heartbeat + 2000;
    if (woke && req.transport !== 'longpoll' && stale) {
      this.abortRequest();
      this.connect();
    }
  };

  Connection.prototype.onOnline = function () {
    this.attempt = 0;
    this.check(true);
  };

  Connection.prototype.onOffline = function () {
    if (!this.running || this.suspended || !this.req) return;
    if (this.role === 'follower' && !this.independent) return;
    this.abortRequest();
    this.setStatus('retrying', { offline: true, reason: 'offline', message: 'the browser is offline' });
    this.scheduleRetry(0);
  };

  Connection.prototype.onVisibility = function () {
    if (!this.running) return;
    if (isVisible()) {
      if (this.opts.closeWhenHidden && this.suspended === 'hidden') {
        this.suspended = false;
        this.connect();
        return;
      }
      this.check(true);
    } else if (this.opts.closeWhenHidden && !this.suspended) {
      this.suspended = 'hidden';
      this.abortRequest();
      this.clearRetry();
    }
  };

  /* Abort on pagehide so the page may enter the back/forward cache. */
  Connection.prototype.onPageHide = function () {
    if (!this.running) return;
    this.suspended = 'pagehide';
    this.abortRequest();
    this.clearRetry();
  };

  Connection.prototype.onPageShow = function () {
    if (!this.running || this.suspended !== 'pagehide') return;
    this.suspended = false;
    this.connect();
  };

  /* -------------------------------------------------------- tab sharing */

  Connection.prototype.canShare = function () {
    return !!(G && G.navigator && G.navigator.locks && typeof G.navigator.locks.request === 'function' &&
      typeof G.BroadcastChannel === 'function');
  };

  Connection.prototype.shareName = function () {
    return 'cometbox:' + this.key + '|' + this.queues.slice().sort().join(',');
  };

  Connection.prototype.startSharing = function () {
    var self = this;
    var name = this.shareName();
    this.role = 'follower';
    this.independent = false;
    this.leaderSeen = now();
    this.channel = new G.BroadcastChannel(name);
    this.channel.onmessage = function (e) { self.onPeer(e.data); };
    var ctrl = typeof AbortController === 'function' ? new AbortController() : null;
    this.lockAbort = ctrl;
    var channel = this.channel;
    G.navigator.locks.request(name, ctrl ? { signal: ctrl.signal } : {}, function () {
      if (self.channel !== channel || !self.running) return null;
      self.role = 'leader';
      self.independent = false;
      self.post({ t: 'status', status: self.status, message: self.statusMessage });
      self.beat();
      if (!self.req && !self.retryTimer) self.connect();
      return new Promise(function (resolve) { self.releaseLock = resolve; });
    }).catch(function () { /* aborted: we stopped or the queues changed */ });
  };

  Connection.prototype.stopSharing = function () {
    if (this.lockAbort) { try { this.lockAbort.abort(); } catch (e) { /* */ } }
    this.lockAbort = null;
    if (this.releaseLock) this.releaseLock();
    this.releaseLock = null;
    if (this.channel) this.channel.close();
    this.channel = null;
    this.role = 'solo';
  };

  Connection.prototype.post = function (msg) {
    if (!this.channel) return;
    try { this.channel.postMessage(msg); } catch (e) { /* closed */ }
  };

  Connection.prototype.beat = function () {
    this.lastBeat = now();
    this.post({ t: 'alive', status: this.status, message: this.statusMessage });
  };

  Connection.prototype.onPeer = function (m) {
    if (!m || this.role !== 'follower') return;
    this.leaderSeen = now();
    if (this.independent) {
      /* The leader is back: drop our own connection. */
      this.independent = false;
      this.abortRequest();
      this.clearRetry();
    }
    if (m.t === 'status' || m.t === 'alive') {
      if (m.status && m.status !== 'idle' && m.status !== 'stopped') {
        this.setStatus(m.status, { message: m.message || '' });
      }
    } else if (m.t === 'items' && Array.isArray(m.items)) {
      this.setTransport('shared');
      if (this.status !== 'open') this.setStatus('open', { transport: 'shared' });
      this.deliver(null, m.items, true);
      if (m.max && Array.isArray(m.queues)) {
        this.tracker.seen(this.queues, m.max);
        this.tracker.save(this.queues);
      }
    }
  };

  /* ------------------------------------------------------------- public */

  var connections = {};

  function connectionFor(base, opts) {
    var key = [base, opts.token || '', opts.transport, opts.shared ? 'shared' : 'solo',
      opts.withCredentials ? 'cred' : ''].join('\n');
    var c = connections[key];
    if (!c) {
      c = new Connection(base, opts, key, function (conn) {
        if (connections[key] === conn) delete connections[key];
      });
      connections[key] = c;
    }
    return c;
  }

  /*
   * subscribe(url, queues, onMessage, options) -> subscription
   * url: the browser port of cometboxd ('' or '/' for this page's origin).
   * queues: a name, 'a,b', or an array of names.
   * onMessage(message): message is {id, queue, data}, once per id, in order.
   * Returns {stop(), status, statusMessage, transport, queues}.
   */
  function subscribe(url, queues, onMessage, options) {
    if (typeof onMessage !== 'function') throw new TypeError('cometbox: onMessage must be a function');
    var list = validateQueues(queues);
    var opts = merge(DEFAULTS, options);
    if (['auto', 'websocket', 'stream', 'sse', 'longpoll'].indexOf(opts.transport) < 0) {
      throw new TypeError('cometbox: transport must be auto, websocket, stream, sse or longpoll');
    }
    var since = null;
    if (opts.since !== undefined && opts.since !== null) {
      since = Number(opts.since);
      if (!validId(since)) throw new TypeError('cometbox: since must be an id (0 <= id < 2^53)');
    }
    var base = normalizeBase(url);
    var conn = connectionFor(base, opts);
    var sub = {
      queues: list,
      since: since,
      active: true,
      status: conn.status === 'idle' ? 'connecting' : conn.status,
      statusMessage: conn.statusMessage,
      transport: conn.transport,
      onMessage: onMessage,
      onGap: opts.onGap,
      onKick: opts.onKick,
      onStatus: opts.onStatus,
      onError: opts.onError,
      stop: function () {
        if (!sub.active) return;
        sub.active = false;
        conn.remove(sub);
        sub.status = 'stopped';
        safeCall(sub.onStatus, sub, ['stopped', { reason: 'stop' }]);
      }
    };
    conn.add(sub);
    return sub;
  }

  /* The original cometbox API: one subscription per page. */
  var legacy = null;

  function init(url, id, callback) {
    stop();
    legacy = subscribe(url, [String(id)], function (m) {
      if (typeof callback === 'function') callback(m.data, m);
    });
    return legacy;
  }

  function stop() {
    if (legacy) legacy.stop();
    legacy = null;
  }

  return {
    version: VERSION,
    subscribe: subscribe,
    init: init,
    stop: stop,
    defaults: DEFAULTS,
    /* Exposed for the unit tests; not a stable API. */
    _internal: {
      backoffDelay: backoffDelay,
      parseRetryAfter: parseRetryAfter,
      validateQueues: validateQueues,
      buildUrl: buildUrl,
      normalizeBase: normalizeBase,
      LineSplitter: LineSplitter,
      Tracker: Tracker,
      Connection: Connection,
      connections: connections
    }
  };
});
