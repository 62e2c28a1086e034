/*
 * Unit tests of the connection state machine in clients/js/cometbox.js,
 * driven through subscribe() with an injected fetch that plays the server:
 * resume with since, de-duplication across reconnects, multiplexing, stop
 * statuses, Retry-After, backoff reset, kick, buffering probe, watchdog.
 * Timings are shrunk through the options. No browser, no daemon.
 */
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const cometbox = require(path.join(__dirname, '..', '..', '..', 'clients', 'js', 'cometbox.js'));

function memoryStorage() {
  const m = new Map();
  return {
    map: m,
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => { m.set(k, String(v)); },
    removeItem: (k) => { m.delete(k); }
  };
}

/* A failed assertion must not leave timers running (the run would hang). */
test.afterEach(() => {
  for (const c of Object.values(cometbox._internal.connections)) {
    c.close();
    c.onEmpty(c);
  }
});

const FAST = {
  backoffMin: 20, backoffMax: 200, tick: 10, connectTimeout: 2000,
  firstLineTimeout: 150, heartbeat: 100, watchdog: 300, pollTimeout: 2000
};

let seq = 0;
function base() { return `http://test${++seq}.invalid:1800`; }

/* A fake server: every fetch() is handed to the next handler in `plan`
 * (the last one repeats). A handler gets {url, init} and returns a Response
 * or a Promise of one. */
function fakeServer(plan) {
  const requests = [];
  const waiters = [];
  function fetch(url, init) {
    const req = { url, init, at: Date.now() };
    requests.push(req);
    const h = plan[Math.min(requests.length - 1, plan.length - 1)];
    for (const w of waiters.splice(0)) w();
    return Promise.resolve().then(() => h(req));
  }
  async function waitRequests(n, ms = 3000) {
    const deadline = Date.now() + ms;
    while (requests.length < n) {
      if (Date.now() > deadline) throw new Error(`waited for ${n} requests, got ${requests.length}: ${requests.map((r) => r.url).join(' ')}`);
      await new Promise((r) => { waiters.push(r); setTimeout(r, 20); });
    }
  }
  return { fetch, requests, waitRequests };
}

function streamResponse(chunks, { end = true, headers = {} } = {}) {
  const enc = new TextEncoder();
  let ctl;
  const body = new ReadableStream({
    start(c) {
      ctl = c;
      for (const ch of chunks) c.enqueue(typeof ch === 'string' ? enc.encode(ch) : ch);
      if (end) c.close();
    }
  });
  const res = new Response(body, {
    status: 200,
    headers: Object.assign({ 'Content-Type': 'application/x-ndjson; charset=utf-8' }, headers)
  });
  res.controller = ctl;
  return res;
}

function jsonResponse(status, value, headers = {}) {
  return new Response(JSON.stringify(value), {
    status, headers: Object.assign({ 'Content-Type': 'application/json' }, headers)
  });
}

function msg(id, queue, data) { return { id, queue, data: data === undefined ? `m${id}` : data }; }

async function until(cond, what, ms = 3000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function connOf(b) {
  const c = Object.values(cometbox._internal.connections).filter((x) => x.base === b);
  assert.equal(c.length, 1);
  return c[0];
}

test('stream: each message once, in order, across a reconnect that replays', async () => {
  const b = base();
  const line = (...m) => JSON.stringify(m) + '\n';
  const srv = fakeServer([
    // first connection: two messages split across chunks in the middle of a line
    () => streamResponse([line(msg(1, 'a')).slice(0, 7), line(msg(1, 'a')).slice(7) + line(msg(2, 'a')).slice(0, 3),
      line(msg(2, 'a')).slice(3)]),
    // the reconnect replays 2 (already delivered) and brings 3
    () => streamResponse([line(msg(2, 'a'), msg(3, 'a'))], { end: false })
  ]);
  const got = [];
  const statuses = [];
  const sub = cometbox.subscribe(b, 'a', (m) => got.push(m.id), Object.assign({}, FAST, {
    transport: 'stream', fetch: srv.fetch, storage: memoryStorage(), onStatus: (s) => statuses.push(s)
  }));
  await until(() => got.length === 3, '3 messages');
  assert.deepEqual(got, [1, 2, 3]);
  assert.equal(srv.requests[0].url, `${b}/stream/a`);
  assert.equal(srv.requests[1].url, `${b}/stream/a?since=2`);
  assert.equal(srv.requests[0].init.cache, 'no-store');
  assert.deepEqual(statuses.slice(0, 2), ['connecting', 'open']);
  assert.ok(!statuses.includes('retrying'), 'a clean end with progress reconnects without retrying: ' + statuses);
  sub.stop();
  assert.deepEqual(statuses.slice(-1), ['stopped']);
  assert.equal(sub.status, 'stopped');
});

test('cursor survives a reload through storage; a reload does not replay', async () => {
  const b = base();
  const store = memoryStorage();
  const srv = fakeServer([
    () => streamResponse([JSON.stringify([msg(10, 'a'), msg(11, 'b')]) + '\n'], { end: false }),
    () => streamResponse([JSON.stringify([msg(11, 'b'), msg(12, 'a')]) + '\n'], { end: false })
  ]);
  const got1 = [];
  const s1 = cometbox.subscribe(b, ['a', 'b'], (m) => got1.push(m.id), Object.assign({}, FAST, {
    transport: 'stream', fetch: srv.fetch, storage: store
  }));
  await until(() => got1.length === 2, 'first page');
  s1.stop();
  // "reload": a new subscription with the same storage
  const got2 = [];
  const s2 = cometbox.subscribe(b, ['a', 'b'], (m) => got2.push(m.id), Object.assign({}, FAST, {
    transport: 'stream', fetch: srv.fetch, storage: store
  }));
  await until(() => got2.length === 1, 'second page');
  assert.deepEqual(got2, [12]);
  assert.equal(srv.requests[1].url, `${b}/stream/a,b?since=11`);
  s2.stop();
});

test('subscriptions of one page share one request (multiplexing)', async () => {
  const b = base();
  const srv = fakeServer([
    () => jsonResponse(200, [msg(5, 'a'), msg(6, 'b')]),
    () => new Promise(() => {}) // then hold forever
  ]);
  const a = [], bb = [];
  const opts = Object.assign({}, FAST, { transport: 'longpoll', fetch: srv.fetch, storage: memoryStorage() });
  const s1 = cometbox.subscribe(b, 'a', (m) => a.push(m.id), opts);
  const s2 = cometbox.subscribe(b, 'b', (m) => bb.push(m.id), opts);
  await until(() => a.length === 1 && bb.length === 1, 'both');
  assert.equal(srv.requests[0].url, `${b}/poll/a,b?timeout=0`, 'one request for both subscriptions, answered at once');
  assert.equal(srv.requests[1].url, `${b}/poll/a,b?since=6`, 'the next poll resumes after the last id');
  s1.stop();
  await srv.waitRequests(3);
  assert.equal(srv.requests[2].url, `${b}/poll/b?since=6`, 'after a stop the request carries the rest');
  s2.stop();
  assert.equal(Object.values(cometbox._internal.connections).filter((c) => c.base === b).length, 0);
});

test('401, 403, 404, 410 stop for good', async () => {
  for (const status of [401, 403, 404, 410]) {
    const b = base();
    const srv = fakeServer([() => jsonResponse(status, { error: 'x', detail: 'no way' })]);
    const statuses = [];
    let error = null;
    cometbox.subscribe(b, 'a', () => {}, Object.assign({}, FAST, {
      transport: 'stream', fetch: srv.fetch, storage: memoryStorage(),
      onStatus: (s) => statuses.push(s), onError: (e) => { error = e; }
    }));
    await until(() => statuses.includes('stopped'), `stopped on ${status}`);
    assert.equal(error.status, status);
    assert.match(error.message, /no way/);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(srv.requests.length, 1, `no retry after ${status}`);
    assert.ok(!statuses.includes('retrying'));
  }
});

test('503 with Retry-After waits at least that long, then resumes', async () => {
  const b = base();
  const srv = fakeServer([
    () => jsonResponse(503, { error: 'unavailable' }, { 'Retry-After': '1' }),
    () => streamResponse(['[]\n'], { end: false })
  ]);
  const statuses = [];
  const sub = cometbox.subscribe(b, 'a', () => {}, Object.assign({}, FAST, {
    transport: 'stream', fetch: srv.fetch, storage: memoryStorage(), onStatus: (s) => statuses.push(s)
  }));
  await srv.waitRequests(2, 4000);
  const gap = srv.requests[1].at - srv.requests[0].at;
  assert.ok(gap >= 990, `retried after ${gap} ms, Retry-After said 1 s`);
  await until(() => statuses.at(-1) === 'open', 'open');
  assert.deepEqual(statuses, ['connecting', 'retrying', 'open']);
  sub.stop();
});

test('backoff grows while connections fail and resets only after a first line', async () => {
  const b = base();
  let mode = 'fail';
  const srv = fakeServer([() => (mode === 'fail'
    ? Promise.reject(new TypeError('connection refused'))
    : streamResponse(['[]\n'], { end: false }))]);
  const sub = cometbox.subscribe(b, 'a', () => {}, Object.assign({}, FAST, {
    transport: 'stream', fetch: srv.fetch, storage: memoryStorage(), backoffMin: 5, backoffMax: 40
  }));
  await srv.waitRequests(5);
  const conn = connOf(b);
  assert.ok(conn.attempt >= 4, `attempt counter ${conn.attempt}`);
  // a 200 whose body never brings a line does not reset it
  mode = 'ok';
  await until(() => conn.status === 'open', 'open');
  assert.equal(conn.attempt, 0);
  // every retry waited at least backoffMin: no tight loop
  for (let i = 1; i < 5; i++) {
    assert.ok(srv.requests[i].at - srv.requests[i - 1].at >= 4, 'retry too soon');
  }
  sub.stop();
});

test('a mute stream does not reset the backoff', async () => {
  const b = base();
  const srv = fakeServer([() => streamResponse([], { end: true })]);
  const sub = cometbox.subscribe(b, 'a', () => {}, Object.assign({}, FAST, {
    transport: 'stream', fetch: srv.fetch, storage: memoryStorage(), backoffMin: 5, backoffMax: 40
  }));
  await srv.waitRequests(4);
  assert.ok(connOf(b).attempt >= 3, `attempt ${connOf(b).attempt}`);
  assert.equal(sub.status, 'retrying');
  sub.stop();
});

test('kick stops for good and tells the application', async () => {
  const b = base();
  const srv = fakeServer([() => streamResponse([
    JSON.stringify([msg(1, 'a')]) + '\n',
    JSON.stringify([{ type: 'kick', reason: 'spam' }]) + '\n'
  ], { end: true })]);
  const got = [];
  let kicked = null;
  const statuses = [];
  cometbox.subscribe(b, 'a', (m) => got.push(m.id), Object.assign({}, FAST, {
    transport: 'stream', fetch: srv.fetch, storage: memoryStorage(),
    onKick: (reason) => { kicked = reason; }, onStatus: (s) => statuses.push(s)
  }));
  await until(() => kicked !== null, 'kick');
  assert.equal(kicked, 'spam');
  assert.deepEqual(got, [1]);
  assert.equal(statuses.at(-1), 'stopped');
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(srv.requests.length, 1, 'no reconnect after a kick');
});

test('gaps reach onGap before the messages that follow', async () => {
  const b = base();
  const gap = { type: 'gap', queue: 'a', from: 41, to: 57, reason: 'overflow' };
  const srv = fakeServer([
    () => jsonResponse(200, [gap, msg(58, 'a')]),
    () => new Promise(() => {})
  ]);
  const events = [];
  const sub = cometbox.subscribe(b, 'a', (m) => events.push(['msg', m.id]), Object.assign({}, FAST, {
    transport: 'longpoll', fetch: srv.fetch, storage: memoryStorage(),
    onGap: (g) => events.push(['gap', g.from, g.to, g.reason])
  }));
  await until(() => events.length === 2, 'gap and message');
  assert.deepEqual(events, [['gap', 41, 57, 'overflow'], ['msg', 58]]);
  sub.stop();
});

test('a request the browser refuses (CORS or network) is retried with a message that says so', async () => {
  const b = base();
  const refused = () => Promise.reject(new TypeError('Failed to fetch'));
  const srv = fakeServer([refused, refused, refused, () => streamResponse([JSON.stringify([msg(1, 'a')]) + '\n'], { end: false })]);
  const seen = [];
  const warnings = [];
  const warn = console.warn;
  console.warn = (...a) => warnings.push(a.join(' '));
  try {
    const sub = cometbox.subscribe(b, 'a', () => {}, Object.assign({}, FAST, {
      transport: 'stream', fetch: srv.fetch, storage: memoryStorage(),
      onStatus: (s, info) => seen.push([s, info.message, info.reason || ''])
    }));
    await until(() => sub.status === 'open', 'open after three refusals');
    const msg = 'the server refused or could not be reached: a CORS refusal ' +
      "(is this page's origin in cors-origins?) or a network error";
    // one status change for three refusals in a row, then open clears the message
    assert.deepEqual(seen, [['connecting', '', ''], ['retrying', msg, 'unreachable'], ['open', '', '']]);
    assert.equal(sub.statusMessage, '');
    assert.deepEqual(warnings, [`cometbox: ${b}: ${msg}`], 'one console warning per streak');
    sub.stop();
  } finally {
    console.warn = warn;
  }
});

test('a timeout or a 503 is not called a CORS refusal', async () => {
  const b = base();
  const srv = fakeServer([
    () => jsonResponse(503, { error: 'unavailable', detail: 'too many queues' }),
    () => new Promise(() => {})
  ]);
  const seen = [];
  const sub = cometbox.subscribe(b, 'a', () => {}, Object.assign({}, FAST, {
    transport: 'longpoll', fetch: srv.fetch, storage: memoryStorage(),
    onStatus: (s, info) => seen.push([s, info.message])
  }));
  await until(() => seen.length >= 2, 'retrying');
  assert.deepEqual(seen[1], ['retrying', 'cometbox: HTTP 503: too many queues']);
  await until(() => seen.length >= 3, 'retrying after the poll timeout', 4000);
  assert.deepEqual(seen[2], ['retrying', 'cometbox: long-poll timed out']);
  sub.stop();
});

/* A restart gap whose ids restarted below the client's cursor (the daemon's
 * clock stepped back): {"type":"gap","from":F,"to":N,"reason":"restart"}
 * with N the client's since and F the first id of the daemon's run, then
 * messages with ids from F up, all below the cursor. */
test('restart gap below the cursor: the messages after it are delivered, the cursor moves to the highest', async () => {
  const b = base();
  const store = memoryStorage();
  store.setItem(`cometbox:last:${b}|a`, '1000');
  store.setItem(`cometbox:last:${b}|b`, '1200');
  const srv = fakeServer([
    () => jsonResponse(200, [
      { type: 'gap', queue: 'a', from: 500, to: 1000, reason: 'restart' },
      { type: 'gap', queue: 'b', from: 500, to: 1000, reason: 'restart' },
      msg(500, 'a'), msg(501, 'b'), msg(502, 'a')
    ]),
    () => new Promise(() => {})
  ]);
  const events = [];
  const sub = cometbox.subscribe(b, ['a', 'b'], (m) => events.push(['msg', m.id, m.queue]), Object.assign({}, FAST, {
    transport: 'longpoll', fetch: srv.fetch, storage: store,
    onGap: (g) => events.push(['gap', g.queue, g.from, g.to, g.reason])
  }));
  await srv.waitRequests(2);
  assert.match(srv.requests[0].url, /[?&]since=1000(&|$)/);
  assert.deepEqual(events, [
    ['gap', 'a', 500, 1000, 'restart'], ['gap', 'b', 500, 1000, 'restart'],
    ['msg', 500, 'a'], ['msg', 501, 'b'], ['msg', 502, 'a']
  ]);
  const conn = connOf(b);
  assert.equal(conn.tracker.get('a'), 502);
  assert.equal(conn.tracker.get('b'), 502);
  assert.equal(store.getItem(`cometbox:last:${b}|a`), '502');
  assert.equal(store.getItem(`cometbox:last:${b}|b`), '502');
  assert.match(srv.requests[1].url, /[?&]since=502(&|$)/);
  sub.stop();
});

test('restart gap fed to deliver(): stored cursor rewound to from - 1, a queue without a cursor keeps none', () => {
  const b = base();
  const store = memoryStorage();
  store.setItem(`cometbox:last:${b}|a`, '900');
  const Connection = cometbox._internal.Connection;
  const conn = new Connection(b, Object.assign({}, cometbox.defaults, { storage: store }), 'k', () => {});
  const got = [];
  conn.subs = [{ active: true, queues: ['a', 'c'], onMessage: (m) => got.push(m.id), onGap: () => {} }];
  conn.queues = ['a', 'c'];
  const req = { queues: ['a', 'c'], fresh: 0, empty: true };
  // a gap alone (the messages come in a later line of a stream)
  assert.equal(conn.deliver(req, [{ type: 'gap', queue: 'a', from: 300, to: 900, reason: 'restart' }]), true);
  assert.equal(store.getItem(`cometbox:last:${b}|a`), '299', 'the stored cursor is rewound at once');
  assert.equal(conn.tracker.get('c'), null);
  conn.deliver(req, [msg(300, 'a'), msg(301, 'c'), msg(302, 'a')]);
  assert.deepEqual(got, [300, 301, 302]);
  assert.equal(conn.tracker.get('a'), 302);
  assert.equal(store.getItem(`cometbox:last:${b}|a`), '302');
  // a cursor already below from - 1 is left alone; other reasons change nothing
  conn.deliver(req, [{ type: 'gap', queue: 'a', from: 400, to: 450, reason: 'restart' }]);
  conn.deliver(req, [{ type: 'gap', queue: 'a', from: 10, to: 20, reason: 'overflow' }]);
  assert.equal(conn.tracker.get('a'), 302);
  conn.deliver(req, [msg(302, 'a')]);
  assert.deepEqual(got, [300, 301, 302], 'no duplicate');
});

test('buffering proxy: no first line in time makes the client long-poll and remember it', async () => {
  const b = base();
  const store = memoryStorage();
  const srv = fakeServer([
    (req) => (req.url.includes('/stream/')
      ? streamResponse([], { end: false }) // headers, then nothing: held back
      : jsonResponse(200, [msg(7, 'a')])),
    (req) => (req.url.includes('/poll/') ? jsonResponse(200, [msg(7, 'a')]) : streamResponse([], { end: false })),
    () => new Promise(() => {})
  ]);
  const got = [];
  const transports = [];
  const sub = cometbox.subscribe(b, 'a', (m) => { got.push(m.id); transports.push(sub.transport); },
    Object.assign({}, FAST, { fetch: srv.fetch, storage: store }));
  await until(() => got.length === 1, 'message over long-poll');
  assert.match(srv.requests[0].url, /\/stream\/a$/);
  assert.match(srv.requests[1].url, /\/poll\/a\?timeout=0$/);
  assert.deepEqual(transports, ['longpoll']);
  assert.ok(Number(store.getItem(`cometbox:buffered:${b}`)) > 0, 'buffered flag stored');
  sub.stop();
  // a new page in the same session starts with long-poll at once
  const srv2 = fakeServer([() => new Promise(() => {})]);
  const sub2 = cometbox.subscribe(b, 'a', () => {}, Object.assign({}, FAST, { fetch: srv2.fetch, storage: store }));
  await srv2.waitRequests(1);
  assert.match(srv2.requests[0].url, /\/poll\/a\?since=7&timeout=0$/);
  sub2.stop();
  // ... until bufferedRetry has passed
  store.setItem(`cometbox:buffered:${b}`, String(Date.now() - 11 * 60 * 1000));
  const srv3 = fakeServer([() => new Promise(() => {})]);
  const sub3 = cometbox.subscribe(b, 'a', () => {}, Object.assign({}, FAST, { fetch: srv3.fetch, storage: store }));
  await srv3.waitRequests(1);
  assert.match(srv3.requests[0].url, /\/stream\/a\?since=7$/);
  sub3.stop();
});

test('buffering proxy: the fallback polls from the stream head\'s cursor, so what the stream took is not lost', async () => {
  const b = base();
  const store = memoryStorage();
  const srv = fakeServer([
    // the stream took id 6 for us, but the proxy holds its lines back
    () => streamResponse([], { end: false, headers: { 'Cometbox-Cursor': '5' } }),
    (req) => (req.url.includes('since=5') ? jsonResponse(200, [msg(6, 'a'), msg(7, 'a')]) : jsonResponse(200, [])),
    () => new Promise(() => {})
  ]);
  const got = [];
  const sub = cometbox.subscribe(b, ['a', 'b'], (m) => { got.push(m.id); },
    Object.assign({}, FAST, { fetch: srv.fetch, storage: store }));
  await until(() => got.length === 2, 'messages over long-poll');
  assert.match(srv.requests[0].url, /\/stream\/a,b$/, 'a first visit has no cursor');
  assert.match(srv.requests[1].url, /\/poll\/a,b\?since=5&timeout=0$/);
  assert.deepEqual(got, [6, 7]);
  sub.stop();
  // a cursor of the page's own wins over the head's
  const b2 = base();
  const store2 = memoryStorage();
  store2.setItem(`cometbox:last:${b2}|a`, '9');
  const srv2 = fakeServer([
    () => streamResponse([], { end: false, headers: { 'Cometbox-Cursor': '3' } }),
    () => new Promise(() => {})
  ]);
  const sub2 = cometbox.subscribe(b2, ['a', 'b'], () => {}, Object.assign({}, FAST, { fetch: srv2.fetch, storage: store2 }));
  await srv2.waitRequests(2, 10000);
  assert.match(srv2.requests[1].url, /\/poll\/a,b\?since=3&timeout=0$/);
  assert.equal(store2.getItem(`cometbox:last:${b2}|a`), '9');
  assert.equal(store2.getItem(`cometbox:last:${b2}|b`), '3');
  sub2.stop();
});

test('watchdog: a stream silent for longer than the watchdog is replaced', async () => {
  const b = base();
  const srv = fakeServer([
    () => streamResponse([JSON.stringify([msg(1, 'a')]) + '\n'], { end: false }), // then silence
    () => streamResponse([JSON.stringify([msg(2, 'a')]) + '\n'], { end: false })
  ]);
  const got = [];
  const sub = cometbox.subscribe(b, 'a', (m) => got.push(m.id), Object.assign({}, FAST, {
    transport: 'stream', fetch: srv.fetch, storage: memoryStorage()
  }));
  await until(() => got.length === 2, 'second connection', 3000);
  const waited = srv.requests[1].at - srv.requests[0].at;
  assert.ok(waited >= 300, `reconnected after ${waited} ms, watchdog is 300 ms`);
  assert.equal(srv.requests[1].url, `${b}/stream/a?since=1`);
  sub.stop();
});

test('long-poll: since advances, timeout= only when hold is set, duplicates dropped', async () => {
  const b = base();
  const srv = fakeServer([
    () => jsonResponse(200, [msg(1, 'a'), msg(2, 'a')]),
    () => jsonResponse(200, [msg(2, 'a'), msg(3, 'a')]),
    () => new Promise(() => {})
  ]);
  const got = [];
  const sub = cometbox.subscribe(b, 'a', (m) => got.push(m.id), Object.assign({}, FAST, {
    transport: 'longpoll', fetch: srv.fetch, storage: memoryStorage(), hold: 5, since: 0
  }));
  await until(() => got.length === 3, 'three');
  await srv.waitRequests(3);
  assert.deepEqual(got, [1, 2, 3]);
  assert.deepEqual(srv.requests.map((r) => r.url), [
    `${b}/poll/a?since=0&timeout=0`, `${b}/poll/a?since=2&timeout=5`, `${b}/poll/a?since=3&timeout=5`]);
  sub.stop();
});

test('long-poll: a request the server never answers times out and is retried', async () => {
  const b = base();
  const srv = fakeServer([
    (req) => new Promise((resolve, reject) => {
      req.init.signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
    }),
    () => jsonResponse(200, [msg(4, 'a')]),
    () => new Promise(() => {})
  ]);
  const got = [];
  const sub = cometbox.subscribe(b, 'a', (m) => got.push(m.id), Object.assign({}, FAST, {
    transport: 'longpoll', fetch: srv.fetch, storage: memoryStorage(), pollTimeout: 200
  }));
  await until(() => got.length === 1, 'retry after timeout');
  assert.ok(srv.requests[1].at - srv.requests[0].at >= 200);
  sub.stop();
});

test('an exception in onMessage does not break delivery', async () => {
  const b = base();
  const srv = fakeServer([
    () => jsonResponse(200, [msg(1, 'a'), msg(2, 'a')]),
    () => new Promise(() => {})
  ]);
  const got = [];
  const errors = [];
  globalThis.reportError = (e) => errors.push(e.message);
  const sub = cometbox.subscribe(b, 'a', (m) => { got.push(m.id); if (m.id === 1) throw new Error('app bug'); },
    Object.assign({}, FAST, { transport: 'longpoll', fetch: srv.fetch, storage: memoryStorage() }));
  await until(() => got.length === 2 && errors.length === 1, 'both messages');
  delete globalThis.reportError;
  assert.deepEqual(errors, ['app bug']);
  sub.stop();
});

test('legacy init/stop: callback(data, message)', async () => {
  const b = base();
  const srv = fakeServer([() => jsonResponse(200, [msg(1, 'alice', 'Hi')]), () => new Promise(() => {})]);
  const defaults = cometbox.defaults;
  const saved = { fetch: defaults.fetch, transport: defaults.transport, storage: defaults.storage };
  defaults.fetch = srv.fetch;
  defaults.transport = 'longpoll';
  defaults.storage = memoryStorage();
  try {
    const got = [];
    cometbox.init(b, 'alice', (data, m) => got.push([data, m.queue]));
    await until(() => got.length === 1, 'legacy message');
    assert.deepEqual(got, [['Hi', 'alice']]);
    assert.equal(srv.requests[0].url, `${b}/poll/alice?timeout=0`);
    cometbox.stop();
    assert.equal(Object.values(cometbox._internal.connections).filter((c) => c.base === b).length, 0);
  } finally {
    Object.assign(defaults, saved);
  }
});

test('long-poll: the first poll asks for an answer at once and an empty one means open', async () => {
  const b = base();
  const srv = fakeServer([
    () => jsonResponse(200, []),
    () => new Promise(() => {})
  ]);
  const statuses = [];
  const sub = cometbox.subscribe(b, 'a', () => {}, Object.assign({}, FAST, {
    transport: 'longpoll', fetch: srv.fetch, storage: memoryStorage(), onStatus: (s) => statuses.push(s)
  }));
  await srv.waitRequests(2);
  assert.deepEqual(srv.requests.map((r) => r.url), [`${b}/poll/a?timeout=0`, `${b}/poll/a`]);
  assert.deepEqual(statuses, ['connecting', 'open']);
  sub.stop();
});

test('long-poll: empty answers that come back at once do not make a tight loop', async () => {
  const b = base();
  const srv = fakeServer([() => jsonResponse(200, [])]);
  const sub = cometbox.subscribe(b, 'a', () => {}, Object.assign({}, FAST, {
    transport: 'longpoll', fetch: srv.fetch, storage: memoryStorage(), backoffMin: 50, backoffMax: 50
  }));
  await srv.waitRequests(5);
  assert.equal(sub.status, 'open', 'the server answers: still open');
  for (let i = 2; i < 5; i++) {
    const d = srv.requests[i].at - srv.requests[i - 1].at;
    assert.ok(d >= 45, `poll ${i} came ${d} ms after the previous one`);
  }
  sub.stop();
});

/* A fake EventSource driven by the test. */
function fakeEventSourceClass(log) {
  return class FakeES {
    constructor(url) {
      this.url = url;
      this.listeners = {};
      this.closed = false;
      log.push(this);
    }
    addEventListener(type, fn) { (this.listeners[type] = this.listeners[type] || []).push(fn); }
    close() { this.closed = true; }
    emit(type, data) {
      const e = { data: JSON.stringify(data) };
      if (type === 'message' && this.onmessage) this.onmessage(e);
      for (const fn of this.listeners[type] || []) fn(e);
    }
  };
}

test('SSE: our own reconnect with since replaces the browser\'s, events become messages', async () => {
  const b = base();
  const all = [];
  const ES = fakeEventSourceClass(all);
  const got = [];
  const gaps = [];
  const sub = cometbox.subscribe(b, 'a', (m) => got.push(m.id), Object.assign({}, FAST, {
    transport: 'sse', EventSource: ES, fetch: () => Promise.reject(new Error('no fetch')),
    storage: memoryStorage(), onGap: (g) => gaps.push(g.reason)
  }));
  await until(() => all.length === 1, 'EventSource');
  assert.equal(all[0].url, `${b}/events/a`);
  all[0].onopen();
  assert.equal(sub.status, 'open');
  all[0].emit('gap', { type: 'gap', queue: 'a', from: 1, to: 4, reason: 'overflow' });
  all[0].emit('message', msg(5, 'a'));
  all[0].emit('message', msg(5, 'a'));
  all[0].emit('message', msg(6, 'a'));
  all[0].onerror(); // the server ended the stream, or the network dropped
  assert.equal(all[0].closed, true, 'the browser\'s own retry is switched off');
  await until(() => all.length === 2, 'our reconnect');
  assert.equal(all[1].url, `${b}/events/a?since=6`);
  all[1].onopen();
  all[1].emit('message', msg(6, 'a'));
  all[1].emit('message', msg(7, 'a'));
  assert.deepEqual(got, [5, 6, 7]);
  assert.deepEqual(gaps, ['overflow']);
  all[1].emit('kick', { type: 'kick', reason: 'bye' });
  assert.equal(sub.status, 'stopped');
  assert.equal(all[1].closed, true);
});

test('SSE: a failure before open asks /poll for the status; 404 stops for good', async () => {
  const b = base();
  const all = [];
  const srv = fakeServer([() => jsonResponse(404, { error: 'not_found', detail: 'unknown path' })]);
  let error = null;
  const sub = cometbox.subscribe(b, 'a', () => {}, Object.assign({}, FAST, {
    transport: 'sse', EventSource: fakeEventSourceClass(all), fetch: srv.fetch,
    storage: memoryStorage(), onError: (e) => { error = e; }
  }));
  await until(() => all.length === 1, 'EventSource');
  all[0].onerror();
  await until(() => error !== null, 'error');
  assert.equal(error.status, 404);
  assert.equal(srv.requests[0].url, `${b}/poll/a?timeout=0`, 'no since: the probe acknowledges nothing');
  assert.equal(sub.status, 'stopped');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(all.length, 1);
});

test('the library never listens to unload or beforeunload (they block the back/forward cache)', () => {
  const fs = require('node:fs');
  const src = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'clients', 'js', 'cometbox.js'), 'utf8');
  assert.doesNotMatch(src, /['"](before)?unload['"]/);
  assert.match(src, /'pagehide'/);
});
