#!/usr/bin/env node
/*
 * Runs the end-to-end browser tests (e2e/*.test.mjs) one file at a time with
 * node's test runner, after checking what they need: playwright-core
 * (npm ci in tests/browser), Debian's chromium, and cometboxd (COMETBOXD).
 * Exit code: the test runner's; 1 when something they need is missing.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { daemonPath, ctlPath } from './lib/daemon.mjs';
import { CHROMIUM } from './lib/browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

function need(ok, what) {
  if (!ok) {
    console.error(`browser_e2e: ${what}`);
    process.exit(1);
  }
}

need(fs.existsSync(path.join(here, 'node_modules', 'playwright-core')),
  `playwright-core is not installed: run "npm ci" in ${here}`);
need(fs.existsSync(CHROMIUM), `${CHROMIUM} not found: apt-get install chromium (or set CHROMIUM)`);
need(fs.existsSync(daemonPath()), `cometboxd not found at ${daemonPath()}: build it or set COMETBOXD`);
console.log(`# cometboxd: ${daemonPath()}`);
console.log(`# cometboxctl: ${fs.existsSync(ctlPath()) ? ctlPath() : 'not found (its kick test is skipped)'}`);

const files = fs.readdirSync(path.join(here, 'e2e')).filter((f) => f.endsWith('.test.mjs')).sort()
  .map((f) => path.join('e2e', f));
const only = process.argv.slice(2);
const args = ['--test', '--test-concurrency=1', '--test-timeout=120000', ...(only.length ? only : files)];
const child = spawn(process.execPath, args, { cwd: here, stdio: 'inherit' });
/* Never hang CI: the whole suite takes about three minutes on an idle
 * 2-core machine, four and a half while other builds run beside it. */
const guard = setTimeout(() => {
  console.error('browser_e2e: still running after 10 minutes, stopping it');
  child.kill('SIGKILL');
}, 10 * 60 * 1000);
child.on('exit', (code, signal) => {
  clearTimeout(guard);
  process.exit(code === null ? 1 : code);
});
