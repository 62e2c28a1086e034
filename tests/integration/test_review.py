"""test_review.py - the daemon's answers to the points of the outside review
(issue 16) that live in cometboxd/: headers and newlines, query parameters,
wrong-port hints, shutdown, slow headers, an idle daemon's wake-ups,
half-closed clients. Run in both threads modes by CTest."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import unittest

from cbx import Daemon, DaemonTest


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


if __name__ == "__main__":
    unittest.main()
