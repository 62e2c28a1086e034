/*
 * Browser tests of the WebSocket transport (/ws): `auto`
 * picks it against a real cometboxd; a proxy that breaks upgrades makes
 * `auto` fall back to the stream, deliver everything and remember it; acks
 * clear mailbox messages (and without them the messages stay pending); a
 * SIGTERM restart while a page holds a socket loses and duplicates nothing.
 * The other suites run their tests over `websocket` too. The contract:
 * docs/PROTOCOL.md, "GET /ws/{queues}".
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDaemon, publishOne, publishXml } from '../lib/daemon.mjs';
import { startUpgradeBreakingProxy } from '../lib/proxies.mjs';
import {
  openTestPage, got, waitCount, waitStatus, until
} from '../lib/browser.mjs';
import { useStack } from '../lib/stack.mjs';

let daemon, browser, pages;

useStack({ args: ['--heartbeat', '1'] },
  (s) => ({ daemon, browser, pages } = s), () => ({ daemon, browser, pages }));

/* What a new page gets from a poll without since (pending messages). */
async function pending(d, queue) {
  const res = await fetch(`${d.browser}/poll/${queue}?timeout=0`);
  assert.equal(res.status, 200, `poll ${queue}: HTTP ${res.status}`);
  return (await res.json()).filter((o) => o.type === undefined).map((o) => o.id);
}

test('auto picks the WebSocket against a real cometboxd', async () => {
  const queue = 'ws.auto';
  const ctx = await browser.newContext();
  const http = [];
  ctx.on('request', (r) => { if (r.url().startsWith(daemon.browser)) http.push(r.url()); });
  const page = await openTestPage(ctx, pages, daemon.browser, queue, { heartbeat: 1000 });
  await waitStatus(page, 'open');
  assert.equal(await page.evaluate(() => window.sub.transport), 'websocket');
  assert.equal(await page.locator('#transport').textContent(), 'websocket');
  const id = await publishOne(daemon, queue, 'over a socket');
  await waitCount(page, 1);
  assert.deepEqual(await got(page), [{ id, queue, data: 'over a socket' }]);
  const wsBase = daemon.browser.replace(/^http:/, 'ws:');
  assert.deepEqual(page.sockets.map((s) => s.url), [`${wsBase}/ws/${queue}`], 'one socket, no since on a first visit');
  assert.deepEqual(http, [], 'no HTTP request to cometboxd: no stream, no poll, no probe');
  // the first frame is the cursor object; the message is acknowledged
  const first = JSON.parse(page.sockets[0].received[0]);
  assert.equal(first[0].type, 'cursor', `first frame ${page.sockets[0].received[0]}`);
  assert.ok(Number.isSafeInteger(first[0].id) && first[0].id < id, `cursor ${first[0].id} below ${id}`);
  await until(() => page.sockets[0].sent.includes(`{"ack":${id}}`), `{"ack":${id}} sent`);
  assert.deepEqual(await page.evaluate(() => window.__statuses), ['connecting', 'open']);
  await ctx.close();
});

for (const mode of ['refuse', 'strip', 'drop', 'mute']) {
  test(`a proxy that breaks upgrades (${mode}): auto falls back, delivers everything, remembers it`, async () => {
    const proxy = await startUpgradeBreakingProxy(daemon.browserPort, mode);
    const queue = `ws.broken.${mode}`;
    const before = await publishXml(daemon, [{ queue, data: 'p0' }, { queue, data: 'p1' }]);
    const ctx = await browser.newContext();
    try {
      const page = await openTestPage(ctx, pages, proxy.url, queue, { heartbeat: 1000, firstLineTimeout: 1500 });
      const t0 = Date.now();
      await waitCount(page, 2, 15000);
      const took = Date.now() - t0;
      assert.equal(await page.evaluate(() => window.sub.transport), 'stream');
      if (mode === 'mute') assert.ok(took >= 1000, `fell back after ${took} ms, before firstLineTimeout`);
      assert.ok(proxy.upgrades >= 1, 'the WebSocket was tried first');
      assert.equal(proxy.upgrades, 1, 'once: the fallback is at once, not after retries');
      // a new page (first visit): messages the broken socket was handed are
      // still pending (a WebSocket acknowledges only with {"ack":...})
      assert.deepEqual((await got(page)).map((m) => m.id), before);
      const during = [];
      for (let i = 0; i < 3; i++) during.push(await publishOne(daemon, queue, `s${i}`));
      await waitCount(page, 5);
      assert.deepEqual((await got(page)).map((m) => m.id), [...before, ...during], 'each once, in order');
      assert.ok(proxy.paths.some((p) => p.startsWith(`/stream/${queue}`)), proxy.paths.join(' '));
      const probes = proxy.paths.filter((p) => p.startsWith('/poll/'));
      if (mode === 'mute') assert.deepEqual(probes, [], 'an open but mute socket needs no status probe');
      else assert.deepEqual(probes, [`/poll/${queue}?timeout=0`], 'one status probe, without since');
      const key = await page.evaluate(() => Object.keys(sessionStorage).find((k) => k.startsWith('cometbox:nowebsocket:')));
      assert.equal(key, `cometbox:nowebsocket:${proxy.url}`, 'the fallback is remembered for the session');
      assert.ok(!(await page.evaluate(() => window.__statuses)).includes('retrying'), 'a fallback is not a failure');
      // a reload goes straight to the stream, resuming after the last id
      const n = proxy.paths.length;
      await page.reload();
      await waitStatus(page, 'open');
      assert.equal(proxy.upgrades, 1, 'no WebSocket after the reload');
      assert.equal(await page.evaluate(() => window.sub.transport), 'stream');
      assert.equal(proxy.paths[n], `/stream/${queue}?since=${during.at(-1)}`);
      const after = await publishOne(daemon, queue, 'after the reload');
      await waitCount(page, 1);
      assert.deepEqual((await got(page)).map((m) => m.id), [after]);
    } finally {
      await ctx.close();
      await proxy.close();
    }
  });
}

test('acknowledged over the WebSocket: no longer pending for a new page; not acknowledged: still pending', async () => {
  const queue = 'ws.ack';
  const ctx = await browser.newContext();
  const page = await openTestPage(ctx, pages, daemon.browser, queue, { transport: 'websocket', heartbeat: 1000 });
  await waitStatus(page, 'open');
  const ids = await publishXml(daemon, [{ queue, data: 'a' }, { queue, data: 'b' }, { queue, data: 'c' }]);
  await waitCount(page, 3);
  const last = ids.at(-1);
  await until(() => page.sockets[0].sent.includes(`{"ack":${last}}`), `{"ack":${last}} sent`);
  for (const text of page.sockets[0].sent) assert.match(text, /^\{"ack":\d+\}$/, 'the client sends acks only');
  // the daemon takes the ack after the frame arrives: wait (bounded) for it
  let left;
  await until(async () => (left = await pending(daemon, queue)).length === 0,
    'the acknowledged messages to leave the mailbox', 5000).catch(() => {
    assert.fail(`still pending for a poll without since after {"ack":${last}}: ${JSON.stringify(left)}`);
  });
  await ctx.close();

  // the control: a page whose acks never leave it
  const queue2 = 'ws.noack';
  const ctx2 = await browser.newContext();
  await ctx2.addInitScript(() => {
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (data) {
      if (/^\{"ack":/.test(String(data))) { window.__dropped = (window.__dropped || 0) + 1; return; }
      return send.call(this, data);
    };
  });
  const page2 = await openTestPage(ctx2, pages, daemon.browser, queue2, { transport: 'websocket', heartbeat: 1000 });
  await waitStatus(page2, 'open');
  const id2 = await publishOne(daemon, queue2, 'delivered, never acknowledged');
  await waitCount(page2, 1);
  await page2.waitForFunction(() => window.__dropped >= 1, null, { timeout: 5000 });
  // give a daemon that acknowledges on delivery time to show it
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(await pending(daemon, queue2), [id2], 'delivered over a WebSocket but not acknowledged: pending');
  await ctx2.close();
});

test('SIGTERM while a page holds a WebSocket: it resumes with since, nothing lost, nothing twice', async () => {
  // its own daemon with a state-dir, so what was published before the stop
  // survives it (docs/DURABILITY.md)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbx-ws-restart-'));
  let d = await startDaemon({ dir, args: ['--heartbeat', '1', '--state-dir', path.join(dir, 'state')] });
  const ctx = await browser.newContext();
  try {
    const queue = 'ws.restart';
    const page = await openTestPage(ctx, pages, d.browser, queue,
      { transport: 'websocket', heartbeat: 1000, backoffMin: 100, backoffMax: 1000 });
    await waitStatus(page, 'open');
    const a = await publishXml(d, Array.from({ length: 10 }, (_, i) => ({ queue, data: `a${i}` })));
    await waitCount(page, 10);
    // published just before the stop: in flight, maybe not delivered or acknowledged
    const b = await publishXml(d, Array.from({ length: 10 }, (_, i) => ({ queue, data: `b${i}` })));
    const exit = await d.stop('SIGTERM');
    assert.equal(exit.code, 0, `cometboxd exit ${JSON.stringify(exit)}`);
    await waitStatus(page, 'retrying', 15000);
    const had = (await got(page)).map((m) => m.id);
    const sockets = page.sockets.length;
    d = await d.restart();
    await waitStatus(page, 'open', 15000);
    const c = await publishXml(d, Array.from({ length: 10 }, (_, i) => ({ queue, data: `c${i}` })));
    await waitCount(page, 30, 15000);
    const msgs = await got(page);
    assert.deepEqual(msgs.map((m) => m.id), [...a, ...b, ...c], 'every id once, in order');
    assert.equal(await page.evaluate(() => window.sub.transport), 'websocket');
    // the socket after the restart asked from the last id the page had
    const resumed = page.sockets.slice(sockets).find((s) => s.received.length > 0);
    assert.ok(resumed, `a socket after the restart: ${JSON.stringify(page.sockets.map((s) => s.url))}`);
    assert.match(resumed.url, new RegExp(`/ws/${queue}\\?since=${had.at(-1)}$`));
    // and the daemon replays nothing at or below it
    const replayed = resumed.received.flatMap((f) => JSON.parse(f)).filter((o) => o.type === undefined && o.id <= had.at(-1));
    assert.deepEqual(replayed, [], 'no message at or below since');
    const statuses = await page.evaluate(() => window.__statuses);
    assert.ok(!statuses.includes('stopped'), JSON.stringify(statuses));
  } finally {
    await ctx.close();
    await d.stop();
  }
});
