"""ws_client.py - a WebSocket client for the integration tests (Debian's
python3-websockets, its asyncio API), driven from the test's thread."""
import asyncio
import sys
import threading
import time

try:
    import websockets
except ImportError:
    # CMake's python3 may be another build (pyenv) than Debian's, which does
    # not look in Debian's dist-packages: python3-websockets is pure Python
    sys.path.append("/usr/lib/python3/dist-packages")
    import websockets
assert websockets.__version__.split(".")[0] >= "10", websockets.__version__  # the legacy asyncio client
from websockets.exceptions import ConnectionClosed
from websockets.legacy.client import connect as ws_connect


class WsClient:
    """A python3-websockets client (asyncio API) driven from the test's
    thread: the client's event loop runs in a thread of its own. It answers
    pings, as browsers do; it sends none."""

    def __init__(self, d, path, origin=None, extra_headers=None, timeout=10):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.url = "ws://%s:%d%s" % (d.bhost, d.bport, path)

        async def open_():
            return await ws_connect(self.url, origin=origin, extra_headers=extra_headers, open_timeout=timeout,
                                    ping_interval=None, close_timeout=5, max_size=None)
        try:
            self.ws = self._run(open_(), timeout + 5)
        except BaseException:
            self._stop()
            raise

    def _run(self, coro, timeout):
        fut = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coro, timeout), self.loop)
        return fut.result(timeout + 5)

    def recv(self, timeout=10):
        return self._run(self.ws.recv(), timeout)

    def send(self, data):
        self._run(self.ws.send(data), 10)

    def recv_until_closed(self, timeout=10):
        """Reads until the connection is closed; returns (frames read, code,
        reason) of the server's close frame (None, None without one)."""
        frames = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                frames.append(self.recv(max(0.01, deadline - time.monotonic())))
            except ConnectionClosed as e:
                if e.rcvd is None:
                    return frames, None, None
                return frames, e.rcvd.code, e.rcvd.reason

    @property
    def local_port(self):
        return self.ws.local_address[1]

    def close(self):
        if self.ws.open:
            try:
                self._run(self.ws.close(), 10)
            except Exception:
                pass

    def _stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    def shutdown(self):
        self.close()
        self._stop()
