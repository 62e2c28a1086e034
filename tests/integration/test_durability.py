"""The journal (issue 18, docs/DURABILITY.md): what a state dir keeps across
a stop, a SIGKILL, a damaged journal, a full disk and compaction, checked as
a client sees it (exact bodies, codes and ids). Not for the memory-only
daemon (test_core.py). Run once per threads mode; the crash test prints its
seed, and CBX_SEED=N replays its schedule of kills and publishes."""
import glob
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from cbx import COMETBOXCTL, Daemon, drain, msg, reset_close

SANITIZER_REPORTS = ("runtime error", "ERROR: AddressSanitizer", "WARNING: ThreadSanitizer", "LeakSanitizer")
JOURNAL = re.compile(r"^journal\.(\d+)$")
NOSPACE_BODY = (b'{"error":"unavailable","detail":"the journal cannot be written (No space left on device); '
                b'nothing was queued"}\n')


def ctl_json(admin, *args):
    """cometboxctl --json ARGS against the admin socket; returns the parsed result."""
    p = subprocess.run([COMETBOXCTL, "-s", admin, "--json"] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, ("cometboxctl", args, p.returncode, p.stdout, p.stderr)
    return json.loads(p.stdout)


def journals(state):
    """The journal files of a state dir as [(generation, path)], oldest first."""
    out = []
    for name in os.listdir(state):
        m = JOURNAL.match(name)
        if m:
            out.append((int(m.group(1)), os.path.join(state, name)))
    return sorted(out)


def dir_bytes(state):
    """The bytes the files of a state dir take (their sizes, not their blocks)."""
    total = 0
    for name in os.listdir(state):
        try:
            total += os.stat(os.path.join(state, name)).st_size
        except FileNotFoundError:  # a file the daemon removed meanwhile
            pass
    return total



class Node:
    """One state dir and the daemons started on it, one after another.
    Each stop checks that log for sanitizer reports (and exit status 0 after
    a SIGTERM); the dir goes at the test's cleanup."""

    def __init__(self, test, *args, sync="batch", state=None):
        self.test = test
        self.tmp = tempfile.mkdtemp(prefix="cbx-dur-")
        self.state = state or os.path.join(self.tmp, "state")
        self.args = ["--state-dir", self.state, "--journal-sync", sync] + list(args)
        self.d = None
        self.runs = 0
        test.addCleanup(self.cleanup)

    def start(self, env=None):
        self.d = Daemon(*self.args, tmpdir=self.tmp, env=env)
        self.runs += 1
        self.test.assertTrue(os.path.exists(os.path.join(self.state, "lock")),
                             "no lock file in the state dir %s once ready" % self.state)
        return self.d

    def stop(self, sig=signal.SIGTERM):
        """Stops the running daemon with sig; returns its log."""
        d, self.d = self.d, None
        try:
            rc, _ = d.stop(sig)
        finally:
            d.cleanup()
        for bad in SANITIZER_REPORTS:
            self.test.assertNotIn(bad, d.log)
        if sig == signal.SIGTERM:
            self.test.assertEqual(rc, 0, "cometboxd exit status after SIGTERM; log:\n" + d.log)
        return d.log

    def restart(self, sig=signal.SIGTERM, env=None):
        self.stop(sig)
        return self.start(env)

    def cleanup(self):
        if self.d is not None:
            self.d.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)


def faketime_env(offset):
    """The environment that runs cometboxd with its wall clock moved by
    offset (libfaketime syntax, "+10d"); CLOCK_MONOTONIC is left alone."""
    libs = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
    if not libs:
        raise AssertionError("libfaketime is not installed (Debian package libfaketime; scripts/deps.sh test "
                             "installs it): this test moves the daemon's clock with it")
    asan = os.environ.get("ASAN_OPTIONS", "")
    return {"LD_PRELOAD": libs[0], "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            # libasan wants to be first in the library list; libfaketime goes first here
            "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0"}


# ---------------------------------------------------------------- 1. restart

class Restart(unittest.TestCase):
    """Pending messages, acknowledgement points, flushes, overflow drops and
    the id counter survive a stop (SIGTERM) and a SIGKILL, in each
    journal-sync mode."""

    QUEUES = ["mb.a", "mb.b", "mb.c", "room:1", "st", "fl", "ovf", "sync"]

    def fill(self, d):
        """Publishes to the queues and acknowledges part of them in every way
        a client or an operator can; returns the last id handed out."""
        ids = {q: [] for q in self.QUEUES}

        def pub(q, data):
            st, _, body = d.publish_json({"queue": q, "data": data})
            self.assertEqual(st, 200, body)
            ids[q].append(json.loads(body)["ids"][0])

        datas = ["plain", "h\u00e9llo \u2713 \U0001F600", 'quote " and \\ back\nslash', {"x": 1, "y": [True, None]},
                 42, "", ["a", {"b": "c"}]]
        for i, data in enumerate(datas):
            for q in ("mb.a", "mb.b", "mb.c", "room:1"):
                pub(q, data if i % 2 == 0 else {"i": i, "q": q, "v": data})
        # an XML batch across queues, text and JSON
        st, _, body = d.publish_xml('<messages><message queue="mb.a">x &amp; y</message>'
                                    '<message queue="mb.c" type="json">{"xml":true}</message>'
                                    '<message queue="room:1">&lt;tag&gt;</message></messages>')
        self.assertEqual(st, 200, body)
        got = json.loads(body)["ids"]
        ids["mb.a"].append(got[0])
        ids["mb.c"].append(got[1])
        ids["room:1"].append(got[2])
        # acknowledgements by since: one queue, then two queues with one cursor
        st, _, body = d.poll("mb.a", since=ids["mb.a"][2], timeout=0)
        self.assertEqual([m["id"] for m in json.loads(body)], ids["mb.a"][3:])
        st, _, body = d.poll("mb.b,mb.c", since=ids["mb.b"][4], timeout=0)
        self.assertEqual(st, 200)
        # a stream acknowledges what it hands over
        for i in range(3):
            pub("st", "st%d" % i)
        s = d.open_stream("/stream/st")
        self.assertEqual(json.loads(s.line()), [msg(ids["st"][i], "st", "st%d" % i) for i in range(3)])
        reset_close(s.sock)       # so the daemon knows at once that it is gone: st3 stays pending
        d.wait_held(0, "stream")
        pub("st", "st3")
        # a flush
        for i in range(4):
            pub("fl", "fl%d" % i)
        self.assertEqual(ctl_json(d.admin, "flush", "fl"), {"flushed": 4})
        pub("fl", "fl4")
        # overflow: queue-max-messages is 5
        for i in range(8):
            pub("ovf", "ovf%d" % i)
        st, _, body = d.poll("ovf", since=ids["ovf"][4], timeout=0)
        self.assertEqual([m["id"] for m in json.loads(body)], ids["ovf"][5:])
        # acknowledgements are written by the journal's writer shortly after,
        # in order with the batches (docs/DURABILITY.md): once a later publish
        # is answered 200 they are written, and a SIGKILL cannot take them back
        pub("sync", "after the acknowledgements")
        self.ids = ids
        return max(max(v) for v in ids.values())

    def observe(self, d):
        """What clients see, with requests that change nothing: pending (no
        since) per queue and all together, resuming from each acknowledgement
        point, from the start (since=0), and the stored counts."""
        seen = {}
        for q in self.QUEUES:
            seen["pending " + q] = d.poll(q, timeout=0)[2]
        seen["pending all"] = d.poll(",".join(self.QUEUES), timeout=0)[2]
        acked = {"mb.a": self.ids["mb.a"][2], "mb.b,mb.c": self.ids["mb.b"][4], "ovf": self.ids["ovf"][4]}
        for qs, since in acked.items():
            seen["since %s=%d" % (qs, since)] = d.poll(qs, since=since, timeout=0)[2]
        for q in self.QUEUES:
            seen["since %s=0" % q] = d.poll(q, since=0, timeout=0)[2]
        s = ctl_json(d.admin, "stats")
        for k in ("queues", "pending_messages", "pending_bytes", "stored_messages", "stored_bytes"):
            seen["stats " + k] = s[k]
        seen["queue rows"] = [{k: v for k, v in row.items() if k in ("name", "pending", "stored", "bytes")}
                              for row in ctl_json(d.admin, "queues")["queues"]]
        return seen

    def check_restart(self, sig, sync):
        n = Node(self, "--queue-max-messages", "5", "--max-batch", "1000", sync=sync)
        d = n.start()
        j = ctl_json(d.admin, "stats")["journal"]
        self.assertEqual((j["state"], j["error"], j["sync"]), ("ok", None, sync), j)
        last = self.fill(d)
        self.assertEqual(ctl_json(d.admin, "stats")["last_id"], last)
        before = self.observe(d)
        # the pending answer is what fill() left
        self.assertEqual(json.loads(before["pending st"]), [msg(self.ids["st"][3], "st", "st3")])
        self.assertEqual(json.loads(before["pending fl"])[-1], msg(self.ids["fl"][4], "fl", "fl4"))
        d = n.restart(sig)
        after = self.observe(d)
        for k in before:
            self.assertEqual(after[k], before[k], "after a restart by %s (journal-sync %s): %s" % (
                signal.Signals(sig).name, sync, k))
        # the counter goes on above the journal's last id and the clock
        # (docs/DURABILITY.md "Ids only grow")
        t0 = time.time_ns() // 1000
        self.assertGreaterEqual(ctl_json(d.admin, "stats")["last_id"], last)
        new = d.pub("mb.a", "after the restart")
        self.assertGreater(new, last)
        self.assertLess(new, time.time_ns() // 1000 + 1)   # from the clock of the restart, not beyond
        self.assertGreater(new, t0 - 60 * 1000000)
        st, _, body = d.poll("mb.a", since=self.ids["mb.a"][-1], timeout=0)
        self.assertEqual(json.loads(body), [msg(new, "mb.a", "after the restart")])
        # once more: the replayed journal goes on taking records
        self.ids["mb.a"].append(new)
        st, _, body = d.poll("mb.a", since=new, timeout=0)  # acknowledges it
        self.assertEqual(body, b"[]\n")
        self.ids["sync"].append(d.pub("sync", "after the acknowledgement"))
        before = self.observe(d)
        d = n.restart(sig)
        after = self.observe(d)
        for k in before:
            self.assertEqual(after[k], before[k], "after a second restart by %s: %s" % (signal.Signals(sig).name, k))
        self.assertGreater(d.pub("mb.a", "third run"), new)
        n.stop()

    def test_sigterm_batch(self):
        self.check_restart(signal.SIGTERM, "batch")

    def test_sigkill_batch(self):
        self.check_restart(signal.SIGKILL, "batch")

    def test_sigkill_always(self):
        self.check_restart(signal.SIGKILL, "always")

    def test_sigkill_none(self):
        self.check_restart(signal.SIGKILL, "none")

    def test_expired_messages_stay_expired(self):
        """A message that expired before the stop does not come back after it,
        not even before the first sweep of the new run."""
        n = Node(self, "--message-ttl", "1", "--max-batch", "1000")
        d = n.start()
        ids = [d.pub("ex", "e%d" % i) for i in range(3)]
        deadline = time.monotonic() + 10
        while ctl_json(d.admin, "stats")["counters"]["expired"] < 3:
            self.assertLess(time.monotonic(), deadline, "the messages did not expire")
            time.sleep(0.05)
        gap = [{"type": "gap", "queue": "ex", "from": 1, "to": ids[2], "reason": "expired"}]
        pending = d.poll("ex", timeout=0)[2]
        self.assertEqual(json.loads(pending), gap)
        self.assertEqual(json.loads(d.poll("ex", since=0, timeout=0)[2]), gap)
        d.pub("sync", "the expiry is written once this is answered")
        d = n.restart(signal.SIGKILL)
        self.assertEqual(d.poll("ex", timeout=0)[2], pending)
        self.assertEqual(json.loads(d.poll("ex", since=0, timeout=0)[2]), gap)
        self.assertEqual(d.poll("ex", since=ids[2], timeout=0)[2], b"[]\n")
        n.stop()

    def test_ids_grow_whatever_the_clock_says(self):
        """A run whose clock was 10 days ahead hands out ids from its clock; the
        next run, on the real clock, starts above them."""
        n = Node(self)
        d = n.start(env=faketime_env("+10d"))
        ids = [d.pub("clk", "c%d" % i) for i in range(4)]
        self.assertGreater(ids[0], (time.time() + 9 * 86400) * 1e6, "libfaketime did not move the clock")
        d.poll("clk", since=ids[1], timeout=0)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            d = n.restart(sig)   # the real clock from here on
            self.assertEqual(ctl_json(d.admin, "stats")["last_id"], ids[-1])
            new = d.pub("clk", "c%d" % len(ids))
            self.assertGreater(new, ids[-1])
            self.assertLess(new, 2 ** 53)
            ids.append(new)
            st, _, body = d.poll("clk", since=ids[1], timeout=0)
            self.assertEqual(json.loads(body), [msg(ids[i], "clk", "c%d" % i) for i in range(2, len(ids))])
        n.stop()


class MemoryOnly(unittest.TestCase):
    def test_without_a_state_dir_the_journal_is_off(self):
        d = Daemon()
        try:
            self.assertEqual(ctl_json(d.admin, "stats")["journal"], {"state": "off"})
            self.assertFalse([k for k in d.metrics() if k.startswith("cometbox_journal_")])
            self.assertEqual(os.listdir(d.tmp), ["admin.sock"])   # nothing written beside the daemon
            self.assertEqual(d.stop()[0], 0)
        finally:
            d.cleanup()


class StateDirLock(unittest.TestCase):
    """The lock file keeps a second daemon off a state dir in use."""

    def test_a_second_daemon_on_the_same_state_dir_does_not_start(self):
        n = Node(self)
        d = n.start()
        a = d.pub("lk", "one")
        other = tempfile.mkdtemp(prefix="cbx-dur-")
        self.addCleanup(shutil.rmtree, other, True)
        d2 = Daemon("--state-dir", n.state, tmpdir=other, wait=False)
        try:
            rc = d2.proc.wait(15)
        finally:
            d2.cleanup()
        self.assertEqual(rc, 1, "a second daemon on %s; its log:\n%s" % (n.state, d2.log))
        self.assertIn("state-dir %s is in use by another cometboxd (pid %d)" % (n.state, d.proc.pid), d2.log)
        with open(os.path.join(n.state, "lock")) as f:
            self.assertEqual(f.read().strip(), str(d.proc.pid))
        # the first one goes on, its journal unharmed
        b = d.pub("lk", "two")
        self.assertEqual(json.loads(d.poll("lk", timeout=0)[2]), [msg(a, "lk", "one"), msg(b, "lk", "two")])
        d = n.restart(signal.SIGKILL)
        self.assertEqual(json.loads(d.poll("lk", timeout=0)[2]), [msg(a, "lk", "one"), msg(b, "lk", "two")])
        n.stop()


# ---------------------------------------------------------------- 2. crash

class Current:
    """The daemon the clients talk to now: (run number, Daemon)."""

    def __init__(self):
        self.cond = threading.Condition()
        self.run, self.d = 0, None

    def get(self):
        with self.cond:
            return self.run, self.d

    def set(self, run, d):
        with self.cond:
            self.run, self.d = run, d
            self.cond.notify_all()

    def wait_change(self, run, timeout):
        with self.cond:
            if self.run == run:
                self.cond.wait(timeout)


class Problems:
    """What went wrong in the crash test: a count per kind and the first
    few examples of each, so that a broken daemon gives a readable report."""

    EXAMPLES = 5

    def __init__(self):
        self.lock = threading.Lock()
        self.kinds = {}

    def add(self, kind, *detail):
        with self.lock:
            n, ex = self.kinds.get(kind, (0, []))
            if len(ex) < self.EXAMPLES:
                ex.append(detail)
            self.kinds[kind] = (n + 1, ex)

    def report(self):
        out = []
        for kind, (n, ex) in self.kinds.items():
            out.append("%s: %d times, e.g.:" % (kind, n))
            out += ["    %r" % (e,) for e in ex]
        return "\n".join(out)


def http_once(host, port, method, path, body=None, headers=None, timeout=15):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


class Crash(unittest.TestCase):
    """Publishers and long-polling clients while the daemon is killed with
    SIGKILL at random moments (and stopped a few times) and started again on
    the same state dir."""

    NQUEUES = 16
    PUBLISHERS = 3
    POLLERS = 4       # each polls 8 queues; each queue has 2 pollers, with cursors of their own
    KILLS = 20
    TERMS = 2

    def check_crashes(self, sync):
        seed = int(os.environ.get("CBX_SEED") or random.SystemRandom().randrange(1, 2 ** 31))
        print("\ntest_durability: crash test journal-sync=%s seed %d (CBX_SEED=%d replays the schedule)"
              % (sync, seed, seed), file=sys.stderr, flush=True)
        rng = random.Random(seed)
        t0 = time.monotonic()
        queues = ["c.%d" % i for i in range(self.NQUEUES)]
        sets = [[queues[(4 * i + j) % self.NQUEUES] for j in range(8)] for i in range(self.POLLERS)]
        # retain-acked: long enough for the second client of a queue to fetch
        # what the first acknowledged, short enough that compactions happen
        n = Node(self, "--queue-max-messages", "100000", "--queue-max-bytes", "64m", "--retain-acked", "5",
                 "--max-batch", "1000", "--journal-compact-size", "16k", sync=sync)
        cur = Current()
        cur.set(1, n.start())
        lock = threading.Lock()
        ok = {}           # (queue, data) -> (id, run that answered)
        ok_order = {}     # publisher -> [id] in publish order
        unanswered = {}   # (queue, data) -> run
        refused = {}      # (queue, data) -> (status, body)
        got = [[] for _ in sets]        # per poller: [(run that answered, message)]
        probs = Problems()
        stop_pub = threading.Event()
        draining = threading.Event()
        expected = [None] * len(sets)

        def publisher(t):
            prng = random.Random(seed * 100 + t)
            num = 0
            conn, conn_run = None, None
            ok_order[t] = []
            while not stop_pub.is_set():
                k = 1 if prng.random() < 0.7 else prng.randint(2, 4)
                batch = [{"queue": q, "data": "p%d.%d" % (t, num + i)} for i, q in enumerate(prng.sample(queues, k))]
                while not stop_pub.is_set():
                    run, d = cur.get()
                    if conn is None or conn_run != run:
                        if conn is not None:
                            conn.close()
                        conn, conn_run = http.client.HTTPConnection(d.phost, d.pport, timeout=15), run
                    try:
                        if conn.sock is None:
                            conn.connect()
                    except OSError:    # not sent: the daemon is down; the same batch goes to the next one
                        conn.close()
                        conn = None
                        cur.wait_change(run, 0.05)
                        continue
                    try:
                        conn.request("POST", "/publish", json.dumps(batch), {"Content-Type": "application/json"})
                        r = conn.getresponse()
                        body = r.read()
                    except (OSError, http.client.HTTPException):
                        conn.close()
                        conn = None
                        with lock:
                            for m in batch:
                                unanswered[(m["queue"], m["data"])] = run
                        break
                    with lock:
                        if r.status == 200:
                            ids = json.loads(body)["ids"]
                            if len(ids) != len(batch):
                                probs.add("publish answer", batch, body)
                            for m, id_ in zip(batch, ids):
                                ok[(m["queue"], m["data"])] = (id_, run)
                                ok_order[t].append(id_)
                        else:
                            for m in batch:
                                refused[(m["queue"], m["data"])] = (r.status, body)
                    if r.will_close:
                        conn.close()
                        conn = None
                    break
                num += k
                time.sleep(prng.uniform(0, 0.003))
            if conn is not None:
                conn.close()

        def poller(i):
            path = "/poll/" + ",".join(sets[i])
            cursor = 0
            ids = set()
            deadline = None
            while True:
                if draining.is_set():
                    deadline = deadline or time.monotonic() + 30
                    if expected[i] <= ids or time.monotonic() > deadline:
                        break
                run, d = cur.get()
                try:
                    st, body = http_once(d.bhost, d.bport, "GET", "%s?since=%d&timeout=1" % (path, cursor))
                except (OSError, http.client.HTTPException):
                    cur.wait_change(run, 0.05)
                    continue
                if st == 503:     # the daemon is stopping
                    cur.wait_change(run, 0.05)
                    continue
                if st != 200:
                    probs.add("poll answer", i, run, st, body)
                    time.sleep(0.05)
                    continue
                for m in json.loads(body):
                    if "type" in m or "id" not in m:
                        probs.add("control object", i, run, cursor, m)
                        continue
                    got[i].append((run, m))
                    ids.add(m["id"])
                    cursor = m["id"]
            # what is left after the expected ones: anything written but not answered
            run, d = cur.get()
            try:
                for m in drain(d, ",".join(sets[i]), cursor):
                    if "type" in m or "id" not in m:
                        probs.add("control object", i, run, cursor, m)
                    else:
                        got[i].append((run, m))
            except Exception as e:  # noqa: BLE001 (reported with the rest)
                probs.add("the last drain failed", i, repr(e))

        pubs = [threading.Thread(target=publisher, args=(t,), daemon=True) for t in range(self.PUBLISHERS)]
        polls = [threading.Thread(target=poller, args=(i,), daemon=True) for i in range(len(sets))]
        for th in pubs + polls:
            th.start()
        kills = 0
        try:
            schedule = [signal.SIGKILL] * self.KILLS + [signal.SIGTERM] * self.TERMS
            rng.shuffle(schedule)
            for sig in schedule:
                time.sleep(rng.uniform(0.15, 0.9))  # a random moment of the traffic, not a wait for a state
                run, _ = cur.get()
                n.stop(sig)
                kills += sig == signal.SIGKILL
                cur.set(run + 1, n.start())
            stop_pub.set()
            for th in pubs:
                th.join(30)
                self.assertFalse(th.is_alive(), "a publisher did not end")
            # a last kill once nobody publishes: the drain comes from the replay
            run, _ = cur.get()
            n.stop(signal.SIGKILL)
            kills += 1
            cur.set(run + 1, n.start())
            with lock:
                for i, qs in enumerate(sets):
                    expected[i] = {id_ for (q, _), (id_, _) in ok.items() if q in qs}
            draining.set()
            for th in polls:
                th.join(60)
                self.assertFalse(th.is_alive(), "a poller did not end")
        finally:
            stop_pub.set()
            draining.set()
        d = n.d
        # pending is empty now (every poller acknowledged all it got) ...
        body = d.poll(",".join(queues), timeout=0)[2]
        d.pub("barrier", "the acknowledgements are written once this is answered")
        if body != b"[]\n":
            probs.add("pending is not empty after the drain", body[:500])
        # ... and stays so across a kill
        d = n.restart(signal.SIGKILL)
        body = d.poll(",".join(queues), timeout=0)[2]
        if body != b"[]\n":
            probs.add("pending is not empty after the drain and a SIGKILL", body[:500])
        journal = ctl_json(d.admin, "stats").get("journal")
        generation = (journal or {}).get("generation", 0)
        if (journal or {}).get("state") != "ok":
            probs.add("stats journal", journal)
        n.stop()
        elapsed = time.monotonic() - t0

        delivered_unanswered = set()
        for i in range(len(sets)):
            ids = [m["id"] for _, m in got[i]]
            for a, b in zip(ids, ids[1:]):
                if b <= a:
                    probs.add("ids not strictly increasing", i, a, b)
                    break
            seen_data = set()
            last_n = {}
            for run, m in got[i]:
                key = (m["queue"], m["data"])
                if key in seen_data:
                    probs.add("delivered twice", i, m)
                seen_data.add(key)
                if key in ok:
                    if ok[key][0] != m["id"]:
                        probs.add("id differs from the publish answer", i, m, ok[key])
                elif key in refused:
                    probs.add("a refused message was delivered", i, m, refused[key])
                elif key in unanswered:
                    delivered_unanswered.add(key)
                else:
                    probs.add("a message nobody published", i, m)
                pub, num = m["data"][1:].split(".")
                if (m["queue"], pub) in last_n and int(num) <= last_n[(m["queue"], pub)]:
                    probs.add("publish order broken", i, m)
                last_n[(m["queue"], pub)] = int(num)
            missing = expected[i] - set(ids)
            if missing:
                lost = sorted((id_, k, r) for k, (id_, r) in ok.items() if id_ in missing)
                probs.add("messages that got 200 were not delivered (poller, count, first ones)", i, len(missing),
                          lost[:10])
        # a message one client saw reaches every client of its queue, even one
        # that polls for it only after a SIGKILL: seen means written
        per_queue = {}
        for i, qs in enumerate(sets):
            for q in qs:
                per_queue.setdefault(q, {})[i] = set()
            for _, m in got[i]:
                per_queue[m["queue"]][i].add((m["id"], m["data"]))
        for q, by in per_queue.items():
            union = set().union(*by.values())
            for i, have in by.items():
                for id_, data in sorted(union - have)[:3]:
                    probs.add("a message another client of its queue got was not delivered (seen but not written?)",
                              i, q, id_, data, (q, data) in ok)
        for t, ids in ok_order.items():
            for a, b in zip(ids, ids[1:]):
                if b <= a:
                    probs.add("a publisher got ids that do not grow", t, a, b)
                    break
        # every run's ids are above every id an earlier run handed out
        handed = {}
        for (id_, run) in ok.values():
            handed.setdefault(run, []).append(id_)
        for i in range(len(sets)):
            for run, m in got[i]:
                handed.setdefault(run, []).append(m["id"])
        answered_by = {}
        for (id_, run) in ok.values():
            answered_by.setdefault(run, []).append(id_)
        top = 0
        for run in sorted(set(handed) | set(answered_by)):
            if run in answered_by and min(answered_by[run]) <= top:
                probs.add("a run handed out an id not above every id of an earlier run",
                          run, min(answered_by[run]), top)
            top = max([top] + handed.get(run, []))
        print("test_durability: journal-sync=%s: %d SIGKILLs, %d SIGTERMs, %d runs, %d messages answered 200, "
              "%d unanswered (%d of them delivered), %d refused, journal generation %d, %.1f s"
              % (sync, kills, self.TERMS, n.runs, len(ok), len(unanswered), len(delivered_unanswered),
                 len(refused), generation, elapsed), file=sys.stderr, flush=True)
        if probs.kinds:
            self.fail("seed %d (CBX_SEED=%d replays the schedule):\n%s" % (seed, seed, probs.report()))
        self.assertGreaterEqual(kills, 20)
        self.assertGreater(len(ok), 200, "too few messages got through to test anything")

    def test_sigkill_at_random_moments_batch(self):
        self.check_crashes("batch")

    def test_sigkill_at_random_moments_none(self):
        self.check_crashes("none")


# ---------------------------------------------------------------- 3. corruption

class Corruption(unittest.TestCase):
    """A journal cut mid-record or scribbled over at its tail: the daemon
    drops the damaged tail (and says so), serves what came before and goes
    on."""

    N = 60
    K = 45   # the first damaged message

    def check_damage(self, damage):
        n = Node(self, "--max-batch", "1000")
        d = n.start()
        datas = ["corrupt-%03d-%s" % (i, "abcdefghij" * 4) for i in range(self.N)]
        ids = [d.pub("cq", x) for x in datas]
        n.stop(signal.SIGKILL)
        gen, path = journals(n.state)[-1]
        with open(path, "rb") as f:
            raw = f.read()
        offs = [raw.find(x.encode()) for x in datas]
        self.assertTrue(all(o >= 0 for o in offs) and offs == sorted(offs),
                        "the messages' data is not in %s in publish order (%d bytes; offsets %s)"
                        % (path, len(raw), offs))
        cut = offs[self.K] + 5      # inside message K's record
        if damage == "truncate":
            os.truncate(path, cut)
            size = cut
        else:
            junk = random.Random(7).randbytes(len(raw) - cut)
            with open(path, "r+b") as f:
                f.seek(cut)
                f.write(junk)
            size = len(raw)
        d = n.start()
        m = d.wait_for(re.compile(r"\bwarn\b.*journal.*%s.*dropped" % re.escape(path)), 5)
        self.assertIsNotNone(m, "no warn line naming %s and what was dropped; log:\n%s" % (path, d.log))
        line = m.string
        at = re.search(r"at byte (\d+): (\d+) bytes", line)
        self.assertIsNotNone(at, line)
        start, count = int(at.group(1)), int(at.group(2))
        self.assertTrue(offs[self.K - 1] < start <= offs[self.K], (line, offs[self.K - 1], offs[self.K]))
        self.assertEqual(start + count, size, line)
        self.assertEqual(ctl_json(d.admin, "stats")["journal"]["dropped_bytes"], count)
        served = [msg(ids[i], "cq", datas[i]) for i in range(self.K)]
        self.assertEqual(json.loads(d.poll("cq", timeout=0)[2]), served)
        new = d.pub("cq", "after the damage")
        self.assertGreater(new, ids[self.K - 1])
        served.append(msg(new, "cq", "after the damage"))
        self.assertEqual(json.loads(d.poll("cq", timeout=0)[2]), served)
        # the new record went after the good part: a second start drops nothing more
        n.stop(signal.SIGKILL)
        d = n.start()
        self.assertEqual(json.loads(d.poll("cq", timeout=0)[2]), served)
        self.assertEqual(json.loads(d.poll("cq", since=ids[9], timeout=0)[2]), served[10:])
        self.assertNotIn("dropped", d.log, "the second start dropped something again")
        self.assertGreater(d.pub("cq", "third run"), new)
        n.stop()
        # The dropped messages had been answered 200 and may have been
        # delivered (as the last seconds of journal-sync none are after a
        # power cut): a client whose cursor is one of their ids must still get
        # what follows, so their ids are not handed out again.
        self.assertGreater(new, ids[-1], "an id of a message lost with the damaged tail is handed out again "
                           "(%d; the dropped ones were %d to %d): a client that saw them skips the new ones "
                           "without a gap" % (new, ids[self.K], ids[-1]))

    def test_truncated_mid_record(self):
        self.check_damage("truncate")

    def test_tail_scribbled_over(self):
        self.check_damage("scribble")


# ---------------------------------------------------------------- 4. disk full

class DiskFull(unittest.TestCase):
    """The state dir on a 2 MiB tmpfs that fills up: publishes are refused with
    503 while the journal cannot be written, nothing answered before is lost,
    and publishing resumes once there is room again."""

    def mount(self):
        if os.geteuid() != 0:
            self.fail("this test mounts a tmpfs for the state dir and needs root (CI runs as root)")
        mnt = tempfile.mkdtemp(prefix="cbx-full-")
        self.addCleanup(shutil.rmtree, mnt, True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", mnt], check=True)

        def umount():
            if subprocess.run(["umount", mnt]).returncode != 0:
                subprocess.run(["umount", "-l", mnt])
        self.addCleanup(umount)
        return mnt

    def test_disk_full_refuses_publishes_then_recovers(self):
        mnt = self.mount()
        n = Node(self, "--max-batch", "10000", state=os.path.join(mnt, "state"))  # after the umount cleanup: runs first
        d = n.start()
        before = [d.pub("full", "before-%02d" % i) for i in range(20)]
        d.poll("full", since=before[9], timeout=0)
        expect = [msg(before[i], "full", "before-%02d" % i) for i in range(10, 20)]
        # leave 24 KiB
        vfs = os.statvfs(mnt)
        fill = os.path.join(mnt, "fill")
        with open(fill, "wb") as f:
            f.write(b"\0" * (vfs.f_bavail * vfs.f_frsize - 24 * 1024))
        pad = "y" * 1000
        answer = None
        for i in range(3000):    # 3 MB, more than the tmpfs holds
            data = "full-%04d-%s" % (i, pad)
            st, hdr, body = d.publish_json({"queue": "full", "data": data})
            if st != 200:
                answer = (st, hdr, body, data)
                break
            expect.append(msg(json.loads(body)["ids"][0], "full", data))
        self.assertIsNotNone(answer, "3000 publishes of 1 KB to a 2 MiB tmpfs were all answered 200")
        st, hdr, body, data = answer
        self.assertEqual((st, body), (503, NOSPACE_BODY))
        self.assertEqual(hdr.get("content-type"), "application/json")
        refused = [data]
        # the file was cut back: a smaller publish could fit, a bigger one cannot
        for q in ("full", "other"):
            batch = [{"queue": q, "data": "refused-%s-%s" % (q, pad)}, {"queue": "full", "data": "r2-%s-%s" % (q, pad)}]
            st, _, body = d.publish_json(batch)
            self.assertEqual((st, body), (503, NOSPACE_BODY))
            refused += [m["data"] for m in batch]
        self.assertIsNotNone(d.wait_for(re.compile(r"journal: write failed: No space left on device"), 5), d.log)
        j = ctl_json(d.admin, "stats")["journal"]
        self.assertEqual(j["state"], "failing", j)
        self.assertIn("No space left on device", j["error"])
        self.assertGreaterEqual(j["write_errors"], 1)
        self.assertEqual(j["refused_publishes"], 3)
        m = d.metrics()
        self.assertEqual(m["cometbox_journal_up"], 0)
        self.assertGreaterEqual(m["cometbox_journal_write_errors_total"], 1)
        self.assertEqual(m["cometbox_journal_refused_publishes_total"], 3)
        self.assertEqual(m['cometbox_refused_total{reason="journal"}'], 3)
        # nothing answered 200 is lost, nothing refused is there
        self.assertEqual(json.loads(d.poll("full", timeout=0)[2]), expect)
        self.assertEqual(d.poll("other", timeout=0)[2], b"[]\n")
        # room again
        os.unlink(fill)
        deadline = time.monotonic() + 10
        k = 0
        while True:
            data = "after-%02d" % k
            k += 1
            st, _, body = d.publish_json({"queue": "full", "data": data})
            if st == 200:
                expect.append(msg(json.loads(body)["ids"][0], "full", data))
                break
            self.assertEqual((st, body), (503, NOSPACE_BODY))
            refused.append(data)
            self.assertLess(time.monotonic(), deadline, "publishes still refused 10 s after the fill file went")
            time.sleep(0.05)
        for i in range(5):
            data = "after-%02d" % k
            k += 1
            expect.append(msg(d.pub("full", data), "full", data))
        self.assertIsNotNone(d.wait_for(re.compile(r"journal: writing again"), 5), d.log)
        j = ctl_json(d.admin, "stats")["journal"]
        self.assertEqual((j["state"], j["error"]), ("ok", None), j)
        self.assertEqual(d.metrics()["cometbox_journal_up"], 1)
        got = json.loads(d.poll("full", since=before[9], timeout=0)[2])
        self.assertEqual(got, expect)
        self.assertFalse({m["data"] for m in got} & set(refused))
        # and all of it is in the journal: a SIGKILL loses none of it
        d = n.restart(signal.SIGKILL)
        self.assertEqual(json.loads(d.poll("full", timeout=0)[2]), expect)
        self.assertEqual(d.poll("other", timeout=0)[2], b"[]\n")
        n.stop()


# ---------------------------------------------------------------- 5. compaction

class Compaction(unittest.TestCase):
    """With journal-compact-size 4096 the state dir stays about the size of
    what is stored, whatever went through it; a snapshot replaces the old
    journals and a restart serves the same."""

    QUEUES = ["cp.%d" % i for i in range(8)]
    QMAX = 10        # queue-max-messages: bounds what is stored at any moment
    ROUNDS = 40

    def test_state_dir_stays_bounded(self):
        n = Node(self, "--journal-compact-size", "4096", "--retain-acked", "0",
                 "--queue-max-messages", str(self.QMAX), "--max-batch", "1000")
        d = n.start()
        gens = set(g for g, _ in journals(n.state))
        first_gen = min(gens)
        pad = "z" * 200
        enc = len(json.dumps(msg(2 ** 52, "cp.0", "r00-cp.0-00-" + pad), separators=(",", ":")))
        stored_max = self.QMAX * len(self.QUEUES) * enc
        # the journal (up to twice what is stored, plus one write) and the snapshot
        bound = 4 * stored_max + 64 * 1024
        published = 0
        biggest = settled = 0
        for r in range(self.ROUNDS):
            batch = [{"queue": self.QUEUES[j % 8], "data": "r%02d-%s-%02d-%s" % (r, self.QUEUES[j % 8], j // 8, pad)}
                     for j in range(self.QMAX * 8)]
            st, _, body = d.publish_json(batch)
            self.assertEqual(st, 200, body)
            ids = json.loads(body)["ids"]
            published += enc * len(ids)
            # acknowledge 6 of each queue's 10, leaving 4 pending (the next round's publish drops them)
            d.poll(",".join(self.QUEUES), since=ids[47], timeout=0)
            biggest = max(biggest, dir_bytes(n.state))
            gens |= set(g for g, _ in journals(n.state))
            # while a snapshot is written the new journal takes what comes, as
            # fast as it comes: measure once the compactor is done
            deadline = time.monotonic() + 10
            while len(journals(n.state)) != 1 or os.path.exists(os.path.join(n.state, "snapshot.tmp")):
                self.assertLess(time.monotonic(), deadline, "a compaction did not end in 10 s: %s"
                                % sorted(os.listdir(n.state)))
                time.sleep(0.01)
            size = dir_bytes(n.state)
            settled = max(settled, size)
            self.assertLessEqual(size, bound, "round %d: the state dir holds %d bytes, more than %d (%d bytes "
                                 "stored at most); files: %s" % (r, size, bound, stored_max,
                                                                 sorted(os.listdir(n.state))))
        self.assertGreater(published, 3 * bound, "the test published too little to tell")
        # once it settles: one snapshot, one journal (a newer one), nothing else
        deadline = time.monotonic() + 10
        while True:
            names = sorted(os.listdir(n.state))
            js = journals(n.state)
            if len(js) == 1 and "snapshot" in names and "snapshot.tmp" not in names:
                break
            self.assertLess(time.monotonic(), deadline, names)
            time.sleep(0.05)
        self.assertEqual(sorted(set(names) - {"lock"}), sorted(["snapshot", os.path.basename(js[0][1])]))
        self.assertGreater(js[0][0], first_gen, "no journal generation after the first")
        before = self.observe(d, ids)
        for sig in (signal.SIGKILL, signal.SIGTERM):
            d = n.restart(sig)
            self.assertEqual(self.observe(d, ids), before, "after a restart by %s" % signal.Signals(sig).name)
        new = d.pub("cp.0", "after")
        self.assertGreater(new, ids[-1])
        n.stop()
        print("\ntest_durability: compaction: %d journal generations, state dir at most %d bytes (%d while a "
              "snapshot was written; bound %d), %d bytes published" % (len(gens), settled, biggest, bound, published),
              file=sys.stderr, flush=True)

    def test_snapshots_of_many_messages_while_publishing_and_killed(self):
        """More messages stored than the compactor copies at one hold of the
        map lock (8192), publishes, acknowledgements and drops going on while
        it copies, and SIGKILLs while a compaction runs (two journals on
        disk): after each restart every queue's pending messages are exactly
        those answered 200 and not acknowledged or dropped."""
        seed = int(os.environ.get("CBX_SEED") or random.SystemRandom().randrange(1, 2 ** 31))
        print("\ntest_durability: big snapshots seed %d" % seed, file=sys.stderr, flush=True)
        rng = random.Random(seed)
        keep = ["big.%d" % i for i in range(20)]
        acking, overflowing = keep[:16], keep[16:]   # the latter are never acknowledged, so what they hold is exact
        churn = ["ch.%d" % i for i in range(4)]
        n = Node(self, "--journal-compact-size", "4096", "--retain-acked", "0", "--queue-max-messages", "1500",
                 "--queue-max-bytes", "64m", "--max-batch", "100000")
        d = n.start()
        published = {q: [] for q in keep + churn}
        acked = {q: 0 for q in keep + churn}
        cap = 1500   # queue-max-messages: the oldest go first

        def publish(batch):
            st, _, body = d.publish_json(batch)
            self.assertEqual(st, 200, body)
            ids = json.loads(body)["ids"]
            for m, id_ in zip(batch, ids):
                published[m["queue"]].append((id_, m["data"]))
            return ids

        def ack(qs, since):
            st, _, body = d.poll(",".join(qs), since=since, timeout=0)
            self.assertEqual(st, 200, body)
            for q in qs:
                acked[q] = max(acked[q], since)

        def check(why):
            for q in keep + churn:
                left = [(i, x) for i, x in published[q][-cap:] if i > acked[q]]
                want = [msg(i, q, x) for i, x in left]
                got = [m for m in json.loads(d.poll(q, timeout=0)[2]) if m.get("type") != "gap"]
                if got != want:
                    ids_got = [m["id"] for m in got]
                    ids_want = [m["id"] for m in want]
                    self.fail("%s, queue %s (seed %d): %d pending, expected %d; missing %s; not expected %s"
                              % (why, q, seed, len(got), len(want), sorted(set(ids_want) - set(ids_got))[:5],
                                 sorted(set(ids_got) - set(ids_want))[:5]))

        for b in range(20):       # 20,000 pending messages, 1,000 per queue
            publish([{"queue": keep[j % 20], "data": "keep-%05d" % (b * 1000 + j)} for j in range(1000)])
        kills = 0
        compactions = set()    # the journals started by a compaction, seen while it ran
        deadline = time.monotonic() + 60
        r = 0
        while len(compactions) < 4 or kills < 3:
            self.assertLess(time.monotonic(), deadline, "%d compactions and %d kills in 60 s" % (len(compactions), kills))
            ids = publish([{"queue": churn[j % 4], "data": "r%d-%d" % (r, j)} for j in range(1000)])
            ack(churn, ids[959])                   # 10 of the round stay pending on each churn queue
            q = rng.choice(acking)                 # a few of the kept ones are acknowledged
            pend = [i for i, _ in published[q] if i > acked[q]]
            if len(pend) > 50:
                ack([q], pend[rng.randrange(1, 30)])
            if rng.random() < 0.3:                 # some are dropped by the queue limit
                q = rng.choice(overflowing)
                publish([{"queue": q, "data": "over-%d-%d" % (r, j)} for j in range(300)])
            r += 1
            js = journals(n.state)
            if len(js) == 2:                       # a compaction runs
                compactions.add((n.runs, js[-1][0]))
                if kills < 3 and rng.random() < 0.7:
                    # acknowledgements are written shortly after; without this a
                    # SIGKILL while the compaction holds the writer up takes
                    # the last ones back (docs/DURABILITY.md "Pending is pending")
                    d.pub("sync", "the acknowledgements are written once this is answered")
                    d = n.restart(signal.SIGKILL)
                    kills += 1
                    check("after a SIGKILL during a compaction")
        self.assertTrue(any(len(published[q]) > cap for q in overflowing), "no queue went over its limit")
        d.pub("sync", "the acknowledgements are written once this is answered")
        d = n.restart(signal.SIGKILL)
        check("after a SIGKILL")
        d = n.restart(signal.SIGTERM)
        check("after a SIGTERM")
        n.stop()
        print("test_durability: big snapshots: %d rounds, %d compactions seen running, %d SIGKILLs during one"
              % (r, len(compactions), kills), file=sys.stderr, flush=True)

    def observe(self, d, ids):
        qs = ",".join(self.QUEUES)
        out = {"pending": d.poll(qs, timeout=0)[2], "since": d.poll(qs, since=ids[47], timeout=0)[2]}
        for q in self.QUEUES:
            out[q] = d.poll(q, timeout=0)[2]
        out["pending_messages"] = ctl_json(d.admin, "stats")["pending_messages"]
        self.assertEqual(out["pending_messages"], 32)
        return out


if __name__ == "__main__":
    unittest.main()
