/*
 * Browser tests of a bad network between Chromium and cometboxd, made with
 * small loopback proxies: connections cut in the middle of a burst, a socket
 * that goes silent while still open (watchdog; for a WebSocket the daemon's
 * missed pong), and a proxy that buffers streams and passes no upgrades
 * (fallback from WebSocket to stream to long-poll).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { publishXml, publishOne } from '../lib/daemon.mjs';
import { startTcpProxy, startBufferingProxy } from '../lib/proxies.mjs';
import {
  openTestPage, got, waitCount, waitStatus, until
} from '../lib/browser.mjs';
import { useStack } from '../lib/stack.mjs';

let daemon, browser, pages;

useStack({ args: ['--heartbeat', '1'] },
  (s) => ({ daemon, browser, pages } = s), () => ({ daemon, browser, pages }));

async function count(page) {
  return page.evaluate(() => window.__got.length);
}

for (const transport of ['websocket', 'stream', 'sse', 'longpoll']) {
  test(`connections cut during a burst lose nothing (${transport})`, async () => {
    const proxy = await startTcpProxy(daemon.browserPort);
    const queue = `cut.${transport}`;
    const ctx = await browser.newContext();
    const page = await openTestPage(ctx, pages, proxy.url, queue,
      { transport, heartbeat: 1000, backoffMin: 100, backoffMax: 500 });
    await waitStatus(page, 'open');
    const ids = [];
    let cuts = 0;
    for (let batch = 0; batch < 10; batch++) {
      ids.push(...await publishXml(daemon, Array.from({ length: 20 }, (_, i) => ({ queue, data: `b${batch}.${i}` }))));
      if (batch % 3 === 1) {
        // cut once the page has started on this batch, whatever is in flight
        await until(async () => (await count(page)) > batch * 20, 'progress before the cut', 15000);
        cuts += proxy.cut();
      }
    }
    await waitCount(page, 200, 30000);
    const msgs = await got(page);
    assert.equal(msgs.length, 200);
    assert.deepEqual(msgs.map((m) => m.id), ids, 'every id once, in order');
    assert.ok(cuts >= 3, `cut ${cuts} connections`);
    assert.ok(proxy.accepted >= 4, `reconnected through the proxy (${proxy.accepted} connections)`);
    await ctx.close();
    await proxy.close();
  });
}

test('a connection that goes silent while still open is replaced by the watchdog', async () => {
  const proxy = await startTcpProxy(daemon.browserPort);
  const queue = 'silent';
  const ctx = await browser.newContext();
  // the daemon beats every second: watchdog = 2 * 1 s + 5 s
  const page = await openTestPage(ctx, pages, proxy.url, queue, { transport: 'stream', heartbeat: 1000 });
  await waitStatus(page, 'open');
  const a = await publishOne(daemon, queue, 'a');
  await waitCount(page, 1);
  const frozen = proxy.freeze();
  assert.ok(frozen >= 1);
  const t0 = Date.now();
  const b = await publishOne(daemon, queue, 'b');
  const c = await publishOne(daemon, queue, 'c');
  await waitCount(page, 3, 20000);
  const waited = Date.now() - t0;
  assert.ok(waited >= 5000, `the watchdog waited ${waited} ms; a live stream would not be replaced`);
  assert.deepEqual((await got(page)).map((m) => m.id), [a, b, c]);
  await ctx.close();
  await proxy.close();
});

/* The JS client has no watchdog on a WebSocket (pings are invisible to
 * scripts): the daemon pings after a heartbeat of silence and closes a socket
 * that sent no pong by the next one. Through this proxy that close reaches
 * the browser as the proxy's own close; on a real partition the browser
 * learns it from TCP or on wake-up (docs/CLIENT-JS.md). */
test('a WebSocket that goes silent while open is closed by the daemon (no pong) and replaced', async () => {
  const proxy = await startTcpProxy(daemon.browserPort);
  const queue = 'silent.ws';
  const ctx = await browser.newContext();
  const page = await openTestPage(ctx, pages, proxy.url, queue, { transport: 'websocket', heartbeat: 1000 });
  await waitStatus(page, 'open');
  const a = await publishOne(daemon, queue, 'a');
  await waitCount(page, 1);
  assert.ok(proxy.freeze() >= 1);
  const t0 = Date.now();
  const b = await publishOne(daemon, queue, 'b');
  const c = await publishOne(daemon, queue, 'c');
  await waitCount(page, 3, 15000);
  const waited = Date.now() - t0;
  assert.ok(waited >= 1000, `replaced after ${waited} ms: sooner than a heartbeat`);
  assert.deepEqual((await got(page)).map((m) => m.id), [a, b, c]);
  assert.equal(page.sockets.length, 2, page.sockets.map((s) => s.url).join(' '));
  assert.match(page.sockets[1].url, new RegExp(`\\?since=${a}$`), 'resumed after the last id it had');
  await ctx.close();
  await proxy.close();
});

test('a proxy that buffers the stream makes the client fall back to long-poll', async () => {
  const proxy = await startBufferingProxy(daemon.browserPort);
  const queue = 'buffered';
  const ctx = await browser.newContext();
  const page = await openTestPage(ctx, pages, proxy.url, queue, { heartbeat: 1000, firstLineTimeout: 1500 });
  const t0 = Date.now();
  // the stream's head is through, so the daemon holds it: what is published
  // now goes to the stream (which acknowledges it) and sits in the proxy
  await page.waitForFunction(() => Object.values(cometbox._internal.connections)
    .some((c) => c.req && c.req.transport === 'stream' && c.req.headersAt > 0), null, { timeout: 15000 });
  const ids = [];
  for (let i = 0; i < 2; i++) ids.push(await publishOne(daemon, queue, `s${i}`));
  await page.waitForFunction(() => window.sub.transport === 'longpoll', null, { timeout: 15000 });
  const took = Date.now() - t0;
  assert.ok(took >= 1000, `fell back after ${took} ms, before the probe time`);
  for (let i = 0; i < 3; i++) ids.push(await publishOne(daemon, queue, `p${i}`));
  await waitCount(page, 5, 15000);
  assert.deepEqual((await got(page)).map((m) => m.id), ids);
  // the proxy passes no upgrade: the WebSocket fails, its status probe
  // answers, the stream is tried, held back, and long-poll is used
  const http = proxy.paths.filter((p) => !p.startsWith('/ws/'));
  assert.equal(http[0], '/poll/buffered?timeout=0', `the WebSocket's status probe first: ${http.join(' ')}`);
  assert.match(http[1], /^\/stream\/buffered/, 'streaming was tried next');
  assert.ok(http.slice(2).every((p) => p.startsWith('/poll/buffered')), http.join(' '));
  assert.ok(await page.evaluate(() => Object.keys(sessionStorage).some((k) => k.startsWith('cometbox:buffered:'))),
    'the fallback is remembered for the session');
  // a reload goes straight to long-poll
  const before = proxy.paths.length;
  await page.reload();
  await page.waitForFunction(() => window.sub && window.sub.status === 'open', null, { timeout: 15000 });
  assert.ok(proxy.paths.slice(before).every((p) => p.startsWith('/poll/')), proxy.paths.slice(before).join(' '));
  await ctx.close();
  await proxy.close();
});
