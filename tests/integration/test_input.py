"""Untrusted and operator input, checked where it enters (issue 16): JSON
text with raw control characters or invalid UTF-8, error texts that say
where and what (message numbers from 1, no position on size errors, the
raw-& hint), listen addresses and cross-key rules checked when the config
is read, and a bare cometboxctl printing its usage."""
import json
import os
import socket
import subprocess
import tempfile
import unittest

from cbx import COMETBOXCTL, COMETBOXD, Daemon, DaemonTest


def run(*args, ports=True):
    """Runs cometboxd with args; returns (exit code, stdout, stderr). A
    cometboxd that starts (when a check is missing) must not take the real
    ports or socket, and is stopped after a while: its admin socket is in a
    temporary folder, and with ports=True its ports are on 127.0.0.1:0 unless
    args say otherwise (options override the config file, so a test of
    listen in a file passes ports=False and sets both ports there)."""
    with tempfile.TemporaryDirectory(prefix="cbx-input-") as tmp:
        safe = ["--admin-socket", os.path.join(tmp, "admin.sock")]
        if ports:
            safe += ["--listen", "127.0.0.1:0", "--publish-listen", "127.0.0.1:0"]
        try:
            p = subprocess.run([COMETBOXD] + safe + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=10, cwd=tmp)
        except subprocess.TimeoutExpired as e:
            return None, "", "cometboxd did not exit: it started (%r)" % (e.stderr,)
    return p.returncode, p.stdout, p.stderr


def error_body(code, detail):
    """The exact bytes of an error answer."""
    return (json.dumps({"error": code, "detail": detail}, separators=(",", ":"), ensure_ascii=False)
            + "\n").encode()


class JsonText(DaemonTest):
    """Every path that takes JSON refuses raw control characters inside
    strings and invalid UTF-8 anywhere, naming line and column; nothing of
    the body is queued."""
    ARGS = ["--max-message-bytes", "100"]

    def post(self, body, content_type="application/json"):
        return self.d.request("publish", "POST", "/publish", body, {"Content-Type": content_type})

    def assert_refused(self, body, detail, content_type="application/json", status=400, code="malformed"):
        st, hdr, got = self.post(body, content_type)
        self.assertEqual((st, hdr.get("content-type"), got), (status, "application/json", error_body(code, detail)),
                         body)
        st, _, polled = self.d.poll("q", timeout=0)
        self.assertEqual((st, polled), (200, b"[]\n"), "after %r" % body)

    def test_raw_control_characters_in_json_strings(self):
        cases = [
            (b'{"queue":"q","data":{"k":"a\nb"}}',
             "line 1, column 28: control character U+000A inside a string (write it as \\n)"),
            (b'{"queue":"q","data":"a\tb"}',
             "line 1, column 23: control character U+0009 inside a string (write it as \\t)"),
            (b'{"queue":"q","data":{"a\rb":1}}',
             "line 1, column 24: control character U+000D inside a string (write it as \\r)"),
            (b'[{"queue":"q","data":1},\n {"queue":"q","data":["\x1b[31m"]}]',
             "line 2, column 24: control character U+001B inside a string (write it as \\u001b)"),
        ]
        for body, detail in cases:
            self.assert_refused(body, detail)

    def test_invalid_utf8_anywhere_in_json(self):
        cases = [
            (b'{"queue":"q","data":"\xff"}', "line 1, column 22: invalid UTF-8"),
            (b'{"queue":"q","data":{"k":"\xc0\xaf"}}', "line 1, column 27: invalid UTF-8"),  # overlong "/"
            (b'{"queue":"q","data":"\xed\xa0\x80"}', "line 1, column 22: invalid UTF-8"),  # a surrogate
            (b'{"queue":"q","data":{"\xc3\xa9t\xc3\xa9":"\xe9t\xe9"}}', "line 1, column 29: invalid UTF-8"),
            (b'{"queue":"q",\n"data":1}\xff', "line 2, column 10: invalid UTF-8"),
        ]
        for body, detail in cases:
            self.assert_refused(body, detail)

    def test_json_inside_xml(self):
        self.assert_refused(b'<message queue="q" type="json">{"k":"a&#10;b"}</message>',
                            'line 1, column 47: type="json" message: line 1, column 8: control character U+000A '
                            'inside a string (write it as \\n)', "application/xml")
        self.assert_refused(b'<messages><message queue="q">fine</message>\n'
                            b'<message queue="q" type="json">["\t"]</message></messages>',
                            'line 2, column 37: type="json" message: line 1, column 3: control character U+0009 '
                            'inside a string (write it as \\t)', "application/xml")

    def test_text_is_reencoded_with_every_control_character_escaped(self):
        # escapes in JSON (and character references in XML) may carry any character but NUL
        st, _, body = self.post(b'{"queue":"q","data":"a\\nb\\r\\t\\u0001\\u001f\\u007f\\u2028"}')
        self.assertEqual(st, 200, body)
        st, _, body = self.post(b'<message queue="q">x&#10;y&#9;</message>', "application/xml")
        self.assertEqual(st, 200, body)
        st, _, polled = self.d.poll("q", since=0, timeout=0)
        self.assertEqual(st, 200)
        self.assertEqual(polled.count(b"\n"), 1, polled)  # only the one that ends the answer
        datas = [m["data"] for m in json.loads(polled)]
        self.assertEqual(datas, ["a\nb\r\t\x01\x1f\x7f\u2028", "x\ny\t"])
        self.assertIn(b'"data":"a\\nb\\r\\t\\u0001\\u001f\\u007f\xe2\x80\xa8"', polled)
        self.assertIn(b'"data":"x\\ny\\t"', polled)

    def test_admin_publish_refuses_invalid_utf8(self):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(self.d.admin)
        s.sendall(b'{"id":1,"cmd":"publish","queue":"q","data":{"k":"\xff"}}\n')
        line = s.makefile("rb").readline()
        s.close()
        # the request line itself is not JSON text (its reply keeps the id)
        self.assertEqual(json.loads(line), {"id": 1, "ok": False, "error":
                                            "invalid JSON: line 1, column 50: invalid UTF-8"})
        st, _, polled = self.d.poll("q", timeout=0)
        self.assertEqual((st, polled), (200, b"[]\n"))

    def test_cometboxctl_publish_json_checks_the_text(self):
        p = subprocess.run([COMETBOXCTL, "-s", self.d.admin, "publish", "q", '{"k":"a\tb"}', "--json"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        self.assertEqual((p.returncode, p.stdout, p.stderr), (
            2, "", "cometboxctl: MESSAGE is not one JSON value (--json): line 1, column 8: control character U+0009 "
                   "inside a string (write it as \\t)\n"
                   "usage: cometboxctl publish QUEUE MESSAGE [--json] (see cometboxctl publish --help)\n"))


class ErrorTexts(DaemonTest):
    ARGS = ["--max-message-bytes", "100"]

    def post(self, body, content_type):
        return self.d.request("publish", "POST", "/publish", body, {"Content-Type": content_type})

    def check(self, body, content_type, status, code, detail):
        st, _, got = self.post(body, content_type)
        self.assertEqual((st, got), (status, error_body(code, detail)), body)
        st, _, polled = self.d.poll("q", timeout=0)
        self.assertEqual((st, polled), (200, b"[]\n"))

    def test_size_errors_name_the_message_not_a_position(self):
        self.check(('<messages><message queue="q">ok</message>\n<message queue="q">%s</message></messages>'
                    % ("y" * 101)).encode(), "application/xml", 413, "too_large",
                   'message 2: data for "q" has more than max-message-bytes (100)')
        self.check(json.dumps([{"queue": "q", "data": "ok"}, {"queue": "q", "data": "z" * 101}]).encode(),
                   "application/json", 413, "too_large",
                   'message 2: data for "q" has 101 bytes, more than max-message-bytes (100)')

    def test_batch_items_count_from_one(self):
        self.check(b'[{"queue":"q","data":1},{"queue":"q","data":2},{"queue":"no/slash","data":3}]',
                   "application/json", 400, "malformed",
                   'message 3: bad queue name "no/slash": use 1-128 letters, digits or ._:@-')
        self.check(b'[{"queue":"q","data":1},{"queue":"q"}]', "application/json", 400, "malformed",
                   'message 2: "data" is missing')

    def test_raw_ampersand_in_xml(self):
        self.check(b'<message queue="q">Tom & Jerry</message>', "application/xml", 400, "malformed",
                   "line 1, column 24: not well-formed (invalid token) (a literal & must be written &amp;)")
        self.check(b'<message queue="q">a &amp b</message>', "application/xml", 400, "malformed",
                   "line 1, column 22: not well-formed (invalid token) (a literal & must be written &amp;)")
        self.check(b'<message queue="q">a < b</message>', "application/xml", 400, "malformed",
                   "line 1, column 23: not well-formed (invalid token)")


class ConfigChecks(unittest.TestCase):
    """Addresses, enums, unknown keys and cross-key rules fail when the
    config is read: exit 2 and one line naming the option or the line."""

    def conf(self, text):
        f = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
        f.write(text)
        f.close()
        self.addCleanup(os.unlink, f.name)
        return f.name

    def test_ports_above_65535_are_refused(self):
        self.assertEqual(run("--listen", "127.0.0.1:70000"), (
            2, "", 'cometboxd: option "listen" port must be a number from 0 to 65535, not "70000"\n'))
        self.assertEqual(run("--publish-listen=[::1]:65536"), (
            2, "", 'cometboxd: option "publish-listen" port must be a number from 0 to 65535, not "65536"\n'))
        path = self.conf("publish-listen = 127.0.0.1:0\nlisten = 127.0.0.1:70000\n")
        self.assertEqual(run("-c", path, ports=False), (
            2, "", 'cometboxd: config %s line 2: "listen" port must be a number from 0 to 65535, not "70000"\n'
                   % path))

    def test_bad_hosts_are_refused_when_read(self):
        self.assertEqual(run("--listen", "example.com:1800"), (
            2, "", 'cometboxd: option "listen" host must be a numeric IPv4 address, [IPv6], * or localhost, '
                   'not "example.com"\n'))
        self.assertEqual(run("--listen", "::1:1800"), (
            2, "", 'cometboxd: option "listen" wants an IPv6 address in brackets, such as [::1]:1800, '
                   'not "::1:1800"\n'))
        path = self.conf("listen = 127.0.0.1:0\npublish-listen = localhost\n")
        self.assertEqual(run("-c", path, ports=False), (
            2, "", 'cometboxd: config %s line 2: "publish-listen" wants PORT, HOST:PORT or [IPV6]:PORT, '
                   'not "localhost"\n' % path))

    def test_a_bare_port_keeps_the_default_host(self):
        path = self.conf("listen = 1800\npublish-listen = 1802\n")
        rc, out, err = run("-c", path, "--print-config", ports=False)
        self.assertEqual((rc, err), (0, ""))
        self.assertIn("\nlisten = *:1800\n", out)
        self.assertIn("\npublish-listen = 127.0.0.1:1802\n", out)
        # and it listens there: the publish port on loopback, never on every address
        d = Daemon("--listen", "0", "--publish-listen", "0")
        try:
            self.assertEqual(d.phost, "127.0.0.1")
            self.assertEqual(d.publish_json({"queue": "q", "data": 1})[0], 200)
        finally:
            self.assertEqual(d.stop()[0], 0)
            d.cleanup()

    def test_enum_values_list_the_choices(self):
        path = self.conf("# threads\n\nthreads = poool\n")
        self.assertEqual(run("-c", path), (
            2, "", 'cometboxd: config %s line 3: "threads" must be pool or per-connection, not "poool"\n' % path))
        self.assertEqual(run("--log-level", "loud"), (
            2, "", 'cometboxd: option "log-level" must be error, warn, info or debug, not "loud"\n'))

    def test_unknown_key_suggests_the_nearest(self):
        path = self.conf("listen = 127.0.0.1:0\n# x\n\n\n\n\nlistn = 1\n")
        self.assertEqual(run("-c", path), (
            2, "", 'cometboxd: config %s line 7: unknown key "listn" (did you mean "listen"?)\n' % path))
        path = self.conf("frobnicate = 1\n")
        self.assertEqual(run("-c", path), (2, "", 'cometboxd: config %s line 1: unknown key "frobnicate"\n' % path))

    def test_unknown_option_suggests_the_nearest(self):
        # needs cometboxd/main.c to call cbx_config_nearest_key()
        self.assertEqual(run("--hold-timout", "5"), (
            2, "", 'cometboxd: unknown option "--hold-timout" (did you mean "--hold-timeout"?)\n'))
        self.assertEqual(run("--nope", "1"), (2, "", 'cometboxd: unknown option "--nope" (see --help)\n'))

    def test_hold_timeout_above_its_max(self):
        # needs cometboxd/main.c to call cbx_config_check()
        self.assertEqual(run("--hold-timeout", "200"), (
            2, "", "cometboxd: hold-timeout (200) must not be more than hold-timeout-max (120)\n"))
        path = self.conf("hold-timeout = 50\nhold-timeout-max = 40\n")
        self.assertEqual(run("-c", path), (
            2, "", "cometboxd: hold-timeout (50) must not be more than hold-timeout-max (40)\n"))
        self.assertEqual(run("--heartbeat", "40"),
                         (2, "", "cometboxd: idle-timeout (30) must be longer than heartbeat (40)\n"))


class BareCometboxctl(unittest.TestCase):
    def test_no_arguments_prints_the_usage(self):
        env = dict(os.environ)
        env.pop("COMETBOX_SOCKET", None)
        help_ = subprocess.run([COMETBOXCTL, "--help"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=30, env=env)
        self.assertEqual(help_.returncode, 0)
        self.assertTrue(help_.stdout.startswith("usage: cometboxctl [-s PATH] [--json] COMMAND [ARGS]\n"))
        bare = subprocess.run([COMETBOXCTL], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
                              env=env)
        self.assertEqual((bare.returncode, bare.stdout, bare.stderr), (2, "", help_.stdout))


if __name__ == "__main__":
    unittest.main()
