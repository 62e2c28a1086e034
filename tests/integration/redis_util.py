"""redis_util.py - a real redis-server (Debian's) for the scale-out tests:
started in a temporary directory on a free TCP port on 127.0.0.1 and a UNIX
socket, waited for with PING (never a fixed sleep), stopped, killed, paused
and started again on the same files. A tiny RESP client for the tests' own
look into Redis (PING, KEYS, PUBSUB); not a client the daemon uses."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

REDIS_SERVER = os.environ.get("REDIS_SERVER") or shutil.which("redis-server") or "/usr/bin/redis-server"

MISSING = ("redis-server is not installed (%s not found): the scale-out tests run cometboxd against a real "
           "Redis. Install Debian's package redis-server (scripts/deps.sh test does) or set REDIS_SERVER "
           "to its path" % REDIS_SERVER)


def free_port():
    """A TCP port on 127.0.0.1 that nobody listened on a moment ago."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class RespError(Exception):
    """An error reply (-ERR ...) of Redis."""


def _encode(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        if isinstance(a, int):
            a = str(a)
        if isinstance(a, str):
            a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class _Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("Redis closed the connection")
            self.buf += data
        i = self.buf.index(b"\r\n")
        line, self.buf = self.buf[:i], self.buf[i + 2:]
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("Redis closed the connection")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n + 2:]
        return out

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ConnectionError("not a RESP reply: %r" % line)


def command(addr, *args, timeout=5, password=None):
    """Sends one command to Redis at addr (a UNIX socket path, or (host,
    port)) on a connection of its own; returns the reply (bytes for bulk
    strings, str for status replies, lists for arrays). Raises RespError for
    an error reply, OSError when Redis cannot be reached."""
    if isinstance(addr, str):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        s.connect(addr)
    else:
        s = socket.create_connection(addr, timeout=timeout)
    try:
        s.settimeout(timeout)
        r = _Reader(s)
        if password is not None:
            s.sendall(_encode(["AUTH", password]))
            r.reply()
        s.sendall(_encode(list(args)))
        return r.reply()
    finally:
        s.close()


class RedisServer:
    """One redis-server in a temporary directory (self.dir, removed at
    cleanup), listening on 127.0.0.1:self.port and the UNIX socket
    self.sock. aof=True keeps an append-only file that is fsynced before
    each reply (appendfsync always), so start() after kill() finds
    everything Redis answered; without it nothing is written to disk
    (save "" and no AOF). password: requirepass; port: this TCP port rather
    than a free one. Fails the calling test,
    with a clear message, when redis-server is not installed."""

    def __init__(self, aof=False, password=None, port=None, extra=()):
        if not os.access(REDIS_SERVER, os.X_OK):
            raise AssertionError(MISSING)
        self.dir = tempfile.mkdtemp(prefix="cbx-redis-")
        self.sock = os.path.join(self.dir, "redis.sock")
        self.logfile = os.path.join(self.dir, "redis.log")
        self.port = port
        self.aof = aof
        self.password = password
        self.extra = list(extra)
        self.proc = None
        self.starts = 0
        self.start()

    # ---- addresses ----
    @property
    def tcp_url(self):
        auth = ":%s@" % self.password if self.password else ""
        return "redis://%s127.0.0.1:%d/0" % (auth, self.port)

    @property
    def unix_url(self):
        return "unix:" + self.sock + ("?password=" + self.password if self.password else "")

    def argv(self):
        a = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--unixsocket", self.sock,
             "--unixsocketperm", "700", "--dir", self.dir, "--save", "", "--daemonize", "no",
             "--logfile", self.logfile, "--loglevel", "notice", "--databases", "16"]
        if self.aof:
            a += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            a += ["--appendonly", "no"]
        if self.password:
            a += ["--requirepass", self.password]
        return a + self.extra

    def start(self, timeout=15):
        """Starts redis-server (on the same port, socket and dir as before,
        when it ran before) and waits until PING answers."""
        assert self.proc is None or self.proc.poll() is not None, "redis-server is already running"
        fresh = self.port is None
        for attempt in range(5):
            if self.port is None:
                self.port = free_port()
            before = len(self.log()) if os.path.exists(self.logfile) else 0
            self.proc = subprocess.Popen(self.argv(), cwd=self.dir, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.starts += 1
            if self.wait_ready(timeout):
                return
            if fresh and self.proc.poll() is not None and "Address already in use" in self.log()[before:]:
                self.port = None        # another process took the free port first: pick another
                continue
            self.kill()
            raise AssertionError("redis-server did not answer PING within %ss; its log:\n%s" % (timeout, self.log()))
        raise AssertionError("redis-server found no free port in 5 tries; its log:\n" + self.log())

    def wait_ready(self, timeout):
        """Waits until PING answers PONG on both the TCP port and the UNIX
        socket; False when redis-server exits or timeout passes first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if (self.ping(("127.0.0.1", self.port)) == "PONG" and self.ping(self.sock) == "PONG"):
                    return True
            except (OSError, RespError):
                pass
            time.sleep(0.01)
        return False

    def ping(self, addr=None):
        return command(addr or ("127.0.0.1", self.port), "PING", timeout=1, password=self.password)

    def cmd(self, *args):
        """One command over the UNIX socket; returns its reply."""
        return command(self.sock, *args, password=self.password)

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return "(no log)"

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL, timeout=10):
        """Sends sig (SIGKILL: a crash; SIGTERM: a clean stop) and waits for
        the process to go; returns its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            if sig == signal.SIGTERM:
                self.proc.send_signal(signal.SIGCONT)   # a paused server would not act on it
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("redis-server did not stop within %ss after signal %d" % (timeout, sig))

    def pause(self):
        """SIGSTOP: Redis keeps its connections but answers nothing."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
