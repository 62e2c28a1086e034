/*
 * The minified client (clients/js/cometbox.min.js and its source map, made
 * by terser with `npm run build` in clients/js and committed so the daemon
 * builds without node): it is up to date with cometbox.js, and it offers the
 * same API.
 */
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const js = path.join(__dirname, '..', '..', '..', 'clients', 'js');
const terser = path.join(js, 'node_modules', '.bin', 'terser');

test('cometbox.min.js and its map are what `npm run build` makes from cometbox.js', () => {
  assert.ok(fs.existsSync(terser), 'terser is installed in clients/js (npm ci there; scripts/deps.sh does)');
  const pkg = JSON.parse(fs.readFileSync(path.join(js, 'package.json'), 'utf8'));
  const args = pkg.scripts.build.match(/'[^']*'|"[^"]*"|\S+/g).slice(1)
    .map((a) => (/^(['"]).*\1$/.test(a) ? a.slice(1, -1) : a));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbx-min-'));
  try {
    fs.copyFileSync(path.join(js, 'cometbox.js'), path.join(dir, 'cometbox.js'));
    execFileSync(terser, args, { cwd: dir });
    for (const f of ['cometbox.min.js', 'cometbox.min.js.map']) {
      assert.equal(fs.readFileSync(path.join(js, f), 'utf8'), fs.readFileSync(path.join(dir, f), 'utf8'),
        `${f} is stale: run npm run build in clients/js`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the minified client has the same API', () => {
  const full = require(path.join(js, 'cometbox.js'));
  const min = require(path.join(js, 'cometbox.min.js'));
  assert.deepEqual(Object.keys(min).sort(), Object.keys(full).sort());
  for (const name of ['subscribe', 'init', 'stop']) assert.equal(typeof min[name], 'function', name);
  const map = JSON.parse(fs.readFileSync(path.join(js, 'cometbox.min.js.map'), 'utf8'));
  assert.deepEqual(map.sources, ['cometbox.js']);
  assert.match(fs.readFileSync(path.join(js, 'cometbox.min.js'), 'utf8'), /\/\/# sourceMappingURL=cometbox\.min\.js\.map\s*$/);
});
