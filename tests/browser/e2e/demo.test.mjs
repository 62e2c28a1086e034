/*
 * Browser test of the demo page cometboxd serves at /demo (same origin as
 * the embedded /cometbox.js): it renders, shows the status and the messages
 * published to the queue of its URL; its publish commands name the daemon's
 * own publish URL and admin socket, quoted for a shell, and work as shown;
 * nothing overflows sideways on a 320 px phone. Saves a screenshot:
 * COMETBOX_DEMO_PNG names the file (docs/demo.png when updating the
 * README's picture), default a file in the temp dir.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { publishOne, publishJson, repoRoot, startDaemon, ctlPath } from '../lib/daemon.mjs';
import { useStack } from '../lib/stack.mjs';

let daemon, browser;

useStack({ args: ['--heartbeat', '1'] },
  (s) => ({ daemon, browser } = s), () => ({ daemon, browser }), { pages: false });

test('cometboxd serves the client it was built with at /cometbox.js', async () => {
  const res = await fetch(`${daemon.browser}/cometbox.js`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') || '', /javascript/);
  const served = await res.text();
  const source = fs.readFileSync(path.join(repoRoot, 'clients', 'js', 'cometbox.js'), 'utf8');
  assert.ok(served === source, 'the embedded copy differs from clients/js/cometbox.js: rebuild cometboxd');
});

test('the demo page renders, shows its status and the messages of its queue', async () => {
  const ctx = await browser.newContext({ viewport: { width: 900, height: 560 } });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${daemon.browser}/demo?queue=alice`);
  await page.locator('#status[data-status="open"]').waitFor({ timeout: 10000 });
  assert.equal(await page.locator('h1').textContent(), 'cometbox demo: queue alice');
  assert.equal(await page.locator('#status').textContent(), 'open');
  assert.equal(await page.locator('#transport').textContent(), 'websocket');
  await publishOne(daemon, 'alice', 'Hello from curl');
  await publishJson(daemon, [{ queue: 'alice', data: { temperature: 21.5, unit: 'C' } }]);
  await publishOne(daemon, 'bob', 'not for alice');
  await publishOne(daemon, 'alice', 'Hello & welcome <b>not bold</b>');
  await page.locator('#messages li.message').nth(2).waitFor({ timeout: 10000 });
  const texts = await page.locator('#messages li.message .data').allTextContents();
  assert.deepEqual(texts, ['Hello from curl', '{"temperature":21.5,"unit":"C"}', 'Hello & welcome <b>not bold</b>']);
  assert.equal(await page.locator('#count').textContent(), '3');
  assert.equal(await page.locator('#messages b').count(), 0, 'message text is never HTML');
  assert.match(await page.locator('#curl').textContent(), /<message queue="alice">Hello<\/message>/);
  const png = process.env.COMETBOX_DEMO_PNG || path.join(os.tmpdir(), 'cometbox-demo.png');
  await page.screenshot({ path: png });
  console.log(`# demo screenshot: ${png}`);
  assert.ok(fs.statSync(png).size > 5000);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('the demo page defaults to the queue "demo"', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${daemon.browser}/demo`);
  await page.locator('#status[data-status="open"]').waitFor({ timeout: 10000 });
  assert.equal(await page.locator('#queue').textContent(), 'demo');
  await publishOne(daemon, 'demo', 'hi demo');
  await page.locator('#messages li.message').first().waitFor({ timeout: 10000 });
  assert.equal(await page.locator('#messages li.message .data').first().textContent(), 'hi demo');
  await ctx.close();
});

/* The POSIX shell quoting the page must use: one word, ' as '\''. */
function sh(s) { return "'" + s.replace(/'/g, "'\\''") + "'"; }

test('the publish commands name this daemon\'s publish URL and admin socket, quoted, and work as shown', async () => {
  // random ports and an admin socket whose path needs quoting
  const d = await startDaemon({ adminName: "it's.sock", args: ['--heartbeat', '1'] });
  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    await page.goto(`${d.browser}/demo?queue=q.1`);
    await page.locator('#status[data-status="open"]').waitFor({ timeout: 10000 });
    const curl = await page.locator('#curl').textContent();
    const ctl = await page.locator('#ctl').textContent();
    assert.equal(curl, "curl -H 'Content-Type: application/xml' \\\n" +
      "     --data '<message queue=\"q.1\">Hello</message>' \\\n" +
      `     '${d.publish}/publish'`);
    assert.equal(ctl, `cometboxctl -s ${sh(d.admin)} publish 'q.1' 'Hello'`);
    assert.match(ctl, /-s '[^']*'\\''s\.sock' /, 'the quote in the socket path is escaped for the shell');
    // run them as a user would paste them
    execFileSync('sh', ['-c', curl], { stdio: 'ignore', timeout: 10000 });
    await page.locator('#messages li.message').first().waitFor({ timeout: 10000 });
    if (fs.existsSync(ctlPath())) {
      execFileSync('sh', ['-c', ctl.replace(/^cometboxctl /, sh(ctlPath()) + ' ')], { stdio: 'ignore', timeout: 10000 });
      await page.locator('#messages li.message').nth(1).waitFor({ timeout: 10000 });
    } else {
      console.log(`# cometboxctl not found at ${ctlPath()}: its line is checked but not run`);
    }
    const texts = await page.locator('#messages li.message .data').allTextContents();
    assert.deepEqual(texts, fs.existsSync(ctlPath()) ? ['Hello', 'Hello'] : ['Hello']);
  } finally {
    await ctx.close();
    await d.stop();
  }
});

test('on a 320 px wide phone nothing is cut or scrolls sideways', async () => {
  const ctx = await browser.newContext({ viewport: { width: 320, height: 640 } });
  try {
    const page = await ctx.newPage();
    await page.goto(`${daemon.browser}/demo?queue=a.rather-long.queue_name:for@a.narrow-screen`);
    await page.locator('#status[data-status="open"]').waitFor({ timeout: 10000 });
    const sizes = await page.evaluate(() => ({
      page: [document.documentElement.scrollWidth, document.documentElement.clientWidth],
      pre: [...document.querySelectorAll('pre')].map((p) => [p.id, p.scrollWidth, p.clientWidth])
    }));
    assert.ok(sizes.page[0] <= sizes.page[1], `the page is ${sizes.page[0]} px wide in a ${sizes.page[1]} px viewport`);
    assert.equal(sizes.pre.length, 2);
    for (const [id, scroll, client] of sizes.pre) {
      assert.ok(scroll <= client, `#${id}: scrollWidth ${scroll} > clientWidth ${client}`);
    }
  } finally {
    await ctx.close();
  }
});
