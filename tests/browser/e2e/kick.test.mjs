/*
 * Browser tests: an operator's kick stops the client for good over every
 * transport; it does not reconnect and later messages do not reach it.
 * The kick is sent with `cometboxctl kick` (skipped, with the reason printed,
 * only when COMETBOXCTL does not exist) and straight over the admin socket.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { execFile } from 'node:child_process';
import { publishOne, ctlPath } from '../lib/daemon.mjs';
import { adminRequest } from '../lib/admin.mjs';
import { openTestPage, got, waitCount, waitStatus, until, recordSocketCloses } from '../lib/browser.mjs';
import { useStack } from '../lib/stack.mjs';

let daemon, browser, pages;

useStack({ args: ['--heartbeat', '1'] },
  (s) => ({ daemon, browser, pages } = s), () => ({ daemon, browser, pages }));

function runCtl(args) {
  return new Promise((resolve) => {
    execFile(ctlPath(), args, { env: Object.assign({}, process.env, { COMETBOX_SOCKET: daemon.admin }), timeout: 10000 },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

/* Opens a page on `queue`, kicks it with kickFn, and checks that it stopped
 * for good: status stopped, onKick got the reason, no request afterwards
 * although a retry would come within 200 ms, later messages not shown. */
async function kickAndCheck(transport, queue, kickFn, reason) {
  const ctx = await browser.newContext();
  await recordSocketCloses(ctx);
  const requests = [];
  ctx.on('request', (r) => { if (r.url().startsWith(daemon.browser)) requests.push(r.url()); });
  const page = await openTestPage(ctx, pages, daemon.browser, queue,
    { transport, heartbeat: 1000, backoffMin: 50, backoffMax: 200 });
  await waitStatus(page, 'open');
  const first = await publishOne(daemon, queue, 'before the kick');
  await waitCount(page, 1);
  if (transport === 'longpoll') {
    // the kick must find a held poll: wait until the next one is out
    await page.waitForFunction(() => window.sub && window.__got.length === 1, null, { timeout: 5000 });
  }
  await kickFn();
  await waitStatus(page, 'stopped', 10000);
  assert.deepEqual(await page.evaluate(() => window.__kicks), [reason]);
  const n = requests.length;
  const sockets = page.sockets.length;
  const later = await publishOne(daemon, queue, 'after the kick');
  // a client that reconnects would do so within backoffMax (200 ms) and
  // would get `later` at once; give it five times that
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(requests.length, n, `no request after the kick: ${requests.slice(n).join(' ')}`);
  assert.equal(page.sockets.length, sockets, 'no WebSocket after the kick');
  if (transport === 'websocket' || transport === 'auto') {
    // the kick came as a frame on the one socket, which is closed
    assert.equal(sockets, 1);
    const last = JSON.parse(page.sockets[0].received.at(-1));
    assert.deepEqual(last, [{ type: 'kick', reason }], 'the last frame is the kick');
    await until(() => page.sockets[0].closed, 'the socket closed');
    // then the daemon's close frame: code 4000 and the reason
    await page.waitForFunction(() => window.__closes.length === 1, null, { timeout: 5000 });
    assert.deepEqual(await page.evaluate(() => window.__closes), [[4000, reason]]);
  }
  assert.deepEqual((await got(page)).map((m) => m.id), [first]);
  assert.ok(later > first);
  assert.equal(await page.locator('#status').textContent(), 'stopped');
  await ctx.close();
}

for (const transport of ['websocket', 'stream', 'sse', 'longpoll']) {
  test(`kick over the admin socket stops the client for good (${transport})`, async () => {
    const queue = `kick.admin.${transport}`;
    await kickAndCheck(transport, queue, async () => {
      const ans = await adminRequest(daemon.admin, 'kick', { queue, reason: 'spam' });
      assert.equal(ans.ok, true, JSON.stringify(ans));
      assert.equal(ans.result.kicked, 1, JSON.stringify(ans));
    }, 'spam');
  });
}

test('cometboxctl kick stops the client for good', async (t) => {
  const ctl = ctlPath();
  if (!fs.existsSync(ctl)) {
    const reason = `cometboxctl not found at ${ctl} (set COMETBOXCTL)`;
    console.log(`# SKIP cometboxctl kick: ${reason}`);
    t.skip(reason);
    return;
  }
  const queue = 'kick.ctl';
  await kickAndCheck('auto', queue, async () => {
    const r = await runCtl(['kick', queue, '--reason', 'maintenance']);
    assert.equal(r.code, 0, `cometboxctl kick ${queue}: exit ${r.code}\n${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /kicked 1 client/);
  }, 'maintenance');
});
