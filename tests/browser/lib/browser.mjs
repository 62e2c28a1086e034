/*
 * Launches Debian's Chromium through playwright-core for the browser tests,
 * with the flags that keep it off the (closed) network, and serves the test
 * pages plus clients/js from the working tree on a loopback origin.
 */
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { repoRoot } from './daemon.mjs';

const require = createRequire(import.meta.url);

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export async function launchBrowser() {
  const { chromium } = require('playwright-core');
  /* playwright gives every launch a fresh temporary --user-data-dir. */
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'
    ]
  });
}

const FILES = {
  '/cometbox.js': [path.join(repoRoot, 'clients', 'js', 'cometbox.js'), 'text/javascript'],
  '/cometbox.mjs': [path.join(repoRoot, 'clients', 'js', 'cometbox.mjs'), 'text/javascript'],
  '/test.html': [path.join(repoRoot, 'tests', 'browser', 'pages', 'test.html'), 'text/html'],
  '/esm.html': [path.join(repoRoot, 'tests', 'browser', 'pages', 'esm.html'), 'text/html']
};

/* A static origin for the test pages (the daemon is another origin: CORS). */
export async function startPageServer() {
  const server = http.createServer((req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    const f = FILES[p];
    if (!f) { res.writeHead(404); res.end('not found'); return; }
    res.writeHead(200, { 'Content-Type': f[1] + '; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(fs.readFileSync(f[0]));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return { origin, close: () => new Promise((r) => server.close(r)) };
}

/* Records the page's WebSockets (playwright's `request` events do not show
 * them): page.sockets = [{url, sent: [text], received: [text], closed}]. */
export function trackSockets(page) {
  page.sockets = [];
  page.on('websocket', (ws) => {
    const s = { url: ws.url(), sent: [], received: [], closed: false };
    page.sockets.push(s);
    ws.on('framesent', (f) => s.sent.push(String(f.payload)));
    ws.on('framereceived', (f) => s.received.push(String(f.payload)));
    ws.on('close', () => { s.closed = true; });
  });
  return page.sockets;
}

/* Makes every page of `context` record how its WebSockets closed, as the
 * page sees it (playwright does not show close codes):
 * window.__closes = [[code, reason]], in order. */
export function recordSocketCloses(context) {
  return context.addInitScript(() => {
    window.__closes = [];
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        this.addEventListener('close', (e) => window.__closes.push([e.code, e.reason]));
      }
    };
  });
}

/* Opens the test page subscribed to `queues` on `url` with client options. */
export async function openTestPage(context, pages, url, queues, opts = {}) {
  const page = await context.newPage();
  trackSockets(page);
  page.on('pageerror', (e) => { page.__errors = (page.__errors || []).concat(String(e)); });
  const q = new URLSearchParams({ url, queues: [].concat(queues).join(','), opts: JSON.stringify(opts) });
  await page.goto(`${pages.origin}/test.html?${q}`);
  return page;
}

/* Opens the test page on the daemon's own origin (the page and the client
 * are served by the test through request routing, the rest by cometboxd):
 * no CORS involved, and the client is given a relative base URL ''. */
export async function openSameOriginPage(context, daemonUrl, queues, opts = {}) {
  await context.route(`${daemonUrl}/__test.html*`, (route) => route.fulfill({
    status: 200, contentType: 'text/html; charset=utf-8', body: fs.readFileSync(FILES['/test.html'][0])
  }));
  await context.route(`${daemonUrl}/cometbox.js`, (route) => route.fulfill({
    status: 200, contentType: 'text/javascript; charset=utf-8', body: fs.readFileSync(FILES['/cometbox.js'][0])
  }));
  const page = await context.newPage();
  trackSockets(page);
  const q = new URLSearchParams({ url: '', queues: [].concat(queues).join(','), opts: JSON.stringify(opts) });
  await page.goto(`${daemonUrl}/__test.html?${q}`);
  return page;
}

/* Reads what the page received: [{id, queue, data}]. */
export function got(page) {
  return page.evaluate(() => window.__got.map((m) => ({ id: m.id, queue: m.queue, data: m.data })));
}

export async function waitCount(page, n, timeout = 20000) {
  try {
    await page.waitForFunction((k) => window.__got.length >= k, n, { timeout, polling: 50 });
  } catch (e) {
    const have = await got(page).catch(() => []);
    const statuses = await page.evaluate(() => window.__statuses).catch(() => []);
    throw new Error(`expected at least ${n} messages within ${timeout} ms, got ${have.length}` +
      ` (last: ${JSON.stringify(have.slice(-3))}); statuses ${JSON.stringify(statuses)}`);
  }
}

export async function waitStatus(page, status, timeout = 20000) {
  try {
    await page.waitForFunction((s) => document.getElementById('status').textContent === s, status,
      { timeout, polling: 20 });
  } catch (e) {
    const statuses = await page.evaluate(() => window.__statuses).catch(() => []);
    throw new Error(`expected status "${status}" on the page within ${timeout} ms; statuses ${JSON.stringify(statuses)}`);
  }
}

/* Waits for a bounded time until cond() is true (an observable condition). */
export async function until(cond, what, timeout = 10000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
