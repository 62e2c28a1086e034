"""Security and limits (docs/SECURITY.md): publisher secret, subscriber
tokens, resource limits, slow clients, hostile HTTP. Against the real daemon."""
import base64
import hashlib
import hmac
import json
import socket
import subprocess
import time
import unittest

from cbx import COMETBOXD, Daemon, DaemonTest, msg, read_all

SECRET = "0123456789abcdef-test-secret"


def make_token(queues, expiry, secret=SECRET):
    """The token format of docs/PROTOCOL.md, written independently of the daemon."""
    mac = hmac.new(secret.encode(), ("cometbox1:%d:%s" % (expiry, queues)).encode(), hashlib.sha256).digest()
    return "%d.%s.%s" % (expiry, queues, base64.urlsafe_b64encode(mac).decode().rstrip("="))


class PublishSecret(DaemonTest):
    ARGS = ["--publish-secret", "s3cret-publisher"]

    def test_secret_required(self):
        body = b'<message queue="sec">x</message>'
        st, hdr, resp = self.d.request("publish", "POST", "/publish", body, {"Content-Type": "application/xml"})
        self.assertEqual(st, 401)
        self.assertEqual(hdr["www-authenticate"], 'Bearer realm="cometbox publish"')
        self.assertEqual(json.loads(resp), {"error": "unauthorized", "detail":
                         "this publish port needs the header Authorization: Bearer <publish-secret>"})
        st, hdr, resp = self.d.request("publish", "POST", "/publish", body,
                                       {"Content-Type": "application/xml", "Authorization": "Bearer wrong"})
        self.assertEqual((st, json.loads(resp)), (403, {"error": "forbidden", "detail": "wrong publish secret"}))
        st, _, resp = self.d.request("publish", "POST", "/publish", body,
                                     {"Content-Type": "application/xml", "Authorization": "Bearer s3cret-publisher-"})
        self.assertEqual(st, 403)
        st, _, resp = self.d.poll("sec", since=0, timeout=0)
        self.assertEqual(resp, b"[]\n")
        st, _, resp = self.d.request("publish", "POST", "/publish", body,
                                     {"Content-Type": "application/xml", "Authorization": "Bearer s3cret-publisher"})
        self.assertEqual(st, 200)
        id_ = json.loads(resp)["ids"][0]
        st, _, resp = self.d.poll("sec", since=0)
        self.assertEqual(json.loads(resp), [msg(id_, "sec", "x")])
        m = self.d.metrics()
        self.assertEqual(m['cometbox_refused_total{reason="publish-auth"}'], 3)


class SubscriberTokens(DaemonTest):
    ARGS = ["--subscribe-auth", "token", "--subscribe-secret", SECRET]

    def check(self, path, status, detail=None):
        st, hdr, body = self.d.request("browser", "GET", path)
        self.assertEqual(st, status, body)
        if detail is not None:
            self.assertEqual(json.loads(body), {"error": "forbidden", "detail": detail})
        return body

    def test_tokens(self):
        now = int(time.time())
        good = make_token("alice,room.1", now + 60)
        id_ = self.d.pub("alice", "for alice")
        body = self.check("/poll/alice?since=0&token=" + good, 200)
        self.assertEqual(json.loads(body), [msg(id_, "alice", "for alice")])
        self.check("/poll/room.1,alice?timeout=0&token=" + good, 200)
        self.check("/poll/alice?timeout=0", 403, "a token is required (?token=)")
        self.check("/poll/bob?timeout=0&token=" + good, 403, 'token does not cover queue "bob"')
        self.check("/poll/alice,bob?timeout=0&token=" + good, 403, 'token does not cover queue "bob"')
        self.check("/poll/alice?timeout=0&token=" + make_token("alice", now - 1), 403, "token expired")
        self.check("/poll/alice?timeout=0&token=" + make_token("alice", now + 60, "another-secret-xxxx"), 403,
                   "token signature does not match")
        forged = good.replace("alice,room.1", "alice,room.1,bob")
        self.check("/poll/bob?timeout=0&token=" + forged, 403, "token signature does not match")
        self.check("/poll/alice?timeout=0&token=garbage", 403, "malformed token: expected EXPIRY.QUEUES.SIGNATURE")
        s = self.d.open_stream("/events/alice?since=0&token=" + good)
        self.assertEqual(s.status, 200)
        s.close()
        m = self.d.metrics()
        self.assertEqual(m['cometbox_refused_total{reason="subscribe-auth"}'], 7)

    def test_make_token_option(self):
        p = subprocess.run([COMETBOXD, "--subscribe-secret", SECRET, "--make-token", "alice,bob", "120"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 0, p.stderr)
        token = p.stdout.strip()
        expiry = int(token.split(".")[0])
        self.assertTrue(time.time() + 100 < expiry <= time.time() + 121)
        self.assertEqual(token, make_token("alice,bob", expiry))
        self.check("/poll/bob?timeout=0&token=" + token, 200)

    def test_short_secret_refused_at_start(self):
        p = subprocess.run([COMETBOXD, "--subscribe-auth", "token", "--subscribe-secret", "short"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual((p.returncode, p.stderr),
                         (2, "cometboxd: subscribe-auth = token needs a subscribe-secret of at least 16 bytes\n"))


class ConnectionLimits(DaemonTest):
    ARGS = ["--max-connections-per-ip", "3", "--max-waiters-per-queue", "2", "--max-queues", "5"]

    def test_per_address_limit(self):
        socks = []
        for i in range(3):
            s = self.d.open_stream("/stream/ip%d" % i)
            self.assertEqual(s.status, 200)
            socks.append(s)
        st, hdr, body = self.d.request("browser", "GET", "/poll/x?timeout=0")
        self.assertEqual(st, 429)
        self.assertEqual(hdr["retry-after"], "5")
        self.assertEqual(json.loads(body)["detail"], "too many connections from your address (max-connections-per-ip)")
        # another address is not affected
        c = socket.create_connection((self.d.bhost, self.d.bport), source_address=("127.0.0.2", 0))
        c.sendall(b"GET /poll/x?timeout=0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertTrue(c.recv(100).startswith(b"HTTP/1.1 200 "))
        c.close()
        for s in socks:
            s.close()
        deadline = time.monotonic() + 5
        while self.d.request("browser", "GET", "/poll/x?timeout=0")[0] != 200:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)

    def test_waiters_per_queue_and_max_queues(self):
        a = self.d.open_stream("/stream/crowd")
        b = self.d.open_stream("/stream/crowd")
        self.assertEqual((a.status, b.status), (200, 200))
        self.assertEqual((a.line(), b.line()), ("[]\n", "[]\n"))
        st, hdr, body = self.d.request("browser", "GET", "/poll/crowd?timeout=5", headers={})
        self.assertEqual(st, 429)
        self.assertEqual(json.loads(body)["detail"],
                         "too many requests held on this queue (max-waiters-per-queue)")
        # a poll that is answered at once is not held, so it is not refused
        id_ = self.d.pub("crowd", "hi")
        self.assertEqual(a.line(), '[{"id":%d,"queue":"crowd","data":"hi"}]\n' % id_)
        a.close()
        b.close()
        # "crowd" and the ip queues may count; fill up to 5 queues then a new one is refused
        for q in ("q1", "q2", "q3", "q4", "q5"):
            st, _, body = self.d.publish_json({"queue": q, "data": 1})
            if st == 503:
                break
        st, hdr, body = self.d.publish_json({"queue": "one-too-many", "data": 1})
        self.assertEqual(st, 503)
        self.assertEqual(json.loads(body), {"error": "unavailable", "detail": "too many queues (max-queues)"})
        self.assertEqual(hdr["retry-after"], "5")


class MemoryBudget(DaemonTest):
    ARGS = ["--max-total-bytes", "4k", "--max-message-bytes", "2k"]

    def test_full_budget_refuses_and_drops_nothing(self):
        ids = []
        for i in range(10):
            st, _, body = self.d.publish_json({"queue": "mem", "data": "m%d-" % i + "x" * 900})
            if st != 200:
                break
            ids.append(json.loads(body)["ids"][0])
        self.assertEqual(st, 503)
        self.assertEqual(json.loads(body), {"error": "unavailable", "detail":
                         "the memory budget for messages is full (max-total-bytes, max-total-messages)"})
        self.assertTrue(3 <= len(ids) <= 4, ids)
        st, _, body = self.d.poll("mem", since=0)
        self.assertEqual([m["id"] for m in json.loads(body)], ids)  # every accepted message is still there


class MessageBudget(DaemonTest):
    ARGS = ["--max-total-messages", "5"]

    def test_message_count_budget(self):
        ids = [self.d.pub("c%d" % i, "m") for i in range(5)]
        st, hdr, body = self.d.publish_json([{"queue": "c9", "data": "one too many"}])
        self.assertEqual((st, hdr["retry-after"]), (503, "5"))
        st, _, body = self.d.poll("c0,c1,c2,c3,c4", since=0)
        self.assertEqual([m["id"] for m in json.loads(body)], ids)
        self.assertEqual(self.d.metrics()['cometbox_refused_total{reason="memory-budget"}'], 1)


class SlowClients(DaemonTest):
    ARGS = ["--idle-timeout", "2", "--heartbeat", "1", "--queue-max-messages", "50"]

    def test_slowloris_is_dropped(self):
        s = socket.create_connection((self.d.bhost, self.d.bport))
        s.sendall(b"GET /poll/a HTTP/1.1\r\n")
        t0 = time.monotonic()
        s.settimeout(10)
        closed = False
        try:
            for ch in b"Host: x\r\n":
                time.sleep(0.5 if time.monotonic() - t0 < 1 else 3)
                s.sendall(bytes([ch]))
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        if not closed:
            closed = s.recv(100) == b""
        self.assertTrue(closed)
        self.assertLess(time.monotonic() - t0, 10)
        # others were served meanwhile
        self.assertEqual(self.d.poll("a", timeout=0)[0], 200)

    def test_slow_reader_is_dropped_and_memory_bounded(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((self.d.bhost, self.d.bport))
        s.sendall(b"GET /stream/slow HTTP/1.1\r\nHost: x\r\n\r\n")
        self.d.wait_held(1, "stream")
        big = "y" * 30000
        for i in range(40):  # about 1.2 MB, far more than the socket buffers take
            self.assertEqual(self.d.publish_json([{"queue": "slow", "data": big}])[0], 200)
        deadline = time.monotonic() + 15
        while self.d.held("stream") != 0:
            self.assertLess(time.monotonic(), deadline, "a stream nobody reads must be dropped")
            time.sleep(0.1)
        s.close()
        self.assertEqual(self.d.poll("other", timeout=0)[0], 200)


class HostileHttp(DaemonTest):
    def raw(self, data, port="browser"):
        host, p = (self.d.bhost, self.d.bport) if port == "browser" else (self.d.phost, self.d.pport)
        s = socket.create_connection((host, p), timeout=5)
        s.sendall(data)
        # a server that answers before reading everything resets the rest
        out = read_all(s, 5)
        s.close()
        return out

    def oversized_status(self, head, port):
        """The status of a request whose headers are over the memory limit. The
        daemon answers and closes with bytes unread, so the kernel may reset the
        connection before the answer is read: try a few times."""
        for _ in range(10):
            out = self.raw(head + b"X-Big: " + b"a" * 9000 + b"\r\n\r\n", port)
            if out:
                return out
        return out

    def status_of(self, request_line, port="browser"):
        out = self.raw(request_line + b"\r\nHost: x\r\nConnection: close\r\n\r\n", port)
        return int(out.split(b" ", 2)[1]) if out else None, out.split(b"\r\n\r\n", 1)[-1]

    def test_hostile_requests_get_exact_statuses(self):
        cases = [
            (b"FOO /poll/a HTTP/1.1", 405),
            (b"DELETE /poll/a HTTP/1.1", 405),
            (b"GET /poll/%zz HTTP/1.1", 400),
            (b"GET /poll/a%00b?timeout=0 HTTP/1.1", 400),
            (b"GET /poll/a?since=1%00&timeout=0 HTTP/1.1", 400),
            (b"GET /poll/.. HTTP/1.1", 400),
            (b"GET /poll/. HTTP/1.1", 400),
            (b"GET /poll/a/../b HTTP/1.1", 400),
            (b"GET /poll/a%2Fb HTTP/1.1", 400),
            (b"GET /poll/%C3%A9 HTTP/1.1", 400),
            (b"GET /poll/a HTTP/9.9", 505),
        ]
        for line, want in cases:
            st, body = self.status_of(line)
            self.assertEqual(st, want, (line, body))
            if want in (400, 405):
                self.assertIn(json.loads(body)["error"], ("bad_request", "method_not_allowed"))
        out = self.oversized_status(b"GET /poll/a?timeout=0 HTTP/1.1\r\nHost: x\r\n", "browser")
        self.assertTrue(out.startswith(b"HTTP/1.1 431 "), out[:60])
        out = self.oversized_status(b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/xml\r\n",
                                    "publish")
        self.assertTrue(out.startswith(b"HTTP/1.1 431 "), out[:60])
        self.assertEqual(self.raw(b"GARBAGE\r\n\r\n")[:0], b"")
        # still serving
        id_ = self.d.pub("fine", "ok")
        self.assertEqual(json.loads(self.d.poll("fine")[2]), [msg(id_, "fine", "ok")])


if __name__ == "__main__":
    unittest.main()
