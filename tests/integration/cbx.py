"""cbx.py - helpers for cometboxd integration tests: start the real daemon
on free ports in a temporary directory, wait for its ready line, and talk to
it over real sockets. Python standard library only."""
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
COMETBOXD = os.environ.get("COMETBOXD", os.path.join(ROOT, "build", "cometboxd", "cometboxd"))
COMETBOXCTL = os.environ.get("COMETBOXCTL", os.path.join(ROOT, "build", "cometboxctl", "cometboxctl"))
THREADS = os.environ.get("CBX_THREADS", "pool")
READY = re.compile(r"cometboxd: ready browser=(\S+) publish=(\S+) admin=(\S+)")


class Daemon:
    """A running cometboxd. stderr is collected in a thread into self.log.
    tmpdir: run in this directory (kept at cleanup) rather than a new one, so
    a daemon can be started again on the files of a previous one; env:
    variables added to the daemon's environment. With addresses=False the
    daemon gets only args: a config file of the caller's then names the
    ports (127.0.0.1:0), the admin socket (self.admin) and the threads mode."""

    def __init__(self, *args, threads=None, tmpdir=None, wait=True, env=None, addresses=True):
        self.own_tmp = tmpdir is None
        self.tmp = tmpdir or tempfile.mkdtemp(prefix="cbx-test-")
        self.admin = os.path.join(self.tmp, "admin.sock")
        argv = [COMETBOXD] + list(args)
        if addresses:
            argv[1:1] = ["--listen", "127.0.0.1:0", "--publish-listen", "127.0.0.1:0",
                         "--admin-socket", self.admin, "--threads", threads or THREADS]
        e = None
        if env:
            e = dict(os.environ)
            e.update(env)
        self.proc = subprocess.Popen(argv, cwd=self.tmp, stdin=subprocess.DEVNULL, env=e,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.log = ""
        self.lines = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if wait:
            m = self.wait_for(READY, 15)
            if m is None:
                self.kill()
                raise AssertionError("cometboxd did not become ready; its log:\n" + self.log)
            self.browser, self.publish = m.group(1), m.group(2)
            self.bhost, self.bport = self._hostport(self.browser)
            self.phost, self.pport = self._hostport(self.publish)

    @staticmethod
    def _hostport(url):
        u = urllib.parse.urlsplit(url)
        return u.hostname, u.port

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            with self.cond:
                self.log += line
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def mark(self):
        """The number of stderr lines so far: wait_for(..., after=mark) looks only at later ones."""
        with self.cond:
            return len(self.lines)

    def wait_for(self, pattern, timeout, after=0):
        """Waits until a stderr line (from line number after on) matches pattern (a compiled regex);
        returns the match or None."""
        deadline = time.monotonic() + timeout
        seen = after
        with self.cond:
            while True:
                while seen < len(self.lines):
                    m = pattern.search(self.lines[seen])
                    seen += 1
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and seen == len(self.lines)):
                    return None
                self.cond.wait(min(left, 0.2))

    def count(self, pattern):
        with self.cond:
            return sum(1 for l in self.lines if pattern.search(l))

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Sends sig and waits; returns (exit code, seconds it took)."""
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise AssertionError("cometboxd did not stop within %ss; log:\n%s" % (timeout, self.log))
        self.reader.join(5)
        return rc, time.monotonic() - t0

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def cleanup(self):
        self.kill()
        self.reader.join(5)
        self.proc.stderr.close()
        if self.own_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- HTTP ----
    def request(self, port_kind, method, path, body=None, headers=None, timeout=10):
        host, port = (self.bhost, self.bport) if port_kind == "browser" else (self.phost, self.pport)
        c = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data
        finally:
            c.close()

    def publish_xml(self, xml, content_type="application/xml"):
        return self.request("publish", "POST", "/publish", xml.encode() if isinstance(xml, str) else xml,
                            {"Content-Type": content_type})

    def publish_json(self, obj):
        return self.request("publish", "POST", "/publish", json.dumps(obj).encode(),
                            {"Content-Type": "application/json"})

    def pub(self, queue, text):
        """Publishes one text message; returns its id."""
        st, _, body = self.publish_json({"queue": queue, "data": text})
        assert st == 200, (st, body)
        return json.loads(body)["ids"][0]

    def poll(self, queues, since=None, timeout=None, headers=None):
        q = {}
        if since is not None:
            q["since"] = since
        if timeout is not None:
            q["timeout"] = timeout
        path = "/poll/" + queues + ("?" + urllib.parse.urlencode(q) if q else "")
        return self.request("browser", "GET", path, headers=headers, timeout=60)

    def start_polls(self, queues, headers, since=None, timeout=20):
        """Starts one long-poll per entry of headers (a dict, or None), each
        in a thread of its own; returns the threads and the list their
        answers go to, in the same order."""
        results = [None] * len(headers)

        def poller(i):
            results[i] = self.poll(queues, since=since, timeout=timeout, headers=headers[i])

        threads = [threading.Thread(target=poller, args=(i,)) for i in range(len(headers))]
        for t in threads:
            t.start()
        return threads, results

    def metrics(self):
        """GET /metrics as {name-with-labels: value}."""
        st, _, body = self.request("publish", "GET", "/metrics")
        assert st == 200, st
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def held(self, transport="long-poll"):
        return int(self.metrics()['cometbox_held_requests{transport="%s"}' % transport])

    def wait_held(self, n, transport="long-poll", timeout=10):
        """Waits until n requests of transport are held (read from /metrics)."""
        deadline = time.monotonic() + timeout
        while self.held(transport) != n:
            if time.monotonic() > deadline:
                raise AssertionError("expected %d held %s requests, have %d" % (n, transport, self.held(transport)))
            time.sleep(0.01)

    def open_stream(self, path, headers=None, read_head=True):
        return RawStream(self.bhost, self.bport, path, headers, read_head)


class RawStream:
    """A GET whose chunked body is read incrementally over a raw socket."""

    def __init__(self, host, port, path, headers=None, read_head=True):
        self.sock = socket.create_connection((host, port), timeout=10)
        req = "GET %s HTTP/1.1\r\nHost: %s:%d\r\n" % (path, host, port)
        for k, v in (headers or {}).items():
            req += "%s: %s\r\n" % (k, v)
        self.sock.sendall((req + "\r\n").encode())
        self.buf = b""
        self.body = b""
        self.ended = False
        if read_head:
            self.read_head()

    def read_head(self, timeout=10):
        head = self._until(b"\r\n\r\n", timeout)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for l in lines[1:]:
            if l:
                k, v = l.split(":", 1)
                self.headers[k.strip().lower()] = v.strip()

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no data in time; have %r" % (self.buf + self.body,))
        self.sock.settimeout(left)
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def _until(self, sep, timeout=10):
        deadline = time.monotonic() + timeout
        while sep not in self.buf:
            self._fill(deadline)
        i = self.buf.index(sep)
        out, self.buf = self.buf[:i], self.buf[i + len(sep):]
        return out

    def _chunk(self, timeout):
        deadline = time.monotonic() + timeout
        size = int(self._until(b"\r\n", timeout).split(b";")[0], 16)
        while len(self.buf) < size + 2:
            self._fill(deadline)
        data, self.buf = self.buf[:size], self.buf[size + 2:]
        if size == 0:
            self.ended = True
        return data

    def read_until(self, sep, timeout=10):
        """Returns body bytes up to and including the next sep."""
        deadline = time.monotonic() + timeout
        while sep not in self.body:
            if self.ended:
                raise EOFError("stream ended; body %r" % self.body)
            self.body += self._chunk(max(0.01, deadline - time.monotonic()))
        i = self.body.index(sep) + len(sep)
        out, self.body = self.body[:i], self.body[i:]
        return out

    def line(self, timeout=10):
        return self.read_until(b"\n", timeout).decode()

    def event(self, timeout=10):
        return self.read_until(b"\n\n", timeout).decode()

    def read_body(self, timeout=10):
        """The whole body of a Content-Length or chunked answer."""
        if "content-length" in self.headers:
            n = int(self.headers["content-length"])
            deadline = time.monotonic() + timeout
            while len(self.buf) < n:
                self._fill(deadline)
            out, self.buf = self.buf[:n], self.buf[n:]
            return out
        return self.read_to_end(timeout)

    def read_to_end(self, timeout=10):
        deadline = time.monotonic() + timeout
        while not self.ended:
            self.body += self._chunk(max(0.01, deadline - time.monotonic()))
        out, self.body = self.body, b""
        return out

    def close(self):
        self.sock.close()


class DaemonTest(unittest.TestCase):
    """Starts one daemon per test with the class's ARGS."""
    ARGS = []

    def setUp(self):
        self.d = Daemon(*self.ARGS)

    def tearDown(self):
        rc, _ = self.d.stop()
        log = self.d.log
        self.d.cleanup()
        self.assertEqual(rc, 0, "cometboxd exit code; log:\n" + log)
        for bad in ("runtime error", "ERROR: AddressSanitizer", "WARNING: ThreadSanitizer", "LeakSanitizer"):
            self.assertNotIn(bad, log)


def read_all(sock, timeout=10):
    """Reads until the peer closes (or resets) or timeout; returns the bytes."""
    sock.settimeout(timeout)
    out = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return out


def reset_close(sock):
    """Closes sock with a reset (SO_LINGER 0), as a browser whose tab was
    killed or a proxy that aborts does, rather than with a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


def msg(id_, queue, data):
    return {"id": id_, "queue": queue, "data": data}


def gap(queue, from_, to, reason):
    return {"type": "gap", "queue": queue, "from": from_, "to": to, "reason": reason}


def wait_until(cond, timeout=10, what="the condition"):
    """Polls cond() until it returns a true value (returned) or timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s (last value %r)" % (timeout, what, v))
        time.sleep(0.02)


def ctl(d, *args):
    """cometboxctl -s ADMIN ARGS against daemon d (COMETBOX_SOCKET unset);
    returns (exit code, stdout, stderr)."""
    e = dict(os.environ)
    e.pop("COMETBOX_SOCKET", None)
    p = subprocess.run([COMETBOXCTL, "-s", d.admin] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30, env=e)
    return p.returncode, p.stdout, p.stderr


def ctl_json(d, *args):
    """cometboxctl --json ARGS against daemon d; asserts success; the parsed result."""
    rc, out, err = ctl(d, "--json", *args)
    assert (rc, err) == (0, ""), ("cometboxctl", args, rc, out, err)
    return json.loads(out)


def drain(d, queues, since=0):
    """Polls queues with since (timeout 0) until an answer is empty; returns
    every object it got, in order (max-batch splits long histories); since
    moves to the last message id."""
    out = []
    for _ in range(1000):
        st, _, body = d.poll(queues, since=since, timeout=0)
        assert st == 200, (st, body)
        arr = json.loads(body)
        if not arr:
            return out
        out.extend(arr)
        ids = [m["id"] for m in arr if "id" in m]
        if not ids:
            return out
        since = ids[-1]
    raise AssertionError("drain did not end")
