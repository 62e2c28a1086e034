/*
 * Fakes for the unit tests of clients/js/cometbox.js: a storage, a server
 * behind an injected fetch, and a WebSocket class driven by the test.
 * Not a test file itself (node --test picks *.test.js only).
 */
'use strict';

function memoryStorage() {
  const m = new Map();
  return {
    map: m,
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => { m.set(k, String(v)); },
    removeItem: (k) => { m.delete(k); }
  };
}

/* Every fetch() goes to the next handler of `plan` (the last one repeats);
 * a handler gets {url, init, at} and returns a Response or a Promise. */
function fakeServer(plan) {
  const requests = [];
  function fetch(url, init) {
    const req = { url, init, at: Date.now() };
    requests.push(req);
    const h = plan[Math.min(requests.length - 1, plan.length - 1)];
    return Promise.resolve().then(() => h(req));
  }
  return { fetch, requests };
}

function streamResponse(chunks, { end = true, headers = {} } = {}) {
  const enc = new TextEncoder();
  const body = new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(enc.encode(ch));
      if (end) c.close();
    }
  });
  return new Response(body, {
    status: 200,
    headers: Object.assign({ 'Content-Type': 'application/x-ndjson; charset=utf-8' }, headers)
  });
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

/* A WebSocket class whose sockets the test drives: open(), frame(items)
 * (one JSON array and "\n", as cometboxd sends), serverClose(code, reason)
 * (also for a handshake that failed: code 1006 before open). Every socket
 * made is pushed to `log`; what the client sends is in `sent`, how it closed
 * the socket in `closedBy`. */
function fakeWebSocketClass(log) {
  return class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.closedBy = null;
      this.at = Date.now();
      log.push(this);
    }
    send(data) {
      if (this.readyState === 0) throw new Error('InvalidStateError: still CONNECTING');
      if (this.readyState === 1) this.sent.push(data);
    }
    close(code, reason) {
      if (this.readyState >= 2) return;
      this.readyState = 3;
      this.closedBy = { code, reason };
    }
    open() {
      this.readyState = 1;
      if (this.onopen) this.onopen({ type: 'open' });
    }
    frame(items) {
      if (this.onmessage) this.onmessage({ data: JSON.stringify(items) + '\n' });
    }
    raw(data) {
      if (this.onmessage) this.onmessage({ data });
    }
    serverClose(code, reason = '') {
      this.readyState = 3;
      if (code === 1006 && this.onerror) this.onerror({ type: 'error' });
      if (this.onclose) this.onclose({ code, reason, wasClean: code !== 1006 });
    }
  };
}

module.exports = {
  memoryStorage, fakeServer, streamResponse, jsonResponse, msg, until, fakeWebSocketClass
};
