/*
 * Unit tests of the WebSocket transport of clients/js/cometbox.js with a
 * fake WebSocket class (unit/fakes.js): the URL, the cursor of the first
 * frame, acknowledgements, close codes (4000 kick, the rest reconnect with
 * backoff), and the fallback of `auto` to the HTTP transports. No browser,
 * no daemon. The contract: docs/PROTOCOL.md, "GET /ws/{queues}".
 */
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const {
  memoryStorage, fakeServer, streamResponse, jsonResponse, msg, until, fakeWebSocketClass
} = require('./fakes.js');

const cometbox = require(path.join(__dirname, '..', '..', '..', 'clients', 'js', 'cometbox.js'));

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

const UNREACHABLE = 'the server refused or could not be reached: a CORS refusal ' +
  "(is this page's origin in cors-origins?) or a network error";

let seq = 0;
function base(scheme = 'http') { return `${scheme}://ws${++seq}.invalid:1800`; }

function connOf(b) {
  const c = Object.values(cometbox._internal.connections).filter((x) => x.base === b);
  assert.equal(c.length, 1);
  return c[0];
}

const never = () => new Promise(() => {});
const cursor = (id) => ({ type: 'cursor', id });

/* A subscription on a fake WebSocket; `fetch` plays /poll and /stream. */
function wsSubscribe(b, queues, opts = {}) {
  const sockets = [];
  const got = [];
  const events = [];
  const srv = opts.server || fakeServer([() => jsonResponse(200, [])]);
  const sub = cometbox.subscribe(b, queues, (m) => got.push(m.id), Object.assign({}, FAST, {
    transport: 'websocket', WebSocket: fakeWebSocketClass(sockets), fetch: srv.fetch,
    storage: opts.storage || memoryStorage(),
    onStatus: (s, info) => events.push(['status', s, info.message]),
    onGap: (g) => events.push(['gap', g.queue, g.from, g.to, g.reason]),
    onKick: (reason) => events.push(['kick', reason]),
    onError: (e) => events.push(['error', e.status, e.message])
  }, opts.options || {}));
  return { sub, sockets, got, events, srv };
}

const statuses = (events) => events.filter((e) => e[0] === 'status').map((e) => e[1]);

test('subscribe() takes transport websocket and refuses unknown ones', () => {
  assert.throws(() => cometbox.subscribe(base(), 'a', () => {}, { transport: 'ws' }),
    /transport must be auto, websocket, stream, sse or longpoll/);
});

test('websocket: ws:// URL, cursor of the first frame adopted, messages once, ack after each frame with messages', async () => {
  const b = base();
  const store = memoryStorage();
  const { sub, sockets, got, events } = wsSubscribe(b, ['a', 'b'], { storage: store });
  await until(() => sockets.length === 1, 'a socket');
  assert.equal(sockets[0].url, `ws://${b.slice('http://'.length)}/ws/a,b`, 'a first visit has no since');
  sockets[0].open();
  assert.equal(sub.status, 'connecting', 'open only with the first frame');
  sockets[0].frame([cursor(5)]);
  assert.equal(sub.status, 'open');
  assert.equal(sub.transport, 'websocket');
  assert.deepEqual(sockets[0].sent, [], 'nothing to acknowledge in a frame without messages');
  // the cursor is each queue's starting point, in storage too (a reload resumes from it)
  assert.equal(store.getItem(`cometbox:last:${b}|a`), '5');
  assert.equal(store.getItem(`cometbox:last:${b}|b`), '5');
  sockets[0].frame([msg(6, 'a'), msg(7, 'b')]);
  assert.deepEqual(got, [6, 7]);
  assert.deepEqual(sockets[0].sent, ['{"ack":7}'], 'the highest id of the frame, acknowledged after delivery');
  sockets[0].frame([{ type: 'gap', queue: 'a', from: 8, to: 9, reason: 'overflow' }]);
  sockets[0].frame([]);
  assert.deepEqual(sockets[0].sent, ['{"ack":7}'], 'a gap or an empty frame acknowledges nothing more');
  sockets[0].frame([msg(10, 'a')]);
  assert.deepEqual(sockets[0].sent, ['{"ack":7}', '{"ack":10}']);
  // 1001: the server stops; reconnect with backoff and since
  sockets[0].serverClose(1001, 'server stopping');
  assert.deepEqual(events.at(-1), ['status', 'retrying', 'cometbox: the server closed the WebSocket (1001 server stopping)']);
  await until(() => sockets.length === 2, 'the reconnect');
  assert.ok(sockets[1].at - sockets[0].at >= FAST.backoffMin, 'not at once: backoff');
  assert.equal(sockets[1].url, `ws://${b.slice('http://'.length)}/ws/a,b?since=10`);
  sockets[1].open();
  // the new socket replays 10 (already delivered) and brings 11
  sockets[1].frame([cursor(10), msg(10, 'a'), msg(11, 'b')]);
  assert.deepEqual(got, [6, 7, 10, 11], 'each id once');
  assert.deepEqual(sockets[1].sent, ['{"ack":11}'], 'acks count per connection');
  assert.deepEqual(events.filter((e) => e[0] === 'gap'), [['gap', 'a', 8, 9, 'overflow']]);
  assert.deepEqual(statuses(events), ['connecting', 'open', 'retrying', 'open']);
  sub.stop();
  assert.deepEqual(sockets[1].closedBy, { code: 1000, reason: undefined }, 'stop() closes the socket');
});

test('websocket: a cursor of the page\'s own wins over the first frame\'s', async () => {
  const b = base();
  const store = memoryStorage();
  store.setItem(`cometbox:last:${b}|a`, '9');
  const { sockets } = wsSubscribe(b, ['a', 'b'], { storage: store });
  await until(() => sockets.length === 1, 'a socket');
  assert.match(sockets[0].url, /\/ws\/a,b$/, 'b has no cursor: no since');
  sockets[0].open();
  sockets[0].frame([cursor(3)]);
  sockets[0].serverClose(1006);
  await until(() => sockets.length === 2, 'reconnect');
  assert.match(sockets[1].url, /\/ws\/a,b\?since=3$/);
  assert.equal(store.getItem(`cometbox:last:${b}|a`), '9');
  assert.equal(store.getItem(`cometbox:last:${b}|b`), '3');
});

test('websocket: https pages use wss://, the token is in the query', async () => {
  const b = base('https');
  const { sockets } = wsSubscribe(b, 'a', { options: { token: 'x y', since: 4 } });
  await until(() => sockets.length === 1, 'a socket');
  assert.equal(sockets[0].url, `wss://${b.slice('https://'.length)}/ws/a?since=4&token=x%20y`);
});

test('websocket: a kick frame stops for good, the client closes the socket, no reconnect', async () => {
  const b = base();
  const { sockets, got, events } = wsSubscribe(b, 'a');
  await until(() => sockets.length === 1, 'a socket');
  sockets[0].open();
  sockets[0].frame([cursor(0), msg(1, 'a')]);
  sockets[0].frame([{ type: 'kick', reason: 'spam' }]);
  assert.deepEqual(got, [1]);
  assert.deepEqual(events.filter((e) => e[0] === 'kick'), [['kick', 'spam']]);
  assert.equal(statuses(events).at(-1), 'stopped');
  assert.notEqual(sockets[0].closedBy, null, 'closed by the client');
  sockets[0].serverClose(4000, 'spam'); // the close that follows changes nothing
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(sockets.length, 1, 'no reconnect after a kick');
  assert.equal(events.filter((e) => e[0] === 'kick').length, 1);
});

test('websocket: close 4000 without a kick frame is a kick with the close reason', async () => {
  const b = base();
  const { sub, sockets, events } = wsSubscribe(b, 'a');
  await until(() => sockets.length === 1, 'a socket');
  sockets[0].open();
  sockets[0].frame([cursor(0)]);
  sockets[0].serverClose(4000, 'maintenance');
  assert.deepEqual(events.filter((e) => e[0] === 'kick'), [['kick', 'maintenance']]);
  assert.equal(sub.status, 'stopped');
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(sockets.length, 1, 'no reconnect after a kick');
});

test('websocket: other closes (1011 no pong, 1006, 1000) reconnect with backoff, never in a loop', async () => {
  const b = base();
  const { sub, sockets, events } = wsSubscribe(b, 'a', { options: { backoffMin: 40, backoffMax: 80 } });
  for (const [i, code, reason] of [[0, 1011, 'no pong'], [1, 1006, ''], [2, 1000, '']]) {
    await until(() => sockets.length === i + 1, `socket ${i + 1}`);
    sockets[i].open();
    sockets[i].frame([cursor(i)]);
    sockets[i].serverClose(code, reason);
    assert.equal(sub.status, 'retrying');
    assert.match(events.at(-1)[2], new RegExp(`\\(${code}`));
  }
  await until(() => sockets.length === 4, 'socket 4');
  for (let i = 1; i < 4; i++) {
    const d = sockets[i].at - sockets[i - 1].at;
    assert.ok(d >= 40, `reconnect ${i} after ${d} ms, backoffMin is 40`);
  }
});

test('websocket: a frame that is not a JSON array closes the socket and reconnects', async () => {
  const b = base();
  const { sockets, got } = wsSubscribe(b, 'a');
  await until(() => sockets.length === 1, 'a socket');
  sockets[0].open();
  sockets[0].frame([cursor(0), msg(1, 'a')]);
  sockets[0].raw('{"oops":1}\n');
  assert.notEqual(sockets[0].closedBy, null);
  await until(() => sockets.length === 2, 'reconnect');
  assert.match(sockets[1].url, /since=1$/);
  assert.deepEqual(got, [1]);
});

/* ------------------------------------------------------------ auto, fallback */

function httpServer(streamItems) {
  return fakeServer([(req) => {
    if (req.url.includes('/poll/')) return jsonResponse(200, []);
    if (req.url.includes('/stream/')) {
      return streamResponse([JSON.stringify(streamItems) + '\n'], { end: false, headers: { 'Cometbox-Cursor': '0' } });
    }
    return never();
  }]);
}

test('auto: WebSocket first; closed before its first frame while /poll answers: stream, remembered for bufferedRetry', async () => {
  const b = base();
  const store = memoryStorage();
  const srv = httpServer([msg(1, 'a')]);
  const { sub, sockets, got, events } = wsSubscribe(b, 'a', { storage: store, server: srv, options: { transport: 'auto' } });
  await until(() => sockets.length === 1, 'a socket');
  assert.match(sockets[0].url, /^ws:.*\/ws\/a$/);
  sockets[0].serverClose(1006); // the handshake failed (a proxy answered 400, say)
  await until(() => got.length === 1, 'the message over the stream');
  assert.equal(srv.requests[0].url, `${b}/poll/a?timeout=0`, 'the status probe: no since, no hold');
  assert.match(srv.requests[1].url, /\/stream\/a$/);
  assert.equal(sub.transport, 'stream');
  assert.ok(!statuses(events).includes('retrying'), 'a fallback is not a failure: ' + statuses(events));
  assert.ok(Number(store.getItem(`cometbox:nowebsocket:${b}`)) > 0, 'remembered in storage');
  assert.equal(store.getItem(`cometbox:buffered:${b}`), null, 'not taken for a buffering proxy');
  sub.stop();
  // the next page of the session goes straight to the stream
  const again = wsSubscribe(b, 'a', { storage: store, server: httpServer([]), options: { transport: 'auto' } });
  await until(() => again.srv.requests.length === 1, 'a request');
  assert.match(again.srv.requests[0].url, /\/stream\/a\?since=1$/);
  assert.equal(again.sockets.length, 0, 'no WebSocket tried');
  again.sub.stop();
  // ... until bufferedRetry has passed
  store.setItem(`cometbox:nowebsocket:${b}`, String(Date.now() - 11 * 60 * 1000));
  const later = wsSubscribe(b, 'a', { storage: store, server: httpServer([]), options: { transport: 'auto' } });
  await until(() => later.sockets.length === 1, 'a WebSocket again');
  assert.match(later.sockets[0].url, /\/ws\/a\?since=1$/);
  assert.equal(store.getItem(`cometbox:nowebsocket:${b}`), null);
});

test('auto: a socket that opens but brings no frame within firstLineTimeout falls back, remembered', async () => {
  const b = base();
  const store = memoryStorage();
  const srv = httpServer([msg(2, 'a')]);
  const { sub, sockets, got } = wsSubscribe(b, 'a', { storage: store, server: srv, options: { transport: 'auto' } });
  await until(() => sockets.length === 1, 'a socket');
  const t0 = Date.now();
  sockets[0].open(); // a proxy answered 101 and passes nothing
  await until(() => got.length === 1, 'the message over the stream');
  assert.ok(Date.now() - t0 >= FAST.firstLineTimeout, 'waited for the first frame');
  assert.notEqual(sockets[0].closedBy, null, 'the mute socket is closed');
  assert.match(srv.requests[0].url, /\/stream\/a$/, 'no probe needed: the socket opened');
  assert.equal(sub.transport, 'stream');
  assert.ok(Number(store.getItem(`cometbox:nowebsocket:${b}`)) > 0);
});

test('auto: a socket that opens and closes before its first frame falls back too', async () => {
  const b = base();
  const store = memoryStorage();
  const srv = httpServer([msg(3, 'a')]);
  const { sockets, got } = wsSubscribe(b, 'a', { storage: store, server: srv, options: { transport: 'auto' } });
  await until(() => sockets.length === 1, 'a socket');
  sockets[0].open();
  sockets[0].serverClose(1006); // dropped right after the handshake
  await until(() => got.length === 1, 'the message over the stream');
  assert.deepEqual(srv.requests.map((r) => r.url.replace(b, '')), ['/poll/a?timeout=0', '/stream/a']);
  assert.ok(Number(store.getItem(`cometbox:nowebsocket:${b}`)) > 0);
});

test('auto: a server that cannot be reached at all is not a broken WebSocket: retry it, say why', async () => {
  const b = base();
  const store = memoryStorage();
  const srv = fakeServer([() => Promise.reject(new TypeError('Failed to fetch'))]);
  const warn = console.warn;
  console.warn = () => {};
  try {
    const { sub, sockets, events } = wsSubscribe(b, 'a', { storage: store, server: srv, options: { transport: 'auto' } });
    for (let i = 0; i < 3; i++) {
      await until(() => sockets.length === i + 1, `socket ${i + 1}`);
      sockets[i].serverClose(1006);
    }
    await until(() => sockets.length === 4, 'still WebSocket');
    assert.equal(sub.status, 'retrying');
    assert.equal(sub.statusMessage, UNREACHABLE);
    assert.deepEqual(statuses(events), ['connecting', 'retrying'], 'one status change for the streak');
    assert.equal(store.getItem(`cometbox:nowebsocket:${b}`), null, 'nothing remembered');
    assert.ok(srv.requests.every((r) => /\/poll\/a\?timeout=0$/.test(r.url)), 'only probes, no stream');
  } finally {
    console.warn = warn;
  }
});

test('auto: a refused handshake whose probe says 403 stops for good with the detail', async () => {
  const b = base();
  const srv = fakeServer([() => jsonResponse(403, { error: 'forbidden', detail: 'the token does not cover queue a' })]);
  const { sub, sockets, events } = wsSubscribe(b, 'a', { server: srv, options: { transport: 'auto' } });
  await until(() => sockets.length === 1, 'a socket');
  sockets[0].serverClose(1006);
  await until(() => sub.status === 'stopped', 'stopped');
  assert.deepEqual(events.filter((e) => e[0] === 'error'),
    [['error', 403, 'cometbox: HTTP 403: the token does not cover queue a']]);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(sockets.length, 1);
  assert.equal(srv.requests.length, 1);
});

test('auto: 503 from the probe is retried on WebSocket (Retry-After), not a fallback', async () => {
  const b = base();
  const store = memoryStorage();
  const srv = fakeServer([() => jsonResponse(503, { error: 'unavailable', detail: 'stopping' }, { 'Retry-After': '1' })]);
  const { sub, sockets } = wsSubscribe(b, 'a', { storage: store, server: srv, options: { transport: 'auto' } });
  await until(() => sockets.length === 1, 'a socket');
  sockets[0].serverClose(1006);
  await until(() => sockets.length === 2, 'retry', 3000);
  assert.ok(sockets[1].at - sockets[0].at >= 990, 'Retry-After said 1 s');
  assert.equal(sub.statusMessage, 'cometbox: HTTP 503: stopping');
  assert.equal(store.getItem(`cometbox:nowebsocket:${b}`), null);
});

test('websocket (forced): HTTP works but the socket does not: retry WebSocket, say so, never fall back', async () => {
  const b = base();
  const store = memoryStorage();
  const srv = fakeServer([() => jsonResponse(200, [])]);
  const { sub, sockets } = wsSubscribe(b, 'a', { storage: store, server: srv });
  await until(() => sockets.length === 1, 'a socket');
  sockets[0].serverClose(1006);
  await until(() => sockets.length === 2, 'retry on WebSocket');
  assert.equal(sub.status, 'retrying');
  assert.match(sub.statusMessage, /WebSocket closed before its first frame \(1006\) while HTTP works/);
  assert.equal(store.getItem(`cometbox:nowebsocket:${b}`), null);
  // open but mute: given up after the watchdog time (forced: no fallback)
  const t0 = Date.now();
  sockets[1].open();
  await until(() => sockets.length === 3, 'a third socket', 3000);
  assert.ok(Date.now() - t0 >= FAST.watchdog, 'waited the watchdog time');
  assert.equal(sub.statusMessage, 'cometbox: no first frame from the server');
  assert.ok(srv.requests.every((r) => r.url.includes('/poll/')), 'no stream');
});

test('websocket: a handshake that never completes is given up after connectTimeout', async () => {
  const b = base();
  const srv = fakeServer([() => Promise.reject(new TypeError('Failed to fetch'))]);
  const warn = console.warn;
  console.warn = () => {};
  try {
    const { sockets } = wsSubscribe(b, 'a', { server: srv, options: { connectTimeout: 100 } });
    await until(() => sockets.length === 2, 'a second socket', 2000);
    assert.ok(sockets[1].at - sockets[0].at >= 100);
    assert.notEqual(sockets[0].closedBy, null, 'the hanging socket is closed');
  } finally {
    console.warn = warn;
  }
});

test('auto without a WebSocket class uses the stream as before', async () => {
  const b = base();
  const srv = httpServer([msg(1, 'a')]);
  const got = [];
  const sub = cometbox.subscribe(b, 'a', (m) => got.push(m.id), Object.assign({}, FAST, {
    fetch: srv.fetch, storage: memoryStorage(), WebSocket: null
  }));
  await until(() => got.length === 1, 'a message');
  assert.match(srv.requests[0].url, /\/stream\/a$/);
  assert.equal(sub.transport, 'stream');
});

test('websocket: waking up after a silence longer than a heartbeat replaces the socket', async () => {
  const b = base();
  const { sockets } = wsSubscribe(b, 'a');
  await until(() => sockets.length === 1, 'a socket');
  sockets[0].open();
  sockets[0].frame([cursor(0), msg(1, 'a')]);
  const conn = connOf(b);
  conn.check(true);
  assert.equal(sockets.length, 1, 'a live socket is kept');
  conn.lastByte = Date.now() - (FAST.heartbeat + 2001);
  conn.check(true);
  assert.notEqual(sockets[0].closedBy, null);
  assert.equal(sockets.length, 2);
  assert.match(sockets[1].url, /since=1$/);
});

test('auto: after a socket worked, a refused handshake is retried; muteLimit failures in a row fall back', async () => {
  const b = base();
  const store = memoryStorage();
  const srv = httpServer([msg(9, 'a')]);
  const { sub, sockets, got } = wsSubscribe(b, 'a', { storage: store, server: srv, options: { transport: 'auto' } });
  await until(() => sockets.length === 1, 'a socket');
  sockets[0].open();
  sockets[0].frame([cursor(0), msg(1, 'a')]);
  sockets[0].serverClose(1001, 'server stopping');
  // the daemon comes back refusing a few handshakes (503 while it starts, say)
  for (let i = 1; i <= 2; i++) {
    await until(() => sockets.length === i + 1, `socket ${i + 1}`);
    sockets[i].serverClose(1006);
  }
  await until(() => sockets.length === 4, 'still WebSocket after two failures');
  assert.equal(store.getItem(`cometbox:nowebsocket:${b}`), null);
  assert.match(sub.statusMessage, /^cometbox: the WebSocket closed before its first frame \(1006\)$/);
  sockets[3].serverClose(1006); // the third in a row
  await until(() => got.length === 2, 'the stream');
  assert.deepEqual(got, [1, 9]);
  assert.equal(sub.transport, 'stream');
  assert.ok(Number(store.getItem(`cometbox:nowebsocket:${b}`)) > 0);
});
