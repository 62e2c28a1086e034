"""cometboxd's command line: --help, --version, config errors, the sample config."""
import os
import subprocess
import tempfile
import unittest

from cbx import COMETBOXD, ROOT, Daemon


def run(*args):
    p = subprocess.run([COMETBOXD] + list(args), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout, p.stderr


class CommandLine(unittest.TestCase):
    def test_help_lists_every_key_with_its_default(self):
        rc, out, err = run("--help")
        self.assertEqual(rc, 0)
        self.assertIn("usage: cometboxd [-c FILE] [--KEY VALUE]...", out)
        self.assertRegex(out, r"--hold-timeout +seconds a long-poll is held when it names no timeout \(default: 25\)")
        self.assertRegex(out, r"--threads +pool .*\(default: pool; needs a restart\)")
        self.assertRegex(out, r"--max-connections +.*\(default: 18000; above its value at start needs a restart\)")

    def test_version(self):
        rc, out, err = run("--version")
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^cometboxd \d+\.\d+\.\d+ \(libmicrohttpd 0\.9\.\d+\)\n$")

    def test_sample_config_has_every_key_and_default(self):
        rc, out, err = run("--print-config")
        self.assertEqual(rc, 0)
        with open(os.path.join(ROOT, "cometboxd.conf")) as f:
            sample = f.read()
        strip = lambda s: [l for l in s.splitlines() if l and not l.startswith("#")]
        self.assertEqual(strip(sample), strip(out))
        # and the sample is accepted as it is
        rc, out2, err = run("-c", os.path.join(ROOT, "cometboxd.conf"), "--print-config")
        self.assertEqual((rc, out2), (0, out))

    def test_unknown_key_in_file_names_the_line(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("# x\nlisten = 127.0.0.1:0\nlistn = 1\n")
        try:
            rc, out, err = run("-c", f.name)
            self.assertEqual(rc, 2)
            self.assertEqual(err, 'cometboxd: config %s line 3: unknown key "listn" (did you mean "listen"?)\n' % f.name)
        finally:
            os.unlink(f.name)

    def test_bad_values_and_options(self):
        self.assertEqual(run("--hold-timeout", "soon"),
                         (2, "", 'cometboxd: option "hold-timeout" wants seconds such as 25, 5m or 1h, not "soon"\n'))
        self.assertEqual(run("--threads=lots"), (2, "", 'cometboxd: option "threads" must be pool or per-connection, not "lots"\n'))
        self.assertEqual(run("--nope", "1"), (2, "", 'cometboxd: unknown option "--nope" (see --help)\n'))
        self.assertEqual(run("--heartbeat", "40"),
                         (2, "", "cometboxd: idle-timeout (30) must be longer than heartbeat (40)\n"))
        self.assertEqual(run("-c", "/nonexistent.conf"),
                         (2, "", "cometboxd: config /nonexistent.conf: No such file or directory\n"))

    def test_options_override_the_file(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("hold-timeout = 7\nheartbeat = 3\n")
        try:
            rc, out, err = run("-c", f.name, "--heartbeat", "4", "--print-config")
            self.assertIn("\nhold-timeout = 7\n", out)
            self.assertIn("\nheartbeat = 4\n", out)
        finally:
            os.unlink(f.name)

    def test_port_in_use_is_a_clear_error(self):
        d = Daemon()
        try:
            rc, out, err = run("--listen", "127.0.0.1:%d" % d.bport, "--publish-listen", "127.0.0.1:0",
                               "--admin-socket", os.path.join(d.tmp, "other.sock"))
            self.assertEqual(rc, 1)
            self.assertIn("error cannot listen on 127.0.0.1:%d: Address already in use" % d.bport, err)
        finally:
            d.stop()
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
