/*
 * Browser tests: the daemon is stopped and started again on the same ports;
 * the page shows "retrying", reconnects by itself over each transport, is
 * told about the restart gap, and receives the messages published after.
 * `auto` is the WebSocket, before and after (a server that was away is not a
 * proxy that breaks upgrades).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { publishOne } from '../lib/daemon.mjs';
import { openTestPage, got, waitCount, waitStatus, recordSocketCloses } from '../lib/browser.mjs';
import { useStack } from '../lib/stack.mjs';

let daemon, browser, pages;

useStack({ args: ['--heartbeat', '1'] },
  (s) => ({ daemon, browser, pages } = s), () => ({ daemon, browser, pages }));

for (const transport of ['auto', 'stream', 'sse', 'longpoll']) {
  test(`daemon stopped and restarted: the page reconnects by itself (${transport})`, async () => {
    const queue = `restart.${transport}`;
    const ctx = await browser.newContext();
    await recordSocketCloses(ctx);
    const page = await openTestPage(ctx, pages, daemon.browser, queue,
      { transport, heartbeat: 1000, backoffMax: 2000 });
    await waitStatus(page, 'open');
    const first = await publishOne(daemon, queue, 'before');
    await waitCount(page, 1);
    const used = await page.evaluate(() => window.sub.transport);
    assert.equal(used, transport === 'auto' ? 'websocket' : transport);

    const exit = await daemon.stop();
    assert.equal(exit.code, 0, `cometboxd exit ${JSON.stringify(exit)}`);
    // what the user sees while the server is away
    await waitStatus(page, 'retrying', 15000);
    assert.equal(await page.locator('#status').textContent(), 'retrying');
    if (used === 'websocket') {
      // the daemon said goodbye with 1001, and the page says so
      assert.deepEqual((await page.evaluate(() => window.__closes))[0], [1001, 'server stopping']);
      assert.ok((await page.evaluate(() => window.__messages)).includes(
        'cometbox: the server closed the WebSocket (1001 server stopping)'));
    }

    daemon = await daemon.restart();
    await waitStatus(page, 'open', 15000);
    const second = await publishOne(daemon, queue, 'after');
    assert.ok(second > first, 'ids grow across restarts');
    await waitCount(page, 2, 15000);
    const msgs = await got(page);
    assert.deepEqual(msgs.map((m) => m.data), ['before', 'after']);
    assert.deepEqual(msgs.map((m) => m.id), [first, second]);
    const statuses = await page.evaluate(() => window.__statuses);
    assert.deepEqual(statuses.slice(0, 2), ['connecting', 'open']);
    assert.ok(statuses.includes('retrying'), JSON.stringify(statuses));
    assert.equal(statuses.at(-1), 'open');
    assert.ok(!statuses.includes('stopped'), JSON.stringify(statuses));
    assert.equal(await page.evaluate(() => window.sub.transport), used, 'the same transport after the restart');
    // the restarted daemon says messages after `first` may be gone
    const gaps = await page.evaluate(() => window.__gaps);
    assert.ok(gaps.some((g) => g.queue === queue && g.reason === 'restart' && g.from === first + 1),
      `restart gap expected, got ${JSON.stringify(gaps)}`);
    await ctx.close();
  });
}
