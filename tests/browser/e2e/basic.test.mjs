/*
 * Browser tests, basics: a message published after subscribe shows up; what
 * was published while the page was closed arrives when it opens; a reload
 * resumes without replaying; two tabs on one queue (each its own
 * connection, and sharing one); the legacy API; the ES module. `auto` picks
 * the WebSocket; the tests that look at requests run over the stream too.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { publishOne, publishXml } from '../lib/daemon.mjs';
import {
  openTestPage, got, waitCount, waitStatus, until
} from '../lib/browser.mjs';
import { useStack } from '../lib/stack.mjs';

let daemon, browser, pages;

useStack({ args: ['--heartbeat', '1'] },
  (s) => ({ daemon, browser, pages } = s), () => ({ daemon, browser, pages }));

test('a message published after subscribe shows up on the page', async () => {
  const ctx = await browser.newContext();
  const page = await openTestPage(ctx, pages, daemon.browser, 'alice', { heartbeat: 1000 });
  await waitStatus(page, 'open');
  assert.equal(await page.evaluate(() => window.sub.transport), 'websocket');
  const id = await publishOne(daemon, 'alice', 'Hello & <welcome>');
  await waitCount(page, 1);
  assert.deepEqual(await got(page), [{ id, queue: 'alice', data: 'Hello & <welcome>' }]);
  // what a person sees
  assert.equal(await page.locator('#log li').first().textContent(), 'alice: Hello & <welcome>');
  assert.deepEqual(await page.evaluate(() => window.__statuses), ['connecting', 'open']);
  await ctx.close();
});

/* The URLs of the held requests of `page` on `queue`: WebSockets for auto,
 * stream requests otherwise (playwright shows sockets apart). */
function heldUrls(page, transport, queue) {
  const path = transport === 'stream' ? 'stream' : 'ws';
  const urls = [];
  page.on('request', (r) => { if (r.url().includes(`/${path}/${queue}`)) urls.push(r.url()); });
  page.on('websocket', (w) => { if (w.url().includes(`/${path}/${queue}`)) urls.push(w.url()); });
  return urls;
}

for (const transport of ['auto', 'stream']) {
  test(`messages published while the page was closed arrive when it opens (${transport})`, async () => {
    const queue = `bob.${transport}`;
    const opts = transport === 'auto' ? { heartbeat: 1000 } : { transport, heartbeat: 1000 };
    const ids = await publishXml(daemon, [
      { queue, data: 'one' }, { queue, data: 'two' }, { queue: 'other', data: 'not mine' }
    ]);
    const third = await publishOne(daemon, queue, 'three');
    const ctx = await browser.newContext();
    const page = await openTestPage(ctx, pages, daemon.browser, queue, opts);
    await waitCount(page, 3);
    assert.deepEqual(await got(page), [
      { id: ids[0], queue, data: 'one' },
      { id: ids[1], queue, data: 'two' },
      { id: third, queue, data: 'three' }
    ]);
    assert.equal(await page.evaluate(() => window.sub.transport), transport === 'auto' ? 'websocket' : 'stream');
    // a reload resumes after the last id: nothing is replayed, new ones arrive
    const after = heldUrls(page, transport, queue);
    await page.reload();
    await waitStatus(page, 'open');
    const four = await publishOne(daemon, queue, 'four');
    await waitCount(page, 1);
    assert.deepEqual(await got(page), [{ id: four, queue, data: 'four' }]);
    assert.equal(await page.evaluate((k) => sessionStorage.getItem(k), `cometbox:last:${daemon.browser}|${queue}`),
      String(four), 'the cursor is kept in sessionStorage');
    const held = transport === 'auto'
      ? `${daemon.browser.replace(/^http:/, 'ws:')}/ws/${queue}` : `${daemon.browser}/stream/${queue}`;
    assert.equal(after[0], `${held}?since=${third}`, 'the reloaded page resumes with since');
    // closed, more published, opened again in the same tab
    await page.goto('about:blank');
    const five = await publishOne(daemon, queue, 'five');
    const six = await publishOne(daemon, queue, 'six');
    await page.goBack();
    await waitCount(page, 2);
    assert.deepEqual((await got(page)).map((m) => m.id), [five, six]);
    await ctx.close();
  });
}

test('one page multiplexes all its queues onto one request', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const streams = [];
  page.on('request', (r) => { if (/\/(stream|events|poll)\//.test(r.url())) streams.push(r.url()); });
  page.on('websocket', (w) => streams.push(w.url()));
  await page.goto(`${pages.origin}/test.html`);
  await page.evaluate((url) => {
    window.__a = [];
    window.__b = [];
    window.s1 = cometbox.subscribe(url, 'mx.a', (m) => window.__a.push(m.data), { heartbeat: 1000 });
    window.s2 = cometbox.subscribe(url, ['mx.b'], (m) => window.__b.push(m.data), { heartbeat: 1000 });
  }, daemon.browser);
  await until(() => streams.length >= 1, 'a stream request');
  await until(() => page.evaluate(() => window.s1.status === 'open'), 'open');
  await publishXml(daemon, [{ queue: 'mx.a', data: 'for a' }, { queue: 'mx.b', data: 'for b' }]);
  await page.waitForFunction(() => window.__a.length === 1 && window.__b.length === 1, null, { timeout: 10000 });
  assert.deepEqual(await page.evaluate(() => [window.__a, window.__b]), [['for a'], ['for b']]);
  assert.equal(streams.length, 1, `one held request, saw ${streams.join(' ')}`);
  assert.match(streams[0], /^ws:.*\/ws\/mx\.a,mx\.b(\?|$)/);
  await ctx.close();
});

test('two tabs on one queue both receive, each on its own connection', async () => {
  const ctx = await browser.newContext();
  const a = await openTestPage(ctx, pages, daemon.browser, 'room', { heartbeat: 1000 });
  const b = await openTestPage(ctx, pages, daemon.browser, 'room', { heartbeat: 1000 });
  await waitStatus(a, 'open');
  await waitStatus(b, 'open');
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push(await publishOne(daemon, 'room', `r${i}`));
  await waitCount(a, 5);
  await waitCount(b, 5);
  assert.deepEqual((await got(a)).map((m) => m.id), ids);
  assert.deepEqual((await got(b)).map((m) => m.id), ids);
  await ctx.close();
});

for (const transport of ['auto', 'stream']) {
  test(`two tabs sharing one connection (shared: true) both receive (${transport})`, async () => {
    const ctx = await browser.newContext();
    const queue = `shared.${transport}`;
    const path = transport === 'stream' ? 'stream' : 'ws';
    const held = [];
    ctx.on('request', (r) => { if (r.url().includes(`/${path}/${queue}`)) held.push(r.url()); });
    ctx.on('page', (p) => p.on('websocket', (w) => { if (w.url().includes(`/${path}/${queue}`)) held.push(w.url()); }));
    const opts = { heartbeat: 1000, shared: true, leaderBeat: 500 };
    if (transport !== 'auto') opts.transport = transport;
    const a = await openTestPage(ctx, pages, daemon.browser, queue, opts);
    await waitStatus(a, 'open');
    const b = await openTestPage(ctx, pages, daemon.browser, queue, opts);
    await waitStatus(b, 'open');
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await publishOne(daemon, queue, `s${i}`));
    await waitCount(a, 5);
    await waitCount(b, 5);
    assert.deepEqual((await got(a)).map((m) => m.id), ids);
    assert.deepEqual((await got(b)).map((m) => m.id), ids);
    assert.equal(held.length, 1, `one connection for two tabs, saw ${held.join(' ')}`);
    assert.equal(await a.evaluate(() => window.sub.transport), transport === 'auto' ? 'websocket' : 'stream');
    assert.equal(await b.evaluate(() => window.sub.transport), 'shared');
    // the leader's tab closes: the other one takes over the connection
    await a.close();
    await until(() => held.length === 2, 'the follower connects itself');
    assert.match(held[1], new RegExp(`/${path}/${queue}\\?since=${ids.at(-1)}$`), 'from its own cursor');
    const next = await publishOne(daemon, queue, 'after the leader left');
    await waitCount(b, 6);
    assert.deepEqual((await got(b)).map((m) => m.id), ids.concat([next]));
    await ctx.close();
  });
}

test('legacy cometbox.init(url, id, callback) and cometbox.stop()', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${pages.origin}/test.html`);
  await page.evaluate((url) => {
    window.__legacy = [];
    cometbox.init(url, 'legacy', (data) => window.__legacy.push(data));
  }, daemon.browser);
  await page.waitForFunction(() => Object.values(cometbox._internal.connections).some((c) => c.status === 'open'),
    null, { timeout: 10000 });
  await publishOne(daemon, 'legacy', 'old style');
  await page.waitForFunction(() => window.__legacy.length === 1, null, { timeout: 10000 });
  assert.deepEqual(await page.evaluate(() => window.__legacy), ['old style']);
  await page.evaluate(() => cometbox.stop());
  assert.equal(await page.evaluate(() => Object.keys(cometbox._internal.connections).length), 0);
  await ctx.close();
});

test('ES module import (cometbox.mjs)', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const q = new URLSearchParams({ url: daemon.browser, queues: 'esm', opts: '{}' });
  await page.goto(`${pages.origin}/esm.html?${q}`);
  await page.waitForFunction(() => window.__got !== undefined, null, { timeout: 10000 });
  assert.equal(await page.evaluate(() => window.__same), true);
  // pending when the subscription connects, or pushed to it: either way it arrives
  const id = await publishOne(daemon, 'esm', 'from a module');
  await page.waitForFunction(() => window.__got.length === 1, null, { timeout: 10000 });
  assert.deepEqual(await page.evaluate(() => window.__got[0]), { id, queue: 'esm', data: 'from a module' });
  await ctx.close();
});
