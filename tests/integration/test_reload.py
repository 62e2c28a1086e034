"""Config reload (docs/THREADS.md, "The config in force"; docs/ADMIN.md,
`reload`): SIGHUP and `cometboxctl reload` against the real daemon, with
requests held across the reload. New requests see the new values, held
ones are not dropped and keep what they started with, a bad file changes
nothing, and a restart-only key keeps its value. Run once per threads mode."""
import json
import os
import re
import shutil
import signal
import socket
import tempfile
import time
import unittest

from cbx import THREADS, Daemon, msg
from test_admin import ctl

LOG_LINE = re.compile(r"^\S+ (error|warn|info|debug) (.*)$")


def wait_until(cond, what, timeout=20):
    """Waits (polling) until cond() is true; fails naming what."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting until " + what)
        time.sleep(0.02)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pending(stream):
    """What a stream received and nobody read yet (without waiting)."""
    data = stream.buf + stream.body
    stream.sock.setblocking(False)
    try:
        data += stream.sock.recv(65536)
    except BlockingIOError:
        pass
    finally:
        stream.sock.setblocking(True)
    return data


class ReloadTest(unittest.TestCase):
    """Starts a daemon with a config file of its own (self.conf)."""
    maxDiff = None

    def start(self, text, *args, addresses=True):
        self.tmp = tempfile.mkdtemp(prefix="cbx-reload-")
        self.conf = os.path.join(self.tmp, "cometboxd.conf")
        self.write(text.replace("@ADMIN@", os.path.join(self.tmp, "admin.sock")))
        self.d = Daemon("-c", self.conf, *args, tmpdir=self.tmp, addresses=addresses)

    def tearDown(self):
        rc, _ = self.d.stop()
        log = self.d.log
        self.d.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(rc, 0, "cometboxd exit code; log:\n" + log)
        for bad in ("runtime error", "ERROR: AddressSanitizer", "WARNING: ThreadSanitizer", "LeakSanitizer"):
            self.assertNotIn(bad, log)

    def write(self, text):
        """Replaces the config file at once, as an editor or a config manager does."""
        with open(self.conf + ".new", "w") as f:
            f.write(text)
        os.replace(self.conf + ".new", self.conf)

    def ctl(self, *args):
        return ctl(self.d.admin, *args)

    def messages(self, after, prefix=""):
        """(level, text) of the log lines after line number after whose text starts with prefix."""
        with self.d.cond:
            lines = self.d.lines[after:]
        out = []
        for line in lines:
            m = LOG_LINE.match(line.rstrip("\n"))
            if m and m.group(2).startswith(prefix):
                out.append((m.group(1), m.group(2)))
        return out

    def sighup(self):
        """Sends SIGHUP and waits for the reload's last log line; returns the
        reload's lines (level, text) and the line number before them."""
        mark = self.d.mark()
        self.d.proc.send_signal(signal.SIGHUP)
        done = self.d.wait_for(re.compile(r" (info|error) SIGHUP: (reloaded|reload refused)"), 30, after=mark)
        self.assertIsNotNone(done, "no end of the SIGHUP reload in the log:\n" + self.d.log)
        return self.messages(mark, "SIGHUP: "), mark

    def publish(self, secret, queue="q", data="x"):
        st, _, body = self.d.request("publish", "POST", "/publish", json.dumps({"queue": queue, "data": data}).encode(),
                                     {"Content-Type": "application/json", "Authorization": "Bearer " + secret})
        return st, json.loads(body)

    def held(self, transport):
        return self.d.held(transport)

    def browser_connections(self):
        return int(self.d.metrics()["cometbox_browser_connections"])


UNDER_LOAD_BEFORE = """\
# before the reload
log-level = info
heartbeat = 60
idle-timeout = 120
max-connections-per-ip = 50
cors-origins = http://a.example
publish-secret = old-secret-1
"""

UNDER_LOAD_AFTER = """\
# after the reload
log-level = debug
heartbeat = 1
idle-timeout = 120
max-connections-per-ip = 24
cors-origins = http://b.example
publish-secret = new-secret-2
"""

POLLS = 20  # and 2 streams and 2 SSE: 24 held connections from 127.0.0.1


class UnderLoad(ReloadTest):
    """A reload while 24 requests are held: none is dropped, each gets the
    next message, and new requests see every new value."""

    def under_load(self, reload):
        self.start(UNDER_LOAD_BEFORE)
        d = self.d
        streams = [d.open_stream("/stream/q") for _ in range(2)]
        sses = [d.open_stream("/events/q") for _ in range(2)]
        for s in streams:
            self.assertEqual((s.status, s.line()), (200, "[]\n"))
        for s in sses:
            self.assertEqual(s.status, 200)
            self.assertRegex(s.event(), r"^retry: \d+\n\n$")
        threads, results = d.start_polls("q", [None] * POLLS, timeout=60)
        d.wait_held(POLLS, "long-poll")
        d.wait_held(2, "stream")
        d.wait_held(2, "sse")
        self.assertNotIn("debug", [level for level, _ in self.messages(0)])  # log-level = info

        self.write(UNDER_LOAD_AFTER)
        mark = reload()

        # nothing held was dropped
        self.assertEqual([self.held(t) for t in ("long-poll", "stream", "sse")], [POLLS, 2, 2])
        # max-connections-per-ip = 24: the 25th connection from this address is refused
        st, hdr, body = d.request("browser", "GET", "/poll/other?timeout=0")
        self.assertEqual((st, json.loads(body)), (429, {"error": "too_many_requests", "detail":
                         "too many connections from your address (max-connections-per-ip)"}))
        # publish-secret: the old one is refused, the new one publishes
        self.assertEqual(self.publish("old-secret-1"), (403, {"error": "forbidden", "detail": "wrong publish secret"}))
        st, body = self.publish("new-secret-2", "q", "after reload")
        self.assertEqual(st, 200)
        id_ = body["ids"][0]
        # every held request gets it
        for t in threads:
            t.join(30)
        expected = ('[{"id":%d,"queue":"q","data":"after reload"}]\n' % id_).encode()
        self.assertEqual([(r[0], r[2]) for r in results], [(200, expected)] * POLLS)
        for s in streams:
            self.assertEqual(s.line(), expected.decode())
        for s in sses:
            self.assertEqual(s.event(), 'id: %d\ndata: {"id":%d,"queue":"q","data":"after reload"}\n\n' % (id_, id_))
        # log-level = debug: the refused publish was logged at debug, and nothing was before the reload
        self.assertIn(("debug", "publish refused (403): wrong publish secret"), self.messages(mark))
        # the long-polls' connections close; the 4 streams stay
        wait_until(lambda: self.browser_connections() == 4, "only the 4 streams are connected")
        # heartbeat = 1 for a new stream; the held ones keep 60
        hb = d.open_stream("/events/hb")
        self.assertRegex(hb.event(), r"^retry: \d+\n\n$")
        self.assertEqual(hb.event(timeout=10), ": heartbeat\n\n")
        self.assertEqual(hb.event(timeout=10), ": heartbeat\n\n")
        self.assertEqual([pending(s) for s in streams + sses], [b""] * 4)
        # cors-origins: the new origin is allowed, the old one no longer
        st, hdr, body = d.request("browser", "GET", "/poll/c?timeout=0", headers={"Origin": "http://b.example"})
        self.assertEqual((st, hdr.get("access-control-allow-origin"), body), (200, "http://b.example", b"[]\n"))
        st, hdr, body = d.request("browser", "GET", "/poll/c?timeout=0", headers={"Origin": "http://a.example"})
        self.assertEqual((st, json.loads(body)), (403, {"error": "forbidden", "detail":
                                                       "this page's origin is not in cors-origins"}))
        for s in streams + sses + [hb]:
            s.close()

    def expected_lines(self, who):
        return [("info", "%s: reload: heartbeat: 60 -> 1" % who),
                ("info", "%s: reload: cors-origins: http://a.example -> http://b.example" % who),
                ("info", "%s: reload: publish-secret: (hidden) -> (hidden)" % who),
                ("info", "%s: reload: max-connections-per-ip: 50 -> 24" % who),
                ("info", "%s: reload: log-level: info -> debug" % who),
                ("info", "%s: reloaded %s: 5 keys changed, 0 need a restart" % (who, self.conf))]

    def test_sighup_under_load(self):
        def reload():
            lines, mark = self.sighup()
            self.assertEqual(lines, self.expected_lines("SIGHUP"))
            return mark
        self.under_load(reload)

    def test_cometboxctl_reload_under_load(self):
        def reload():
            mark = self.d.mark()
            self.assertEqual(self.ctl("reload"), (0, (
                "reloaded %s: 5 keys changed, 0 need a restart\n"
                "  heartbeat: 60 -> 1\n"
                "  cors-origins: http://a.example -> http://b.example\n"
                "  publish-secret: (hidden) -> (hidden)\n"
                "  max-connections-per-ip: 50 -> 24\n"
                "  log-level: info -> debug\n") % self.conf, ""))
            lines = self.messages(mark, "admin (")
            who = re.match(r"^(admin \(uid %d pid \d+\)): " % os.getuid(), lines[0][1]).group(1)
            self.assertEqual(lines, self.expected_lines(who))
            return mark
        self.under_load(reload)


class HeldKeepTheirConfig(ReloadTest):
    def test_a_held_long_poll_keeps_the_timeout_it_started_with(self):
        self.start("hold-timeout = 60\n")
        threads, results = self.d.start_polls("kept", [None])  # no timeout=: hold-timeout applies
        self.d.wait_held(1, "long-poll")
        self.write("hold-timeout = 1\n")
        self.assertEqual(self.ctl("reload")[:2], (0, "reloaded %s: 1 key changed, 0 need a restart\n"
                                                     "  hold-timeout: 60 -> 1\n" % self.conf))
        t0 = time.monotonic()
        st, _, body = self.d.poll("new")  # a new long-poll is held for 1 second now
        self.assertEqual((st, body), (200, b"[]\n"))
        self.assertGreater(time.monotonic() - t0, 0.9)
        self.assertEqual(self.held("long-poll"), 1)  # the first one keeps its 60 seconds
        id_ = self.d.pub("kept", "still here")
        threads[0].join(30)
        self.assertEqual((results[0][0], json.loads(results[0][2])), (200, [msg(id_, "kept", "still here")]))


class RequestClock(ReloadTest):
    def test_a_shorter_request_timeout_applies_to_new_connections(self):
        self.start("request-timeout = 30\n")
        old = socket.create_connection((self.d.bhost, self.d.bport), timeout=10)  # sends nothing
        self.write("request-timeout = 1\n")
        self.assertEqual(self.ctl("reload"), (0, "reloaded %s: 1 key changed, 0 need a restart\n"
                                                 "  request-timeout: 30 -> 1\n" % self.conf, ""))
        new = socket.create_connection((self.d.bhost, self.d.bport), timeout=10)
        t0 = time.monotonic()
        self.assertEqual(new.recv(100), b"")  # closed without an answer after 1 s, before the old one
        self.assertLess(time.monotonic() - t0, 5)
        old.setblocking(False)
        with self.assertRaises(BlockingIOError):  # the old one keeps its 30 s
            old.recv(100)
        new.close()
        old.close()


class QueueMapAndPublishLimits(ReloadTest):
    def test_limits_apply_at_once(self):
        self.start("queue-max-messages = 10\n")
        ids = [self.d.pub("m", "m%d" % i) for i in range(3)]
        self.assertEqual(self.d.request("browser", "GET", "/demo")[0], 404)
        self.write("queue-max-messages = 2\nmax-message-bytes = 16\ndemo = on\n")
        self.assertEqual(self.ctl("reload"), (0, (
            "reloaded %s: 3 keys changed, 0 need a restart\n"
            "  queue-max-messages: 10 -> 2\n"
            "  max-message-bytes: 64k -> 16\n"
            "  demo: off -> on\n") % self.conf, ""))
        # the queue map's limits: the next publish keeps 2 messages
        last = self.d.pub("m", "m3")
        st, _, body = self.d.poll("m", since=ids[0] - 1, timeout=0)
        self.assertEqual(json.loads(body), [{"type": "gap", "queue": "m", "from": ids[0], "to": ids[1],
                                             "reason": "overflow"}, msg(ids[2], "m", "m2"), msg(last, "m", "m3")])
        # max-message-bytes, on the publish port and the admin socket
        st, _, body = self.d.publish_json({"queue": "m", "data": "x" * 17})
        self.assertEqual((st, json.loads(body)), (413, {"error": "too_large", "detail":
                                                       "message 1: data for \"m\" has 17 bytes, more than max-message-bytes (16)"}))
        self.assertEqual(self.ctl("publish", "m", "x" * 17),
                         (1, "", 'cometboxctl: data for "m" has 17 bytes, more than max-message-bytes (16)\n'))
        # demo
        st, hdr, body = self.d.request("browser", "GET", "/demo")
        self.assertEqual((st, hdr["content-type"]), (200, "text/html; charset=utf-8"))


BAD_BEFORE = """\
heartbeat = 10
idle-timeout = 120
publish-secret = old-secret-1
"""


class BadFile(ReloadTest):
    """A file that does not read, or breaks a rule, is refused as a whole."""

    def assert_old_config(self):
        self.assertEqual(self.publish("old-secret-1", "auth")[0], 200)
        self.assertEqual(self.publish("new-secret-2", "auth"),
                         (403, {"error": "forbidden", "detail": "wrong publish secret"}))

    def test_cometboxctl_reload_refuses_a_bad_file(self):
        self.start(BAD_BEFORE)
        head = "idle-timeout = 120\npublish-secret = new-secret-2\n"  # lines 1 and 2 are good
        c = self.conf
        cases = [
            (head + "this line has no equals sign\n", 'config %s line 3: expected "key = value"' % c),
            (head + "heartbeet = 5\n", 'config %s line 3: unknown key "heartbeet" (did you mean "heartbeat"?)' % c),
            (head + "heartbeat = soon\n", 'config %s line 3: "heartbeat" wants seconds such as 25, 5m or 1h, not "soon"' % c),
            (head + "heartbeat = 200\n", "idle-timeout (120) must be longer than heartbeat (200)"),
            # the file alone passes, but idle-timeout keeps its running value until a restart
            (head + "idle-timeout = 300\nheartbeat = 200\n",
             "with the keys that need a restart at their running values: "
             "idle-timeout (120) must be longer than heartbeat (200)"),
            (None, "config %s: No such file or directory" % c),
        ]
        for text, error in cases:
            with self.subTest(error=error):
                if text is None:
                    os.unlink(self.conf)
                else:
                    self.write(text)
                mark = self.d.mark()
                error += "; the running config is unchanged"
                self.assertEqual(self.ctl("reload"), (1, "", "cometboxctl: %s\n" % error))
                lines = self.messages(mark, "admin (")
                self.assertEqual(len(lines), 1, lines)
                self.assertEqual(lines[0][0], "error")
                self.assertRegex(lines[0][1], r"^admin \(uid %d pid \d+\): reload refused: %s$"
                                 % (os.getuid(), re.escape(error)))
                self.assert_old_config()
        # the daemon goes on: a good file is taken
        self.write(head)
        self.assertEqual(self.ctl("reload"), (0, "reloaded %s: 2 keys changed, 0 need a restart\n"
                                                 "  heartbeat: 10 -> 15\n"
                                                 "  publish-secret: (hidden) -> (hidden)\n" % self.conf, ""))
        self.assertEqual(self.publish("new-secret-2")[0], 200)
        self.assertEqual(self.publish("old-secret-1")[0], 403)

    def test_sighup_refuses_a_bad_file(self):
        self.start(BAD_BEFORE)
        s = self.d.open_stream("/stream/q")
        self.assertEqual(s.line(), "[]\n")
        self.write("idle-timeout = 120\npublish-secret = new-secret-2\nheartbeet = 5\n")
        lines, _ = self.sighup()
        self.assertEqual(lines, [("error", 'SIGHUP: reload refused: config %s line 3: unknown key "heartbeet" '
                                           '(did you mean "heartbeat"?); the running config is unchanged' % self.conf)])
        self.assertIsNone(self.d.proc.poll())
        self.assert_old_config()
        # the held stream was not dropped: it gets what the old secret published
        st, body = self.publish("old-secret-1", "q", "still")
        self.assertEqual(s.line(), '[{"id":%d,"queue":"q","data":"still"}]\n' % body["ids"][0])
        s.close()


RESTART_BEFORE = """\
listen = 127.0.0.1:0
publish-listen = 127.0.0.1:0
admin-socket = @ADMIN@
threads = %s
max-connections = 100
""" % THREADS


class RestartOnly(ReloadTest):
    def test_restart_only_keys_keep_their_value(self):
        self.start(RESTART_BEFORE, addresses=False)
        port = free_port()
        admin = os.path.join(self.tmp, "admin.sock")
        text = re.sub(r"(?m)^listen = .*$", "listen = 127.0.0.1:%d" % port, RESTART_BEFORE.replace("@ADMIN@", admin))
        self.write(text.replace("max-connections = 100", "max-connections = 200") + "connection-memory = 16k\nheartbeat = 5\n")
        mark = self.d.mark()
        self.assertEqual(self.ctl("reload"), (0, (
            "reloaded %s: 1 key changed, 3 need a restart\n"
            "  heartbeat: 15 -> 5\n"
            "listen changed in the file but needs a restart; keeping 127.0.0.1:0\n"
            "max-connections changed in the file, but above 100 (its value at start) it needs a restart; keeping 100\n"
            "connection-memory changed in the file but needs a restart; keeping 8k\n") % self.conf, ""))
        warnings = [t.split(": reload: ", 1)[1] for l, t in self.messages(mark, "admin (") if l == "warn"]
        self.assertEqual(warnings, [
            "listen changed in the file but needs a restart; keeping 127.0.0.1:0",
            "max-connections changed in the file, but above 100 (its value at start) it needs a restart; keeping 100",
            "connection-memory changed in the file but needs a restart; keeping 8k"])
        # it still listens where it did, and not on the new port
        self.assertEqual(self.d.poll("x", timeout=0)[::2], (200, b"[]\n"))
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        # the same again, for a program
        rc, out, err = self.ctl("--json", "reload")
        self.assertEqual((rc, err), (0, ""))
        self.assertEqual(json.loads(out), {"files": [self.conf], "changed": [], "restart": [
            {"key": "listen", "old": "127.0.0.1:0", "new": "127.0.0.1:%d" % port},
            {"key": "max-connections", "old": "100", "new": "200", "max": "100"},
            {"key": "connection-memory", "old": "8k", "new": "16k"}]})

    def test_max_connections_may_be_lowered(self):
        self.start(RESTART_BEFORE, addresses=False)
        self.write(RESTART_BEFORE.replace("@ADMIN@", os.path.join(self.tmp, "admin.sock"))
                   .replace("max-connections = 100", "max-connections = 2"))
        self.assertEqual(self.ctl("reload"), (0, "reloaded %s: 1 key changed, 0 need a restart\n"
                                                 "  max-connections: 100 -> 2\n" % self.conf, ""))
        threads, results = self.d.start_polls("full", [None, None], timeout=60)
        self.d.wait_held(2, "long-poll")
        st, hdr, body = self.d.request("browser", "GET", "/poll/full?timeout=0")
        self.assertEqual((st, json.loads(body)), (503, {"error": "unavailable", "detail":
                                                       "too many connections (max-connections)"}))
        id_ = self.d.pub("full", "done")
        for t in threads:
            t.join(30)
        self.assertEqual([json.loads(r[2]) for r in results], [[msg(id_, "full", "done")]] * 2)


class NoFile(unittest.TestCase):
    """Without -c a reload applies the defaults and the options again: nothing changes."""

    def setUp(self):
        self.d = Daemon("--heartbeat", "5")

    def tearDown(self):
        rc, _ = self.d.stop()
        log = self.d.log
        self.d.cleanup()
        self.assertEqual(rc, 0, log)

    def test_reload_without_a_file(self):
        self.assertEqual(ctl(self.d.admin, "reload"),
                         (0, "reloaded: no config file (cometboxd was started without -c): nothing changed\n", ""))
        rc, out, err = ctl(self.d.admin, "--json", "reload")
        self.assertEqual((rc, json.loads(out), err), (0, {"files": [], "changed": [], "restart": []}, ""))
        mark = self.d.mark()
        self.d.proc.send_signal(signal.SIGHUP)
        self.assertIsNotNone(self.d.wait_for(re.compile(
            r" info SIGHUP: reloaded: no config file \(cometboxd was started without -c\): nothing changed$"), 30, after=mark))
        self.assertGreater(self.d.pub("hup", "alive"), 0)


class OptionsOverride(ReloadTest):
    def test_options_still_override_the_file(self):
        self.start("heartbeat = 10\nhold-timeout = 20\n", "--heartbeat", "3")
        self.write("heartbeat = 5\nhold-timeout = 20\n")
        self.assertEqual(self.ctl("reload"), (0, "reloaded %s: nothing changed\n" % self.conf, ""))
        self.write("heartbeat = 5\nhold-timeout = 1\n")
        self.assertEqual(self.ctl("reload"), (0, "reloaded %s: 1 key changed, 0 need a restart\n"
                                                 "  hold-timeout: 20 -> 1\n" % self.conf, ""))
        s = self.d.open_stream("/stream/hb")  # heartbeat 3, from the option
        self.assertEqual(s.line(), "[]\n")
        t0 = time.monotonic()
        self.assertEqual(s.line(timeout=10), "[]\n")
        self.assertGreater(time.monotonic() - t0, 2.5)
        s.close()


if __name__ == "__main__":
    unittest.main()
