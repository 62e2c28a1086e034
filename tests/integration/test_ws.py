"""The WebSocket transport (GET /ws/{queues}, issue 19) against the real
daemon: delivery, resume, gaps, ack frames, kick, stop, ping/pong, hostile
frames, refusals before the upgrade, stats, slow readers. Run once per
threads mode (CBX_THREADS). Normal clients are Debian's python3-websockets
(10.4, asyncio API, driven from the test's thread); hostile ones are raw
sockets with the frame encoder below. Not for the JavaScript client."""
import asyncio
import base64
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest


from cbx import COMETBOXCTL, COMETBOXD, DaemonTest, ctl, ctl_json, gap, msg, reset_close, wait_until
from ws_client import WsClient

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
SECRET = "0123456789abcdef-test-secret"
QNAME_DETAIL = 'bad queue name "%s": use 1-128 letters, digits or ._:@-'


def daemon_knows(option):
    """Whether cometboxd --help lists option (a config key that may not exist yet)."""
    try:
        p = subprocess.run([COMETBOXD, "--help"], capture_output=True, text=True, timeout=10)
    except OSError:
        return False
    return ("  --%s " % option) in p.stdout


HAS_MAX_WS_FRAME = daemon_knows("max-ws-frame")
MAX_WS_FRAME = 100 if HAS_MAX_WS_FRAME else 4096


# ---- helpers ---------------------------------------------------------------

def jdump(obj):
    """JSON as cometboxd writes it: no spaces, UTF-8 as it is."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def frame_of(*objs):
    """The text of one frame: a JSON array and a newline."""
    return jdump(list(objs)) + "\n"


def cursor(c):
    return {"type": "cursor", "id": c}



def kick_frame(reason):
    return frame_of({"type": "kick", "reason": reason})





def encode_frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length=None, key=None):
    """One RFC 6455 frame. rsv: the three reserved bits as a number 0-7 (4 is
    RSV1); length: the length to announce, when it is not the payload's."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + struct.pack("!H", n)
    else:
        head += bytes([m | 127]) + struct.pack("!Q", n)
    if mask:
        key = key or os.urandom(4)
        head += key
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + payload


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class Closed(Exception):
    """A close frame arrived where a data frame was expected."""

    def __init__(self, code, reason):
        super().__init__("closed by the server: %r %r" % (code, reason))
        self.code, self.reason = code, reason


class RawWS:
    """A WebSocket client over a plain socket, for what a library never sends.
    headers: added to (or, with a value None, taken out of) a valid
    handshake. After read_head(), status and headers hold the answer's head;
    a refusal's body is in body."""

    def __init__(self, d, path, headers=None, rcvbuf=None, read_head=True, source=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source:
            self.sock.bind((source, 0))
        self.sock.settimeout(10)
        self.sock.connect((d.bhost, d.bport))
        self.key = base64.b64encode(os.urandom(16)).decode()
        h = {"Host": "%s:%d" % (d.bhost, d.bport), "Upgrade": "websocket", "Connection": "Upgrade",
             "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": self.key}
        for k, v in (headers or {}).items():
            h.pop(k, None)
            if v is not None:
                h[k] = v
        req = "GET %s HTTP/1.1\r\n" % path + "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
        self.sock.sendall(req.encode())
        self.buf = b""
        self.pings = []          # payloads of the pings received
        self.auto_pong = False   # answer pings (as a browser does)
        self.status = None
        self.body = b""
        if read_head:
            self.read_head()

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("nothing in time; have %r" % self.buf[:200])
        self.sock.settimeout(left)
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the server closed the connection; have %r" % self.buf[:200])
        self.buf += data

    def _need(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)

    def read_head(self, timeout=10):
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for l in lines[1:]:
            k, v = l.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()
        if self.status == 101:
            return
        n = int(self.headers.get("content-length", "-1"))
        try:
            while n < 0 or len(self.buf) < n:
                self._fill(deadline)
        except EOFError:
            if n >= 0:
                raise
        self.body, self.buf = (self.buf[:n], self.buf[n:]) if n >= 0 else (self.buf, b"")

    def accept_ok(self):
        want = base64.b64encode(hashlib.sha1((self.key + GUID).encode()).digest()).decode()
        return self.headers.get("sec-websocket-accept") == want

    def send(self, data):
        """Sends bytes; False when the server had closed the connection already."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def send_frame(self, opcode, payload=b"", **kw):
        return self.send(encode_frame(opcode, payload, **kw))

    def recv_frame(self, timeout=10):
        """The next frame: (fin, rsv, opcode, payload). Server frames are never masked."""
        deadline = time.monotonic() + timeout
        self._need(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        if b1 & 0x80:
            raise AssertionError("the server sent a masked frame: %r" % self.buf[:16])
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._need(4, deadline)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10, deadline)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(off + n, deadline)
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, payload

    def recv_text(self, timeout=10):
        """The next text message (continuations joined); pings are noted (and
        answered with auto_pong); a close frame raises Closed."""
        deadline = time.monotonic() + timeout
        parts = []
        while True:
            fin, rsv, op, payload = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if rsv:
                raise AssertionError("the server set reserved bits %d" % rsv)
            if op == PING:
                self.pings.append(payload)
                if self.auto_pong:
                    self.send_frame(PONG, payload)
                continue
            if op == CLOSE:
                raise Closed(*parse_close(payload))
            if op not in (TEXT, CONT) or (op == CONT) != bool(parts):
                raise AssertionError("unexpected frame opcode %d (fin %s) %r" % (op, fin, payload[:100]))
            parts.append(payload)
            if fin:
                return b"".join(parts).decode("utf-8")

    def expect_close(self, timeout=10):
        """Reads until the close frame, which must come before any other data
        frame; returns (code, reason). Then answers it, as a client must."""
        try:
            text = self.recv_text(timeout)
        except Closed as c:
            self.send_frame(CLOSE, close_payload(c.code) if c.code is not None else b"")
            return c.code, c.reason
        raise AssertionError("expected a close frame, got a text frame %r" % text)

    def wait_eof(self, timeout=10):
        """Reads (and drops) bytes until the server closes the connection;
        True when it did within timeout."""
        deadline = time.monotonic() + timeout
        self.buf = b""
        try:
            while True:
                self._fill(deadline)
                self.buf = b""
        except (EOFError, ConnectionResetError):
            return True
        except TimeoutError:
            return False

    def close(self):
        self.sock.close()


def parse_close(payload):
    if len(payload) == 0:
        return None, ""
    if len(payload) == 1:
        raise AssertionError("a close frame with a 1-byte payload")
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode("utf-8")  # strict: RFC 6455 5.5.1


class WsTest(DaemonTest):
    """A daemon per test, and the clients a test opened closed before it stops."""

    def setUp(self):
        super().setUp()
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            try:
                if isinstance(c, WsClient):
                    c.shutdown()
                else:
                    c.close()
            except Exception:
                pass
        super().tearDown()

    def ws(self, path, **kw):
        c = WsClient(self.d, path, **kw)
        self.clients.append(c)
        return c

    def raw(self, path, **kw):
        c = RawWS(self.d, path, **kw)
        self.clients.append(c)
        return c

    def first_id(self):
        return ctl_json(self.d, "stats")["first_id"]

    def pending(self, queues):
        """The pending messages of queues, as a poll without since sees them."""
        st, _, body = self.d.poll(queues, timeout=0)
        self.assertEqual(st, 200, body)
        return json.loads(body)

    def ws_clients(self):
        return [r for r in ctl_json(self.d, "clients")["clients"] if r["transport"] == "ws"]

    def assert_refused(self, path, status, code, detail=None, headers=None):
        """A handshake answered with an HTTP error before the upgrade; returns the raw client."""
        r = self.raw(path, headers=headers)
        self.assertEqual(r.status, status, r.body)
        self.assertEqual(r.headers.get("content-type"), "application/json", r.headers)
        self.assertNotIn("sec-websocket-accept", r.headers)
        self.assertTrue(r.body.endswith(b"}\n"), r.body)
        j = json.loads(r.body)
        self.assertEqual(sorted(j), ["detail", "error"], r.body)
        self.assertEqual(j["error"], code, r.body)
        if detail is not None:
            self.assertEqual(j["detail"], detail)
        else:
            self.assertTrue(j["detail"], r.body)
        return r


# ---- delivery --------------------------------------------------------------

class Delivery(WsTest):
    def test_handshake_and_first_frame_with_pending_messages(self):
        a = self.d.pub("alice", "one")
        b = self.d.pub("alice", "two")
        r = self.raw("/ws/alice")
        self.assertEqual(r.status, 101, r.body)
        self.assertEqual(r.headers["upgrade"].lower(), "websocket")
        self.assertEqual(r.headers["connection"].lower(), "upgrade")
        self.assertTrue(r.accept_ok(), r.headers)
        self.assertNotIn("sec-websocket-extensions", r.headers)
        # the fresh queue was never acknowledged: the cursor is the run's start, F - 1
        fin, rsv, op, payload = r.recv_frame(5)
        self.assertEqual((fin, rsv, op), (True, 0, TEXT))
        self.assertEqual(payload.decode(), frame_of(cursor(self.first_id() - 1), msg(a, "alice", "one"),
                                                    msg(b, "alice", "two")))
        c = self.d.pub("alice", "three")
        self.assertEqual(r.recv_text(), frame_of(msg(c, "alice", "three")))
        self.d.wait_held(1, "ws")

    def test_library_client_gets_later_publishes_as_frames(self):
        w = self.ws("/ws/news")
        self.assertEqual(w.recv(), frame_of(cursor(self.first_id() - 1)))
        for i in range(3):
            id_ = self.d.pub("news", "n%d" % i)
            self.assertEqual(w.recv(), '[{"id":%d,"queue":"news","data":"n%d"}]\n' % (id_, i))

    def test_exact_message_objects(self):
        w = self.ws("/ws/exact?since=0")
        self.assertEqual(w.recv(), frame_of(cursor(0)))
        # text is re-encoded as a JSON string (control characters escaped, UTF-8 as it is)
        a = self.d.pub("exact", 'line\nbreak "q" \\ \u00e9 \u2028 \x01\t')
        self.assertEqual(w.recv(), '[{"id":%d,"queue":"exact","data":"line\\nbreak \\"q\\" \\\\ \u00e9 \u2028 '
                                   '\\u0001\\t"}]\n' % a)
        # JSON data is copied as sent, without the white space (an escape stays an escape)
        st, _, body = self.d.request("publish", "POST", "/publish",
                                     '{"queue":"exact","data":{ "x" : [1, null,true], "s":"\\u263a\u263a" }}'.encode(),
                                     {"Content-Type": "application/json"})
        self.assertEqual(st, 200, body)
        b = json.loads(body)["ids"][0]
        self.assertEqual(w.recv(), '[{"id":%d,"queue":"exact","data":{"x":[1,null,true],"s":"\\u263a\u263a"}}]\n' % b)
        c = self.d.publish_json({"queue": "exact", "data": 12.5})
        self.assertEqual(c[0], 200, c)
        c = json.loads(c[2])["ids"][0]
        self.assertEqual(w.recv(), '[{"id":%d,"queue":"exact","data":12.5}]\n' % c)
        st, _, body = self.d.publish_xml('<message queue="exact">&lt;b&gt; &amp;</message>')
        self.assertEqual(st, 200)
        self.assertEqual(w.recv(), '[{"id":%d,"queue":"exact","data":"<b> &"}]\n' % json.loads(body)["ids"][0])
        # the same bytes a poll answers
        st, _, body = self.d.poll("exact", since=a, timeout=0)
        want = '[{"id":%d,"queue":"exact","data":{"x":[1,null,true],"s":"\\u263a\u263a"}},' % b
        self.assertTrue(body.decode().startswith(want), body)

    def test_several_queues_in_id_order_and_only_those(self):
        a = self.d.pub("q1", "a")
        b = self.d.pub("q2", "b")
        c = self.d.pub("q3", "c")
        d = self.d.pub("q1", "d")
        w = self.ws("/ws/q3,q1,q2?since=0")
        self.assertEqual(w.recv(), frame_of(cursor(0), msg(a, "q1", "a"), msg(b, "q2", "b"), msg(c, "q3", "c"),
                                            msg(d, "q1", "d")))
        self.d.pub("other", "not for this client")
        e = self.d.pub("q2", "e")
        self.assertEqual(w.recv(), frame_of(msg(e, "q2", "e")))
        st, _, body = self.d.publish_json([{"queue": "q3", "data": "f"}, {"queue": "other", "data": "g"},
                                           {"queue": "q1", "data": "h"}])
        f, _, h = json.loads(body)["ids"]
        # one frame, or one per queue when the connection's thread runs between the queues' deliveries
        got = []
        while len(got) < 2:
            got += json.loads(w.recv())
        self.assertEqual(got, [msg(f, "q3", "f"), msg(h, "q1", "h")])

    def test_cursor_is_the_streams_cursor(self):
        a = self.d.pub("cur", "one")
        b = self.d.pub("cur", "two")
        st, _, body = self.d.poll("cur", since=a, timeout=0)  # acknowledges a
        self.assertEqual(json.loads(body), [msg(b, "cur", "two")])
        w = self.ws("/ws/cur")
        self.assertEqual(w.recv(), frame_of(cursor(a), msg(b, "cur", "two")))
        w2 = self.ws("/ws/cur?since=%d" % b)
        self.assertEqual(w2.recv(), frame_of(cursor(b)))
        s = self.d.open_stream("/stream/cur,fresh?since=%d" % b)
        self.assertEqual(s.headers["cometbox-cursor"], str(b))
        s.close()
        # with a fresh queue too, the lowest acknowledgement point: the run's start
        w3 = self.ws("/ws/cur,fresh")
        self.assertEqual(json.loads(w3.recv())[0], cursor(self.first_id() - 1))


class Batches(WsTest):
    ARGS = ["--max-batch", "3"]

    def test_frames_hold_at_most_max_batch_messages(self):
        st, _, body = self.d.publish_json([{"queue": "big", "data": str(i)} for i in range(7)])
        ids = json.loads(body)["ids"]
        w = self.ws("/ws/big?since=0")
        self.assertEqual(w.recv(), frame_of(cursor(0), *[msg(ids[i], "big", str(i)) for i in range(3)]))
        self.assertEqual(w.recv(), frame_of(*[msg(ids[i], "big", str(i)) for i in range(3, 6)]))
        self.assertEqual(w.recv(), frame_of(msg(ids[6], "big", "6")))
        st, _, body = self.d.publish_json([{"queue": "big", "data": "l%d" % i} for i in range(8)])
        more = json.loads(body)["ids"]
        got = []
        while len(got) < 8:
            f = json.loads(w.recv())
            self.assertTrue(1 <= len(f) <= 3, f)
            got += f
        self.assertEqual(got, [msg(more[i], "big", "l%d" % i) for i in range(8)])


# ---- resume, gaps, acknowledgements -----------------------------------------

class Resume(WsTest):
    def test_since_resumes_nothing_lost_nothing_twice(self):
        """Clients come and go (closing cleanly, or resetting) while a
        publisher runs; each reconnects with the last id it got."""
        n = 300
        sent = []
        errors = []

        def publisher():
            try:
                for i in range(n):
                    sent.append(self.d.pub("r", "m%d" % i))
            except Exception as e:  # reported by the test's thread
                errors.append(e)

        t = threading.Thread(target=publisher)
        t.start()
        got, since, round_ = [], 0, 0
        deadline = time.monotonic() + 90
        while len(got) < n and time.monotonic() < deadline and not errors:
            round_ += 1
            if round_ % 3 == 0:
                c = RawWS(self.d, "/ws/r?since=%d" % since)
                self.assertEqual(c.status, 101, c.body)
                recv = c.recv_text
            else:
                c = WsClient(self.d, "/ws/r?since=%d" % since)
                recv = c.recv
            try:
                first = json.loads(recv(10))
                self.assertEqual(first[0], cursor(since))
                frames = [first[1:]]
                for _ in range(round_ % 4):
                    if len(got) + sum(map(len, frames)) >= n:
                        break
                    frames.append(json.loads(recv(10)))
                for f in frames:
                    for m in f:
                        self.assertNotIn("type", m, f)
                        got.append(m)
                        since = m["id"]
            finally:
                if isinstance(c, RawWS):
                    reset_close(c.sock)
                else:
                    c.shutdown()
        t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual([m["data"] for m in got], ["m%d" % i for i in range(n)])
        self.assertEqual([m["id"] for m in got], sent)

    def test_since_on_the_url_acknowledges_delivery_does_not(self):
        a = self.d.pub("mb", "a")
        b = self.d.pub("mb", "b")
        w = self.ws("/ws/mb?since=%d" % a)
        self.assertEqual(w.recv(), frame_of(cursor(a), msg(b, "mb", "b")))
        w.close()
        self.d.wait_held(0, "ws")
        # since=a acknowledged a; b was delivered but not acknowledged
        self.assertEqual(self.pending("mb"), [msg(b, "mb", "b")])


class Gaps(WsTest):
    ARGS = ["--queue-max-messages", "3"]

    def test_overflow_while_disconnected_gives_a_gap(self):
        a = self.d.pub("g", "first")
        w = self.ws("/ws/g?since=0")
        self.assertEqual(w.recv(), frame_of(cursor(0), msg(a, "g", "first")))
        w.close()
        self.d.wait_held(0, "ws")
        ids = [self.d.pub("g", "m%d" % i) for i in range(5)]
        w = self.ws("/ws/g?since=%d" % a)
        self.assertEqual(w.recv(), frame_of(cursor(a), gap("g", a + 1, ids[1], "overflow"),
                                            msg(ids[2], "g", "m2"), msg(ids[3], "g", "m3"), msg(ids[4], "g", "m4")))

    def test_pending_gap_is_the_poll_answer_after_the_cursor(self):
        ids = [self.d.pub("p", "m%d" % i) for i in range(4)]
        st, _, body = self.d.poll("p", timeout=0)  # no since: acknowledges nothing
        self.assertEqual(json.loads(body), [gap("p", 1, ids[0], "overflow"), msg(ids[1], "p", "m1"),
                                            msg(ids[2], "p", "m2"), msg(ids[3], "p", "m3")])
        w = self.ws("/ws/p")
        self.assertEqual(w.recv(), '[{"type":"cursor","id":%d},' % (self.first_id() - 1) + body.decode()[1:])

    def test_restart_gap_for_a_cursor_of_an_earlier_run(self):
        w = self.ws("/ws/g2?since=5")
        self.assertEqual(w.recv(), frame_of(cursor(5), gap("g2", 6, self.first_id() - 1, "restart")))


class Acks(WsTest):
    def test_ack_frame_acknowledges_and_without_it_messages_stay_pending(self):
        a = self.d.pub("mb", "a")
        b = self.d.pub("mb", "b")
        x = self.d.pub("else", "x")  # another queue: no ack of this connection touches it
        c0 = ctl_json(self.d, "stats")["counters"]
        w = self.ws("/ws/mb")
        self.assertEqual(w.recv(), frame_of(cursor(self.first_id() - 1), msg(a, "mb", "a"), msg(b, "mb", "b")))
        wait_until(lambda: ctl_json(self.d, "stats")["counters"]["delivered"] == c0["delivered"] + 2,
                   what="delivered counting the 2 messages")
        w.close()
        self.d.wait_held(0, "ws")
        # delivered, not acknowledged: a new page still sees both
        self.assertEqual(self.pending("mb"), [msg(a, "mb", "a"), msg(b, "mb", "b")])
        self.assertEqual(ctl_json(self.d, "stats")["counters"]["acknowledged"], c0["acknowledged"])

        w = self.ws("/ws/mb")
        self.assertEqual(w.recv(), frame_of(cursor(self.first_id() - 1), msg(a, "mb", "a"), msg(b, "mb", "b")))
        w.send(jdump({"ack": a}))
        wait_until(lambda: self.pending("mb") == [msg(b, "mb", "b")], what="a acknowledged, b pending")
        w.send('{"ack":%d}' % b)
        wait_until(lambda: self.pending("mb") == [], what="b acknowledged")
        self.assertEqual(ctl_json(self.d, "stats")["counters"]["acknowledged"], c0["acknowledged"] + 2)
        self.assertEqual(self.pending("else"), [msg(x, "else", "x")])
        # the connection goes on after its acks
        c = self.d.pub("mb", "c")
        self.assertEqual(w.recv(), frame_of(msg(c, "mb", "c")))
        # the acknowledgement point is the cursor of a new connection
        w2 = self.ws("/ws/mb")
        self.assertEqual(w2.recv(), frame_of(cursor(b), msg(c, "mb", "c")))
        # acknowledged messages are retained for resuming clients
        w3 = self.ws("/ws/mb?since=0")
        self.assertEqual(w3.recv(), frame_of(cursor(0), msg(a, "mb", "a"), msg(b, "mb", "b"), msg(c, "mb", "c")))

    def test_ack_covers_every_queue_of_the_connection(self):
        a = self.d.pub("k1", "a")
        b = self.d.pub("k2", "b")
        c = self.d.pub("k3", "c")
        w = self.ws("/ws/k1,k2")
        self.assertEqual(w.recv(), frame_of(cursor(self.first_id() - 1), msg(a, "k1", "a"), msg(b, "k2", "b")))
        w.send('{"ack":%d}' % c)  # above both: acknowledges everything of k1 and k2, nothing of k3
        wait_until(lambda: self.pending("k1,k2") == [], what="k1 and k2 acknowledged")
        self.assertEqual(self.pending("k3"), [msg(c, "k3", "c")])
        d = self.d.pub("k1", "d")
        self.assertEqual(w.recv(), frame_of(msg(d, "k1", "d")))

    def test_fragmented_ack_with_a_ping_between_its_fragments(self):
        a = self.d.pub("fr", "a")
        r = self.raw("/ws/fr")
        self.assertEqual(r.recv_text(), frame_of(cursor(self.first_id() - 1), msg(a, "fr", "a")))
        ack = '{"ack":%d}' % a
        r.send_frame(TEXT, ack[:4], fin=False)
        r.send_frame(PING, b"are you there")
        self.assertEqual(r.recv_frame(), (True, 0, PONG, b"are you there"))
        r.send_frame(CONT, ack[4:9], fin=False)
        r.send_frame(CONT, ack[9:], fin=True)
        wait_until(lambda: self.pending("fr") == [], what="the fragmented ack to acknowledge a")
        b = self.d.pub("fr", "b")
        self.assertEqual(r.recv_text(), frame_of(msg(b, "fr", "b")))


# ---- kick, stop, close -------------------------------------------------------

class Kick(WsTest):
    def test_kick_by_client_id(self):
        w = self.ws("/ws/alice")
        self.assertEqual(json.loads(w.recv())[0]["type"], "cursor")
        other = self.ws("/ws/alice")
        other.recv()
        rows = wait_until(lambda: len(self.ws_clients()) == 2 and self.ws_clients(), what="2 ws clients")
        mine = [r for r in rows if r["addr"] == "127.0.0.1:%d" % w.local_port]
        self.assertEqual(len(mine), 1, rows)
        cid = mine[0]["id"]
        self.assertEqual(ctl(self.d, "kick", "--client", str(cid), "--reason", "bye now"),
                         (0, "kicked client %d\n" % cid, ""))
        self.assertEqual(w.recv_until_closed(), ([kick_frame("bye now")], 4000, "bye now"))
        other_id = [r["id"] for r in rows if r["id"] != cid]
        wait_until(lambda: [r["id"] for r in self.ws_clients()] == other_id,
                   what="the kicked client gone from cometboxctl clients")
        self.d.wait_held(1, "ws")
        # the other client on the same queue was not kicked
        id_ = self.d.pub("alice", "still here")
        self.assertEqual(other.recv(), frame_of(msg(id_, "alice", "still here")))

    def test_kick_by_queue_and_default_reason(self):
        a = self.ws("/ws/room")
        b = self.ws("/ws/room,lobby")
        c = self.ws("/ws/lobby")
        for w in (a, b, c):
            w.recv()
        self.d.wait_held(3, "ws")
        self.assertEqual(ctl(self.d, "kick", "room"), (0, "kicked 2 clients on room\n", ""))
        for w in (a, b):
            self.assertEqual(w.recv_until_closed(), ([kick_frame("kicked by an operator")], 4000,
                                                     "kicked by an operator"))
        wait_until(lambda: len(self.ws_clients()) == 1, what="the 2 kicked clients gone")
        self.assertEqual(self.ws_clients()[0]["addr"], "127.0.0.1:%d" % c.local_port)
        id_ = self.d.pub("lobby", "hi")
        self.assertEqual(c.recv(), frame_of(msg(id_, "lobby", "hi")))

    def test_long_reason_is_cut_to_123_bytes_in_the_close_frame(self):
        r = self.raw("/ws/long")
        r.recv_text()
        wait_until(lambda: len(self.ws_clients()) == 1, what="the client listed")
        reason = "\u00e9" * 99  # 198 bytes; byte 123 is the middle of a character
        self.assertEqual(ctl(self.d, "kick", "long", "--reason", reason), (0, "kicked 1 client on long\n", ""))
        self.assertEqual(r.recv_text(), kick_frame(reason))
        fin, rsv, op, payload = r.recv_frame()
        self.assertEqual((fin, rsv, op), (True, 0, CLOSE))
        self.assertEqual(struct.unpack("!H", payload[:2])[0], 4000)
        # at most 123 bytes of reason, and still UTF-8 (RFC 6455 5.5.1): the whole characters that fit
        self.assertEqual(payload[2:], reason.encode()[:122])
        r.send_frame(CLOSE, close_payload(4000))
        self.assertTrue(r.wait_eof())

        r = self.raw("/ws/long")
        r.recv_text()
        ascii_reason = "x" * 150
        self.assertEqual(ctl(self.d, "kick", "long", "--reason", ascii_reason)[0], 0)
        self.assertEqual(r.recv_text(), kick_frame(ascii_reason))
        self.assertEqual(r.expect_close(), (4000, "x" * 123))


class Stop(WsTest):
    def test_sigterm_closes_with_1001(self):
        w = self.ws("/ws/s")
        w.recv()
        r = self.raw("/ws/s")  # never answers the close: the daemon stops all the same
        r.recv_text()
        self.d.wait_held(2, "ws")
        self.d.proc.send_signal(signal.SIGTERM)
        self.assertEqual(w.recv_until_closed(), ([], 1001, "server stopping"))
        fin, rsv, op, payload = r.recv_frame()
        self.assertEqual((fin, rsv, op), (True, 0, CLOSE))
        self.assertEqual(parse_close(payload), (1001, "server stopping"))
        rc, took = self.d.stop(timeout=10)
        self.assertEqual(rc, 0, self.d.log)
        self.assertTrue(r.wait_eof(5))


class ClientClose(WsTest):
    def test_client_close_is_answered_and_the_client_goes(self):
        r = self.raw("/ws/cc")
        r.recv_text()
        self.d.wait_held(1, "ws")
        r.send_frame(CLOSE, close_payload(1000, b"done"))
        fin, rsv, op, payload = r.recv_frame()
        self.assertEqual((fin, rsv, op), (True, 0, CLOSE))
        self.assertEqual(parse_close(payload)[0], 1000)
        self.assertTrue(r.wait_eof())
        self.d.wait_held(0, "ws")
        w = self.ws("/ws/cc")
        w.recv()
        w.close()
        self.assertEqual(w.ws.close_code, 1000)
        self.d.wait_held(0, "ws")


# ---- heartbeat -------------------------------------------------------------

class Heartbeat(WsTest):
    ARGS = ["--heartbeat", "1"]

    def test_pings_after_silence_and_a_client_that_answers_stays(self):
        r = self.raw("/ws/hb")
        t0 = time.monotonic()
        r.recv_text()
        times = []
        deadline = time.monotonic() + 10
        while len(times) < 3:
            fin, rsv, op, payload = r.recv_frame(max(0.01, deadline - time.monotonic()))
            self.assertEqual((fin, rsv, op), (True, 0, PING), payload)
            self.assertLessEqual(len(payload), 125)
            times.append(time.monotonic())
            r.send_frame(PONG, payload)
        gaps_ = [b - a for a, b in zip([t0] + times, times)]
        for g in gaps_:
            self.assertGreater(g, 0.5, gaps_)  # a ping comes after a heartbeat of silence
        id_ = self.d.pub("hb", "alive")
        self.assertEqual(r.recv_text(), frame_of(msg(id_, "hb", "alive")))
        self.assertEqual(len(self.ws_clients()), 1)

    def test_no_pong_closes_1011_and_a_library_client_stays(self):
        w = self.ws("/ws/lib")  # answers pings by itself
        w.recv()
        r = self.raw("/ws/mute")
        t0 = time.monotonic()
        r.recv_text()
        fin, rsv, op, payload = r.recv_frame(5)
        self.assertEqual((fin, rsv, op), (True, 0, PING))
        t_ping = time.monotonic()
        fin, rsv, op, payload = r.recv_frame(5)  # nothing answered: the next heartbeat closes
        t_close = time.monotonic()
        self.assertEqual((fin, rsv, op), (True, 0, CLOSE), payload)
        self.assertEqual(parse_close(payload), (1011, "no pong"))
        self.assertLess(t_close - t0, 4.5)
        self.assertGreater(t_close - t_ping, 0.5)
        self.assertTrue(r.wait_eof(5), "the connection is dropped after the close")
        self.d.wait_held(1, "ws")
        # by now the library client went through 2 heartbeats at least
        id_ = self.d.pub("lib", "still here")
        self.assertEqual(w.recv(), frame_of(msg(id_, "lib", "still here")))
        self.assertEqual(w.ws.close_code, None)


# ---- hostile clients ---------------------------------------------------------

class HostileBase(WsTest):
    def setUp(self):
        super().setUp()
        self.by = self.ws("/ws/bystander")
        self.by.recv()
        self.n = 0

    def assert_bystander_served(self):
        self.n += 1
        id_ = self.d.pub("bystander", "still served %d" % self.n)
        self.assertEqual(self.by.recv(), frame_of(msg(id_, "bystander", "still served %d" % self.n)))

    def hostile(self, data, code, path="/ws/h"):
        """Sends data after the handshake and the first frame; the server
        must answer with a close frame of code and drop the connection,
        while the bystander is still served."""
        r = RawWS(self.d, path)
        try:
            self.assertEqual(r.status, 101, r.body)
            self.assertEqual(json.loads(r.recv_text())[0]["type"], "cursor")
            r.send(data)
            got, reason = r.expect_close()
            self.assertEqual(got, code, "close reason %r" % reason)
            self.assertLessEqual(len(reason.encode()), 123)
            self.assertTrue(r.wait_eof(), "the connection must be closed after the close frame")
        finally:
            r.close()
        self.d.wait_held(1, "ws")
        self.assert_bystander_served()


class HostileFrames(HostileBase):
    def test_binary_frame_1003(self):
        self.hostile(encode_frame(BINARY, b"\x01\x02\x03"), 1003)
        self.hostile(encode_frame(BINARY, b'{"ack":1}'), 1003)

    def test_text_that_is_not_an_ack_1008(self):
        for text in ("hello", '{"ack":-1}', '{"ack":"5"}', '{"ack":1.5}', '{"ack":1,"x":2}', '{"ack":9007199254740992}',
                     '{"ack":null}', '{"nack":1}', '[{"ack":1}]', '{"ack":1}{"ack":2}', ""):
            with self.subTest(text=text):
                self.hostile(encode_frame(TEXT, text), 1008)

    def test_invalid_utf8_1007(self):
        for data in (b"\xc3\x28", b'{"ack":1}\xff', b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"):
            with self.subTest(data=data):
                self.hostile(encode_frame(TEXT, data), 1007)
        # a character cut between two fragments is still valid UTF-8 (not an ack, though)
        e = '{"x":"\u00e9"}'.encode()
        self.hostile(encode_frame(TEXT, e[:7], fin=False) + encode_frame(CONT, e[7:]), 1008)
        # but a message whose last fragment ends inside a character is not
        self.hostile(encode_frame(TEXT, b'{"x":"', fin=False) + encode_frame(CONT, b"\xc3"), 1007)

    def test_rfc_violations_1002(self):
        cases = [
            ("unmasked client frame", encode_frame(TEXT, '{"ack":1}', mask=False)),
            ("fragmented ping (FIN=0)", encode_frame(PING, b"x", fin=False)),
            ("ping with 126 bytes", encode_frame(PING, b"p" * 126)),
            ("close with 126 bytes", encode_frame(CLOSE, close_payload(1000, b"r" * 124))),
            ("RSV1", encode_frame(TEXT, '{"ack":1}', rsv=4)),
            ("RSV2", encode_frame(TEXT, '{"ack":1}', rsv=2)),
            ("RSV3", encode_frame(TEXT, '{"ack":1}', rsv=1)),
            ("RSV on a ping", encode_frame(PING, b"x", rsv=4)),
            ("opcode 3", encode_frame(3, b"x")),
            ("opcode 0xB", encode_frame(0xB, b"x")),
            ("continuation without a start", encode_frame(CONT, '{"ack":1}')),
            ("text inside a fragmented message", encode_frame(TEXT, '{"ack"', fin=False) + encode_frame(TEXT, ":1}")),
        ]
        for name, data in cases:
            with self.subTest(case=name):
                self.hostile(data, 1002)

    def test_garbage_after_the_handshake(self):
        # 'G' = 0x47: FIN 0, RSV1 set, opcode 7
        self.hostile(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1002)
        # 0x00 0x00: an unmasked continuation that starts nothing
        self.hostile(b"\x00" * 64, 1002)
        w = self.ws("/ws/new")
        self.assertEqual(json.loads(w.recv())[0]["type"], "cursor")

    def test_client_gone_mid_frame(self):
        for how in ("fin", "reset"):
            with self.subTest(how=how):
                r = RawWS(self.d, "/ws/h")
                self.assertEqual(json.loads(r.recv_text())[0]["type"], "cursor")
                self.d.wait_held(2, "ws")
                r.send(encode_frame(TEXT, '{"ack":12345678}' * 4)[:20])
                if how == "fin":
                    r.sock.shutdown(socket.SHUT_WR)
                    self.assertTrue(r.wait_eof(), "a connection that ends mid-frame is closed")
                    r.close()
                else:
                    reset_close(r.sock)
                self.d.wait_held(1, "ws")
                self.assert_bystander_served()
        w = self.ws("/ws/new")
        self.assertEqual(json.loads(w.recv())[0]["type"], "cursor")
        id_ = self.d.pub("new", "works")
        self.assertEqual(w.recv(), frame_of(msg(id_, "new", "works")))


class FrameLimit(HostileBase):
    ARGS = ["--max-ws-frame", str(MAX_WS_FRAME)] if HAS_MAX_WS_FRAME else []

    def test_frame_or_message_over_max_ws_frame_1009(self):
        limit = MAX_WS_FRAME
        # exactly the limit is read (and refused as text that is not an ack)
        self.hostile(encode_frame(TEXT, "x" * limit), 1008)
        self.hostile(encode_frame(TEXT, "x" * (limit + 1)), 1009)
        # two fragments within the limit each, over it together
        half = limit // 2 + 1
        self.hostile(encode_frame(TEXT, "y" * half, fin=False) + encode_frame(CONT, "y" * half), 1009)
        # a header announcing a megabyte, and some of it
        self.hostile(encode_frame(TEXT, b"", length=1 << 20)[:14] + b"z" * 200, 1009)

    def test_header_announcing_a_huge_frame_is_refused_at_its_first_byte(self):
        """The frame is over max-ws-frame from its header on: the first
        byte of its payload is enough (wslay reads no further). A header
        alone is held until the heartbeat's missed pong (docs/PROTOCOL.md)."""
        self.hostile(encode_frame(TEXT, b"", length=1 << 20)[:14] + b"x", 1009)
        self.hostile(encode_frame(TEXT, b"", length=1 << 40)[:14] + b"x", 1009)


# ---- refusals before the upgrade -------------------------------------------

class Refusals(WsTest):
    def test_not_a_websocket_handshake_426(self):
        st, hdr, body = self.d.request("browser", "GET", "/ws/q")
        self.assertEqual(st, 426, body)
        self.assertEqual(hdr["sec-websocket-version"], "13")
        self.assertEqual(hdr["content-type"], "application/json")
        j = json.loads(body)
        self.assertEqual(j["error"], "upgrade_required")
        self.assertTrue(body.endswith(b"}\n") and j["detail"], body)
        for name, headers in (("no Upgrade", {"Upgrade": None}),
                              ("Upgrade h2c", {"Upgrade": "h2c"}),
                              ("version 8", {"Sec-WebSocket-Version": "8"}),
                              ("no version", {"Sec-WebSocket-Version": None}),
                              ("no key", {"Sec-WebSocket-Key": None}),
                              ("bad key", {"Sec-WebSocket-Key": "abc"})):
            with self.subTest(case=name):
                r = self.assert_refused("/ws/q", 426, "upgrade_required", headers=headers)
                self.assertEqual(r.headers["sec-websocket-version"], "13")
        self.assertEqual(self.d.held("ws"), 0)

    def test_bad_requests_400_subscribe_to_nothing(self):
        a = self.d.pub("q", "one")
        self.assert_refused("/ws/a,b/c", 400, "bad_request", QNAME_DETAIL % "b/c")
        self.assert_refused("/ws/a,,b", 400, "bad_request")
        self.assert_refused("/ws/a,a", 400, "bad_request")
        self.assert_refused("/ws/", 400, "bad_request")
        self.assert_refused("/ws/" + ",".join("q%d" % i for i in range(17)), 400, "bad_request")
        self.assert_refused("/ws/q?since=-1", 400, "bad_request")
        self.assert_refused("/ws/q?since=9007199254740992", 400, "bad_request")
        self.assert_refused("/ws/q?since=%d&sinse=%d" % (a, a), 400, "bad_request",
                            'unknown query parameter "sinse" (known here: since, token)')
        self.assert_refused("/ws/q?since=0&since=%d" % a, 400, "bad_request", "query parameter since is given twice")
        self.assert_refused("/ws/q?since=%d&timeout=5" % a, 400, "bad_request")
        # nothing was acknowledged by the refused handshakes
        self.assertEqual(self.pending("q"), [msg(a, "q", "one")])
        self.assertEqual(self.d.held("ws"), 0)


class Origins(WsTest):
    ARGS = ["--cors-origins", "https://a.example"]

    def test_origin_not_allowed_403_allowed_101(self):
        a = self.d.pub("o", "one")
        r = self.assert_refused("/ws/o?since=%d" % a, 403, "forbidden", "this page's origin is not in cors-origins",
                                headers={"Origin": "https://evil.example"})
        self.assertNotIn("access-control-allow-origin", r.headers)
        self.assertEqual(self.pending("o"), [msg(a, "o", "one")])  # the refusal acknowledged nothing
        w = self.ws("/ws/o", origin="https://a.example")
        self.assertEqual(w.recv(), frame_of(cursor(self.first_id() - 1), msg(a, "o", "one")))
        # a page of this server itself (Origin is http://HOST), and no page at all
        w2 = self.ws("/ws/o", origin="http://%s:%d" % (self.d.bhost, self.d.bport))
        self.assertEqual(json.loads(w2.recv())[1], msg(a, "o", "one"))
        w3 = self.ws("/ws/o")
        self.assertEqual(json.loads(w3.recv())[1], msg(a, "o", "one"))
        self.d.wait_held(3, "ws")


def make_token(queues, expiry, secret=SECRET):
    import hmac
    mac = hmac.new(secret.encode(), ("cometbox1:%d:%s" % (expiry, queues)).encode(), hashlib.sha256).digest()
    return "%d.%s.%s" % (expiry, queues, base64.urlsafe_b64encode(mac).decode().rstrip("="))


class Tokens(WsTest):
    ARGS = ["--subscribe-auth", "token", "--subscribe-secret", SECRET]

    def test_token_required(self):
        a = self.d.pub("alice", "hi")
        good = make_token("alice,room.1", int(time.time()) + 60)
        self.assert_refused("/ws/alice", 403, "forbidden", "a token is required (?token=)")
        self.assert_refused("/ws/alice,bob?token=" + good, 403, "forbidden", 'token does not cover queue "bob"')
        self.assert_refused("/ws/alice?token=" + make_token("alice", int(time.time()) - 1), 403, "forbidden",
                            "token expired")
        self.assert_refused("/ws/alice?token=" + make_token("alice", int(time.time()) + 60, "another-secret-xxxx"),
                            403, "forbidden", "token signature does not match")
        self.assertEqual(self.d.held("ws"), 0)
        w = self.ws("/ws/room.1,alice?since=0&token=" + good)
        self.assertEqual(w.recv(), frame_of(cursor(0), msg(a, "alice", "hi")))


class ConnectionLimits(WsTest):
    ARGS = ["--max-connections-per-ip", "3", "--max-waiters-per-queue", "2"]

    def test_max_connections_per_ip_429(self):
        ws = [self.ws("/ws/ip%d" % i) for i in range(3)]
        for w in ws:
            w.recv()
        r = self.assert_refused("/ws/ip9", 429, "too_many_requests",
                                "too many connections from your address (max-connections-per-ip)")
        self.assertEqual(r.headers["retry-after"], "5")
        # another address is not affected
        r2 = self.raw("/ws/ip9", source="127.0.0.2")
        self.assertEqual(r2.status, 101, r2.body)
        r2.close()
        ws[0].close()

        def fourth():
            c = RawWS(self.d, "/ws/ip9")
            c.close()
            return c.status == 101
        wait_until(fourth, what="a place freed by a closed WebSocket")

    def test_max_waiters_per_queue_429(self):
        a = self.ws("/ws/crowd")
        b = self.ws("/ws/crowd")
        a.recv()
        b.recv()
        r = self.assert_refused("/ws/crowd", 429, "too_many_requests",
                                "too many requests held on this queue (max-waiters-per-queue)")
        self.assertEqual(r.headers["retry-after"], "5")
        st, _, body = self.d.request("browser", "GET", "/stream/crowd")
        self.assertEqual(st, 429, body)


class MaxConnections(WsTest):
    ARGS = ["--max-connections", "2"]

    def test_max_connections_503(self):
        a = self.ws("/ws/m1")
        b = self.ws("/ws/m2")
        a.recv()
        b.recv()
        r = self.assert_refused("/ws/m3", 503, "unavailable", "too many connections (max-connections)")
        self.assertEqual(r.headers["retry-after"], "5")


# ---- stats, metrics, clients -------------------------------------------------

class Stats(WsTest):
    def test_held_ws_in_stats_metrics_and_clients(self):
        a = self.d.pub("st1", "a")
        w1 = self.ws("/ws/st1,st2?since=0")
        self.assertEqual(w1.recv(), frame_of(cursor(0), msg(a, "st1", "a")))
        w2 = self.ws("/ws/st3")
        w2.recv()
        s = self.d.open_stream("/stream/st4")
        s.line()
        self.d.wait_held(2, "ws")
        self.d.wait_held(1, "stream")
        held = ctl_json(self.d, "stats")["held"]
        self.assertEqual((held["ws"], held["stream"], held["long-poll"], held["sse"], held["total"]), (2, 1, 0, 0, 3))
        m = self.d.metrics()
        self.assertEqual(m['cometbox_held_requests{transport="ws"}'], 2)
        self.assertEqual(m['cometbox_held_requests{transport="stream"}'], 1)

        j = ctl_json(self.d, "clients")
        rows = j["clients"]
        self.assertEqual(j["total"], 3)
        self.assertEqual(sorted((r["addr"], r["transport"], r["queues"]) for r in rows), sorted([
            ("127.0.0.1:%d" % w1.local_port, "ws", ["st1", "st2"]),
            ("127.0.0.1:%d" % w2.local_port, "ws", ["st3"]),
            ("127.0.0.1:%d" % s.sock.getsockname()[1], "stream", ["st4"])]))
        wait_until(lambda: [r["cursor"] for r in ctl_json(self.d, "clients", "st1")["clients"]] == [a],
                   what="the cursor of the ws client at the last id handed to it")
        b = self.d.pub("st2", "b")
        self.assertEqual(w1.recv(), frame_of(msg(b, "st2", "b")))
        wait_until(lambda: [r["cursor"] for r in ctl_json(self.d, "clients", "st2")["clients"]] == [b],
                   what="the cursor of the ws client at the id handed to it")
        rc, out, err = ctl(self.d, "clients", "st3")
        self.assertEqual((rc, err), (0, ""))
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["ID", "ADDRESS", "TRANSPORT", "QUEUES", "CURSOR", "CONNECTED"])
        self.assertEqual(len(lines), 2, out)
        row2 = [r for r in rows if r["queues"] == ["st3"]][0]
        self.assertEqual(lines[1].split()[:5], [str(row2["id"]), "127.0.0.1:%d" % w2.local_port, "ws", "st3",
                                                str(row2["cursor"])])
        # waiting counts them on their queues
        q = {r["name"]: r for r in ctl_json(self.d, "queues")["queues"]}
        self.assertEqual((q["st1"]["waiting"], q["st2"]["waiting"], q["st3"]["waiting"]), (1, 1, 1))

        w1.close()
        w2.close()
        self.d.wait_held(0, "ws")
        held = ctl_json(self.d, "stats")["held"]
        self.assertEqual((held["ws"], held["total"]), (0, 1))
        self.assertEqual([r["transport"] for r in ctl_json(self.d, "clients")["clients"]], ["stream"])
        s.close()


# ---- slow readers ------------------------------------------------------------

class SlowReader(WsTest):
    ARGS = ["--queue-max-bytes", "4m"]

    def test_client_that_does_not_read_is_dropped(self):
        by = self.ws("/ws/fast")
        by.recv()
        r = self.raw("/ws/slow", rcvbuf=4096)
        self.assertEqual(r.status, 101)
        self.d.wait_held(2, "ws")
        big = "y" * 30000
        ids = []
        for i in range(40):  # about 1.2 MB, far more than stream-max-bytes and the socket buffers
            st, _, body = self.d.publish_json([{"queue": "slow", "data": big}])
            self.assertEqual(st, 200, body)
            ids.append(json.loads(body)["ids"][0])
        wait_until(lambda: self.d.held("ws") == 1, timeout=15,
                   what="the client that does not read dropped (1.2 MB published to it, stream-max-bytes 128 KiB)")
        self.assertEqual(len(self.ws_clients()), 1)
        self.assertTrue(r.wait_eof(15), "the server closes the connection of a client that does not read")
        id_ = self.d.pub("fast", "served")
        self.assertEqual(by.recv(), frame_of(msg(id_, "fast", "served")))
        w = self.ws("/ws/slow?since=%d" % ids[-2])
        self.assertEqual(w.recv(), frame_of(cursor(ids[-2]), msg(ids[-1], "slow", big)))


if __name__ == "__main__":
    unittest.main()
