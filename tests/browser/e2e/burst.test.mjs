/*
 * Browser tests: 200 messages published in a burst arrive once each and in
 * order over each transport (WebSocket, fetch stream, EventSource,
 * long-poll). The daemon ends streams after 4 KiB so the burst also crosses
 * reconnects (a WebSocket is not recycled by size).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { publishXml, publishJson, publishOne } from '../lib/daemon.mjs';
import { openTestPage, got, waitCount, waitStatus, until } from '../lib/browser.mjs';
import { useStack } from '../lib/stack.mjs';

let daemon, browser, pages;

useStack({ args: ['--heartbeat', '1', '--stream-max-bytes', '4096'] },
  (s) => ({ daemon, browser, pages } = s), () => ({ daemon, browser, pages }));

/* 200 messages: 100 single XML posts, one JSON batch of 50, one XML batch of
 * 50, all sent without waiting for the page. Returns the ids in order. */
async function burst(queue) {
  const ids = [];
  const singles = [];
  for (let i = 0; i < 100; i++) singles.push(publishOne(daemon, queue, `m${i}`));
  // single posts run concurrently; their ids order them
  ids.push(...(await Promise.all(singles)));
  ids.push(...(await publishJson(daemon, Array.from({ length: 50 }, (_, i) => ({ queue, data: `m${100 + i}` })))));
  ids.push(...(await publishXml(daemon, Array.from({ length: 50 }, (_, i) => ({ queue, data: `m${150 + i}` })))));
  return ids;
}

for (const transport of ['websocket', 'stream', 'sse', 'longpoll']) {
  test(`200 messages in a burst arrive once each and in order over ${transport}`, async () => {
    const ctx = await browser.newContext();
    const queue = `burst.${transport}`;
    const requests = [];
    ctx.on('request', (r) => { if (r.url().startsWith(daemon.browser)) requests.push(r.url()); });
    const page = await openTestPage(ctx, pages, daemon.browser, queue, { transport, heartbeat: 1000 });
    await waitStatus(page, 'open');
    const ids = await burst(queue);
    await waitCount(page, 200, 30000);
    const msgs = await got(page);
    assert.equal(msgs.length, 200, 'no duplicates, nothing missing');
    const sorted = [...ids].sort((a, b) => a - b);
    assert.deepEqual(msgs.map((m) => m.id), sorted, 'in id order');
    // the data of the batches is in publish order too
    assert.deepEqual(msgs.slice(100).map((m) => m.data), Array.from({ length: 100 }, (_, i) => `m${100 + i}`));
    assert.deepEqual(new Set(msgs.map((m) => m.data)).size, 200);
    assert.equal(await page.locator('#log li').count(), 200);
    const path = { websocket: '/ws/', stream: '/stream/', sse: '/events/', longpoll: '/poll/' }[transport];
    const held = requests.concat(page.sockets.map((s) => s.url));
    assert.ok(held.length > 0 && held.every((u) => u.includes(path)), `only ${transport} requests: ${held.slice(0, 3)}`);
    if (transport === 'websocket') {
      // every batch that brought messages was acknowledged, up to the last id
      const acks = () => page.sockets.flatMap((s) => s.sent).map((t) => JSON.parse(t).ack);
      await until(() => Math.max(...acks()) === sorted.at(-1), `{"ack":${sorted.at(-1)}}; sent ${acks().slice(-3)}`);
    }
    if (transport === 'stream' || transport === 'longpoll') {
      // the burst crossed at least one reconnect (4 KiB streams, 100-message polls)
      assert.ok(requests.length >= 2, `expected reconnects, saw ${requests.length} requests`);
    }
    // after the burst the page is still live
    const last = await publishOne(daemon, queue, 'after');
    await waitCount(page, 201);
    assert.equal((await got(page))[200].id, last);
    await ctx.close();
  });
}
