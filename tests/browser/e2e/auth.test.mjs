/*
 * Browser tests with subscribe-auth = token (docs/SECURITY.md): the `token`
 * option carries a valid token on every transport; a missing, wrong or
 * expired token is a 403 and the client stops for good, EventSource and
 * WebSocket too (their status comes from the client's /poll probe).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { publishOne } from '../lib/daemon.mjs';
import {
  openTestPage, openSameOriginPage, got, waitCount, waitStatus
} from '../lib/browser.mjs';
import { useStack } from '../lib/stack.mjs';

const SECRET = 'browser-tests-secret-0123456789abcdef';
let daemon, browser, pages;

/* The recipe of docs/SECURITY.md, made here independently of cometboxd. */
function token(queues, ttl) {
  const expiry = Math.floor(Date.now() / 1000) + ttl;
  const sig = crypto.createHmac('sha256', SECRET).update(`cometbox1:${expiry}:${queues}`).digest('base64url');
  return `${expiry}.${queues}.${sig}`;
}

useStack({
    args: ['--heartbeat', '1', '--subscribe-auth', 'token', '--subscribe-secret', SECRET]
  },
  (s) => ({ daemon, browser, pages } = s), () => ({ daemon, browser, pages }));

for (const transport of ['websocket', 'stream', 'sse', 'longpoll']) {
  test(`a valid token lets the page subscribe (${transport})`, async () => {
    const queue = `auth.${transport}`;
    const ctx = await browser.newContext();
    const page = await openTestPage(ctx, pages, daemon.browser, queue,
      { transport, heartbeat: 1000, token: token(`${queue},other`, 600) });
    await waitStatus(page, 'open');
    const id = await publishOne(daemon, queue, 'secret stuff');
    await waitCount(page, 1);
    assert.deepEqual(await got(page), [{ id, queue, data: 'secret stuff' }]);
    await ctx.close();
  });

  for (const [what, tok, detail] of [
    ['no token', undefined, /token is required/],
    ['a token for another queue', token('bob', 600), /does not cover/],
    ['an expired token', token(`auth.${transport}`, -10), /expired/]
  ]) {
    test(`${what}: 403, the client stops for good (${transport})`, async () => {
      const queue = `auth.${transport}`;
      const ctx = await browser.newContext();
      const requests = [];
      ctx.on('request', (r) => {
        if (/\/(stream|events|poll)\//.test(r.url())) requests.push(r.url());
      });
      // same origin: cometboxd's error answers carry no CORS headers (yet)
      const page = await openSameOriginPage(ctx, daemon.browser, queue,
        { transport, heartbeat: 1000, backoffMin: 50, backoffMax: 200, token: tok });
      await waitStatus(page, 'stopped');
      const errors = await page.evaluate(() => window.__errors);
      assert.equal(errors.length, 1, JSON.stringify(errors));
      assert.equal(errors[0].status, 403);
      // the daemon's detail reaches the page (for SSE through the status probe)
      assert.match(errors[0].message, detail);
      const n = requests.length;
      const sockets = page.sockets.length;
      // a retry would come within backoffMax (200 ms): give it five times that
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(requests.length, n, `no retry after a 403: ${requests.slice(n).join(' ')}`);
      assert.equal(page.sockets.length, sockets, 'no WebSocket retry after a 403');
      assert.ok(!(await page.evaluate(() => window.__statuses)).includes('retrying'));
      await ctx.close();
    });
  }
}

test('cross-origin 403: the client stops for good', async () => {
  const ctx = await browser.newContext();
  const page = await openTestPage(ctx, pages, daemon.browser, 'auth.cors',
    { transport: 'stream', heartbeat: 1000, backoffMin: 50, backoffMax: 200 });
  try {
    await waitStatus(page, 'stopped', 5000);
    const errors = await page.evaluate(() => window.__errors);
    assert.equal(errors[0].status, 403);
  } finally {
    await ctx.close();
  }
});
