/*
 * Browser tests of cross-origin subscribing (cors-origins, docs/PROTOCOL.md
 * "CORS"): the test page comes from another origin than cometboxd (another
 * port of 127.0.0.1). Without its origin in cors-origins the browser refuses
 * every answer; the client keeps retrying with backoff and says why in its
 * status message. With the origin listed it works.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, publishOne } from '../lib/daemon.mjs';
import {
  launchBrowser, startPageServer, openTestPage, got, waitCount, waitStatus, until
} from '../lib/browser.mjs';

const REFUSED = 'the server refused or could not be reached: a CORS refusal ' +
  "(is this page's origin in cors-origins?) or a network error";
const FAST = { heartbeat: 1000, backoffMin: 50, backoffMax: 300 };

let browser, pages;
const daemons = [];

test.before(async () => {
  pages = await startPageServer();
  browser = await launchBrowser();
});

test.after(async () => {
  if (browser) await browser.close();
  if (pages) await pages.close();
  for (const d of daemons) await d.stop();
});

async function daemon(cors) {
  const d = await startDaemon({ cors, args: ['--heartbeat', '1'] });
  daemons.push(d);
  return d;
}

for (const [what, cors] of [['no cors-origins', null], ['another origin in cors-origins', 'https://app.example']]) {
  test(`${what}: the page is refused, keeps retrying and says it looks like CORS`, async (t) => {
    const d = await daemon(cors);
    for (const transport of ['websocket', 'stream', 'sse', 'longpoll']) {
      await t.test(transport, async () => {
        const queue = `cors.refused.${transport}`;
        const ctx = await browser.newContext();
        const requests = [];
        ctx.on('request', (r) => {
          if (/\/(stream|events|poll)\//.test(r.url())) requests.push(r.url());
        });
        try {
          const page = await openTestPage(ctx, pages, d.browser, queue, { ...FAST, transport });
          await waitStatus(page, 'retrying');
          assert.equal(await page.locator('#message').textContent(), REFUSED);
          assert.equal(await page.evaluate(() => window.sub.statusMessage), REFUSED);
          // still retrying, with backoff, and never stopped
          const n = requests.length;
          await until(() => requests.length >= n + 2, 'two more attempts', 5000);
          assert.equal(await page.locator('#status').textContent(), 'retrying');
          const statuses = await page.evaluate(() => window.__statuses);
          assert.deepEqual(statuses, ['connecting', 'retrying'], 'one status change for the whole streak');
          assert.deepEqual(await got(page), []);
        } finally {
          await ctx.close();
        }
      });
    }
  });
}

test("with the page's origin in cors-origins it works (each transport)", async (t) => {
  const d = await daemon(`https://app.example ${pages.origin}`);
  for (const transport of ['websocket', 'stream', 'sse', 'longpoll']) {
    await t.test(transport, async () => {
      const queue = `cors.allowed.${transport}`;
      const ctx = await browser.newContext();
      try {
        const page = await openTestPage(ctx, pages, d.browser, queue, { ...FAST, transport });
        await waitStatus(page, 'open');
        assert.equal(await page.locator('#message').textContent(), '');
        const id = await publishOne(d, queue, 'across origins');
        await waitCount(page, 1);
        assert.deepEqual(await got(page), [{ id, queue, data: 'across origins' }]);
        assert.ok(!(await page.evaluate(() => window.__statuses)).includes('retrying'));
      } finally {
        await ctx.close();
      }
    });
  }
});
