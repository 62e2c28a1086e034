/*
 * Unit tests of the pure logic in clients/js/cometbox.js: backoff, Retry-After,
 * queue validation, URLs, line splitting and cursor tracking / de-duplication.
 * Run: node --test tests/browser/unit/   (no browser, no daemon)
 */
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const cometbox = require(path.join(__dirname, '..', '..', '..', 'clients', 'js', 'cometbox.js'));
const { backoffDelay, parseRetryAfter, validateQueues, buildUrl, LineSplitter, Tracker } =
  cometbox._internal;

function memoryStorage() {
  const m = new Map();
  return {
    map: m,
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => { m.set(k, String(v)); },
    removeItem: (k) => { m.delete(k); }
  };
}

test('backoff: full jitter between 500 ms and 20 s', () => {
  assert.equal(backoffDelay(0, 500, 20000, () => 0), 500);
  assert.equal(backoffDelay(0, 500, 20000, () => 0.999999), 999);
  assert.equal(backoffDelay(1, 500, 20000, () => 0.999999), 1499);
  assert.equal(backoffDelay(3, 500, 20000, () => 0.5), 500 + 2000);
  // the window stops growing at the cap and the delay never exceeds it
  assert.equal(backoffDelay(6, 500, 20000, () => 0.999999), 20000);
  assert.equal(backoffDelay(1000, 500, 20000, () => 0.999999), 20000);
  assert.equal(backoffDelay(1000, 500, 20000, () => 0), 500);
  // never below the minimum: no tight loop, whatever the random source says
  for (let a = 0; a < 40; a++) {
    for (const r of [0, 0.1, 0.5, 0.9, 0.999999]) {
      const d = backoffDelay(a, 500, 20000, () => r);
      assert.ok(d >= 500 && d <= 20000, `attempt ${a} r ${r}: ${d}`);
    }
  }
  // with Math.random the spread is real (full jitter, not a fixed doubling)
  const seen = new Set();
  for (let i = 0; i < 50; i++) seen.add(backoffDelay(5, 500, 20000));
  assert.ok(seen.size > 10, `only ${seen.size} distinct delays`);
});

test('Retry-After: seconds, HTTP date, garbage', () => {
  assert.equal(parseRetryAfter('5'), 5000);
  assert.equal(parseRetryAfter(' 2 '), 2000);
  assert.equal(parseRetryAfter(null), 0);
  assert.equal(parseRetryAfter(''), 0);
  assert.equal(parseRetryAfter('soon'), 0);
  assert.equal(parseRetryAfter('-3'), 0);
  const nowMs = Date.parse('Wed, 21 Oct 2026 07:28:00 GMT');
  assert.equal(parseRetryAfter('Wed, 21 Oct 2026 07:28:30 GMT', nowMs), 30000);
  assert.equal(parseRetryAfter('Wed, 21 Oct 2026 07:27:00 GMT', nowMs), 0);
  assert.equal(parseRetryAfter('999999'), 3600000);
});

test('queue names follow PROTOCOL.md', () => {
  assert.deepEqual(validateQueues('alice'), ['alice']);
  assert.deepEqual(validateQueues('alice,bob'), ['alice', 'bob']);
  assert.deepEqual(validateQueues(['a.b_c:d@e-f', 'Z9']), ['a.b_c:d@e-f', 'Z9']);
  assert.deepEqual(validateQueues(['x'.repeat(128)]), ['x'.repeat(128)]);
  assert.throws(() => validateQueues(['x'.repeat(129)]), /bad queue name/);
  assert.throws(() => validateQueues('a b'), /bad queue name/);
  assert.throws(() => validateQueues('a,,b'), /bad queue name/);
  assert.throws(() => validateQueues(['a', 'a']), /named twice/);
  assert.throws(() => validateQueues([]), /non-empty/);
  assert.throws(() => validateQueues(['é']), /bad queue name/);
  const sixteen = Array.from({ length: 16 }, (_, i) => 'q' + i);
  assert.equal(validateQueues(sixteen).length, 16);
  assert.throws(() => validateQueues(sixteen.concat(['q16'])), /at most 16/);
});

test('URLs carry since and token only when set', () => {
  assert.equal(buildUrl('http://h:1', 'stream', ['a', 'b'], null, {}), 'http://h:1/stream/a,b');
  assert.equal(buildUrl('http://h:1', 'poll', ['a'], 0, { token: null }), 'http://h:1/poll/a?since=0');
  assert.equal(buildUrl('', 'events', ['a'], 1764028800000001, { token: 'a b&c' }),
    '/events/a?since=1764028800000001&token=a%20b%26c');
  assert.equal(buildUrl('http://h', 'poll', ['a'], 5, { timeout: 0 }), 'http://h/poll/a?since=5&timeout=0');
});

test('line splitter: a chunk is not a line', () => {
  const s = new LineSplitter();
  const enc = new TextEncoder();
  assert.deepEqual(s.push(enc.encode('[{"id":1')), []);
  assert.deepEqual(s.push(enc.encode(',"queue":"a"}]\n[]\n[{"id"')), ['[{"id":1,"queue":"a"}]', '[]']);
  assert.deepEqual(s.push(enc.encode(':2}]\n')), ['[{"id":2}]']);
  // blank lines and CRLF
  assert.deepEqual(s.push('\n\r\n[1]\r\n'), ['[1]']);
  // a multi-byte UTF-8 character split between chunks
  const bytes = enc.encode('["h\u00e9llo \u{1F600}"]\n');
  const cut1 = 4; // inside é (bytes 3,4)
  const cut2 = bytes.length - 4; // inside the emoji
  assert.deepEqual(s.push(bytes.slice(0, cut1)), []);
  assert.deepEqual(s.push(bytes.slice(cut1, cut2)), []);
  assert.deepEqual(s.push(bytes.slice(cut2)), ['["h\u00e9llo \u{1F600}"]']);
  // byte by byte
  const one = enc.encode('["\u00fc\u00df"]\n["x"]\n');
  const got = [];
  for (let i = 0; i < one.length; i++) got.push(...s.push(one.slice(i, i + 1)));
  assert.deepEqual(got, ['["\u00fc\u00df"]', '["x"]']);
  // an unfinished line is kept until the end
  assert.deepEqual(s.push(enc.encode('[{"id":')), []);
  assert.equal(s.rest(), '[{"id":');
  assert.equal(s.rest(), '');
});

test('line splitter: many lines in one chunk, order kept', () => {
  const s = new LineSplitter();
  const text = Array.from({ length: 1000 }, (_, i) => `[${i}]`).join('\n') + '\n';
  const lines = s.push(new TextEncoder().encode(text));
  assert.equal(lines.length, 1000);
  assert.equal(lines[0], '[0]');
  assert.equal(lines[999], '[999]');
});

test('tracker: de-duplicates per queue and remembers across reloads', () => {
  const store = memoryStorage();
  const t = new Tracker(store, 'p|');
  assert.equal(t.since(['a', 'b']), null, 'no cursor yet: no since');
  assert.equal(t.accept('a', 10), true);
  assert.equal(t.accept('a', 10), false, 'same id twice');
  assert.equal(t.accept('a', 9), false, 'older id');
  assert.equal(t.accept('b', 5), true, 'queues are independent');
  assert.equal(t.accept('a', 11), true);
  t.save(['a', 'b']);
  assert.equal(store.getItem('p|a'), '11');
  assert.equal(store.getItem('p|b'), '5');
  assert.equal(t.since(['a', 'b']), 5, 'since is the lowest cursor');
  // a reload: a new tracker reads the storage
  const t2 = new Tracker(store, 'p|');
  assert.equal(t2.since(['a']), 11);
  assert.equal(t2.accept('a', 11), false);
  assert.equal(t2.accept('a', 12), true);
  assert.equal(t2.since(['a', 'c']), null, 'a new queue has no cursor: ask for all pending');
});

test('tracker: an answer ending at M raises every queue of the request to M', () => {
  const t = new Tracker(memoryStorage(), 'p|');
  t.accept('a', 100);
  t.seen(['a', 'b'], 100);
  assert.equal(t.since(['a', 'b']), 100);
  assert.equal(t.accept('b', 99), false, 'b had nothing up to 100');
  t.set('a', 7);
  assert.equal(t.since(['a', 'b']), 7, 'the since option wins');
  assert.equal(t.accept('a', 8), true);
});

test('tracker: a stream head\'s cursor fills only the queues without one', () => {
  const store = memoryStorage();
  const t = new Tracker(store, 'p|');
  t.accept('a', 40);
  t.save(['a']);
  t.adopt(['a', 'b'], 30);
  assert.equal(t.get('a'), 40, 'a cursor of its own wins');
  assert.equal(t.get('b'), 30);
  assert.equal(store.getItem('p|b'), '30', 'kept across a reload');
  assert.equal(t.since(['a', 'b']), 30);
  assert.equal(t.accept('b', 30), false);
  assert.equal(t.accept('b', 31), true);
});

test('tracker: garbage in storage is ignored', () => {
  const store = memoryStorage();
  store.setItem('p|a', 'nonsense');
  store.setItem('p|b', '-4');
  store.setItem('p|c', String(2 ** 53));
  const t = new Tracker(store, 'p|');
  assert.equal(t.get('a'), null);
  assert.equal(t.get('b'), null);
  assert.equal(t.get('c'), null);
});

test('subscribe validates its arguments', () => {
  assert.throws(() => cometbox.subscribe('http://h', 'a', null), /onMessage/);
  assert.throws(() => cometbox.subscribe('http://h', 'a b', () => {}), /bad queue name/);
  assert.throws(() => cometbox.subscribe('http://h', 'a', () => {}, { transport: 'ws' }), /transport/);
  assert.throws(() => cometbox.subscribe('http://h', 'a', () => {}, { since: -1 }), /since/);
});
