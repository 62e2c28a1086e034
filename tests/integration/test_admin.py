"""The admin socket and cometboxctl (docs/ADMIN.md): the real cometboxctl
binary against the real daemon, every command with its exact output (text and
--json) and exit code, the socket file's life, hostile admin clients, and
/metrics in the Prometheus text format. Run once per threads mode."""
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import unittest

from cbx import COMETBOXCTL, Daemon, DaemonTest, msg

VERSION = "0.1.0"
AGE = r"\d+s"  # an age column: "0s" normally, more on a slow (sanitizer) build


def ctl(sock, *args, env=None, user=None, timeout=30, binary=COMETBOXCTL):
    """Runs cometboxctl -s sock ARGS...; returns (exit code, stdout, stderr)."""
    argv = [binary] + (["-s", sock] if sock else []) + list(args)
    if user:
        argv = ["setpriv", "--reuid=%s" % user, "--regid=nogroup", "--clear-groups"] + argv
    e = dict(os.environ)
    e.pop("COMETBOX_SOCKET", None)
    e.update(env or {})
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, env=e)
    return p.returncode, p.stdout, p.stderr


def table(rows, align):
    """The layout cometboxctl prints: columns two spaces apart, 'r' columns right-aligned, the last one unpadded."""
    w = [max(len(r[i]) for r in rows) for i in range(len(align))]
    out = ""
    for r in rows:
        cells = []
        for i, c in enumerate(r):
            if align[i] == "r":
                cells.append(c.rjust(w[i]))
            elif i + 1 == len(align):
                cells.append(c)
            else:
                cells.append(c.ljust(w[i]))
        out += "  ".join(cells) + "\n"
    return out


def check_table(test, out, rows, align, age_cols):
    """Checks out against table(rows): the cells named "AGE" in age_cols are taken from out (they depend
    on timing) after checking that they look like ages."""
    lines = out.split("\n")
    test.assertEqual(len(lines), len(rows) + 1, out)
    fixed = [rows[0]]
    for line, row in zip(lines[1:], rows[1:]):
        cells = re.split(r"  +", line.strip())
        row = list(row)
        for i in age_cols:
            test.assertRegex(cells[i], "^" + AGE + "( ago)?$", line)
            row[i] = cells[i]
        fixed.append(row)
    test.assertEqual(out, table(fixed, align))


def msg_bytes(id_, queue, data):
    return len(json.dumps(msg(id_, queue, data), separators=(",", ":")).encode())


class AdminConn:
    """A raw admin socket connection, for what cometboxctl never sends."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def line(self, timeout=10):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer line; have %r" % self.buf)
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("closed; have %r" % self.buf)
            self.buf += data
        i = self.buf.index(b"\n")
        out, self.buf = self.buf[:i], self.buf[i + 1:]
        return out.decode()

    def call(self, obj):
        self.send(json.dumps(obj).encode() + b"\n")
        return json.loads(self.line())

    def at_eof(self, timeout=10):
        self.sock.settimeout(timeout)
        return self.sock.recv(1) == b""

    def close(self):
        self.sock.close()


class AdminTest(DaemonTest):
    def ctl(self, *args, **kw):
        return ctl(self.d.admin, *args, **kw)

    def ok(self, *args):
        rc, out, err = self.ctl(*args)
        self.assertEqual((rc, err), (0, ""), "cometboxctl %s: %s" % (" ".join(args), err))
        return out

    def json_of(self, *args):
        return json.loads(self.ok("--json", *args))

    def wait_tails(self, proc, timeout=10):
        """Reads a tail's stderr up to its "tailing" line (it is subscribed then)."""
        line = proc.stderr.readline()
        self.assertTrue(line.startswith("cometboxctl: tailing "), line)
        return line


class Commands(AdminTest):
    def test_ping_and_version(self):
        self.assertEqual(self.ctl("ping"), (0, "pong from cometboxd %s (admin protocol 1)\n" % VERSION, ""))
        self.assertEqual(self.ctl("ping", "--json"), (0, '{"pong":true,"version":"%s","protocol":1}\n' % VERSION, ""))
        self.assertEqual(self.ctl("--json", "ping")[1], '{"pong":true,"version":"%s","protocol":1}\n' % VERSION)
        self.assertEqual(ctl(None, "--version"), (0, "cometboxctl %s (admin protocol 1)\n" % VERSION, ""))
        # COMETBOX_SOCKET names the socket; -s wins over it
        self.assertEqual(ctl(None, "ping", env={"COMETBOX_SOCKET": self.d.admin})[0], 0)
        rc, out, err = ctl(None, "-s", self.d.admin, "ping", env={"COMETBOX_SOCKET": "/nonexistent/x.sock"})
        self.assertEqual(rc, 0, err)
        rc, out, err = ctl(None, "ping", "--socket=" + self.d.admin)
        self.assertEqual(rc, 0, err)

    def test_help(self):
        rc, out, err = ctl(None, "--help")
        self.assertEqual((rc, err), (0, ""))
        self.assertTrue(out.startswith("usage: cometboxctl [-s PATH] [--json] COMMAND [ARGS]\n"), out)
        for name in ("stats", "queues", "clients", "kick", "flush", "publish", "tail", "ping", "help"):
            self.assertRegex(out, r"\n  %s +\S" % name)
            rc, out2, err = ctl(None, name, "--help")
            self.assertEqual((rc, err), (0, ""))
            self.assertTrue(out2.startswith("usage: cometboxctl [-s PATH] [--json] %s" % name), out2)
            self.assertIn("Exit status: 0 success, 1 the daemon answered with an error", out2)
            self.assertEqual(ctl(None, "help", name), (0, out2, ""))
        self.assertIn("kick QUEUE | --client ID [--reason TEXT]\n", ctl(None, "kick", "-h")[1])
        self.assertIn("\nExit status: 0 success", out)
        self.assertEqual(ctl(None, "help"), (0, out, ""))

    def test_usage_errors_exit_2(self):
        cases = [
            ((), ctl(None, "--help")[1]),  # a bare cometboxctl prints its usage
            (("frob",), 'cometboxctl: unknown command "frob"\n'
                        "usage: cometboxctl [-s PATH] [--json] COMMAND [ARGS] (see cometboxctl --help)\n"),
            (("--frob", "ping"), 'cometboxctl: unknown option "--frob"\n'
                                 "usage: cometboxctl [-s PATH] [--json] COMMAND [ARGS] (see cometboxctl --help)\n"),
            (("kick",), "cometboxctl: a QUEUE or --client ID is missing\n"
                        "usage: cometboxctl kick QUEUE | --client ID [--reason TEXT] (see cometboxctl kick --help)\n"),
            (("kick", "a", "--client", "3"), "cometboxctl: give a QUEUE or --client ID, not both\n"
                        "usage: cometboxctl kick QUEUE | --client ID [--reason TEXT] (see cometboxctl kick --help)\n"),
            (("kick", "--client", "x1"), 'cometboxctl: --client needs a client id (a whole number, see `clients`), '
                                         'not "x1"\nusage: cometboxctl kick QUEUE | --client ID [--reason TEXT] '
                                         "(see cometboxctl kick --help)\n"),
            (("flush",), "cometboxctl: a QUEUE or --all is missing\n"
                         "usage: cometboxctl flush QUEUE | --all (see cometboxctl flush --help)\n"),
            (("flush", "a", "--all"), "cometboxctl: give a QUEUE or --all, not both\n"
                                      "usage: cometboxctl flush QUEUE | --all (see cometboxctl flush --help)\n"),
            (("publish", "a"), "cometboxctl: MESSAGE is missing\n"
                               "usage: cometboxctl publish QUEUE MESSAGE [--json] (see cometboxctl publish --help)\n"),
            (("publish", "a", "{x", "--json"), "cometboxctl: MESSAGE is not one JSON value (--json): "
                                               "line 1, column 2: invalid JSON\n"
                               "usage: cometboxctl publish QUEUE MESSAGE [--json] (see cometboxctl publish --help)\n"),
            (("queues", "a", "b"), 'cometboxctl: unexpected argument "b"\n'
                                   "usage: cometboxctl queues [PATTERN] [--limit N] (see cometboxctl queues --help)\n"),
            (("queues", "--limit", "0"), 'cometboxctl: --limit needs a whole number from 1 to 1000000000, not "0"\n'
                                         "usage: cometboxctl queues [PATTERN] [--limit N] "
                                         "(see cometboxctl queues --help)\n"),
            (("stats", "--bogus"), 'cometboxctl: unknown option "--bogus"\n'
                                   "usage: cometboxctl stats (see cometboxctl stats --help)\n"),
            (("tail",), "cometboxctl: a QUEUE is missing\n"
                        "usage: cometboxctl tail QUEUE... (see cometboxctl tail --help)\n"),
            (("tail",) + tuple("q%d" % i for i in range(17)), "cometboxctl: at most 16 queues\n"
                        "usage: cometboxctl tail QUEUE... (see cometboxctl tail --help)\n"),
            (("-s",), "cometboxctl: -s needs a socket path\n"
                      "usage: cometboxctl [-s PATH] [--json] COMMAND [ARGS] (see cometboxctl --help)\n"),
        ]
        for args, want in cases:
            self.assertEqual(ctl(None, *args), (2, "", want), args)
        # the daemon saw none of them
        self.assertEqual(self.json_of("stats")["connections"]["admin"], 1)

    def test_publish_queues_and_flush(self):
        self.assertEqual(self.ctl("queues"), (0, "no queues\n", ""))
        self.assertEqual(self.json_of("queues")["queues"], [])
        rc, out, err = self.ctl("publish", "alice", "Hello & welcome")
        self.assertEqual((rc, err), (0, ""))
        self.assertRegex(out, r"^\d{16}\n$")
        a = int(out)
        rc, out, err = self.ctl("--json", "publish", "room.1", '{"x":[1,2],"big":1795563063594190}', "--json")
        self.assertEqual((rc, err), (0, ""))
        self.assertRegex(out, r'^\{"id":\d{16}\}\n$')
        b = json.loads(out)["id"]
        c = int(self.ok("publish", "alice", "--", "-dash"))
        self.assertGreater(b, a)
        self.assertGreater(c, b)
        # the same path as HTTP publish: a poll sees exactly these messages
        st, _, body = self.d.poll("alice,room.1")
        self.assertEqual(json.loads(body), [msg(a, "alice", "Hello & welcome"),
                                            msg(b, "room.1", {"x": [1, 2], "big": 1795563063594190}),
                                            msg(c, "alice", "-dash")])
        d = self.d.pub("bob", "x")

        bytes_alice = msg_bytes(a, "alice", "Hello & welcome") + msg_bytes(c, "alice", "-dash")
        bytes_room = msg_bytes(b, "room.1", {"x": [1, 2], "big": 1795563063594190})
        bytes_bob = msg_bytes(d, "bob", "x")
        j = self.json_of("queues")
        now = j["now_us"]
        self.assertEqual(j["total"], 3)
        self.assertFalse(j["truncated"])
        for q in j["queues"]:
            self.assertLessEqual(q["oldest_us"], now)
            self.assertLessEqual(q["last_publish_us"], now)
        self.assertEqual([(q["name"], q["pending"], q["stored"], q["bytes"], q["waiting"]) for q in j["queues"]],
                         [("alice", 2, 2, bytes_alice, 0), ("bob", 1, 1, bytes_bob, 0),
                          ("room.1", 1, 1, bytes_room, 0)])
        self.assertEqual(sorted(j["queues"][0]), ["bytes", "last_publish_us", "name", "oldest_us", "pending",
                                                  "stored", "waiting"])
        rc, out, err = self.ctl("queues")
        self.assertEqual((rc, err), (0, ""))
        check_table(self, out, [["QUEUE", "PENDING", "STORED", "BYTES", "WAITING", "OLDEST", "LAST PUBLISH"],
                                ["alice", "2", "2", "%d B" % bytes_alice, "0", "AGE", "AGE ago"],
                                ["bob", "1", "1", "%d B" % bytes_bob, "0", "AGE", "AGE ago"],
                                ["room.1", "1", "1", "%d B" % bytes_room, "0", "AGE", "AGE ago"]], "lrrrrll", (5, 6))
        # a pattern, a pattern that matches nothing, and --limit
        self.assertEqual([q["name"] for q in self.json_of("queues", "r*")["queues"]], ["room.1"])
        self.assertEqual(self.ctl("queues", "zz*"), (0, "no queues match zz*\n", ""))
        j = self.json_of("queues", "--limit", "1")
        self.assertEqual(([q["name"] for q in j["queues"]], j["total"], j["truncated"]), (["alice"], 3, True))
        rc, out, err = self.ctl("queues", "--limit=2")
        self.assertTrue(out.endswith("\n(2 of 3 queues shown; --limit N shows more)\n"), out)

        # flush: counts, and a later poll gets a gap with reason "flushed"
        self.assertEqual(self.ctl("flush", "alice"), (0, "flushed 2 messages from alice\n", ""))
        self.assertEqual(self.ctl("flush", "alice", "--json"), (0, '{"flushed":0}\n', ""))
        st, _, body = self.d.poll("alice", since=a - 1, timeout=0)
        self.assertEqual(json.loads(body), [{"type": "gap", "queue": "alice", "from": a, "to": c,
                                             "reason": "flushed"}])
        self.assertEqual(self.ctl("flush", "--all"), (0, "flushed 2 messages from every queue\n", ""))
        st, _, body = self.d.poll("bob", timeout=0)
        self.assertEqual(json.loads(body), [{"type": "gap", "queue": "bob", "from": 1, "to": d,
                                             "reason": "flushed"}])
        self.assertEqual(self.json_of("stats")["counters"]["flushed"], 4)

    def test_unknown_queue_exit_1(self):
        for args in (("flush", "nosuch"), ("kick", "nosuch"), ("clients", "nosuch"),
                     ("--json", "flush", "nosuch")):
            self.assertEqual(self.ctl(*args), (1, "", "cometboxctl: no such queue: nosuch\n"), args)
        self.assertEqual(self.ctl("kick", "--client", "424242"), (1, "", "cometboxctl: no such client: 424242\n"))
        self.assertEqual(self.ctl("publish", "bad name", "x"),
                         (1, "", 'cometboxctl: bad queue name "bad name": 1 to 128 letters, digits or ._:@-\n'))
        self.assertEqual(self.ctl("kick", "q", "--reason", "x" * 200),
                         (1, "", "cometboxctl: kick: \"reason\" must be UTF-8 text of at most 199 bytes\n"))
        self.assertEqual(self.ctl("publish", "q", "x" * 70000),
                         (2, "", "cometboxctl: the request is over 65536 bytes, the admin socket's limit "
                                 "(publish large messages with POST /publish)\n"))

    def test_clients_and_kick_held_requests(self):
        since = self.d.pub("alice", "old")
        poll = self.d.open_stream("/poll/alice,bob?since=%d&timeout=30" % since, read_head=False)
        self.d.wait_held(1)
        sse = self.d.open_stream("/events/alice?since=%d" % since)
        self.assertTrue(sse.event().startswith("retry: "))
        stream = self.d.open_stream("/stream/carol")
        self.assertEqual(stream.line(), "[]\n")
        other = self.d.open_stream("/stream/dave")
        self.assertEqual(other.line(), "[]\n")
        self.d.wait_held(1, "sse")
        self.d.wait_held(2, "stream")

        j = self.json_of("clients")
        rows = j["clients"]
        self.assertEqual((j["total"], j["truncated"]), (4, False))
        self.assertEqual([(r["addr"], r["transport"], r["queues"]) for r in rows],
                         [("127.0.0.1:%d" % poll.sock.getsockname()[1], "long-poll", ["alice", "bob"]),
                          ("127.0.0.1:%d" % sse.sock.getsockname()[1], "sse", ["alice"]),
                          ("127.0.0.1:%d" % stream.sock.getsockname()[1], "stream", ["carol"]),
                          ("127.0.0.1:%d" % other.sock.getsockname()[1], "stream", ["dave"])])
        self.assertEqual([r["id"] for r in rows], sorted(r["id"] for r in rows))
        self.assertEqual(rows[0]["cursor"], since)
        for r in rows:
            self.assertLessEqual(r["since_us"], j["now_us"])
            self.assertEqual(sorted(r), ["addr", "cursor", "id", "queues", "since_us", "transport"])
        rc, out, err = self.ctl("clients")
        self.assertEqual((rc, err), (0, ""))
        check_table(self, out, [["ID", "ADDRESS", "TRANSPORT", "QUEUES", "CURSOR", "CONNECTED"]] +
                    [[str(r["id"]), r["addr"], r["transport"], ",".join(r["queues"]), str(r["cursor"]), "AGE"]
                     for r in rows], "rllllr", (5,))
        self.assertEqual([r["id"] for r in self.json_of("clients", "alice")["clients"]], [rows[0]["id"], rows[1]["id"]])
        self.assertEqual(self.ctl("clients", "bob")[1].count("\n"), 2)
        self.d.pub("erin", "x")
        self.assertEqual(self.ctl("clients", "erin"), (0, "no clients on erin\n", ""))

        # kick a queue: the long-poll and the SSE stream on alice, not the others
        self.assertEqual(self.ctl("kick", "alice", "--reason", "spam"), (0, "kicked 2 clients on alice\n", ""))
        poll.read_head()
        self.assertEqual(poll.status, 200)
        self.assertEqual(json.loads(poll.read_body()), [{"type": "kick", "reason": "spam"}])
        self.assertEqual(sse.event(), 'event: kick\ndata: {"type":"kick","reason":"spam"}\n\n')
        self.assertEqual(sse.read_to_end(), b"")
        # kick one client by id, with the default reason; the stream's last line is the kick
        self.assertEqual(self.ctl("kick", "--client", str(rows[2]["id"])), (0, "kicked client %d\n" % rows[2]["id"], ""))
        self.assertEqual(stream.line(), '[{"type":"kick","reason":"kicked by an operator"}]\n')
        self.assertEqual(stream.read_to_end(), b"")
        self.assertEqual(self.ctl("kick", "dave", "--json"), (0, '{"kicked":1}\n', ""))
        self.assertEqual(other.line(), '[{"type":"kick","reason":"kicked by an operator"}]\n')
        self.d.wait_held(0, "stream")
        self.d.wait_held(0, "sse")
        self.d.wait_held(0)
        self.assertEqual(self.ctl("kick", "alice"), (0, "kicked 0 clients on alice\n", ""))
        self.assertEqual(self.ctl("clients"), (0, "no clients\n", ""))
        for s in (poll, sse, stream, other):
            s.close()

    def test_stats(self):
        a = self.d.pub("alice", "one")
        self.d.pub("bob", "two")
        self.d.poll("alice", since=a, timeout=0)
        st, _, _ = self.d.publish_json({"queue": "bad name", "data": 1})
        self.assertEqual(st, 400)
        stream = self.d.open_stream("/stream/bob")
        self.assertTrue(stream.line().startswith("[{"))
        self.d.wait_held(1, "stream")

        j = self.json_of("stats")
        self.assertEqual(sorted(j), ["broker", "connections", "counters", "first_id", "held", "journal", "last_id", "memory_rss_bytes",
                                     "pending_bytes", "pending_messages", "pid", "protocol", "queues", "rates",
                                     "refused", "started_us", "stored_bytes", "stored_messages", "threads",
                                     "uptime_us", "version", "waiters"])
        self.assertEqual((j["version"], j["protocol"], j["pid"], j["threads"]),
                         (VERSION, 1, self.d.proc.pid, os.environ.get("CBX_THREADS", "pool")))
        self.assertEqual(j["journal"], {"state": "off"}) # no state-dir (test_durability has the rest)
        self.assertEqual(j["broker"], {"type": "memory", "state": "up"}) # test_scaling has redis
        self.assertGreater(j["memory_rss_bytes"], 1 << 20)
        self.assertGreaterEqual(j["uptime_us"], 0)
        self.assertEqual(j["connections"]["admin"], 1)
        self.assertEqual(j["held"], {"long-poll": 0, "stream": 1, "sse": 0, "ws": 0, "total": 1})
        self.assertEqual((j["queues"], j["pending_messages"], j["stored_messages"], j["waiters"]), (2, 0, 2, 1))
        self.assertEqual(j["pending_bytes"], 0)
        c = j["counters"]
        self.assertEqual((c["published"], c["delivered"], c["acknowledged"], c["flushed"], c["dropped"],
                          c["expired"], c["publish_errors"]), (2, 1, 2, 0, 0, 0, 1))
        self.assertGreaterEqual(c["publish_requests"], 3)  # and the GET /metrics of wait_held
        self.assertEqual(j["refused"]["bad-request"], 1)
        self.assertEqual(sorted(c), ["acknowledged", "bad_requests", "delivered", "dropped", "expired", "flushed",
                                     "publish_errors", "publish_requests", "published", "rejected_connections"])
        r = j["rates"]
        self.assertGreater(r["window_us"], 0)
        self.assertLessEqual(r["window_us"], 61000000)
        self.assertGreater(r["published"], 0)
        self.assertEqual(r["dropped"], 0)

        rc, out, err = self.ctl("stats")
        self.assertEqual((rc, err), (0, ""))
        lines = out.split("\n")
        self.assertRegex(lines[0], r"^cometboxd %s \(pid %d, threads (pool|per-connection)\), up \d+s, memory "
                                   r"\d+\.\d MiB$" % (re.escape(VERSION), self.d.proc.pid))
        self.assertRegex(lines[1], r"^connections  browser 1, publish \d+, admin 1$")
        self.assertEqual(lines[2:9], ["held         1 (long-poll 0, stream 1, sse 0, ws 0)",
                                      "queues       2",
                                      "pending      0 messages, 0 B",
                                      "stored       2 messages, %d B" % j["stored_bytes"],
                                      "journal      off (no state-dir: messages live in memory only)",
                                      "broker       memory (this node alone)", ""])
        self.assertRegex(lines[9], r"^ +total  per second \(last \d+s\)$")
        self.assertRegex(lines[10], r"^published +2 +\d+\.\d\d$")
        self.assertRegex(lines[11], r"^delivered +1 +\d+\.\d\d$")
        self.assertRegex(lines[12], r"^acknowledged +2 +\d+\.\d\d$")
        self.assertEqual([l.split()[0] for l in lines[13:19]], ["expired", "dropped", "flushed", "publish",
                                                                "publish", "rejected"])
        self.assertRegex(lines[16], r"^publish requests +\d+ +\d+\.\d\d$")
        self.assertRegex(lines[17], r"^publish errors +1 +\d+\.\d\d$")
        self.assertEqual(lines[19:], ["", "refused      bad-request 1", ""])
        stream.close()

    def test_tail_sees_publishes_and_acknowledges_nothing(self):
        env = dict(os.environ, COMETBOX_SOCKET=self.d.admin)
        text = subprocess.Popen([COMETBOXCTL, "tail", "alice", "bob"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        js = subprocess.Popen([COMETBOXCTL, "tail", "--json", "alice"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
        try:
            self.assertEqual(self.wait_tails(text), "cometboxctl: tailing alice, bob; interrupt to stop\n")
            self.assertEqual(self.wait_tails(js), "cometboxctl: tailing alice; interrupt to stop\n")
            a = self.d.pub("alice", "hello there")
            st, _, body = self.d.publish_json([{"queue": "bob", "data": {"n": [1, None]}},
                                               {"queue": "carol", "data": "not tailed"},
                                               {"queue": "alice", "data": "two\nlines"}])
            b, _, c = json.loads(body)["ids"]
            d = int(self.ok("publish", "bob", "via admin"))
            self.assertEqual(text.stdout.readline(), "%d alice hello there\n" % a)
            self.assertEqual(text.stdout.readline(), '%d bob {"n":[1,null]}\n' % b)
            self.assertEqual(text.stdout.readline(), '%d alice "two\\nlines"\n' % c)
            self.assertEqual(text.stdout.readline(), "%d bob via admin\n" % d)
            self.assertEqual(js.stdout.readline(), '{"id":%d,"queue":"alice","data":"hello there"}\n' % a)
            self.assertEqual(js.stdout.readline(), '{"id":%d,"queue":"alice","data":"two\\nlines"}\n' % c)
            # an observer: nothing acknowledged, not counted as a client, delivered or waiting
            j = self.json_of("stats")
            self.assertEqual((j["pending_messages"], j["counters"]["acknowledged"], j["counters"]["delivered"],
                              j["waiters"], j["held"]["total"], j["connections"]["admin"]), (5, 0, 0, 0, 0, 3))
            self.assertEqual([q["waiting"] for q in self.json_of("queues")["queues"]], [0, 0, 0])
            self.assertEqual(self.ctl("kick", "alice"), (0, "kicked 0 clients on alice\n", ""))
            self.assertEqual(self.ctl("clients"), (0, "no clients\n", ""))
            st, _, body = self.d.poll("alice")
            self.assertEqual(json.loads(body), [msg(a, "alice", "hello there"), msg(c, "alice", "two\nlines")])
            # the kick did not end the tail
            e = self.d.pub("alice", "after the kick")
            self.assertEqual(js.stdout.readline(), '{"id":%d,"queue":"alice","data":"after the kick"}\n' % e)
            self.assertEqual(text.stdout.readline(), "%d alice after the kick\n" % e)
            # interrupted: exit status 0, nothing more printed
            for p in (text, js):
                p.send_signal(signal.SIGINT)
                self.assertEqual(p.wait(10), 0)
            self.assertEqual(text.stdout.read(), "")
            self.assertEqual((text.stderr.read(), js.stderr.read()), ("", ""))
        finally:
            for p in (text, js):
                p.kill()
                p.wait()
                p.stdout.close()
                p.stderr.close()


class TailIsAnObserver(AdminTest):
    """A tail takes no place on a queue: with max-waiters-per-queue 1 a
    browser still gets in beside it, and only the browser is counted."""
    ARGS = ["--max-waiters-per-queue", "1"]

    def test_a_tail_leaves_the_place_to_a_browser(self):
        env = dict(os.environ, COMETBOX_SOCKET=self.d.admin)
        tail = subprocess.Popen([COMETBOXCTL, "tail", "q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)
        try:
            self.assertEqual(self.wait_tails(tail), "cometboxctl: tailing q; interrupt to stop\n")
            stream = self.d.open_stream("/stream/q")
            self.assertEqual((stream.status, stream.line()), (200, "[]\n"))
            st, _, body = self.d.request("browser", "GET", "/poll/q?timeout=5")
            self.assertEqual(st, 429)
            self.assertEqual(json.loads(body)["detail"],
                             "too many requests held on this queue (max-waiters-per-queue)")
            j = self.json_of("stats")
            self.assertEqual((j["waiters"], j["held"]["total"]), (1, 1))
            self.assertEqual([(q["name"], q["waiting"]) for q in self.json_of("queues")["queues"]], [("q", 1)])
            a = self.d.pub("q", "both see it")
            self.assertEqual(stream.line(), '[{"id":%d,"queue":"q","data":"both see it"}]\n' % a)
            self.assertEqual(tail.stdout.readline(), "%d q both see it\n" % a)
            self.assertEqual(self.json_of("stats")["counters"]["delivered"], 1)  # the stream's copy only
            stream.close()
            tail.send_signal(signal.SIGINT)
            self.assertEqual(tail.wait(10), 0)
        finally:
            tail.kill()
            tail.wait()
            tail.stdout.close()
            tail.stderr.close()


class SocketFile(unittest.TestCase):
    """The socket's life: creation mode, stale and foreign files, a second daemon, no daemon."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cbx-admin-")
        os.chmod(self.tmp, 0o755)  # so that only the socket's own mode stops another user
        self.path = os.path.join(self.tmp, "admin.sock")
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            d.cleanup()
        subprocess.run(["rm", "-rf", self.tmp])

    def start(self, *args, wait=True):
        d = Daemon(*args, tmpdir=self.tmp, wait=wait)
        self.daemons.append(d)
        return d

    def test_no_daemon_exit_3(self):
        rc, out, err = ctl(self.path, "ping")
        self.assertEqual((rc, out), (3, ""))
        self.assertEqual(err, "cometboxctl: cannot reach cometboxd at %s: no such socket; is cometboxd running, "
                              "with admin-socket set to this path? (-s PATH or COMETBOX_SOCKET choose another "
                              "socket)\n" % self.path)
        rc, out, err = ctl(None, "stats", env={"COMETBOX_SOCKET": self.path})
        self.assertEqual(rc, 3)
        self.assertIn(self.path, err)

    def test_not_a_socket_is_refused_and_kept(self):
        with open(self.path, "w") as f:
            f.write("precious\n")
        self.assertEqual(ctl(self.path, "ping"),
                         (3, "", "cometboxctl: cannot reach cometboxd at %s: it is not a socket; check admin-socket "
                                 "in cometboxd.conf, and -s or COMETBOX_SOCKET\n" % self.path))
        d = self.start(wait=False)
        self.assertEqual(d.proc.wait(15), 1)
        d.reader.join(5)
        self.assertIn("error admin-socket %s exists and is not a socket; not removing it" % self.path, d.log)
        with open(self.path) as f:
            self.assertEqual(f.read(), "precious\n")

    def test_stale_socket_is_replaced_and_socket_removed_at_stop(self):
        s = socket.socket(socket.AF_UNIX)
        s.bind(self.path)
        s.close()  # a socket file nobody listens on
        self.assertEqual(ctl(self.path, "ping"),
                         (3, "", "cometboxctl: cannot reach cometboxd at %s: connection refused; the socket is left "
                                 "over: is cometboxd running?\n" % self.path))
        d = self.start()
        self.assertIn("removed the stale admin socket %s" % self.path, d.log)
        self.assertEqual(ctl(self.path, "ping")[0], 0)
        self.assertEqual(d.stop()[0], 0)
        self.assertFalse(os.path.exists(self.path))

    def test_second_daemon_refused(self):
        d = self.start()
        d2 = self.start(wait=False)
        self.assertEqual(d2.proc.wait(15), 1)
        d2.reader.join(5)
        self.assertIn("another cometboxd is listening on %s" % self.path, d2.log)
        # the first one still serves its socket
        self.assertEqual(ctl(self.path, "ping")[0], 0)
        self.assertEqual(d.stop()[0], 0)

    def test_mode_and_permission_denied(self):
        d = self.start()
        self.assertEqual(stat.S_IMODE(os.lstat(self.path).st_mode), 0o600)
        self.assertTrue(stat.S_ISSOCK(os.lstat(self.path).st_mode))
        if os.geteuid() != 0:
            self.skipTest("needs root to run cometboxctl as another user")
        # a copy that nobody may run wherever the build folder is
        binary = os.path.join(self.tmp, "cometboxctl")
        shutil.copy(COMETBOXCTL, binary)
        os.chmod(binary, 0o755)
        rc, out, err = ctl(self.path, "ping", user="nobody", binary=binary)
        self.assertEqual((rc, out), (3, ""))
        self.assertEqual(err, "cometboxctl: cannot reach cometboxd at %s: permission denied; run cometboxctl as "
                              "the user cometboxd runs as (or root), or widen admin-socket-mode to a group you "
                              "are in\n" % self.path)
        self.assertEqual(d.stop()[0], 0)
        # admin-socket-mode widens it
        self.start("--admin-socket-mode", "0666")
        self.assertEqual(stat.S_IMODE(os.lstat(self.path).st_mode), 0o666)
        self.assertEqual(ctl(self.path, "ping", user="nobody", binary=binary), (0, "pong from cometboxd %s (admin "
                                                                             "protocol 1)\n" % VERSION, ""))

    def fake_server(self, answer):
        """A socket at the path that accepts one client and answers it with answer (None: never)."""
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(self.path)
        srv.listen(1)

        def serve():
            c, _ = srv.accept()
            c.recv(65536)
            if answer is not None:
                c.sendall(answer)
            time.sleep(12)
            c.close()
        t = threading.Thread(target=serve, daemon=True)
        t.start()
        return srv

    def test_not_cometboxd_and_no_answer_exit_3(self):
        srv = self.fake_server(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        self.assertEqual(ctl(self.path, "ping"),
                         (3, "", "cometboxctl: %s answered outside the admin protocol (the daemon's answer is not a "
                                 "JSON object); is it cometboxd's admin socket?\n" % self.path))
        srv.close()
        os.unlink(self.path)
        srv = self.fake_server(None)
        t0 = time.monotonic()
        self.assertEqual(ctl(self.path, "ping"),
                         (3, "", "cometboxctl: no answer from cometboxd at %s within 10 s; is it stuck? check its "
                                 "log\n" % self.path))
        self.assertGreaterEqual(time.monotonic() - t0, 9.5)
        srv.close()

    def test_tail_ends_when_the_daemon_stops(self):
        d = self.start()
        p = subprocess.Popen([COMETBOXCTL, "-s", self.path, "tail", "q"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            self.assertTrue(p.stderr.readline().startswith("cometboxctl: tailing q"))
            rc, took = d.stop()
            self.assertEqual(rc, 0)
            self.assertLess(took, 3)
            self.assertEqual(p.wait(10), 3)
            self.assertEqual(p.stderr.read(), "cometboxctl: cometboxd at %s is stopping; the tail ended\n" % self.path)
        finally:
            p.kill()
            p.wait()
            p.stdout.close()
            p.stderr.close()


class Hostile(AdminTest):
    def test_bad_lines_get_errors_and_the_connection_goes_on(self):
        c = AdminConn(self.d.admin)
        c.send(b"this is not json\n")
        self.assertEqual(json.loads(c.line()), {"id": None, "ok": False,
                                                "error": "invalid JSON: a request is one JSON object on one line"})
        self.assertEqual(c.call({"id": 1, "cmd": "frob"}), {"id": 1, "ok": False, "error": "unknown command: frob"})
        self.assertEqual(c.call({"id": "x", "cmd": "stats", "verbose": True}),
                         {"id": "x", "ok": False, "error": 'stats: unknown argument "verbose"'})
        self.assertEqual(c.call({"id": 2, "version": 2, "cmd": "ping"}),
                         {"id": 2, "ok": False, "error": "unsupported protocol version 2 (cometboxd speaks 1)"})
        self.assertEqual(c.call({"id": 3}), {"id": 3, "ok": False, "error": '"cmd" is missing'})
        self.assertEqual(c.call([1, 2]), {"id": None, "ok": False, "error": "a request must be a JSON object"})
        c.send(b"\n\r\n")  # blank lines are ignored
        self.assertEqual(c.call({"id": 4, "cmd": "ping", "version": 1}),
                         {"id": 4, "ok": True, "result": {"pong": True, "version": VERSION, "protocol": 1}})
        # several requests in one write, answered in order
        c.send(b'{"id":5,"cmd":"ping"}\n{"id":6,"cmd":"publish","queue":"q","data":"x"}\n')
        self.assertEqual(json.loads(c.line())["id"], 5)
        self.assertEqual(json.loads(c.line())["id"], 6)
        c.close()

    def test_huge_line_is_refused_and_dropped(self):
        c = AdminConn(self.d.admin)
        try:
            c.send(b'{"id":1,"cmd":"ping","pad":"' + b"x" * 70000)
        except OSError:
            pass  # the daemon may close before taking it all
        self.assertEqual(json.loads(c.line()), {"id": None, "ok": False, "error": "request line over 65536 bytes"})
        self.assertTrue(c.at_eof())
        c.close()
        self.assertEqual(self.ctl("ping")[0], 0)

    def test_half_closed_client_gets_its_answers(self):
        c = AdminConn(self.d.admin)
        c.send(b'{"id":1,"cmd":"ping"}\n{"id":2,"cmd":"ping"}')  # the last line has no newline
        c.sock.shutdown(socket.SHUT_WR)
        self.assertEqual(json.loads(c.line())["id"], 1)
        self.assertEqual(json.loads(c.line())["id"], 2)
        self.assertTrue(c.at_eof())
        c.close()

    def test_hostile_clients_never_block_publishing_polling_or_other_admins(self):
        hostile = []
        # one that sends requests and never reads its answers (it stalls once its buffers are full)
        greedy = AdminConn(self.d.admin)
        greedy.sock.setblocking(False)
        sent = 0
        req = b'{"id":1,"cmd":"stats"}\n' * 1000
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                sent += greedy.sock.send(req)
            except BlockingIOError:
                break
        self.assertGreater(sent, 100000)
        hostile.append(greedy)
        # one silent, one with half a line, one that half-closed after half a line, one with garbage
        silent = AdminConn(self.d.admin)
        hostile.append(silent)
        half = AdminConn(self.d.admin)
        half.send(b'{"id":1,"cmd":"pi')
        hostile.append(half)
        shut = AdminConn(self.d.admin)
        shut.send(b'{"id":1,"cmd":')
        shut.sock.shutdown(socket.SHUT_WR)
        hostile.append(shut)
        junk = AdminConn(self.d.admin)
        junk.send(os.urandom(5000).replace(b"\n", b"x") + b"\n")
        hostile.append(junk)

        # meanwhile: publishes, a held poll woken by one, and other admin clients all answer at once
        poll = self.d.open_stream("/poll/live?timeout=30", read_head=False)
        self.d.wait_held(1)
        worst = 0
        for i in range(50):
            t0 = time.monotonic()
            self.d.pub("q%d" % (i % 5), "m%d" % i)
            worst = max(worst, time.monotonic() - t0)
        id_ = self.d.pub("live", "wake")
        poll.read_head()
        self.assertEqual(json.loads(poll.read_body()), [msg(id_, "live", "wake")])
        poll.close()
        self.assertLess(worst, 1.0)
        t0 = time.monotonic()
        self.assertEqual(self.ctl("ping")[0], 0)
        self.assertEqual(self.json_of("stats")["counters"]["published"], 51)
        self.assertLess(time.monotonic() - t0, 2.0)
        # the half-closed one got its error (an incomplete line at its end of input) and was closed
        self.assertEqual(json.loads(shut.line()),
                         {"id": None, "ok": False, "error": "invalid JSON: a request is one JSON object on one line"})
        self.assertTrue(shut.at_eof())
        self.assertEqual(json.loads(junk.line())["ok"], False)
        self.assertEqual(self.json_of("stats")["connections"]["admin"], 5)  # greedy, silent, half, junk, and this
        for h in hostile:
            h.close()

    def test_too_many_admin_clients(self):
        conns = [AdminConn(self.d.admin) for _ in range(64)]
        self.assertEqual(conns[0].call({"id": 1, "cmd": "ping"})["ok"], True)
        extra = AdminConn(self.d.admin)
        self.assertEqual(json.loads(extra.line()), {"id": None, "ok": False, "error": "too many admin clients"})
        self.assertTrue(extra.at_eof())
        extra.close()
        self.assertEqual(self.ctl("ping"), (1, "", "cometboxctl: too many admin clients\n"))
        self.assertIn("admin socket: refused a client: 64 are connected", self.d.log)
        for c in conns:
            c.close()
        deadline = time.monotonic() + 10
        while self.ctl("ping")[0] != 0:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)


METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
                    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*)?\})? '
                    r"(-?(?:\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|Inf|NaN)|\+Inf)(?: -?\d+)?$")


def check_exposition(text):
    """Checks the Prometheus text format 0.0.4 strictly; returns {series: value}."""
    assert text.endswith("\n"), "the last line must end with a newline"
    families, series, current = {}, {}, None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP "):
            name, help_ = line[7:].split(" ", 1)
            assert METRIC_NAME.match(name) and help_, "line %d: bad HELP" % n
            assert name not in families, "line %d: %s described twice" % (n, name)
            families[name] = {"help": help_, "type": None, "samples": 0}
            current = name
        elif line.startswith("# TYPE "):
            name, type_ = line[7:].split(" ")
            assert name == current and families[name]["type"] is None, "line %d: TYPE without its HELP" % n
            assert type_ in ("counter", "gauge", "untyped"), "line %d: type %s" % (n, type_)
            assert type_ != "counter" or name.endswith("_total"), "line %d: counter %s without _total" % (n, name)
            families[name]["type"] = type_
        elif line.startswith("#") or line == "":
            raise AssertionError("line %d: unexpected %r" % (n, line))
        else:
            m = SAMPLE.match(line)
            assert m, "line %d: not a sample: %r" % (n, line)
            assert m.group(1) == current and families[current]["type"], \
                "line %d: sample of %s outside its family" % (n, m.group(1))
            key = m.group(1) + (m.group(2) or "")
            assert key not in series, "line %d: duplicate series %s" % (n, key)
            series[key] = float(m.group(3))
            families[current]["samples"] += 1
    for name, f in families.items():
        assert f["samples"] > 0, "%s has no sample" % name
    return series


class Wakeups(AdminTest):
    def test_a_fan_out_answers_every_poll(self):
        """One publish wakes 40 held long-polls, three rounds running: every
        poll must be answered with the message."""
        n = 40
        since = self.d.pub("other", "start")
        for round_ in range(3):
            threads, results = self.d.start_polls("wake", [None] * n, since)
            self.d.wait_held(n)
            id_ = self.d.pub("wake", "r%d" % round_)
            for t in threads:
                t.join(30)
            self.assertEqual([r[0] for r in results], [200] * n)
            for r in results:
                self.assertEqual(json.loads(r[2]), [msg(id_, "wake", "r%d" % round_)])
            since = id_


class Metrics(AdminTest):
    def test_metrics_are_valid_exposition_and_match_stats(self):
        a = self.d.pub("alice", "one")
        self.d.pub("alice", "two")
        self.d.poll("alice", since=a)
        self.d.publish_json({"nope": 1})
        st, hdr, body = self.d.request("publish", "GET", "/metrics")
        self.assertEqual(st, 200)
        self.assertEqual(hdr["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        series = check_exposition(body.decode())
        j = self.json_of("stats")
        c = j["counters"]
        want = {
            "cometbox_published_total": c["published"], "cometbox_delivered_total": c["delivered"],
            "cometbox_acknowledged_total": c["acknowledged"], "cometbox_expired_total": c["expired"],
            "cometbox_dropped_total": c["dropped"], "cometbox_flushed_total": c["flushed"],
            "cometbox_publish_errors_total": c["publish_errors"],
            "cometbox_rejected_connections_total": c["rejected_connections"],
            "cometbox_bad_requests_total": c["bad_requests"],
            "cometbox_queues": j["queues"], "cometbox_pending_messages": j["pending_messages"],
            "cometbox_pending_bytes": j["pending_bytes"], "cometbox_stored_messages": j["stored_messages"],
            "cometbox_stored_bytes": j["stored_bytes"], "cometbox_waiters": j["waiters"],
            "cometbox_admin_clients": 0,
            'cometbox_held_requests{transport="long-poll"}': 0, 'cometbox_held_requests{transport="stream"}': 0,
            'cometbox_held_requests{transport="sse"}': 0,
            'cometbox_info{version="%s",threads="%s"}' % (VERSION, os.environ.get("CBX_THREADS", "pool")): 1,
            'cometbox_refused_total{reason="bad-request"}': j["refused"]["bad-request"],
        }
        for k, v in want.items():
            self.assertIn(k, series)
            self.assertEqual(series[k], v, k)
        self.assertEqual(series["cometbox_published_total"], 2)
        self.assertNotIn("cometbox_resume_wakeups_skipped_total", series)  # gone with itc.c (issue 17)
        self.assertEqual(series["cometbox_publish_requests_total"], c["publish_requests"])  # the GET counts too
        self.assertIn("cometbox_browser_connections", series)
        self.assertGreater(series["process_resident_memory_bytes"], 1 << 20)
        self.assertAlmostEqual(series["process_start_time_seconds"], j["started_us"] / 1e6, places=2)
        self.assertGreaterEqual(series["cometbox_uptime_seconds"], 0)
        for reason in j["refused"]:
            self.assertIn('cometbox_refused_total{reason="%s"}' % reason, series)
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ImportError:
            return
        names = {f.name for f in text_string_to_metric_families(body.decode())}
        self.assertIn("cometbox_published", names)  # the library strips _total from counter names
        self.assertIn("cometbox_held_requests", names)

    def test_checker_refuses_bad_exposition(self):
        for bad in ("cometbox_x 1\n", "# HELP a b\n# TYPE a counter\na 1\n", "# HELP a b\n# TYPE a gauge\na 1 x\n",
                    "# HELP a b\n# TYPE a gauge\na{l=\"x} 1\n", "# HELP a b\n# TYPE a gauge\na 1\na 2\n",
                    "# HELP a b\n# TYPE a gauge\na 1"):
            with self.assertRaises(AssertionError, msg=bad):
                check_exposition(bad)


class Docs(unittest.TestCase):
    """The man pages and ADMIN.md keep up with the code."""
    ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def read(self, *path):
        with open(os.path.join(self.ROOT, *path)) as f:
            return f.read()

    def test_conf_man_page_lists_every_key_with_its_default(self):
        """... and says which keys a reload leaves as they are, as --help does."""
        from cbx import COMETBOXD
        out = subprocess.run([COMETBOXD, "--help"], capture_output=True, text=True, timeout=30).stdout
        keys = re.findall(r"^  --([a-z-]+) +.*\(default: (.*?)(; needs a restart|; above its value at start needs a "
                          r"restart)?\)$", out, re.M)
        self.assertGreater(len(keys), 20)
        self.assertGreater(len([k for k in keys if k[2]]), 10)
        page = self.read("docs", "man", "cometboxd.conf.5.scd")
        for key, default, restart in keys:
            default = "empty" if default == '""' else default.replace("*", "\\*")
            m = re.search(r"\n\*%s\* = .*\(default: %s\)\n((?:\t.*\n)+)" % (re.escape(key), re.escape(default)), page)
            self.assertIsNotNone(m, key)
            text = " ".join(m.group(1).split())
            if restart == "; needs a restart":
                self.assertIn("Needs a restart", text, key)
            elif restart:
                self.assertIn("above its value at start needs a restart", text, key)
            else:
                self.assertNotIn("needs a restart", text.lower(), key)

    def test_every_command_is_documented(self):
        out = ctl(None, "--help")[1]
        names = re.findall(r"^  ([a-z]+) +\S", out, re.M)
        self.assertEqual(names, ["stats", "queues", "clients", "kick", "flush", "publish", "tail", "reload", "ping",
                                 "help"])
        page, admin = self.read("docs", "man", "cometboxctl.1.scd"), self.read("docs", "ADMIN.md")
        for name in names:
            self.assertIn("\n*%s*" % name, page)
            if name != "help":
                self.assertIn("| `%s` |" % name, admin)


if __name__ == "__main__":
    unittest.main()
