/*
 * Browser tests of page life: offline and online, hidden and visible, frozen
 * again after a sleep that killed the socket, pagehide and pageshow (over the
 * WebSocket and the stream). After each, the page has every message
 * published meanwhile, once, in order.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { publishOne } from '../lib/daemon.mjs';
import { startTcpProxy } from '../lib/proxies.mjs';
import {
  openTestPage, got, waitCount, waitStatus, until
} from '../lib/browser.mjs';
import { useStack } from '../lib/stack.mjs';

let daemon, browser, pages;

useStack({ args: ['--heartbeat', '1'] },
  (s) => ({ daemon, browser, pages } = s), () => ({ daemon, browser, pages }));

async function publishSome(queue, prefix, n) {
  const ids = [];
  for (let i = 0; i < n; i++) ids.push(await publishOne(daemon, queue, `${prefix}${i}`));
  return ids;
}

/* Headless Chromium is always "visible": the page is told otherwise the way
 * a browser tells it, through document.visibilityState and the event. */
function setHidden(page, hidden) {
  return page.evaluate((h) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

for (const transport of ['websocket', 'stream', 'longpoll']) {
  test(`offline then online resumes without loss or duplicates (${transport})`, async () => {
    const queue = `offline.${transport}`;
    const ctx = await browser.newContext();
    const page = await openTestPage(ctx, pages, daemon.browser, queue, { transport, heartbeat: 1000 });
    await waitStatus(page, 'open');
    const before = await publishSome(queue, 'on', 3);
    await waitCount(page, 3);
    await ctx.setOffline(true);
    assert.equal(await page.evaluate(() => navigator.onLine), false);
    await waitStatus(page, 'retrying');
    const during = await publishSome(queue, 'off', 4);
    await ctx.setOffline(false);
    await waitCount(page, 7, 15000);
    await waitStatus(page, 'open');
    const after = await publishSome(queue, 'back', 2);
    await waitCount(page, 9);
    assert.deepEqual((await got(page)).map((m) => m.id), [...before, ...during, ...after]);
    await ctx.close();
  });
}

test('hidden then visible: messages published while hidden arrive once', async () => {
  const queue = 'hidden.open';
  const ctx = await browser.newContext();
  const page = await openTestPage(ctx, pages, daemon.browser, queue, { heartbeat: 1000 });
  await waitStatus(page, 'open');
  const a = await publishSome(queue, 'v', 2);
  await waitCount(page, 2);
  await setHidden(page, true);
  const b = await publishSome(queue, 'h', 3);
  await waitCount(page, 5); // the stream stays open in the background by default
  await setHidden(page, false);
  const c = await publishSome(queue, 'v2', 2);
  await waitCount(page, 7);
  assert.deepEqual((await got(page)).map((m) => m.id), [...a, ...b, ...c]);
  await ctx.close();
});

/* Counts the held requests of `page` on `transport` as they start and end
 * (a WebSocket is not a request for playwright). */
function watchHeld(ctx, page, transport) {
  const path = transport === 'websocket' ? '/ws/' : '/stream/';
  const started = [];
  const ended = [];
  if (transport === 'websocket') {
    page.on('websocket', (w) => {
      started.push(w.url());
      w.on('close', () => ended.push(w.url()));
    });
  } else {
    ctx.on('request', (r) => { if (r.url().includes(path)) started.push(r.url()); });
    page.on('requestfailed', (r) => { if (r.url().includes(path)) ended.push(r.url()); });
    page.on('requestfinished', (r) => { if (r.url().includes(path)) ended.push(r.url()); });
  }
  return { started, ended };
}

/* A page whose held requests are watched from before it subscribes. */
async function openWatched(ctx, queue, opts) {
  const page = await ctx.newPage();
  await page.goto(`${pages.origin}/test.html`);
  const held = watchHeld(ctx, page, opts.transport);
  await page.evaluate(([url, q, o]) => window.start(url, q, o), [daemon.browser, [queue], opts]);
  return { page, held };
}

for (const transport of ['websocket', 'stream']) {
  test(`closeWhenHidden: the connection closes while hidden and catches up when visible (${transport})`, async () => {
    const queue = `hidden.closed.${transport}`;
    const ctx = await browser.newContext();
    const { page, held } = await openWatched(ctx, queue, { transport, heartbeat: 1000, closeWhenHidden: true });
    await waitStatus(page, 'open');
    const a = await publishSome(queue, 'v', 2);
    await waitCount(page, 2);
    await setHidden(page, true);
    await until(() => held.ended.length >= 1, 'the connection closed when the page was hidden');
    const b = await publishSome(queue, 'h', 3);
    assert.equal((await got(page)).length, 2, 'nothing arrives while hidden and closed');
    await setHidden(page, false);
    await waitCount(page, 5);
    const c = await publishSome(queue, 'v2', 1);
    await waitCount(page, 6);
    assert.deepEqual((await got(page)).map((m) => m.id), [...a, ...b, ...c]);
    assert.equal(held.started.length, 2, held.started.join(' '));
    assert.match(held.started[1], new RegExp(`since=${a[1]}$`));
    await ctx.close();
  });
}

/* Over the stream only: through this proxy a WebSocket's dead socket is
 * closed by the daemon's missed pong within two heartbeats, before any
 * wake-up event could act (network.test.mjs has that case); the wake-up
 * check itself is the same code for both (unit tests). */
for (const wake of ['resume', 'visible', 'online']) {
  test(`waking up (${wake}) with a socket that died in its sleep reconnects at once`, async () => {
    // Safari and sleeping laptops leave sockets that look open but are dead.
    // The watchdog is set far out so that only the wake-up check can act.
    const proxy = await startTcpProxy(daemon.browserPort);
    const queue = `wake.${wake}`;
    const ctx = await browser.newContext();
    const page = await openTestPage(ctx, pages, proxy.url, queue,
      { transport: 'stream', heartbeat: 1000, watchdog: 120000 });
    await waitStatus(page, 'open');
    const a = await publishSome(queue, 'a', 1);
    await waitCount(page, 1);
    if (wake === 'visible') await setHidden(page, true);
    assert.ok(proxy.freeze() >= 1);
    const b = await publishSome(queue, 'z', 2);
    // the page has had no byte for longer than a heartbeat (+2 s)
    await page.waitForFunction(() => Object.values(cometbox._internal.connections)
      .every((c) => Date.now() - c.lastByte > 3500), null, { timeout: 10000, polling: 100 });
    assert.equal((await got(page)).length, 1);
    const t0 = Date.now();
    if (wake === 'resume') await page.evaluate(() => document.dispatchEvent(new Event('resume')));
    if (wake === 'visible') await setHidden(page, false);
    if (wake === 'online') await page.evaluate(() => window.dispatchEvent(new Event('online')));
    await waitCount(page, 3, 10000);
    assert.ok(Date.now() - t0 < 10000, 'reconnected on the event, not by the watchdog (120 s)');
    assert.deepEqual((await got(page)).map((m) => m.id), [...a, ...b]);
    await ctx.close();
    await proxy.close();
  });
}

for (const transport of ['websocket', 'stream']) {
  test(`pagehide closes the connection (back/forward cache), pageshow resumes (${transport})`, async () => {
    const queue = `bfcache.${transport}`;
    const ctx = await browser.newContext();
    const { page, held } = await openWatched(ctx, queue, { transport, heartbeat: 1000 });
    await waitStatus(page, 'open');
    const a = await publishSome(queue, 'a', 1);
    await waitCount(page, 1);
    // Playwright's Chromium runs without the back/forward cache, so the page
    // gets the events a cached page gets.
    await page.evaluate(() => window.dispatchEvent(new PageTransitionEvent('pagehide', { persisted: true })));
    await until(() => held.ended.length >= 1, 'the connection closed on pagehide');
    const b = await publishSome(queue, 'b', 2);
    await page.evaluate(() => window.dispatchEvent(new PageTransitionEvent('pageshow', { persisted: true })));
    await waitCount(page, 3);
    assert.deepEqual((await got(page)).map((m) => m.id), [...a, ...b]);
    assert.equal(held.started.length, 2, held.started.join(' '));
    await ctx.close();
  });
}
