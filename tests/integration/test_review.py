"""test_review.py - the daemon's answers to the points of the outside review
(issue 16) that live in cometboxd/: headers and newlines, query parameters,
wrong-port hints, shutdown, slow headers, an idle daemon's wake-ups,
half-closed clients. Run in both threads modes by CTest."""
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from cbx import COMETBOXCTL, Daemon, DaemonTest, read_all, reset_close


def read_until(sock, done, timeout=10):
    """Reads from sock until done(bytes so far) holds; fails on a close."""
    sock.settimeout(timeout)
    got = b""
    while not done(got):
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("closed after %r" % got[-300:])
        got += chunk
    return got


class AnswerHeaders(DaemonTest):
    """Point 9: no cache keeps any answer; a JSON body ends with a newline."""

    def assert_answer(self, resp, status, body=None):
        st, hdr, data = resp
        self.assertEqual(st, status, data)
        self.assertEqual(hdr.get("cache-control"), "no-store", hdr)
        if body is not None:
            self.assertEqual(data, body)
        if hdr.get("content-type", "").startswith("application/json"):
            self.assertTrue(data.endswith(b"\n"), data)

    def test_every_answer_is_no_store_and_json_ends_with_newline(self):
        st, hdr, body = self.d.publish_json({"queue": "h", "data": "x"})
        self.assert_answer((st, hdr, body), 200, b'{"ids":[%d]}\n' % json.loads(body)["ids"][0])
        self.assert_answer(self.d.request("publish", "GET", "/healthz"), 200, b'{"status":"ok"}\n')
        self.assert_answer(self.d.request("publish", "GET", "/metrics"), 200)
        self.assert_answer(self.d.request("publish", "GET", "/nope"), 404)
        self.assert_answer(self.d.publish_json({"queue": "bad name"}), 400)
        self.assert_answer(self.d.poll("h2", timeout=0), 200, b"[]\n")
        self.assert_answer(self.d.request("browser", "GET", "/nope"), 404)
        st, hdr, body = self.d.poll("h")
        self.assert_answer((st, hdr, body), 200)
        self.assertEqual(body.count(b"\n"), 1)
        self.assertEqual(json.loads(body)[0]["data"], "x")


class QueryParameters(DaemonTest):
    """Point 11: a misspelt parameter is refused, never ignored."""

    def test_unknown_parameter_is_400_naming_it(self):
        self.d.pub("q", "one")
        for path, known in (("/poll/q?sinse=5", b"since, timeout, token"), ("/stream/q?sinse=5", b"since, token"),
                            ("/events/q?sinse=5", b"since, token"), ("/stream/q?timeout=5", b"since, token")):
            st, hdr, body = self.d.request("browser", "GET", path)
            name = b"timeout" if b"timeout=" in path.encode() else b"sinse"
            self.assertEqual((st, body), (400, b'{"error":"bad_request","detail":"unknown query parameter '
                                               b'\\"' + name + b'\\" (known here: ' + known + b')"}\n'), path)
        st, _, body = self.d.request("browser", "GET", "/poll/q?since=0&since=5")
        self.assertEqual((st, body), (400, b'{"error":"bad_request","detail":"query parameter since is given twice"}\n'))
        st, _, body = self.d.request("browser", "GET", "/poll/q?%01=1")
        self.assertEqual((st, body), (400, b'{"error":"bad_request","detail":"unknown query parameter '
                                           b'(known here: since, timeout, token)"}\n'))
        st, _, body = self.d.request("publish", "POST", "/publish?queue=q", b'{"queue":"q","data":"two"}',
                                     {"Content-Type": "application/json"})
        self.assertEqual((st, body), (400, b'{"error":"malformed","detail":"unknown query parameter '
                                           b'\\"queue\\" (known here: none)"}\n'))
        # nothing was acknowledged or queued by the refused requests
        st, _, body = self.d.poll("q", timeout=0)
        self.assertEqual([m["data"] for m in json.loads(body)], ["one"])
        st, _, body = self.d.request("browser", "GET", "/poll/q?since=0&timeout=0&token=")
        self.assertEqual(st, 200, body)


class WrongPlaces(DaemonTest):
    """Point 13: the wrong port or path says where to go."""

    def test_publish_on_the_browser_port_names_the_publish_port(self):
        st, _, body = self.d.request("browser", "POST", "/publish", b'{"queue":"q","data":"x"}',
                                     {"Content-Type": "application/json"})
        self.assertEqual((st, body), (404, b'{"error":"not_found","detail":"this is the browser port; publish with '
                                           b'POST /publish on the publish port (publish-listen, 127.0.0.1:1802 by '
                                           b'default)"}\n'))
        st, _, body = self.d.request("browser", "GET", "/")
        self.assertEqual((st, body), (404, b'{"error":"not_found","detail":"no such path; see /poll/, /stream/, '
                                           b'/events/"}\n'))


class Demo(DaemonTest):
    """Points 13 and 14: / leads to the demo; the demo shows this daemon's addresses."""
    ARGS = ["--demo", "on"]

    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix="cbx-demo-&'")
        self.d = Daemon(*self.ARGS, "--admin-socket", os.path.join(self.tmpdir, "a<b>.sock"))

    def tearDown(self):
        super().tearDown()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def test_root_redirects_to_the_demo(self):
        st, hdr, body = self.d.request("browser", "GET", "/")
        self.assertEqual((st, hdr.get("location"), body), (302, "/demo", b""))
        st, _, body = self.d.request("browser", "GET", "/nope")
        self.assertEqual((st, body), (404, b'{"error":"not_found","detail":"no such path; see /poll/, /stream/, '
                                           b'/events/ and /demo"}\n'))

    def test_demo_shows_the_real_publish_url_and_admin_socket(self):
        st, hdr, body = self.d.request("browser", "GET", "/demo")
        self.assertEqual(st, 200)
        page = body.decode()
        self.assertNotIn("@COMETBOX_PUBLISH_URL@", page)
        self.assertNotIn("@COMETBOX_ADMIN_SOCKET@", page)
        sock = os.path.join(self.tmpdir, "a<b>.sock")
        escaped = sock.replace("&", "&amp;").replace("'", "&#39;").replace("<", "&lt;").replace(">", "&gt;")
        body_tag = re.search(r"<body [^>]*>", page).group(0)
        self.assertEqual(body_tag, '<body data-publish-url="%s" data-admin-socket="%s">' % (self.d.publish, escaped))


class CorsRefusals(DaemonTest):
    """Point 12: a page of an origin that is not allowed is refused (a stream
    would otherwise acknowledge what that page cannot read), and the origin
    is logged, once."""
    ARGS = ["--cors-origins", "https://ok.example"]

    def test_refused_origin_is_403_and_logged_once(self):
        id_ = self.d.pub("c", "pending")
        refusal = (403, b'{"error":"forbidden","detail":"this page\'s origin is not in cors-origins"}\n')
        for path in ("/poll/c", "/stream/c", "/events/c"):
            st, hdr, body = self.d.request("browser", "GET", path, headers={"Origin": "https://other.example"})
            self.assertEqual((st, body), refusal, path)
            self.assertNotIn("access-control-allow-origin", hdr)
        # the stream acknowledged nothing: the message is still pending
        st, hdr, body = self.d.poll("c", timeout=0, headers={"Origin": "https://ok.example"})
        self.assertEqual(hdr.get("access-control-allow-origin"), "https://ok.example")
        self.assertEqual([m["id"] for m in json.loads(body)], [id_])
        # the daemon's own pages (Origin = http://Host) are not cross-site; no Origin is no page at all
        st, _, _ = self.d.poll("c", timeout=0, headers={"Origin": "http://%s:%d" % (self.d.bhost, self.d.bport)})
        self.assertEqual(st, 200)
        self.assertEqual(self.d.poll("c", timeout=0)[0], 200)
        # the client library itself is served to any page
        st, _, _ = self.d.request("browser", "GET", "/cometbox.js", headers={"Origin": "https://other.example"})
        self.assertEqual(st, 200)
        self.d.poll("c", timeout=0, headers={"Origin": "https://third.example"})
        self.assertIsNotNone(self.d.wait_for(re.compile("origin https://third.example is not in cors-origins"), 10))
        refused = re.compile("CORS: origin (\\S+) is not in cors-origins")
        self.assertEqual([refused.search(l).group(1) for l in self.d.lines if refused.search(l)],
                         ["https://other.example", "https://third.example"])


class ClientAddresses(DaemonTest):
    """Point 17: an IPv4 browser on a dual-stack socket shows as 127.0.0.1:PORT."""
    ARGS = ["--listen", "*:0"]

    def test_clients_shows_ipv4_addresses_plainly(self):
        s = socket.create_connection(("127.0.0.1", self.d.bport))
        try:
            s.sendall(b"GET /poll/addr?timeout=30 HTTP/1.1\r\nHost: x\r\n\r\n")
            self.d.wait_held(1)
            p = subprocess.run([COMETBOXCTL, "-s", self.d.admin, "--json", "clients"], capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            rows = json.loads(p.stdout)["clients"]
            self.assertEqual([r["addr"] for r in rows], ["127.0.0.1:%d" % s.getsockname()[1]])
        finally:
            s.close()


class IdleDaemon(DaemonTest):
    """Point 7: an idle daemon sleeps between the reaper's ticks (5 a
    second) instead of spinning through the end of each one."""

    def test_idle_daemon_makes_few_system_calls(self):
        strace = shutil.which("strace")
        self.assertIsNotNone(strace, "strace is missing (scripts/deps.sh installs it)")
        # counts every thread's calls for 3 s; SIGINT makes strace detach and print its summary
        p = subprocess.run(["timeout", "-s", "INT", "3", strace, "-f", "-c", "-p", str(self.d.proc.pid)],
                           capture_output=True, text=True, timeout=30)
        total = re.search(r"^100\.00\s+\S+\s+(?:\S+\s+)?(\d+)\s+(?:\d+\s+)?total$", p.stderr, re.M)
        self.assertIsNotNone(total, p.stderr)
        # 15 reaper ticks and 3 sweeps in 3 s, plus a little; the spin made hundreds
        self.assertLess(int(total.group(1)), 100, p.stderr)


class SlowHeaders(DaemonTest):
    """Point 6: a client that sends its request headers one byte at a time
    (slowloris) is closed after request-timeout, though each byte restarts
    libmicrohttpd's idle timeout."""
    ARGS = ["--request-timeout", "2"]

    def trickle(self, port, n, deadline_s, head=None, body=False):
        """Opens n connections that send a never-ending request head (or, with
        body, head at once and then its body) a byte every 0.25 s; returns
        how many the daemon closed within deadline_s."""
        socks = [socket.create_connection((self.d.bhost, port)) for _ in range(n)]
        if body:
            for s in socks:
                s.sendall(head)
            head = b'{"queue":"slow","data":"' + b"a" * 1000
        else:
            head = b"GET /poll/slow HTTP/1.1\r\nX-Slow: " + b"a" * 1000
        open_ = set(range(n))
        start = time.monotonic()
        i = 0
        try:
            while open_ and time.monotonic() - start < deadline_s:
                for k in list(open_):
                    try:
                        socks[k].sendall(head[i:i + 1])
                        socks[k].setblocking(False)
                        try:
                            if socks[k].recv(1024) == b"":
                                open_.discard(k)
                        except BlockingIOError:
                            pass
                        finally:
                            socks[k].setblocking(True)
                    except (BrokenPipeError, ConnectionResetError):
                        open_.discard(k)
                i += 1
                time.sleep(0.25)
        finally:
            for s in socks:
                s.close()
        return n - len(open_)

    def test_slow_request_headers_are_closed(self):
        self.assertEqual(self.trickle(self.d.bport, 50, 8), 50)
        self.assertEqual(self.trickle(self.d.pport, 5, 8), 5)
        st, _, body = self.d.request("publish", "GET", "/metrics")
        self.assertIn(b'cometbox_refused_total{reason="request-timeout"} 55', body)

    def test_slow_request_bodies_are_closed(self):
        heads = {self.d.bport: b"GET /poll/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n",
                 self.d.pport: b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               b"Content-Length: 100000\r\n\r\n"}
        for port, head in heads.items():
            self.assertEqual(self.trickle(port, 5, 8, head=head, body=True), 5, port)
        # nothing of the cut-off publishes was queued
        self.assertEqual(self.d.poll("slow", timeout=0)[2], b"[]\n")

    def test_held_and_kept_alive_connections_are_not_closed(self):
        # a request whose headers are in may be held longer than request-timeout
        id_ = None
        s = socket.create_connection((self.d.bhost, self.d.bport))
        try:
            s.sendall(b"GET /poll/held?timeout=4 HTTP/1.1\r\nHost: x\r\n\r\n")
            self.d.wait_held(1)
            time.sleep(3)  # past request-timeout (2 s) while held
            id_ = self.d.pub("held", "late")
            data = read_until(s, lambda got: got.endswith(b"]\n"))
            self.assertTrue(data.endswith(b'[{"id":%d,"queue":"held","data":"late"}]\n' % id_), data)
            # kept alive: the next request may come after request-timeout, within idle-timeout (30 s)
            time.sleep(3)
            s.sendall(b"GET /poll/held?timeout=0&since=%d HTTP/1.1\r\nHost: x\r\n\r\n" % id_)
            read_until(s, lambda got: got.endswith(b"[]\n"))
        finally:
            s.close()

    def test_help_lists_request_timeout(self):
        p = subprocess.run([os.environ.get("COMETBOXD", ""), "--help"], capture_output=True, text=True, timeout=30)
        self.assertRegex(p.stdout, r"\n  --request-timeout +a connection must send a whole request \(headers and body\) .*\(default: 10\)\n")


def recv_answer(sock, deadline):
    """Reads one HTTP answer with a Content-Length from sock; returns its body."""
    data = b""
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            m = re.search(rb"(?i)content-length: *(\d+)", head)
            if m and len(rest) >= int(m.group(1)):
                return rest[:int(m.group(1))]
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("closed after %r" % data[:200])
        data += chunk


class PoolBursts(unittest.TestCase):
    """Issue 17: a pool thread serves a burst of more than 128 ready
    connections at once (libmicrohttpd's own loop waited with its full
    timeout after exactly 128 events), and resumes held requests without a
    wake-up write per request."""
    N = 300

    @contextlib.contextmanager
    def connections(self, pool_size):
        """A pool-mode daemon and N connections to its browser port; both
        closed at the end, the daemon stopped cleanly."""
        d = Daemon("--threads", "pool", "--pool-size", str(pool_size))
        socks = []
        try:
            socks = [socket.create_connection((d.bhost, d.bport)) for _ in range(self.N)]
            yield d, socks
        finally:
            for s in socks:
                s.close()
            rc, _ = d.stop()
            d.cleanup()
            self.assertEqual(rc, 0)

    def test_burst_of_300_on_one_thread_is_served_at_once(self):
        with self.connections(1) as (d, socks):
            since = 0
            for round_ in range(3):
                for s in socks:
                    s.sendall(b"GET /poll/burst?since=%d&timeout=60 HTTP/1.1\r\nHost: x\r\n\r\n" % since)
                d.wait_held(self.N, timeout=20)
                since = d.pub("burst", "round %d" % round_)
                # idle-timeout (30 s) is far off and nothing else happens: a
                # thread stalled after 128 events would not answer the rest
                deadline = time.monotonic() + 10
                for s in socks:
                    self.assertEqual(json.loads(recv_answer(s, deadline)),
                                     [{"id": since, "queue": "burst", "data": "round %d" % round_}])

    def test_fan_out_resumes_without_a_write_per_request(self):
        with self.connections(2) as (d, socks):
            for s in socks:
                s.sendall(b"GET /poll/fan?timeout=60 HTTP/1.1\r\nHost: x\r\n\r\n")
            d.wait_held(self.N, timeout=20)
            strace = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=write", "-e", "signal=none",
                                       "-p", str(d.proc.pid)], stderr=subprocess.PIPE, text=True)
            time.sleep(1)  # strace attaches to every thread
            id_ = d.pub("fan", "everyone")
            deadline = time.monotonic() + 20
            for s in socks:
                self.assertEqual(json.loads(recv_answer(s, deadline)), [{"id": id_, "queue": "fan", "data": "everyone"}])
            strace.send_signal(signal.SIGINT)
            out = strace.communicate(timeout=30)[1]
            writes = [l for l in out.splitlines() if "write(" in l and "\\1\\0\\0\\0\\0\\0\\0\\0" in l]
            # one eventfd write per pool thread for the whole fan-out, not one per request
            self.assertIn(len(writes), (1, 2), out[-3000:])


FREEZER = "/sys/fs/cgroup/freezer"


def thread_name(pid, tid):
    """The name of thread tid of pid, or "" when it has ended."""
    try:
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            return f.read()
    except OSError:
        return ""


class StopWithStalledThreads(unittest.TestCase):
    """Point 3: at SIGTERM, every parked held request is answered however
    long its thread takes; no timer decides. libmicrohttpd's threads are
    frozen (cgroup freezer) past the bounded wait for writers, then thawed:
    before, the daemon stopped libmicrohttpd at 1.5 s and the browsers got
    their connection closed without an answer."""

    def test_held_requests_are_answered_after_their_threads_stall(self):
        self.assertTrue(os.path.isdir(FREEZER), "needs the cgroup v1 freezer at " + FREEZER)
        d = Daemon("--log-level", "debug")
        group = os.path.join(FREEZER, "cbx-test-%d" % d.proc.pid)
        socks = []
        try:
            for i in range(20):
                s = socket.create_connection((d.bhost, d.bport))
                s.sendall(("GET /poll/stall%d?timeout=60 HTTP/1.1\r\nHost: x\r\n\r\n" % i).encode())
                socks.append(s)
            d.wait_held(20)
            os.mkdir(group)
            tids = [t for t in os.listdir("/proc/%d/task" % d.proc.pid) if thread_name(d.proc.pid, t).startswith(("MHD-", "cbx-pool"))]
            self.assertTrue(tids)
            for t in tids:
                try:
                    with open(os.path.join(group, "tasks"), "w") as f:
                        f.write(t)
                except OSError:
                    pass  # a connection thread that has just ended
            with open(os.path.join(group, "freezer.state"), "w") as f:
                f.write("FROZEN")
            d.proc.send_signal(signal.SIGTERM)
            # past the bounded wait (1.5 s): the daemon says it keeps waiting
            waiting = re.compile(r"(still parked on busy threads|did not finish in time)")
            m = d.wait_for(waiting, 20)
            self.assertIsNotNone(m, d.log)
            with open(os.path.join(group, "freezer.state"), "w") as f:
                f.write("THAWED")
            rc, _ = d.stop(timeout=30)
            self.assertEqual(rc, 0, d.log)
            self.assertEqual(m.group(1), "still parked on busy threads", d.log)
            for s in socks:
                head, _, body = read_all(s).partition(b"\r\n\r\n")
                self.assertTrue(head.startswith(b"HTTP/1.1 200 OK"), head)
                self.assertEqual(body, b"[]\n")
        finally:
            if os.path.isdir(group):
                with open(os.path.join(group, "freezer.state"), "w") as f:
                    f.write("THAWED")
                for t in open(os.path.join(group, "tasks")).read().split():
                    try:
                        with open(os.path.join(FREEZER, "tasks"), "w") as f:
                            f.write(t)
                    except OSError:
                        pass  # the thread has ended
                os.rmdir(group)
            for s in socks:
                s.close()
            d.cleanup()


class Hangup(DaemonTest):
    """Point 3: SIGHUP does not kill the daemon; it reloads the config
    (test_reload.py), here without a file, so nothing changes."""

    def test_sighup_reloads_and_the_daemon_goes_on(self):
        self.d.proc.send_signal(signal.SIGHUP)
        self.assertIsNotNone(self.d.wait_for(re.compile(r"SIGHUP: reloaded: no config file \(cometboxd was started "
                                                        r"without -c\): nothing changed"), 10))
        self.assertIsNone(self.d.proc.poll())
        self.assertGreater(self.d.pub("hup", "alive"), 0)


class HalfClosed(DaemonTest):
    """Point 8: a client that shuts down its sending side (HTTP allows it)
    still gets its answer; only a reset or a failed write means gone."""
    ARGS = ["--log-level", "debug"]

    def half_closed(self, path):
        s = socket.create_connection((self.d.bhost, self.d.bport))
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
        s.shutdown(socket.SHUT_WR)
        return s

    def test_half_closed_long_poll_gets_its_answer(self):
        s = self.half_closed("/poll/half?timeout=30")
        try:
            self.d.wait_held(1)
            # a reaper tick passes (200 ms), which saw the FIN
            self.assertIsNotNone(self.d.wait_for(re.compile(r"client \d+: peer half-closed"), 5))
            self.d.wait_held(1)
            id_ = self.d.pub("half", "still there")
            head, _, body = read_all(s).partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 200 OK"), head)
            self.assertEqual(body, b'[{"id":%d,"queue":"half","data":"still there"}]\n' % id_)
        finally:
            s.close()

    def test_half_closed_stream_keeps_streaming(self):
        s = self.half_closed("/stream/halfs")
        try:
            self.d.wait_held(1, "stream")
            self.assertIsNotNone(self.d.wait_for(re.compile(r"client \d+: peer half-closed"), 5))
            id_ = self.d.pub("halfs", "streamed")
            want = b'[{"id":%d,"queue":"halfs","data":"streamed"}]\n' % id_
            read_until(s, lambda got: want in got)
        finally:
            s.close()

    def test_reset_long_poll_is_gone_at_once(self):
        s = socket.create_connection((self.d.bhost, self.d.bport))
        s.sendall(b"GET /poll/rst?timeout=60 HTTP/1.1\r\nHost: x\r\n\r\n")
        self.d.wait_held(1)
        reset_close(s)
        self.assertIsNotNone(self.d.wait_for(re.compile(r"client \d+ \(long-poll, [^)]*\) closed: browser went away"), 5))
        self.d.wait_held(0)


if __name__ == "__main__":
    unittest.main()
