"""Scale-out (issue 20, broker = redis): several cometboxd nodes share their
queues through one real redis-server. Delivery, resume with since, atomic
batches, kick and flush, acknowledgements and gaps across nodes; kill -9 of
a node and a Redis outage under load; healthz, stats, metrics and the config
keys. Each test starts its own redis-server (redis_util.py) and, mostly,
three nodes: 1 and 2 in threads = pool, 3 in per-connection, so one run
covers both modes (CTest runs this file once, as integration_scaling).
Node 2 reaches Redis over its UNIX socket, 1 and 3 over TCP. Not for what
one node does alone (test_core.py, test_queues.py)."""
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from cbx import COMETBOXCTL, COMETBOXD, Daemon, ctl, ctl_json, drain, gap, msg, reset_close, wait_until
from redis_util import RedisServer, free_port
from ws_client import WsClient


SANITIZER_REPORTS = ("runtime error", "ERROR: AddressSanitizer", "WARNING: ThreadSanitizer", "LeakSanitizer")
PUBLISH_DOWN = b'{"error":"unavailable","detail":"the broker (Redis) is unreachable; nothing was queued"}\n'
BROWSER_DOWN = b'{"error":"unavailable","detail":"the broker (Redis) is unreachable; retry"}\n'
HEALTH_UP = b'{"status":"ok","broker":"up"}\n'
HEALTH_DOWN = b'{"status":"unavailable","broker":"down"}\n'
MAX_QUEUES = b'{"error":"unavailable","detail":"too many queues (max-queues)"}\n'
BROKER_KEYS = ["errors", "last_error", "mirrored", "reconnects", "state", "type", "url"]


# ---- helpers ---------------------------------------------------------------

def body_of(objs):
    """The exact bytes of a JSON answer: compact, then a newline."""
    return (json.dumps(objs, separators=(",", ":"), ensure_ascii=False) + "\n").encode()



def kick(reason):
    return {"type": "kick", "reason": reason}





def broker_stats(node):
    st = ctl_json(node, "stats")
    assert "broker" in st, "cometboxctl --json stats has no broker object: %r" % sorted(st)
    return st["broker"]



def pending(node, queues):
    """The pending messages of queues as a poll without since sees them on node."""
    st, _, body = node.poll(queues, timeout=0)
    assert st == 200, (st, body)
    return json.loads(body)


def lines_until(stream, count, timeout=10):
    """Reads stream lines until they hold count objects; returns the objects."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        out.extend(json.loads(stream.line(max(0.01, deadline - time.monotonic()))))
    return out


def frame_of(*objs):
    return json.dumps(list(objs), separators=(",", ":"), ensure_ascii=False) + "\n"


# ---- the cluster -------------------------------------------------------------

class Cluster(unittest.TestCase):
    """A redis-server and the nodes of NODES (threads mode, and how the node
    reaches Redis: "tcp" or "unix"), each with --broker redis and ARGS,
    started for each test and ready (broker up) before it runs. self.n1,
    self.n2, self.n3 are the nodes. Every node still running at the end is
    stopped with SIGTERM and must exit 0 with a clean log."""
    ARGS = []
    NODES = (("pool", "tcp"), ("pool", "unix"), ("per-connection", "tcp"))
    AOF = False
    PASSWORD = None
    maxDiff = None

    def setUp(self):
        self.nodes = []
        self.killed = []
        self.redis = self.new_redis(aof=self.AOF, password=self.PASSWORD)
        for threads, kind in self.NODES:
            self.node(self.url(kind), threads=threads)
        for n in self.nodes:
            self.wait_broker(n, "up")
        self.n1, self.n2, self.n3 = (self.nodes + [None] * 3)[:3]

    def tearDown(self):
        for n in self.nodes:
            if n in self.killed or n.proc.poll() is not None:
                continue
            rc, _ = n.stop()
            self.assertEqual(rc, 0, "cometboxd exit status after SIGTERM; log:\n" + n.log)
        for n in self.nodes:
            for bad in SANITIZER_REPORTS:
                self.assertNotIn(bad, n.log)

    def new_redis(self, **kw):
        r = RedisServer(**kw)
        self.addCleanup(r.cleanup)
        return r

    def url(self, kind, redis=None):
        r = redis or self.redis
        return r.tcp_url if kind == "tcp" else r.unix_url

    def node(self, url, *args, threads="pool", wait=True):
        """Starts a node on url with ARGS and args; cleaned up at the end."""
        d = Daemon("--broker", "redis", "--redis-url", url, *(list(self.ARGS) + list(args)), threads=threads,
                   wait=wait)
        self.addCleanup(d.cleanup)
        self.nodes.append(d)
        return d

    def kill9(self, node):
        node.proc.kill()
        node.proc.wait()
        self.killed.append(node)

    def wait_broker(self, node, state, timeout=10):
        """Waits until node's stats say the broker is state ("up", "down")."""
        last = [None]

        def check():
            last[0] = broker_stats(node)
            return last[0].get("state") == state
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError("the broker of node %s was not %s within %ss; stats broker %r; log:\n%s"
                                     % (node.admin, state, timeout, last[0], node.log))
            time.sleep(0.02)

    def publish(self, node, items):
        """Publishes a JSON batch on node; checks the exact answer; returns the ids."""
        st, _, body = node.publish_json(items)
        self.assertEqual(st, 200, body)
        ids = json.loads(body)["ids"]
        self.assertEqual(body, body_of({"ids": ids}))
        self.assertEqual(len(ids), len(items) if isinstance(items, list) else 1)
        return ids

    def held(self, node, n, transport="long-poll"):
        node.wait_held(n, transport)


# ---- 1. delivery ------------------------------------------------------------

class Delivery(Cluster):
    def test_publish_on_node_1_wakes_long_polls_held_on_nodes_2_and_3(self):
        polls = [n.start_polls("alice", [None], timeout=20) for n in (self.n2, self.n3)]
        self.held(self.n2, 1)
        self.held(self.n3, 1)
        [a] = self.publish(self.n1, {"queue": "alice", "data": "Hello"})
        for i, (threads, results) in enumerate(polls):
            threads[0].join(10)
            self.assertFalse(threads[0].is_alive(), "the poll on node %d was not woken" % (i + 2))
            self.assertEqual((results[0][0], results[0][2]), (200, body_of([msg(a, "alice", "Hello")])),
                             "node %d" % (i + 2))
        # with since, and the other transports: the same batch on every node
        polls = [n.start_polls("alice", [None], since=a, timeout=20) for n in (self.n2, self.n3)]
        stream = self.n2.open_stream("/stream/alice?since=%d" % a)
        self.assertEqual((stream.status, stream.line()), (200, "[]\n"))
        sse = self.n3.open_stream("/events/alice?since=%d" % a)
        self.assertEqual(sse.status, 200)
        self.assertTrue(re.fullmatch(r"retry: \d+\n\n", sse.event()))
        self.held(self.n2, 1)
        self.held(self.n3, 1)
        self.held(self.n2, 1, "stream")
        self.held(self.n3, 1, "sse")
        b, c = self.publish(self.n1, [{"queue": "alice", "data": {"x": [1, None]}}, {"queue": "alice", "data": "two"}])
        self.assertEqual(c, b + 1)
        want = [msg(b, "alice", {"x": [1, None]}), msg(c, "alice", "two")]
        for i, (threads, results) in enumerate(polls):
            threads[0].join(10)
            self.assertFalse(threads[0].is_alive(), "the poll on node %d was not woken" % (i + 2))
            self.assertEqual((results[0][0], results[0][2]), (200, body_of(want)), "node %d" % (i + 2))
        self.assertEqual(stream.line(), body_of(want).decode())
        for m in want:
            self.assertEqual(sse.event(), "id: %d\ndata: %s\n\n" % (m["id"], body_of(m).decode().rstrip("\n")))
        stream.close()
        sse.close()

    def test_fan_out_to_many_held_requests_spread_over_the_nodes(self):
        polls = [n.start_polls("room", [None] * 10, since=0, timeout=20) for n in self.nodes]
        for n in self.nodes:
            self.held(n, 10)
        [a] = self.publish(self.n2, {"queue": "room", "data": "to all thirty"})
        for k, (threads, results) in enumerate(polls):
            for t in threads:
                t.join(10)
            self.assertEqual([(r[0], r[2]) for r in results],
                             [(200, body_of([msg(a, "room", "to all thirty")]))] * 10, "node %d" % (k + 1))

    def test_ids_are_one_increasing_sequence_across_the_nodes(self):
        ids = []
        for round_ in range(3):
            for k, n in enumerate(self.nodes):
                ids += self.publish(n, {"queue": "seq", "data": "r%d-n%d" % (round_, k + 1)})
        self.assertEqual(ids, sorted(set(ids)), "ids in publish order, across nodes")
        # a batch is consecutive ids
        batch = self.publish(self.n3, [{"queue": "seq", "data": "b%d" % i} for i in range(4)])
        self.assertEqual(batch, list(range(batch[0], batch[0] + 4)))
        self.assertGreater(batch[0], ids[-1])
        # cometboxctl publish goes through Redis too
        rc, out, err = ctl(self.n2, "publish", "seq", "from the admin")
        self.assertEqual((rc, err), (0, ""))
        self.assertTrue(re.fullmatch(r"\d+\n", out), out)
        c = int(out)
        self.assertGreater(c, batch[-1])
        jid = ctl_json(self.n3, "publish", "seq", '{"j":1}', "--json")["id"]
        self.assertGreater(jid, c)
        want = []
        k = 0
        for round_ in range(3):
            for j in range(3):
                want.append(msg(ids[k], "seq", "r%d-n%d" % (round_, j + 1)))
                k += 1
        want += [msg(batch[i], "seq", "b%d" % i) for i in range(4)]
        want += [msg(c, "seq", "from the admin"), msg(jid, "seq", {"j": 1})]
        for n in self.nodes:
            self.assertEqual(drain(n, "seq"), want)


# ---- 2. resume with since on another node -----------------------------------

class Resume(Cluster):
    def test_a_since_above_redis_newest_id_is_a_restart_gap_on_every_node(self):
        [a] = self.publish(self.n1, {"queue": "rs", "data": "x"})
        first = ctl_json(self.n1, "stats")["first_id"]
        for n in self.nodes:   # node 1 mirrors nothing yet; nodes 2 and 3 neither
            self.assertEqual(ctl_json(n, "stats")["first_id"], first, n.admin)
            self.assertEqual(n.poll("rs", since=a + 1000, timeout=0)[::2],
                             (200, body_of([gap("rs", first, a + 1000, "restart"), msg(a, "rs", "x")])), n.admin)
        # nothing was acknowledged by those
        self.assertEqual(pending(self.n2, "rs"), [msg(a, "rs", "x")])

    def test_a_reader_hopping_between_nodes_misses_nothing_and_gets_nothing_twice(self):
        total = 150
        sent = []
        errors = []

        def publisher():
            i = 0
            try:
                while i < total:
                    n = self.nodes[i % 3]
                    k = 5 if i % 20 == 10 else 1
                    items = [{"queue": "hop", "data": "m%03d" % (i + j)} for j in range(k)]
                    st, _, body = n.publish_json(items)
                    if st != 200:
                        errors.append((st, body))
                        return
                    sent.extend(zip(json.loads(body)["ids"], (m["data"] for m in items)))
                    i += k
            except Exception as e:  # reported below
                errors.append(repr(e))

        t = threading.Thread(target=publisher)
        t.start()
        got, since, hop = [], 0, 0
        deadline = time.monotonic() + 30
        while len(got) < total and time.monotonic() < deadline:
            st, _, body = self.nodes[hop % 3].poll("hop", since=since, timeout=5)
            hop += 1
            self.assertEqual(st, 200, body)
            for m in json.loads(body):
                got.append(m)
                since = m["id"]
        t.join(30)
        self.assertEqual(errors, [])
        self.assertGreater(hop, 3)
        self.assertEqual(got, [msg(i, "hop", d) for i, d in sent])

    def test_stream_cut_on_one_node_resumes_on_another(self):
        s = self.n1.open_stream("/stream/news?since=0")
        self.assertEqual((s.status, s.line()), (200, "[]\n"))
        self.held(self.n1, 1, "stream")
        ids = [self.publish(self.n2, {"queue": "news", "data": "n%d" % i})[0] for i in range(3)]
        self.assertEqual(lines_until(s, 3), [msg(ids[i], "news", "n%d" % i) for i in range(3)])
        reset_close(s.sock)
        ids += self.publish(self.n3, [{"queue": "news", "data": "n3"}, {"queue": "news", "data": "n4"}])
        # resume on node 2 from the last id seen on node 1: exactly the two after it
        s = self.n2.open_stream("/stream/news?since=%d" % ids[2])
        self.assertEqual(s.status, 200)
        self.assertEqual(s.headers["cometbox-cursor"], str(ids[2]))
        self.assertEqual(s.line(), body_of([msg(ids[3], "news", "n3"), msg(ids[4], "news", "n4")]).decode())
        s.close()
        # SSE on node 3 with Last-Event-ID
        e = self.n3.open_stream("/events/news", headers={"Last-Event-ID": str(ids[1])})
        self.assertEqual(e.status, 200)
        self.assertTrue(re.fullmatch(r"retry: \d+\n\n", e.event()))
        for i in (2, 3, 4):
            m = msg(ids[i], "news", "n%d" % i)
            self.assertEqual(e.event(), "id: %d\ndata: %s\n\n" % (ids[i], body_of(m).decode().rstrip("\n")))
        e.close()


# ---- 3. atomic batches --------------------------------------------------------

class Batches(Cluster):
    ARGS = ["--max-queues", "5"]

    def test_a_batch_across_queues_is_seen_whole_on_every_node(self):
        batches = 30          # 90 messages: below max-batch, so no answer is cut by it
        answers = {k: [] for k in range(3)}
        stop = threading.Event()
        errors = []

        def reader(k):
            since = 0
            deadline = time.monotonic() + 30
            try:
                while not stop.is_set() and time.monotonic() < deadline:
                    st, _, body = self.nodes[k].poll("b1,b2,b3", since=since, timeout=2)
                    if st != 200:
                        errors.append((k, st, body))
                        return
                    arr = json.loads(body)
                    if arr:
                        answers[k].append(arr)
                        since = arr[-1]["id"]
            except Exception as e:
                errors.append((k, repr(e)))

        readers = [threading.Thread(target=reader, args=(k,)) for k in range(3)]
        for t in readers:
            t.start()
        for n in self.nodes:
            self.held(n, 1)
        want = []
        for b in range(batches):
            items = [{"queue": "b%d" % q, "data": "batch%02d-%d" % (b, q)} for q in (1, 2, 3)]
            ids = self.publish(self.nodes[b % 3], items)
            self.assertEqual(ids, [ids[0], ids[0] + 1, ids[0] + 2], "a batch's ids are consecutive")
            want += [msg(i, m["queue"], m["data"]) for i, m in zip(ids, items)]
        wait_until(lambda: all(sum(map(len, answers[k])) >= len(want) for k in range(3)), 20,
                   "every reader to have all %d messages" % len(want))
        stop.set()
        for t in readers:
            t.join(10)
        self.assertEqual(errors, [])
        for k in range(3):
            self.assertEqual([m for a in answers[k] for m in a], want, "node %d" % (k + 1))
            for a in answers[k]:
                # whole batches only: every answer is a run of complete triples
                self.assertEqual(len(a) % 3, 0, "node %d got part of a batch: %r" % (k + 1, a))
                for j in range(0, len(a), 3):
                    self.assertEqual([m["queue"] for m in a[j:j + 3]], ["b1", "b2", "b3"], a)
                    self.assertEqual(a[j + 2]["id"], a[j]["id"] + 2, a)

    def test_a_batch_refused_for_max_queues_stores_nothing_anywhere(self):
        first = {}
        for k, qs in enumerate((("q1", "q2"), ("q3",), ("q4", "q5"))):
            ids = self.publish(self.nodes[k], [{"queue": q, "data": "first " + q} for q in qs])
            first.update(zip(qs, ids))
        for n in self.nodes:
            st, hdr, body = n.publish_json([{"queue": "q1", "data": "second q1"}, {"queue": "q6", "data": "x"}])
            self.assertEqual((st, body, hdr.get("retry-after")), (503, MAX_QUEUES, "5"), n.admin)
        for n in self.nodes:
            for q in ("q1", "q2", "q3", "q4", "q5"):
                self.assertEqual(n.poll(q, since=0, timeout=0)[::2], (200, body_of([msg(first[q], q, "first " + q)])))
            self.assertEqual(n.poll("q6", since=0, timeout=0)[::2], (200, b"[]\n"))
            # as on one node, the refused batch left no trace of q6 (nothing to flush)
            self.assertEqual(ctl(n, "flush", "q6"), (1, "", "cometboxctl: no such queue: q6\n"))
        # and the next id follows the last one handed out: the refused batch took none
        [nxt] = self.publish(self.n2, {"queue": "q1", "data": "third q1"})
        self.assertGreater(nxt, max(first.values()))


# ---- 4. kick and flush from one node act on every node -----------------------

class KickAndFlush(Cluster):
    def test_kick_on_node_1_ends_the_holds_of_the_queue_on_every_node(self):
        [a] = self.publish(self.n1, {"queue": "room", "data": "before"})
        polls1 = self.n1.start_polls("room", [None], since=a, timeout=20)
        polls2 = self.n2.start_polls("room", [None], since=a, timeout=20)
        other = self.n3.start_polls("lobby", [None], since=0, timeout=20)
        stream = self.n3.open_stream("/stream/room?since=%d" % a)
        self.assertEqual((stream.status, stream.line()), (200, "[]\n"))
        sse = self.n2.open_stream("/events/room?since=%d" % a)
        self.assertTrue(re.fullmatch(r"retry: \d+\n\n", sse.event()))
        self.held(self.n1, 1)
        self.held(self.n2, 1)
        self.held(self.n2, 1, "sse")
        self.held(self.n3, 1)
        self.held(self.n3, 1, "stream")
        rc, out, err = ctl(self.n1, "kick", "room", "--reason", "spam")
        self.assertEqual((rc, err), (0, ""))
        # docs/ADMIN.md: kicked counts the requests held at that moment; whether
        # node 1 counts its own (1) or the cluster's (4) is not written down yet
        self.assertIn(out, ("kicked 1 client on room\n", "kicked 4 clients on room\n"))
        want = body_of([kick("spam")])
        for name, (threads, results) in (("node 1", polls1), ("node 2", polls2)):
            threads[0].join(10)
            self.assertFalse(threads[0].is_alive(), name + ": the held poll was not kicked")
            self.assertEqual((results[0][0], results[0][2]), (200, want), name)
        self.assertEqual(stream.line(), want.decode())
        self.assertEqual(stream.read_to_end(), b"")
        self.assertEqual(sse.event(), 'event: kick\ndata: {"type":"kick","reason":"spam"}\n\n')
        stream.close()
        sse.close()
        # the hold on another queue was left alone
        self.held(self.n3, 1)
        [b] = self.publish(self.n1, {"queue": "lobby", "data": "still here"})
        other[0][0].join(10)
        self.assertEqual((other[1][0][0], other[1][0][2]), (200, body_of([msg(b, "lobby", "still here")])))
        for n in self.nodes:
            self.held(n, 0)
            self.held(n, 0, "stream")
            self.held(n, 0, "sse")

    def test_kick_reaches_holds_on_a_queue_node_1_never_saw(self):
        # never published: the queue is only placeholders on nodes 2 and 3
        polls = [n.start_polls("ghost", [None], timeout=20) for n in (self.n2, self.n3)]
        self.held(self.n2, 1)
        self.held(self.n3, 1)
        rc, out, err = ctl(self.n1, "kick", "ghost")
        self.assertEqual((rc, err), (0, ""), "kick on node 1 of a queue held on nodes 2 and 3")
        self.assertIn(out, ("kicked 0 clients on ghost\n", "kicked 2 clients on ghost\n"))
        for i, (threads, results) in enumerate(polls):
            threads[0].join(10)
            self.assertEqual((results[0][0], results[0][2]), (200, body_of([kick("kicked by an operator")])),
                             "node %d" % (i + 2))

    def test_flush_on_node_1_drops_the_messages_of_a_queue_it_never_saw(self):
        ids = [self.publish(self.n2, {"queue": "fq", "data": "f%d" % i})[0] for i in range(3)]
        held = self.n3.start_polls("fq", [None], since=ids[-1], timeout=20)
        self.held(self.n3, 1)
        self.assertEqual(ctl(self.n1, "flush", "fq"), (0, "flushed 3 messages from fq\n", ""))
        flushed = body_of([gap("fq", 1, ids[-1], "flushed")])
        for n in self.nodes:
            self.assertEqual(n.poll("fq", since=0, timeout=0)[::2], (200, flushed), n.admin)
            # the hold's since acknowledged all three before the flush: no pending one was lost
            self.assertEqual(n.poll("fq", timeout=0)[::2], (200, b"[]\n"), n.admin)
        for n in self.nodes:
            self.assertEqual(n.poll("fq", since=ids[0], timeout=0)[::2],
                             (200, body_of([gap("fq", ids[0] + 1, ids[-1], "flushed")])), n.admin)
        # the hold above the flushed ids lost nothing: it is still held, and gets what comes next
        self.held(self.n3, 1)
        [new] = self.publish(self.n1, {"queue": "fq", "data": "after"})
        held[0][0].join(10)
        self.assertEqual((held[1][0][0], held[1][0][2]), (200, body_of([msg(new, "fq", "after")])))
        # JSON output, and a second flush finds only the new one
        self.assertEqual(ctl_json(self.n3, "flush", "fq"), {"flushed": 1})

    def test_flush_all_on_one_node_empties_every_queue_for_every_node(self):
        a = self.publish(self.n2, [{"queue": "fa1", "data": "x"}, {"queue": "fa1", "data": "y"}])
        b = self.publish(self.n3, [{"queue": "fa2", "data": "z"}])
        self.assertEqual(ctl(self.n1, "flush", "--all"), (0, "flushed 3 messages from every queue\n", ""))
        want = (200, body_of([gap("fa1", 1, a[1], "flushed"), gap("fa2", 1, b[0], "flushed")]))
        for n in self.nodes:
            self.assertEqual(n.poll("fa1,fa2", timeout=0)[::2], want, n.admin)   # pending ones lost
            self.assertEqual(n.poll("fa1,fa2", since=0, timeout=0)[::2], want, n.admin)


# ---- 7. acknowledgements and gaps across nodes ------------------------------

class Tail(Cluster):
    NODES = (("pool", "tcp"), ("per-connection", "unix"))

    def test_tail_on_a_node_no_browser_uses_shows_publishes_from_every_node(self):
        [old] = self.publish(self.n1, {"queue": "tq", "data": "before the tail"})
        before = broker_stats(self.n2)["mirrored"]
        e = dict(os.environ)
        e.pop("COMETBOX_SOCKET", None)
        tail = subprocess.Popen([COMETBOXCTL, "-s", self.n2.admin, "tail", "tq"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=e)
        try:
            self.assertEqual(tail.stderr.readline(), "cometboxctl: tailing tq; interrupt to stop\n")
            # node 2 follows tq in Redis once its load is in
            wait_until(lambda: broker_stats(self.n2)["mirrored"] == before + 1, 10, "tq mirrored on node 2")
            [a] = self.publish(self.n1, {"queue": "tq", "data": "from node 1"})
            [b] = self.publish(self.n2, {"queue": "tq", "data": "from node 2"})
            self.assertEqual(tail.stdout.readline(), "%d tq from node 1\n" % a)
            self.assertEqual(tail.stdout.readline(), "%d tq from node 2\n" % b)
            # a tail acknowledges nothing: every message is still pending for browsers
            self.assertEqual(pending(self.n1, "tq"), [msg(old, "tq", "before the tail"), msg(a, "tq", "from node 1"),
                                                      msg(b, "tq", "from node 2")])
            tail.send_signal(signal.SIGINT)
            self.assertEqual(tail.wait(10), 0)
            self.assertEqual(tail.stdout.read(), "")     # the message from before the tail never came
        finally:
            if tail.poll() is None:
                tail.kill()
                tail.wait()
            tail.stdout.close()
            tail.stderr.close()


class Mailbox(Cluster):
    def test_since_on_one_node_acknowledges_for_every_node(self):
        a, b, c = self.publish(self.n1, [{"queue": "mb", "data": d} for d in "abc"])
        for n in self.nodes:
            self.assertEqual(pending(n, "mb"), [msg(a, "mb", "a"), msg(b, "mb", "b"), msg(c, "mb", "c")])
        self.assertEqual(self.n2.poll("mb", since=a, timeout=0)[::2],
                         (200, body_of([msg(b, "mb", "b"), msg(c, "mb", "c")])))
        for n in self.nodes:
            self.assertEqual(pending(n, "mb"), [msg(b, "mb", "b"), msg(c, "mb", "c")], n.admin)
        # a held poll without since on node 3, after node 1 acknowledged b and c, gets only what is new
        self.assertEqual(self.n1.poll("mb", since=c, timeout=0)[::2], (200, b"[]\n"))
        threads, results = self.n3.start_polls("mb", [None], timeout=20)
        self.held(self.n3, 1)
        [d] = self.publish(self.n2, {"queue": "mb", "data": "d"})
        threads[0].join(10)
        self.assertEqual((results[0][0], results[0][2]), (200, body_of([msg(d, "mb", "d")])))
        # node 3 (per-connection) mirrors mb now: its since is in Redis before it answers
        self.assertEqual(pending(self.n1, "mb"), [msg(d, "mb", "d")])
        self.assertEqual(self.n3.poll("mb", since=d, timeout=0)[::2], (200, b"[]\n"))
        self.assertEqual(pending(self.n1, "mb"), [])
        # acknowledged messages are retained for resuming clients, on every node
        for n in self.nodes:
            self.assertEqual(drain(n, "mb"), [msg(a, "mb", "a"), msg(b, "mb", "b"), msg(c, "mb", "c"),
                                              msg(d, "mb", "d")])

    def test_a_stream_acknowledges_for_every_node(self):
        a, b = self.publish(self.n1, [{"queue": "st", "data": "a"}, {"queue": "st", "data": "b"}])
        s = self.n3.open_stream("/stream/st")
        self.assertEqual(s.line(), body_of([msg(a, "st", "a"), msg(b, "st", "b")]).decode())
        reset_close(s.sock)
        for n in (self.n1, self.n2):
            wait_until(lambda: pending(n, "st") == [], 5, "the stream's acknowledgement on %s" % n.admin)
        [c] = self.publish(self.n2, {"queue": "st", "data": "c"})
        for n in self.nodes:
            self.assertEqual(pending(n, "st"), [msg(c, "st", "c")])


class Overflow(Cluster):
    ARGS = ["--queue-max-messages", "3"]

    def test_an_overflow_gap_is_reported_on_a_node_that_never_saw_the_messages(self):
        ids = [self.publish(self.n1, {"queue": "ovf", "data": "m%d" % i})[0] for i in range(5)]
        rest = [msg(ids[i], "ovf", "m%d" % i) for i in (2, 3, 4)]
        want = body_of([gap("ovf", 1, ids[1], "overflow")] + rest)
        for n in (self.n3, self.n2, self.n1):
            self.assertEqual(n.poll("ovf", since=0, timeout=0)[::2], (200, want), n.admin)
            self.assertEqual(n.poll("ovf", timeout=0)[::2], (200, want), n.admin)
        for n in (self.n3, self.n2, self.n1):      # (these acknowledge up to ids[1])
            self.assertEqual(n.poll("ovf", since=ids[1], timeout=0)[::2], (200, body_of(rest)), n.admin)
        # a batch larger than the queue, published on node 2, seen from node 3
        new = self.publish(self.n2, [{"queue": "ovf", "data": "n%d" % i} for i in range(4)])
        self.assertEqual(self.n3.poll("ovf", since=ids[4], timeout=0)[::2],
                         (200, body_of([gap("ovf", ids[4] + 1, new[0], "overflow")] +
                                       [msg(new[i], "ovf", "n%d" % i) for i in (1, 2, 3)])))


class OverflowOfOne(Cluster):
    """A queue of one message stays counted by max-queues through its
    overflows (each publish drops the one it holds, then stores its own)."""
    ARGS = ["--queue-max-messages", "1", "--max-queues", "1"]
    NODES = (("pool", "tcp"), ("per-connection", "unix"))

    def test_a_queue_that_overflows_still_counts_for_max_queues(self):
        [a] = self.publish(self.n1, {"queue": "one", "data": "1"})
        [b] = self.publish(self.n2, {"queue": "one", "data": "2"})
        for n in self.nodes:
            st, hdr, body = n.publish_json({"queue": "two", "data": "3"})
            self.assertEqual((st, body), (503, MAX_QUEUES), n.admin)
            self.assertEqual(n.poll("one", since=0, timeout=0)[::2],
                             (200, body_of([gap("one", 1, a, "overflow"), msg(b, "one", "2")])), n.admin)


class Expiry(Cluster):
    ARGS = ["--message-ttl", "1"]

    def test_message_ttl_is_kept_in_redis_for_every_node(self):
        [a] = self.publish(self.n1, {"queue": "ttl", "data": "old"})
        self.assertEqual(pending(self.n2, "ttl"), [msg(a, "ttl", "old")])      # node 2 has it loaded
        want = [gap("ttl", 1, a, "expired")]
        for n in (self.n2, self.n3, self.n1):
            wait_until(lambda: pending(n, "ttl") == want, 8, "the expired gap on %s" % n.admin)
            self.assertEqual(n.poll("ttl", since=0, timeout=0)[::2], (200, body_of(want)))
        [b] = self.publish(self.n3, {"queue": "ttl", "data": "new"})
        for n in self.nodes:
            self.assertEqual(pending(n, "ttl"), want + [msg(b, "ttl", "new")], n.admin)


class ExpiryUntouched(Cluster):
    """Expiry in Redis does not wait for a node to touch the queue: the
    budget frees up and the gap is there for whoever comes later."""
    ARGS = ["--message-ttl", "1", "--max-total-messages", "2"]
    NODES = (("pool", "tcp"), ("per-connection", "unix"))

    def test_messages_nobody_reads_expire_and_free_the_budget(self):
        a, b = self.publish(self.n1, [{"queue": "unread", "data": "1"}, {"queue": "unread", "data": "2"}])
        st, _, body = self.n2.publish_json({"queue": "other", "data": "3"})
        self.assertEqual(st, 503, body)                       # the budget is full

        def room():
            st, _, body = self.n2.publish_json({"queue": "other", "data": "3"})
            return json.loads(body)["ids"] if st == 200 else None
        [c] = wait_until(room, 10, "room after message-ttl, with nobody touching the queue")
        self.assertGreater(c, b)
        for n in self.nodes:
            self.assertEqual(n.poll("unread", since=0, timeout=0)[::2],
                             (200, body_of([gap("unread", 1, b, "expired")])), n.admin)
            self.assertEqual(pending(n, "other"), [msg(c, "other", "3")], n.admin)


class Budget(Cluster):
    ARGS = ["--max-total-messages", "3"]
    BUDGET = (b'{"error":"unavailable","detail":"the memory budget for messages is full '
              b'(max-total-bytes, max-total-messages)"}\n')

    def test_the_budget_counts_every_nodes_messages_and_a_refused_batch_stores_nothing(self):
        a = self.publish(self.n1, [{"queue": "bud1", "data": "1"}, {"queue": "bud2", "data": "2"}])
        b = self.publish(self.n2, {"queue": "bud1", "data": "3"})
        for n in self.nodes:
            st, hdr, body = n.publish_json([{"queue": "bud1", "data": "4"}, {"queue": "bud3", "data": "5"}])
            self.assertEqual((st, body, hdr.get("retry-after")), (503, self.BUDGET, "5"), n.admin)
        for n in self.nodes:
            self.assertEqual(drain(n, "bud1,bud2,bud3"), [msg(a[0], "bud1", "1"), msg(a[1], "bud2", "2"),
                                                          msg(b[0], "bud1", "3")], n.admin)
        # room again after a flush on another node
        self.assertEqual(ctl(self.n3, "flush", "bud2"), (0, "flushed 1 message from bud2\n", ""))
        [c] = self.publish(self.n1, {"queue": "bud3", "data": "6"})
        self.assertEqual(self.n2.poll("bud3", since=0, timeout=0)[::2], (200, body_of([msg(c, "bud3", "6")])))


# ---- 8. WebSocket -------------------------------------------------------------

class WebSocket(Cluster):
    def test_websocket_on_a_node_other_than_the_publishers(self):
        w = WsClient(self.n2, "/ws/wq?since=0")
        try:
            self.assertEqual(w.recv(), frame_of({"type": "cursor", "id": 0}))
            self.held(self.n2, 1, "ws")
            [a] = self.publish(self.n1, {"queue": "wq", "data": "one"})
            self.assertEqual(w.recv(), frame_of(msg(a, "wq", "one")))
            b, c = self.publish(self.n3, [{"queue": "wq", "data": "two"}, {"queue": "wq", "data": {"n": 3}}])
            self.assertEqual(w.recv(), frame_of(msg(b, "wq", "two"), msg(c, "wq", {"n": 3})))
            # delivered, not acknowledged: still pending everywhere
            want = [msg(a, "wq", "one"), msg(b, "wq", "two"), msg(c, "wq", {"n": 3})]
            for n in self.nodes:
                self.assertEqual(pending(n, "wq"), want)
            w.send('{"ack":%d}' % b)
            for n in (self.n1, self.n3):
                wait_until(lambda: pending(n, "wq") == want[2:], 5, "the ack frame seen on %s" % n.admin)
            # a kick on node 1 closes it with 4000
            rc, out, err = ctl(self.n1, "kick", "wq", "--reason", "bye")
            self.assertEqual((rc, err), (0, ""))
            self.assertEqual(w.recv_until_closed(), ([frame_of(kick("bye"))], 4000, "bye"))
        finally:
            w.shutdown()


# ---- 5. kill -9 of a node under load -----------------------------------------

class KillNode(Cluster):
    def test_kill_9_of_a_node_under_load_loses_nothing_acknowledged(self):
        n1, n2, n3 = self.nodes
        per = 240
        acked = {}                 # id -> data, of every publish answered 200
        uncertain = set()          # data of publishes whose answer died with node 2
        errors = []
        lock = threading.Lock()
        third = threading.Event()
        stop = threading.Event()

        def publisher(name, targets):
            t, i = 0, 0
            while i < per:
                k = 3 if i % 10 == 9 else 1
                items = [{"queue": "load", "data": "%s-%04d" % (name, i + j)} for j in range(k)]
                i += k
                try:
                    st, _, body = targets[t].publish_json(items)
                except (OSError, http.client.HTTPException) as e:
                    if t + 1 < len(targets):
                        with lock:
                            uncertain.update(m["data"] for m in items)
                        t += 1
                        continue
                    errors.append((name, repr(e)))
                    return
                if st != 200:
                    errors.append((name, st, body))
                    return
                with lock:
                    acked.update(zip(json.loads(body)["ids"], (m["data"] for m in items)))
                if name == "p2" and i >= per // 3:
                    third.set()

        def reader(name, targets, out):
            t, since = 0, 0
            deadline = time.monotonic() + 40
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    st, _, body = targets[t].poll("load", since=since, timeout=1)
                except (OSError, http.client.HTTPException) as e:
                    if t + 1 < len(targets):
                        t += 1      # its node died: resume with since on another
                        continue
                    errors.append((name, repr(e)))
                    return
                if st != 200:
                    errors.append((name, st, body))
                    return
                for m in json.loads(body):
                    out.append(m)
                    since = m.get("id", since)

        got1, got2 = [], []
        threads = [threading.Thread(target=publisher, args=("p1", [n1])),
                   threading.Thread(target=publisher, args=("p2", [n2, n3])),
                   threading.Thread(target=reader, args=("r1", [n3], got1)),
                   threading.Thread(target=reader, args=("r2", [n2, n1], got2))]
        for t in threads:
            t.start()
        try:
            self.assertTrue(third.wait(20), "publisher 2 did not get a third through: %r" % errors)
            self.kill9(n2)
            for t in threads[:2]:
                t.join(30)
                self.assertFalse(t.is_alive(), "a publisher did not finish")
            self.assertEqual(errors, [])
            top = max(acked)
            wait_until(lambda: all(g and g[-1].get("id", 0) >= top for g in (got1, got2)), 15,
                       "both readers to reach id %d" % top)
        finally:
            stop.set()
            for t in threads:
                t.join(10)
        self.assertEqual(errors, [])
        self.assertGreater(len(acked), per)
        for name, got in (("r1 (node 3)", got1), ("r2 (node 2, then node 1)", got2)):
            self.assertEqual([m for m in got if "id" not in m], [], name + ": control objects")
            ids = [m["id"] for m in got]
            self.assertEqual(ids, sorted(set(ids)), name + ": not in id order, or a duplicate")
            seen = {m["id"]: m["data"] for m in got}
            lost = sorted(i for i in acked if seen.get(i) != acked[i])
            self.assertEqual(lost, [], name + ": acknowledged publishes not delivered (or with other data)")
            extra = [m for m in got if m["id"] not in acked]
            self.assertEqual([m for m in extra if m["data"] not in uncertain], [], name + ": messages nobody published")
            self.assertTrue(all(m["queue"] == "load" for m in got))
        self.assertEqual(got1, got2)
        for n in (n1, n3):
            self.assertEqual(drain(n, "load"), got1, n.admin)
        # node 2 again, on the same Redis: it sees the same history, and ids go on above it
        again = self.node(self.redis.unix_url, threads="pool")
        self.wait_broker(again, "up")
        self.assertEqual(drain(again, "load"), got1)
        [nxt] = self.publish(again, {"queue": "load", "data": "after"})
        self.assertGreater(nxt, got1[-1]["id"])


# ---- 6. Redis stopped and restarted under load -------------------------------

class RedisOutage(Cluster):
    AOF = True
    ARGS = ["--queue-max-messages", "20000"]

    def test_redis_killed_and_restarted_under_load(self):
        n1, n2, n3 = self.nodes
        held = n2.start_polls("held", [None], timeout=60)
        stream = n3.open_stream("/stream/held?since=0")
        self.addCleanup(stream.close)
        self.assertEqual((stream.status, stream.line()), (200, "[]\n"))
        self.held(n2, 1)
        self.held(n3, 1, "stream")
        stop = threading.Event()
        recs = {"n1": [], "n3": []}       # (t_sent, status, data, id) per publish
        errors = []

        def publisher(name, node):
            for i in range(4000):
                if stop.is_set():
                    return
                data = "%s-%05d" % (name, i)
                t0 = time.monotonic()
                try:
                    st, hdr, body = node.publish_json({"queue": "load", "data": data})
                except Exception as e:
                    errors.append((name, data, repr(e)))
                    return
                if st == 200:
                    recs[name].append((t0, 200, data, json.loads(body)["ids"][0]))
                elif st == 503 and body == PUBLISH_DOWN and hdr.get("retry-after") == "5":
                    recs[name].append((t0, 503, data, None))
                else:
                    errors.append((name, data, st, hdr, body))
                    return
                time.sleep(0.004)      # pacing, so the outage's refusals stay few

        def oks_after(name, t):
            return sum(1 for r in recs[name] if r[1] == 200 and r[0] > t)

        pubs = [threading.Thread(target=publisher, args=(k, n)) for k, n in (("n1", n1), ("n3", n3))]
        for t in pubs:
            t.start()
        try:
            wait_until(lambda: errors or all(oks_after(k, 0) >= 20 for k in recs), 15, "20 publishes on each")
            self.assertEqual(errors, [])
            self.redis.kill(signal.SIGKILL)
            t_dead = time.monotonic()
            wait_until(lambda: errors or all(any(r[1] == 503 and r[0] > t_dead for r in recs[k]) for k in recs),
                       10, "a 503 on nodes 1 and 3 once Redis is dead")
            self.assertEqual(errors, [])
            for n in self.nodes:
                self.wait_broker(n, "down")
            b = broker_stats(n2)
            self.assertEqual((b["type"], b["state"]), ("redis", "down"))
            self.assertGreaterEqual(b["errors"], 1, b)
            self.assertTrue(isinstance(b["last_error"], str) and b["last_error"], b)
            self.assertEqual(n2.request("publish", "GET", "/healthz")[::2], (503, HEALTH_DOWN))
            self.assertEqual(n2.metrics()["cometbox_broker_up"], 0)
            # a new request on a queue node 2 has not loaded: 503, retry
            st, hdr, body = n2.poll("fresh", since=0, timeout=5)
            self.assertEqual((st, body, hdr.get("retry-after")), (503, BROWSER_DOWN, "5"))
            s = n2.open_stream("/stream/fresh2")
            self.assertEqual((s.status, s.read_body()), (503, BROWSER_DOWN))
            s.close()
            self.assertEqual(ctl(n2, "publish", "q", "x"),
                             (1, "", "cometboxctl: the broker (Redis) is unreachable; nothing was queued\n"))
            # the held requests are still held
            self.held(n2, 1)
            self.held(n3, 1, "stream")
            self.assertTrue(held[0][0].is_alive())
            self.redis.start()
            t_back = time.monotonic()
            wait_until(lambda: errors or all(oks_after(k, t_back) >= 20 for k in recs), 15,
                       "20 publishes answered 200 on nodes 1 and 3 after Redis came back")
            self.assertEqual(errors, [])
        finally:
            stop.set()
            for t in pubs:
                t.join(10)
        for n in self.nodes:
            self.wait_broker(n, "up")
        # the request held across the outage is served
        [h] = self.publish(n1, {"queue": "held", "data": "after the outage"})
        held[0][0].join(10)
        self.assertFalse(held[0][0].is_alive(), "the poll held across the outage was not woken")
        self.assertEqual((held[1][0][0], held[1][0][2]), (200, body_of([msg(h, "held", "after the outage")])))
        self.assertEqual(stream.line(), body_of([msg(h, "held", "after the outage")]).decode())

        # everything answered 200 is there exactly once and in order
        got = drain(n2, "load")
        self.assertEqual([m for m in got if "id" not in m], [], "control objects")
        ids = [m["id"] for m in got]
        self.assertEqual(ids, sorted(set(ids)), "not in id order, or a duplicate")
        seen = {m["id"]: m["data"] for m in got}
        oks = {r[3]: r[2] for k in recs for r in recs[k] if r[1] == 200}
        self.assertEqual(sorted(i for i in oks if seen.get(i) != oks[i]), [], "publishes answered 200 missing")
        refused_late = {r[2] for k in recs for r in recs[k] if r[1] == 503 and r[0] > t_dead}
        refused_early = {r[2] for k in recs for r in recs[k] if r[1] == 503 and r[0] <= t_dead}
        extra = [m["data"] for m in got if m["id"] not in oks]
        self.assertEqual([d for d in extra if d in refused_late], [],
                         "publishes answered 503 after Redis was dead were queued")
        self.assertEqual([d for d in extra if d not in refused_early], [], "messages nobody published")
        self.assertLessEqual(len(extra), 2, "more refused publishes queued than were in flight at the kill")
        for k in recs:
            mine = [r[3] for r in recs[k] if r[1] == 200]
            self.assertEqual(mine, sorted(mine), k + ": ids of one publisher not increasing")
        for n in (n1, n3):
            self.assertEqual(drain(n, "load"), got, n.admin)
        # the outage in stats and metrics
        for k, n in (("n1", n1), ("n3", n3)):
            refused = sum(1 for r in recs[k] if r[1] == 503)
            st = ctl_json(n, "stats")
            self.assertEqual(st["refused"].get("broker"), refused, k)
            b = st["broker"]
            self.assertEqual((b["type"], b["state"]), ("redis", "up"), b)
            self.assertGreaterEqual(b["reconnects"], 1, b)
            self.assertGreaterEqual(b["errors"], 1, b)
            m = n.metrics()
            self.assertEqual(m['cometbox_refused_total{reason="broker"}'], refused, k)
            self.assertEqual(m["cometbox_broker_up"], 1, k)
            self.assertEqual(m["cometbox_broker_reconnects_total"], b["reconnects"], k)
        self.assertEqual(n2.request("publish", "GET", "/healthz")[::2], (200, HEALTH_UP))


class RedisLostItsData(Cluster):
    """A Redis without persistence killed and started again is a new,
    empty one: a new id sequence, and nothing of the old one stays in the
    nodes' mirrors (as one node restarted without a journal)."""
    NODES = (("pool", "tcp"), ("per-connection", "unix"))

    def test_nodes_forget_what_a_new_redis_does_not_hold(self):
        a, b = self.publish(self.n1, [{"queue": "seq", "data": "1"}, {"queue": "seq", "data": "2"}])
        old_first = ctl_json(self.n1, "stats")["first_id"]
        for n in self.nodes:     # both mirror seq now
            self.assertEqual(pending(n, "seq"), [msg(a, "seq", "1"), msg(b, "seq", "2")], n.admin)
        self.redis.kill(signal.SIGKILL)
        for n in self.nodes:
            self.wait_broker(n, "down")
        self.redis.start()
        for n in self.nodes:
            self.wait_broker(n, "up")
        for n in self.nodes:
            self.assertNotEqual(ctl_json(n, "stats")["first_id"], old_first, n.admin)
            self.assertEqual(pending(n, "seq"), [], n.admin)
            self.assertEqual(n.poll("seq", since=0, timeout=0)[::2], (200, b"[]\n"), n.admin)
        [c] = self.publish(self.n2, {"queue": "seq", "data": "3"})
        for n in self.nodes:
            self.assertEqual(pending(n, "seq"), [msg(c, "seq", "3")], n.admin)


class RedisPaused(Cluster):
    """A Redis that answers nothing (SIGSTOP) for longer than redis-timeout."""
    ARGS = ["--redis-timeout", "1"]
    NODES = (("pool", "tcp"), ("per-connection", "unix"))

    def test_no_answer_within_redis_timeout_is_unreachable(self):
        n1, n2 = self.nodes
        [a] = self.publish(n1, {"queue": "slow", "data": "before"})
        self.redis.pause()
        try:
            refused = []
            for n in (n1, n2):
                t0 = time.monotonic()
                st, hdr, body = n.publish_json({"queue": "slow", "data": "during " + n.admin})
                took = time.monotonic() - t0
                self.assertEqual((st, body, hdr.get("retry-after")), (503, PUBLISH_DOWN, "5"), n.admin)
                self.assertLess(took, 3.5, "a publish waited %.1f s with redis-timeout 1" % took)
                refused.append("during " + n.admin)
            for n in (n1, n2):
                self.wait_broker(n, "down", 5)
        finally:
            self.redis.resume()
        for n in (n1, n2):
            self.wait_broker(n, "up", 10)
        [b] = self.publish(n2, {"queue": "slow", "data": "after"})
        got = json.loads(n1.poll("slow", since=a, timeout=0)[2])
        self.assertEqual(got[-1], msg(b, "slow", "after"))
        # a command written before the pause may still run once Redis goes on:
        # only those two publishes may be there besides
        self.assertEqual([m for m in got[:-1] if m["data"] not in refused], [])


class LateRedis(Cluster):
    """A node started before its Redis: ready at once, broker down, then up."""
    NODES = ()

    def test_node_starts_while_redis_is_down_and_connects_once_it_is_up(self):
        port = free_port()
        n = self.node("redis://127.0.0.1:%d/0" % port, threads="pool")      # waits for the ready line
        self.wait_broker(n, "down")
        b = broker_stats(n)
        self.assertEqual(sorted(b), BROKER_KEYS, b)
        self.assertEqual((b["type"], b["state"], b["url"]), ("redis", "down", "redis://127.0.0.1:%d/0" % port))
        self.assertTrue(isinstance(b["last_error"], str) and b["last_error"], b)
        self.assertEqual(n.request("publish", "GET", "/healthz")[::2], (503, HEALTH_DOWN))
        st, hdr, body = n.publish_json({"queue": "late", "data": "too early"})
        self.assertEqual((st, body, hdr.get("retry-after")), (503, PUBLISH_DOWN, "5"))
        st, hdr, body = n.poll("late", since=0, timeout=5)
        self.assertEqual((st, body, hdr.get("retry-after")), (503, BROWSER_DOWN, "5"))
        self.assertEqual(n.metrics()["cometbox_broker_up"], 0)
        r = self.new_redis(port=port)
        t_ready = time.monotonic()
        self.wait_broker(n, "up", 10)
        self.assertLess(time.monotonic() - t_ready, 7, "connected more than 5 s (the backoff cap) after Redis was up")
        [a] = self.publish(n, {"queue": "late", "data": "in time"})
        self.assertEqual(n.poll("late", since=0, timeout=0)[::2], (200, body_of([msg(a, "late", "in time")])))
        self.assertEqual(r.cmd("PING"), "PONG")


# ---- 9. healthz, stats, metrics, config ---------------------------------------

class Observability(Cluster):
    def test_healthz_stats_and_metrics_with_redis_up(self):
        for n, url in zip(self.nodes, (self.redis.tcp_url, self.redis.unix_url, self.redis.tcp_url)):
            st, hdr, body = n.request("publish", "GET", "/healthz")
            self.assertEqual((st, body, hdr.get("content-type")), (200, HEALTH_UP, "application/json"))
            b = broker_stats(n)
            self.assertEqual(sorted(b), BROKER_KEYS, b)
            self.assertEqual((b["type"], b["state"], b["url"]), ("redis", "up", url))
            for k in ("reconnects", "errors", "mirrored"):
                self.assertTrue(isinstance(b[k], int) and b[k] >= 0, (k, b))
            self.assertTrue(b["last_error"] is None or isinstance(b["last_error"], str), b)
            rc, out, err = ctl(n, "stats")
            self.assertEqual((rc, err), (0, ""))
            lines = [l for l in out.splitlines() if l.startswith("broker ")]
            self.assertEqual(len(lines), 1, out)
            self.assertRegex(lines[0], r"^broker       redis up \(%s\), %d queues mirrored, %d reconnects, %d errors$"
                             % (re.escape(url), b["mirrored"], b["reconnects"], b["errors"]))
            m = n.metrics()
            self.assertEqual(m["cometbox_broker_up"], 1)
            self.assertEqual(m["cometbox_broker_reconnects_total"], b["reconnects"])
            self.assertEqual(m['cometbox_refused_total{reason="broker"}'], 0)
            self.assertEqual(ctl_json(n, "stats")["refused"]["broker"], 0)

    def test_two_clusters_on_one_redis_are_kept_apart_by_redis_prefix(self):
        a = self.node(self.redis.tcp_url, "--redis-prefix", "siteA", threads="pool")
        b = self.node(self.redis.unix_url, "--redis-prefix", "siteB", threads="per-connection")
        for n in (a, b):
            self.wait_broker(n, "up")
        held = b.start_polls("shared", [None], since=0, timeout=20)
        self.held(b, 1)
        [x] = self.publish(a, {"queue": "shared", "data": "for site A"})
        [y] = self.publish(self.n1, {"queue": "shared", "data": "for the default prefix"})
        self.assertEqual(a.poll("shared", since=0, timeout=0)[::2], (200, body_of([msg(x, "shared", "for site A")])))
        self.assertEqual(self.n3.poll("shared", since=0, timeout=0)[::2],
                         (200, body_of([msg(y, "shared", "for the default prefix")])))
        self.assertTrue(held[0][0].is_alive(), "site B's poll was woken by another site's publish")
        [z] = self.publish(b, {"queue": "shared", "data": "for site B"})
        held[0][0].join(10)
        self.assertEqual((held[1][0][0], held[1][0][2]), (200, body_of([msg(z, "shared", "for site B")])))
        # every key and channel in Redis starts with a prefix (default: cometbox)
        keys = [k.decode() for k in self.redis.cmd("KEYS", "*")]
        self.assertTrue(keys, "no keys in Redis")
        self.assertEqual([k for k in keys if not k.startswith(("siteA", "siteB", "cometbox"))], [], keys)
        self.assertTrue(any(k.startswith("siteA") for k in keys) and any(k.startswith("siteB") for k in keys)
                        and any(k.startswith("cometbox") for k in keys), keys)
        hold = [n.start_polls("chan", [None], timeout=20) for n in (a, b, self.n2)]
        for n in (a, b, self.n2):
            self.held(n, 1)
        chans = [c.decode() for c in self.redis.cmd("PUBSUB", "CHANNELS", "*")]
        self.assertEqual([c for c in chans if not c.startswith(("siteA", "siteB", "cometbox"))], [], chans)
        # a kick on site A reaches site A's holds only
        rc, out, err = ctl(a, "kick", "chan")
        self.assertEqual((rc, out, err), (0, "kicked 1 client on chan\n", ""))
        hold[0][0][0].join(10)
        self.assertEqual((hold[0][1][0][0], hold[0][1][0][2]), (200, body_of([kick("kicked by an operator")])))
        for n in (b, self.n2):
            self.held(n, 1)
        for n, (threads, results) in ((b, hold[1]), (self.n2, hold[2])):
            self.assertTrue(threads[0].is_alive(), "%s: kicked by another site's kick" % n.admin)
            self.assertEqual(ctl(n, "kick", "chan")[0], 0)
            threads[0].join(10)
            self.assertEqual((results[0][0], results[0][2]), (200, body_of([kick("kicked by an operator")])))

    def test_memory_broker_is_unchanged(self):
        d = Daemon()
        self.addCleanup(d.cleanup)
        self.nodes.append(d)
        self.assertEqual(d.request("publish", "GET", "/healthz")[::2], (200, b'{"status":"ok"}\n'))
        self.assertEqual(broker_stats(d), {"type": "memory", "state": "up"})


class Password(Cluster):
    PASSWORD = "s3cret-pw"
    NODES = (("pool", "tcp"), ("per-connection", "unix"))

    def test_password_is_used_and_never_shown(self):
        n1, n2 = self.nodes
        [a] = self.publish(n1, {"queue": "pw", "data": "x"})
        self.assertEqual(n2.poll("pw", since=0, timeout=0)[::2], (200, body_of([msg(a, "pw", "x")])))
        self.assertEqual(broker_stats(n1)["url"], "redis://127.0.0.1:%d/0" % self.redis.port)
        self.assertEqual(broker_stats(n2)["url"], "unix:" + self.redis.sock)
        for n in (n1, n2):
            rc, out, err = ctl(n, "stats")
            self.assertNotIn(self.PASSWORD, out)
            self.assertNotIn(self.PASSWORD, ctl(n, "--json", "stats")[1])
            self.assertNotIn(self.PASSWORD, n.request("publish", "GET", "/metrics")[2].decode())
            self.assertNotIn(self.PASSWORD, n.log)

    def test_wrong_password_keeps_the_broker_down(self):
        url = "redis://:wrong-pw@127.0.0.1:%d/0" % self.redis.port
        n = self.node(url, threads="pool")
        self.wait_broker(n, "down")
        b = broker_stats(n)
        self.assertTrue(isinstance(b["last_error"], str) and b["last_error"], b)
        self.assertEqual(b["url"], "redis://127.0.0.1:%d/0" % self.redis.port)
        st, _, body = n.publish_json({"queue": "pw", "data": "x"})
        self.assertEqual((st, body), (503, PUBLISH_DOWN))
        self.assertNotIn("wrong-pw", n.log)


class Config(unittest.TestCase):
    """Start-up refusals, and the broker keys as restart-only keys of a reload."""
    maxDiff = None

    def run_daemon(self, *args):
        tmp = tempfile.mkdtemp(prefix="cbx-scale-")
        self.addCleanup(shutil.rmtree, tmp, True)
        try:
            p = subprocess.run([COMETBOXD, "--listen", "127.0.0.1:0", "--publish-listen", "127.0.0.1:0",
                                "--admin-socket", os.path.join(tmp, "admin.sock")] + list(args), cwd=tmp,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=15)
        except subprocess.TimeoutExpired as e:
            raise AssertionError("cometboxd %s did not exit by itself: %r" % (args, e.stderr))
        return p.returncode, p.stderr, tmp

    def test_state_dir_with_broker_redis_is_refused(self):
        tmp = tempfile.mkdtemp(prefix="cbx-scale-")
        self.addCleanup(shutil.rmtree, tmp, True)
        rc, err, _ = self.run_daemon("--broker", "redis", "--redis-url", "redis://127.0.0.1:1/0",
                                     "--state-dir", os.path.join(tmp, "state"))
        self.assertNotEqual(rc, 0, err)
        self.assertNotIn("unknown option", err)
        self.assertNotIn("ready", err)
        self.assertIn("state-dir", err)
        self.assertIn("broker", err)
        self.assertFalse(os.path.exists(os.path.join(tmp, "state", "lock")))

    def test_bad_broker_values_are_refused(self):
        for args, key in ((["--broker", "nats"], "broker"),
                          (["--broker", "redis", "--redis-url", "http://127.0.0.1:6379/"], "redis-url"),
                          (["--broker", "redis", "--redis-timeout", "-1"], "redis-timeout")):
            rc, err, _ = self.run_daemon(*args)
            self.assertNotEqual(rc, 0, (args, err))
            self.assertNotIn("cometboxd: ready", err)
            self.assertNotIn('unknown option "--%s"' % key, err)
            self.assertIn(key, err, args)

    def test_broker_keys_need_a_restart(self):
        redis = RedisServer()
        self.addCleanup(redis.cleanup)
        tmp = tempfile.mkdtemp(prefix="cbx-scale-")
        self.addCleanup(shutil.rmtree, tmp, True)
        conf = os.path.join(tmp, "cometboxd.conf")
        base = "broker = redis\nredis-url = %s\nredis-prefix = pfx1\nredis-timeout = 2\n" % redis.tcp_url
        with open(conf, "w") as f:
            f.write(base)
        d = Daemon("-c", conf, tmpdir=tmp, threads="pool")
        self.addCleanup(d.cleanup)
        with open(conf + ".new", "w") as f:
            f.write(base.replace("pfx1", "pfx2").replace("redis-timeout = 2", "redis-timeout = 3"))
        os.replace(conf + ".new", conf)
        rc, out, err = ctl(d, "reload")
        self.assertEqual((rc, out, err), (0, "reloaded %s: 0 keys changed, 2 need a restart\n"
                                             "redis-prefix changed in the file but needs a restart; keeping pfx1\n"
                                             "redis-timeout changed in the file but needs a restart; keeping 2\n"
                                          % conf, ""))
        self.assertEqual(ctl_json(d, "reload"), {"files": [conf], "changed": [], "restart": [
            {"key": "redis-prefix", "old": "pfx1", "new": "pfx2"},
            {"key": "redis-timeout", "old": "2", "new": "3"}]})
        # still the old prefix
        [a] = json.loads(d.publish_json({"queue": "rq", "data": "x"})[2])["ids"]
        self.assertTrue(a > 0)
        keys = [k.decode() for k in redis.cmd("KEYS", "*")]
        self.assertTrue(keys and all(k.startswith("pfx1") for k in keys), keys)
        rc, _ = d.stop()
        self.assertEqual(rc, 0, d.log)


if __name__ == "__main__":
    unittest.main()
