/*
 * Starts the real cometboxd for the browser tests: a temp dir, free ports,
 * the ready line on stderr (never a fixed sleep), publish helpers over HTTP.
 * Not for driving the browser (browser.mjs) or proxies (proxies.mjs).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..', '..');

export function daemonPath() {
  return process.env.COMETBOXD || path.join(repoRoot, 'build', 'cometboxd', 'cometboxd');
}

export function ctlPath() {
  return process.env.COMETBOXCTL || path.join(repoRoot, 'build', 'cometboxctl', 'cometboxctl');
}

const READY = /cometboxd: ready browser=(\S+) publish=(\S+) admin=(\S+)/;

/* Starts cometboxd; resolves once its ready line is seen (at most 15 s).
 * opts.args: extra options; opts.browserPort / opts.publishPort: fixed ports
 * (a restart reuses the ports of the first run); opts.cors: the cors-origins
 * value (default '*'; null: the option is not given, cometboxd's default);
 * opts.adminName: the admin socket's file name in the temp dir. */
export async function startDaemon(opts = {}) {
  const dir = opts.dir || fs.mkdtempSync(path.join(os.tmpdir(), 'cbx-browser-'));
  const admin = path.join(dir, opts.adminName || 'admin.sock');
  const args = [
    '--listen', `127.0.0.1:${opts.browserPort || 0}`,
    '--publish-listen', `127.0.0.1:${opts.publishPort || 0}`,
    '--admin-socket', admin,
    '--demo', 'on',
    ...(opts.cors === null ? [] : ['--cors-origins', opts.cors || '*']),
    /* CBX_THREADS=per-connection runs the suite in the other threads mode,
     * as for the integration tests */
    ...(process.env.CBX_THREADS ? ['--threads', process.env.CBX_THREADS] : []),
    ...(opts.args || [])
  ];
  const bin = daemonPath();
  if (!fs.existsSync(bin)) throw new Error(`cometboxd not found at ${bin} (set COMETBOXD)`);
  const proc = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const log = [];
  let buf = '';
  const d = {
    dir, proc, log, args: opts.args || [], exited: null,
    browser: null, publish: null, admin: null
  };
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => {
    d.exited = { code, signal };
    resolve(d.exited);
  }));
  d.exitPromise = exited;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`cometboxd printed no ready line in 15 s; stderr:\n${log.join('\n')}`));
    }, 15000);
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        log.push(line);
        if (log.length > 500) log.shift();
        const m = READY.exec(line);
        if (m && !d.browser) {
          d.browser = m[1];
          d.publish = m[2];
          d.admin = m[3];
          clearTimeout(timer);
          resolve();
        }
      }
    });
    exited.then((e) => {
      clearTimeout(timer);
      if (!d.browser) reject(new Error(`cometboxd exited (${JSON.stringify(e)}) before ready; args ${args.join(' ')}; stderr:\n${log.join('\n')}`));
    });
  });
  d.browserPort = Number(new URL(d.browser).port);
  d.publishPort = Number(new URL(d.publish).port);
  d.stop = (signal = 'SIGTERM') => stopDaemon(d, signal);
  d.restart = () => startDaemon({
    dir, args: opts.args, cors: opts.cors, adminName: opts.adminName,
    browserPort: d.browserPort, publishPort: d.publishPort
  });
  return d;
}

/* Stops cometboxd and waits for it to exit (SIGKILL after 10 s). */
export async function stopDaemon(d, signal = 'SIGTERM') {
  if (d.exited) return d.exited;
  d.proc.kill(signal);
  const timer = setTimeout(() => d.proc.kill('SIGKILL'), 10000);
  const e = await d.exitPromise;
  clearTimeout(timer);
  return e;
}

export function xmlEscape(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/* Publishes [{queue, data}] as one XML batch; returns the ids. */
export async function publishXml(d, messages) {
  const body = '<messages>' + messages.map((m) =>
    `<message queue="${xmlEscape(m.queue)}">${xmlEscape(m.data)}</message>`).join('') + '</messages>';
  return post(d, 'application/xml', body);
}

/* Publishes [{queue, data}] as one JSON batch; returns the ids. */
export async function publishJson(d, messages) {
  return post(d, 'application/json', JSON.stringify(messages));
}

export async function publishOne(d, queue, data) {
  const ids = await publishXml(d, [{ queue, data }]);
  return ids[0];
}

async function post(d, type, body) {
  const res = await fetch(`${d.publish}/publish`, { method: 'POST', headers: { 'Content-Type': type }, body });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`publish: HTTP ${res.status}: ${text}`);
  const j = JSON.parse(text);
  if (!Array.isArray(j.ids)) throw new Error(`publish: no ids in ${text}`);
  return j.ids;
}
