/*
 * Browser test of the demo page cometboxd serves at /demo (same origin as
 * the embedded /cometbox.js): it renders, shows the status and the messages
 * published to the queue of its URL. Saves a screenshot: COMETBOX_DEMO_PNG
 * names the file (docs/demo.png when updating the README's picture),
 * default a file in the temp dir.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { publishOne, publishJson, repoRoot } from '../lib/daemon.mjs';
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
  assert.equal(await page.locator('#transport').textContent(), 'stream');
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
