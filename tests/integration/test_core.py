"""Integration tests of cometboxd's browser and publish ports against the
real daemon (docs/PROTOCOL.md). Run once per threads mode (CBX_THREADS)."""
import http.client
import json
import os
import re
import signal
import socket
import threading
import time
import unittest

from cbx import ROOT, Daemon, DaemonTest, msg, reset_close


class PublishAndPoll(DaemonTest):
    def test_publish_before_subscribe_is_delivered_at_once(self):
        st, hdr, body = self.d.publish_xml(
            '<messages><message queue="alice">Hello &amp; welcome</message>'
            '<message queue="room.1" type="json">{"x": 1}</message></messages>')
        self.assertEqual(st, 200)
        self.assertEqual(hdr["content-type"], "application/json")
        ids = json.loads(body)["ids"]
        self.assertEqual(len(ids), 2)
        self.assertEqual(ids[1], ids[0] + 1)
        self.assertEqual(body, ('{"ids":[%d,%d]}\n' % tuple(ids)).encode())
        t0 = time.monotonic()
        st, hdr, body = self.d.poll("alice")
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(st, 200)
        self.assertEqual(hdr["content-type"], "application/json")
        self.assertEqual(hdr["cache-control"], "no-store")
        self.assertEqual(body, ('[{"id":%d,"queue":"alice","data":"Hello & welcome"}]\n' % ids[0]).encode())
        st, _, body = self.d.poll("room.1", since=0)
        self.assertEqual(body, ('[{"id":%d,"queue":"room.1","data":{"x":1}}]\n' % ids[1]).encode())

    def test_legacy_request_form_and_json_forms(self):
        st, _, body = self.d.publish_xml(
            "<Request><Command>Queue</Command><User>bob</User><Message>Hi &lt;3</Message></Request>", "text/xml")
        self.assertEqual(st, 200, body)
        a = json.loads(body)["ids"][0]
        st, _, body = self.d.publish_json([{"queue": "bob", "data": "two"}, {"queue": "bob", "data": [1, None]}])
        self.assertEqual(st, 200, body)
        b, c = json.loads(body)["ids"]
        st, _, body = self.d.poll("bob")
        self.assertEqual(json.loads(body), [msg(a, "bob", "Hi <3"), msg(b, "bob", "two"), msg(c, "bob", [1, None])])

    def test_held_poll_wakes_within_100ms_of_a_publish(self):
        p = self.d.open_stream("/poll/carol?since=0&timeout=20", read_head=False)
        self.d.wait_held(1)
        id_ = self.d.pub("carol", "wake up")
        t_pub = time.monotonic()
        p.read_head()
        self.assertEqual(p.status, 200)
        self.assertEqual(p.headers["content-type"], "application/json")
        body = p.read_body()
        took = time.monotonic() - t_pub
        self.assertEqual(json.loads(body), [msg(id_, "carol", "wake up")])
        self.assertLess(took, 0.1)
        p.close()

    def test_timeout_gives_empty_array(self):
        t0 = time.monotonic()
        st, hdr, body = self.d.poll("nobody", timeout=1)
        took = time.monotonic() - t0
        self.assertEqual((st, body), (200, b"[]\n"))
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, 3)
        st, _, body = self.d.poll("nobody", timeout=0)
        self.assertEqual((st, body), (200, b"[]\n"))

    def test_several_queues_in_one_poll_in_id_order(self):
        a = self.d.pub("q1", "a")
        b = self.d.pub("q2", "b")
        c = self.d.pub("q3", "c")
        d = self.d.pub("q1", "d")
        st, _, body = self.d.poll("q3,q1,q2", since=0)
        self.assertEqual(json.loads(body), [msg(a, "q1", "a"), msg(b, "q2", "b"), msg(c, "q3", "c"),
                                            msg(d, "q1", "d")])
        st, _, body = self.d.poll("q2,q3", since=b)
        self.assertEqual(json.loads(body), [msg(c, "q3", "c")])

    def test_mailbox_since_acknowledges_and_pending_excludes_acked(self):
        a = self.d.pub("mb", "a")
        b = self.d.pub("mb", "b")
        st, _, body = self.d.poll("mb", since=a)     # acknowledges a
        self.assertEqual(json.loads(body), [msg(b, "mb", "b")])
        st, _, body = self.d.poll("mb", timeout=0)   # pending: b only
        self.assertEqual(json.loads(body), [msg(b, "mb", "b")])
        st, _, body = self.d.poll("mb", since=0)     # a is acknowledged but retained
        self.assertEqual(json.loads(body), [msg(a, "mb", "a"), msg(b, "mb", "b")])

    def test_thousand_messages_arrive_exactly_once_in_order(self):
        sent = []
        done = threading.Event()

        def publisher():
            for i in range(0, 1000, 10):
                if i % 20 == 0:
                    st, _, body = self.d.publish_json([{"queue": "flood", "data": str(i + k)} for k in range(10)])
                    sent.extend(json.loads(body)["ids"])
                else:
                    for k in range(10):
                        sent.append(self.d.pub("flood", str(i + k)))
            done.set()

        t = threading.Thread(target=publisher)
        t.start()
        got, since = [], 0
        deadline = time.monotonic() + 60
        while len(got) < 1000 and time.monotonic() < deadline:
            st, _, body = self.d.poll("flood", since=since, timeout=5)
            self.assertEqual(st, 200)
            for m in json.loads(body):
                got.append(m)
                since = m["id"]
        t.join(30)
        self.assertEqual([m["data"] for m in got], [str(i) for i in range(1000)])
        self.assertEqual([m["id"] for m in got], sent)

    def test_max_batch_bounds_an_answer_and_the_rest_follows(self):
        ids = json.loads(self.d.publish_json([{"queue": "big", "data": str(i)} for i in range(250)])[2])["ids"]
        st, _, body = self.d.poll("big", since=0)
        first = json.loads(body)
        self.assertEqual([m["id"] for m in first], ids[:100])
        st, _, body = self.d.poll("big", since=first[-1]["id"])
        self.assertEqual([m["id"] for m in json.loads(body)], ids[100:200])


class Gaps(DaemonTest):
    ARGS = ["--queue-max-messages", "3"]

    def test_gap_after_overflow(self):
        ids = [self.d.pub("ovf", "m%d" % i) for i in range(5)]
        st, _, body = self.d.poll("ovf", since=0)
        self.assertEqual(json.loads(body), [
            {"type": "gap", "queue": "ovf", "from": 1, "to": ids[1], "reason": "overflow"},
            msg(ids[2], "ovf", "m2"), msg(ids[3], "ovf", "m3"), msg(ids[4], "ovf", "m4")])
        # a client that saw everything up to ids[1] lost nothing
        st, _, body = self.d.poll("ovf", since=ids[1])
        self.assertEqual([m["id"] for m in json.loads(body)], ids[2:])
        # pending mode: the two dropped messages were never acknowledged
        st, _, body = self.d.poll("ovf2", timeout=0)
        self.assertEqual(body, b"[]\n")

    def test_pending_poll_reports_lost_pending_messages(self):
        ids = [self.d.pub("p", "m%d" % i) for i in range(4)]
        st, _, body = self.d.poll("p")
        self.assertEqual(json.loads(body), [
            {"type": "gap", "queue": "p", "from": 1, "to": ids[0], "reason": "overflow"},
            msg(ids[1], "p", "m1"), msg(ids[2], "p", "m2"), msg(ids[3], "p", "m3")])


class Streams(DaemonTest):
    ARGS = ["--heartbeat", "1", "--idle-timeout", "5"]

    def test_stream_gets_three_publishes_as_three_lines(self):
        s = self.d.open_stream("/stream/news")
        self.assertEqual(s.status, 200)
        self.assertEqual(s.headers["content-type"], "application/x-ndjson; charset=utf-8")
        self.assertEqual(s.headers["x-content-type-options"], "nosniff")
        self.assertEqual(s.headers["cache-control"], "no-cache, no-store, no-transform")
        self.assertEqual(s.headers["x-accel-buffering"], "no")
        self.assertEqual(s.headers["transfer-encoding"], "chunked")
        self.assertNotIn("content-encoding", s.headers)
        self.assertEqual(s.line(), "[]\n")
        for i in range(3):
            id_ = self.d.pub("news", "n%d" % i)
            self.assertEqual(s.line(), '[{"id":%d,"queue":"news","data":"n%d"}]\n' % (id_, i))
        s.close()

    def test_stream_sends_pending_first_then_heartbeats(self):
        a = self.d.pub("hb", "old")
        s = self.d.open_stream("/stream/hb")
        self.assertEqual(s.line(), '[{"id":%d,"queue":"hb","data":"old"}]\n' % a)
        t0 = time.monotonic()
        self.assertEqual(s.line(timeout=5), "[]\n")
        self.assertGreater(time.monotonic() - t0, 0.5)
        s.close()

    def test_stream_head_carries_the_cursor_to_resume_from(self):
        """A client that never sees a stream's lines (a buffering proxy) can
        still get what the stream acknowledged for it, by polling from the
        cursor in the head."""
        a = self.d.pub("cur", "one")
        b = self.d.pub("cur", "two")
        st, _, body = self.d.poll("cur", since=a, timeout=0)  # acknowledges a
        self.assertEqual(json.loads(body), [msg(b, "cur", "two")])
        s = self.d.open_stream("/stream/cur")
        self.assertEqual(s.headers["cometbox-cursor"], str(a))
        self.assertEqual(s.line(), '[{"id":%d,"queue":"cur","data":"two"}]\n' % b)
        c = self.d.pub("cur", "three")
        self.assertEqual(s.line(), '[{"id":%d,"queue":"cur","data":"three"}]\n' % c)
        s.close()
        # the stream acknowledged b and c: they are no longer pending ...
        self.assertEqual(self.d.poll("cur", timeout=0)[2], b"[]\n")
        # ... but polling from the cursor gets them back
        st, _, body = self.d.poll("cur", since=a, timeout=0)
        self.assertEqual(json.loads(body), [msg(b, "cur", "two"), msg(c, "cur", "three")])
        # with a cursor of its own, the head repeats it; SSE's Last-Event-ID counts
        s = self.d.open_stream("/stream/cur?since=%d" % b)
        self.assertEqual(s.headers["cometbox-cursor"], str(b))
        s.close()
        s = self.d.open_stream("/events/cur", {"Last-Event-ID": str(c)})
        self.assertEqual(s.headers["cometbox-cursor"], str(c))
        s.close()
        # a long-poll answer has none
        self.assertNotIn("cometbox-cursor", self.d.poll("cur", timeout=0)[1])

    def test_sse_resume_with_last_event_id(self):
        a = self.d.pub("ev", "one")
        b = self.d.pub("ev", "two")
        s = self.d.open_stream("/events/ev?since=0", {"Last-Event-ID": str(a)})
        self.assertEqual(s.status, 200)
        self.assertEqual(s.headers["content-type"], "text/event-stream; charset=utf-8")
        self.assertEqual(s.headers["cache-control"], "no-cache, no-store, no-transform")
        retry = s.event()
        self.assertRegex(retry, r"^retry: (\d+)\n\n$")
        self.assertTrue(3000 <= int(re.match(r"retry: (\d+)", retry).group(1)) <= 5000)
        self.assertEqual(s.event(), 'id: %d\ndata: {"id":%d,"queue":"ev","data":"two"}\n\n' % (b, b))
        c = self.d.pub("ev", "three")
        self.assertEqual(s.event(), 'id: %d\ndata: {"id":%d,"queue":"ev","data":"three"}\n\n' % (c, c))
        self.assertEqual(s.event(timeout=5), ": heartbeat\n\n")
        s.close()

    def test_sse_gap_event(self):
        s = self.d.open_stream("/events/ev2?since=5")
        retry = s.event()
        self.assertTrue(retry.startswith("retry: "))
        gap = s.event()
        self.assertRegex(gap, r'^event: gap\ndata: \{"type":"gap","queue":"ev2","from":6,"to":\d+,"reason":"restart"\}\n\n$')
        s.close()


class StreamLimits(DaemonTest):
    ARGS = ["--stream-max-bytes", "1k"]

    def test_stream_ends_after_max_bytes_and_resumes_by_id(self):
        s = self.d.open_stream("/stream/big")
        self.assertEqual(s.line(), "[]\n")
        ids = [self.d.pub("big", "x" * 300) for _ in range(8)]
        body = s.read_to_end().decode()
        lines = body.splitlines(keepends=True)
        got = [m["id"] for l in lines for m in json.loads(l)]
        self.assertEqual(got, ids[:len(got)])
        # it ended with the line that crossed 1 KiB (the first line, "[]\n", counts too)
        self.assertGreaterEqual(3 + len(body), 1024, body)
        self.assertLess(3 + len(body) - len(lines[-1]), 1024, body)
        if len(got) < len(ids):
            s2 = self.d.open_stream("/stream/big?since=%d" % got[-1])
            rest = json.loads(s2.line())
            self.assertEqual([m["id"] for m in rest], ids[len(got):])
            s2.close()


class PublishErrors(DaemonTest):
    ARGS = ["--max-message-bytes", "100", "--max-publish-bytes", "2k"]

    def check(self, resp, status, code, detail=None):
        st, hdr, body = resp
        self.assertEqual(st, status, body)
        self.assertEqual(hdr["content-type"], "application/json")
        self.assertTrue(body.endswith(b"}\n"), body)
        j = json.loads(body)
        self.assertEqual(sorted(j), ["detail", "error"])
        self.assertEqual(j["error"], code)
        if detail is not None:
            self.assertEqual(j["detail"], detail)
        return hdr

    def assert_nothing_queued(self, queue="bad"):
        st, _, body = self.d.poll(queue, since=0, timeout=0)
        self.assertEqual((st, body), (200, b"[]\n"))

    def test_malformed_xml_names_line_and_column(self):
        self.check(self.d.publish_xml('<messages>\n<message queue="bad">x</mesage>\n</messages>'), 400, "malformed",
                   "line 2, column 25: mismatched tag")
        self.assert_nothing_queued()

    def test_bad_batch_is_atomic(self):
        self.check(self.d.publish_xml('<messages><message queue="bad">ok</message>'
                                      '<message queue="no/slash">x</message></messages>'), 400, "malformed",
                   'line 1, column 44: bad queue name "no/slash": use 1-128 letters, digits or ._:@-')
        self.assert_nothing_queued()
        self.check(self.d.publish_json([{"queue": "bad", "data": "ok"}, {"queue": "bad"}]), 400, "malformed",
                   'message 2: "data" is missing')
        self.assert_nothing_queued()
        self.check(self.d.publish_xml('<messages><message queue="bad">ok</message>'
                                      '<message queue="bad" type="json">{nope</message></messages>'),
                   400, "malformed")
        self.assert_nothing_queued()

    def test_each_refusal(self):
        self.check(self.d.publish_xml("<messages/>"), 400, "malformed", "empty batch: no messages")
        self.check(self.d.publish_xml('<message queue="bad" color="red">x</message>'), 400, "malformed",
                   'line 1, column 1: unknown attribute "color" on <message>')
        self.check(self.d.publish_xml('<message queue="bad"><b>x</b></message>'), 400, "malformed",
                   "line 1, column 22: <b> inside a message: a message holds text only")
        self.check(self.d.publish_xml('<message queue="bad" type="yaml">x</message>'), 400, "malformed",
                   'line 1, column 1: type must be "text" or "json", not "yaml"')
        self.check(self.d.publish_xml("<Request><Command>Delete</Command><User>bad</User><Message>x</Message>"
                                      "</Request>"), 400, "malformed")
        self.check(self.d.request("publish", "POST", "/publish", b'{"queue":"bad","data":1,"x":2}',
                                  {"Content-Type": "application/json"}), 400, "malformed",
                   'message 1: unexpected member "x"')
        self.check(self.d.request("publish", "POST", "/publish", b'{"queue":"bad",', {"Content-Type": "application/json"}),
                   400, "malformed")
        self.check(self.d.request("publish", "POST", "/nope", b"x", {"Content-Type": "application/xml"}), 404,
                   "not_found")
        hdr = self.check(self.d.request("publish", "GET", "/publish"), 405, "method_not_allowed")
        self.assertEqual(hdr["allow"], "POST")
        self.check(self.d.request("publish", "POST", "/publish", b"x", {"Content-Type": "text/plain"}), 415,
                   "unsupported_media_type")
        self.check(self.d.publish_xml('<message queue="bad">%s</message>' % ("y" * 101)), 413, "too_large")
        self.check(self.d.publish_json({"queue": "bad", "data": "z" * 101}), 413, "too_large",
                   'message 1: data for "bad" has 101 bytes, more than max-message-bytes (100)')
        self.check(self.d.publish_xml("<messages>" + " " * 3000 + "</messages>"), 413, "too_large",
                   "body over max-publish-bytes (2048)")
        self.assert_nothing_queued()

    def test_hostile_xml(self):
        laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]><message queue="bad">&lol2;</message>')
        self.check(self.d.publish_xml(laughs), 400, "malformed",
                   "line 1, column 37: DOCTYPE declarations are not allowed")
        xxe = '<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><message queue="bad">&x;</message>'
        self.check(self.d.publish_xml(xxe), 400, "malformed")
        deep = "<messages>" + "<a>" * 20 + "</a>" * 20 + "</messages>"
        self.check(self.d.publish_xml(deep), 400, "malformed")
        self.check(self.d.publish_xml(b'<message queue="bad">\xff\xfe</message>'), 400, "malformed")
        # huge attributes: a queue name far over 128 bytes, and an unknown one
        self.check(self.d.publish_xml('<message queue="%s">x</message>' % ("q" * 1500)), 400, "malformed",
                   'line 1, column 1: bad queue name "%s": use 1-128 letters, digits or ._:@-' % ("q" * 140))
        self.check(self.d.publish_xml('<message queue="bad" x="%s">x</message>' % ("y" * 1500)), 400, "malformed",
                   'line 1, column 1: unknown attribute "x" on <message>')
        self.assert_nothing_queued()
        # the daemon still works
        self.assertGreater(self.d.pub("bad", "fine"), 0)

    def test_healthz(self):
        st, _, body = self.d.request("publish", "GET", "/healthz")
        self.assertEqual((st, body), (200, b'{"status":"ok"}\n'))


class BrowserErrors(DaemonTest):
    ARGS = ["--cors-origins", "https://app.example https://other.example"]

    def check(self, path, status, code, method="GET", headers=None):
        st, hdr, body = self.d.request("browser", method, path, headers=headers)
        self.assertEqual(st, status, body)
        self.assertEqual(json.loads(body)["error"], code)
        return hdr, json.loads(body)["detail"]

    def test_bad_requests(self):
        _, detail = self.check("/poll/a,b/c", 400, "bad_request")
        self.assertEqual(detail, 'bad queue name "b/c": use 1-128 letters, digits or ._:@-')
        self.check("/poll/", 400, "bad_request")
        self.check("/poll/a,,b", 400, "bad_request")
        self.check("/poll/a,a", 400, "bad_request")
        self.check("/poll/" + ",".join("q%d" % i for i in range(17)), 400, "bad_request")
        self.check("/poll/" + "x" * 129, 400, "bad_request")
        self.check("/poll/a?since=-1", 400, "bad_request")
        self.check("/poll/a?since=9007199254740992", 400, "bad_request")
        self.check("/poll/a?timeout=121", 400, "bad_request")
        self.check("/stream/a?timeout=1", 400, "bad_request")
        self.check("/events/a", 400, "bad_request", headers={"Last-Event-ID": "abc"})
        self.check("/nothing", 404, "not_found")
        hdr, _ = self.check("/poll/a", 405, "method_not_allowed", method="POST")
        self.assertEqual(hdr["allow"], "GET, OPTIONS")

    def test_cors(self):
        st, hdr, body = self.d.request("browser", "OPTIONS", "/poll/a", headers={"Origin": "https://app.example"})
        self.assertEqual(st, 204)
        self.assertEqual(hdr["access-control-allow-origin"], "https://app.example")
        self.assertEqual(hdr["access-control-allow-methods"], "GET, OPTIONS")
        self.assertEqual(hdr["access-control-allow-headers"], "Last-Event-ID, Content-Type")
        st, hdr, body = self.d.poll("a", timeout=0, headers={"Origin": "https://other.example"})
        self.assertEqual(hdr["access-control-allow-origin"], "https://other.example")
        self.assertEqual(hdr["vary"], "Origin")
        st, hdr, body = self.d.poll("a", timeout=0, headers={"Origin": "https://evil.example"})
        self.assertNotIn("access-control-allow-origin", hdr)
        # errors carry the headers too, or a page on another site could not read them
        for path, status in (("/poll/a,a", 400), ("/nope", 404)):
            st, hdr, body = self.d.request("browser", "GET", path, headers={"Origin": "https://app.example"})
            self.assertEqual(st, status)
            self.assertEqual(hdr["access-control-allow-origin"], "https://app.example")
            self.assertEqual(hdr["access-control-expose-headers"], "Retry-After, Cometbox-Cursor")


class FanOutAnswers(DaemonTest):
    """Long-polls that get the same messages share one prepared answer per
    thread (hold.c); each still gets its own Origin's CORS headers, and the
    next message is a new answer, not the kept one."""
    ARGS = ["--cors-origins", "https://app.example https://other.example"]

    def test_same_message_to_many(self):
        origins = ["https://app.example", None, "https://other.example", "https://app.example",
                   None, None, "https://other.example", "https://app.example"]
        base = self.d.pub("other", "start")
        for round_ in range(3):
            threads, results = self.d.start_polls("fan", [{"Origin": o} if o else None for o in origins], base)
            self.d.wait_held(len(origins))
            base = self.d.pub("fan", {"round": round_})
            for t in threads:
                t.join(30)
            for origin, (st, hdr, body) in zip(origins, results):
                self.assertEqual(st, 200)
                self.assertEqual(json.loads(body), [msg(base, "fan", {"round": round_})])
                self.assertEqual(hdr["content-type"], "application/json")
                self.assertEqual(hdr["content-length"], str(len(body)))
                if origin in ("https://app.example", "https://other.example"):
                    self.assertEqual(hdr["access-control-allow-origin"], origin)
                else:
                    self.assertNotIn("access-control-allow-origin", hdr)
        # a long-poll that resumes from an older id gets both messages, not the kept answer
        second = self.d.pub("fan", "two")
        st, _, body = self.d.poll("fan", since=base - 1, timeout=0)
        self.assertEqual(json.loads(body), [msg(base, "fan", {"round": 2}), msg(second, "fan", "two")])


class StaticFiles(DaemonTest):
    def test_client_files_are_served_as_committed(self):
        js = os.path.join(ROOT, "clients", "js")
        for path, name, ctype in (("/cometbox.js", "cometbox.js", "text/javascript; charset=utf-8"),
                                  ("/cometbox.min.js", "cometbox.min.js", "text/javascript; charset=utf-8"),
                                  ("/cometbox.min.js.map", "cometbox.min.js.map", "application/json")):
            st, hdr, body = self.d.request("browser", "GET", path)
            self.assertEqual((st, hdr["content-type"], hdr["cache-control"]), (200, ctype, "no-store"), path)
            with open(os.path.join(js, name), "rb") as f:
                self.assertEqual(body, f.read(), path)
        # the demo page only with demo = on
        self.assertEqual(self.d.request("browser", "GET", "/demo")[0], 404)


class Lifecycle(unittest.TestCase):
    def test_graceful_stop_answers_held_requests(self):
        d = Daemon()
        try:
            results = []

            def poller(q):
                results.append(d.poll(q, timeout=60))

            threads = [threading.Thread(target=poller, args=("held%d" % i,)) for i in range(5)]
            for t in threads:
                t.start()
            s = d.open_stream("/stream/held-stream")
            self.assertEqual(s.line(), "[]\n")
            e = d.open_stream("/events/held-sse")
            e.event()
            d.wait_held(5)
            rc, took = d.stop()
            for t in threads:
                t.join(5)
            self.assertEqual(rc, 0, d.log)
            self.assertLess(took, 2.0)
            self.assertEqual(sorted(r[:1] + r[2:] for r in results), [(200, b"[]\n")] * 5)
            self.assertEqual(s.read_to_end(), b"")
            e.read_to_end()
        finally:
            d.cleanup()

    def test_stop_with_thousands_held_waits_for_every_suspended_one(self):
        # Memory safety at stop must not rest on a timer: libmicrohttpd
        # aborts in MHD_stop_daemon while any connection is suspended, so the
        # daemon waits until none is, however long the machine takes (a
        # loaded box, a sanitizer build); only writers that are not
        # suspended (a browser that reads nothing) are waited for with a bound.
        n = 3000
        d = Daemon("--max-connections-per-ip", "10000", "--log-level", "debug")
        socks = []
        try:
            for i in range(n):
                s = socket.create_connection((d.bhost, d.bport))
                path = "/poll/many%d?timeout=60" % (i % 50) if i % 10 else "/stream/many%d" % (i % 50)
                s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
                socks.append(s)
            d.wait_held(n - n // 10, timeout=60)
            d.wait_held(n // 10, "stream", timeout=60)
            rc, _ = d.stop(timeout=120)
            self.assertEqual(rc, 0, d.log[-3000:])
            self.assertNotIn("did not finish", d.log)
            answered = 0
            for s in socks:
                s.settimeout(10)
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                self.assertTrue(head.startswith(b"HTTP/1.1 200 OK"), data[:200])
                answered += 1
            self.assertEqual(answered, n)
        finally:
            for s in socks:
                s.close()
            d.cleanup()

    def test_requests_while_stopping_are_answered_503(self):
        # the daemons keep accepting until they stop (libmicrohttpd's quiesce
        # can abort an epoll daemon, docs/THREADS.md "Shutdown"): what comes
        # in meanwhile is refused with a clear 503 and queues nothing
        d = Daemon("--stream-max-bytes", "64m", "--queue-max-bytes", "64m")
        keep = http.client.HTTPConnection(d.phost, d.pport, timeout=10)  # a publisher's keep-alive
        stuck = socket.socket()
        try:
            keep.request("POST", "/publish", b'{"queue":"late","data":"before"}', {"Content-Type": "application/json"})
            r = keep.getresponse()
            self.assertEqual(r.status, 200, r.read())
            r.read()
            # a browser that reads nothing keeps its stream from finishing,
            # so the stop waits its 1.5 s for it: the window under test
            stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stuck.connect((d.bhost, d.bport))
            stuck.sendall(b"GET /stream/stuck HTTP/1.1\r\nHost: x\r\n\r\n")
            d.wait_held(1, "stream")
            for _ in range(200):
                d.pub("stuck", "y" * 60000)
            d.proc.send_signal(signal.SIGTERM)
            # logged once new work is refused
            self.assertIsNotNone(d.wait_for(re.compile(r"SIGTERM: stopping"), 10))
            stopping = (503, b'{"error":"unavailable","detail":"the server is stopping"}\n')
            keep.request("POST", "/publish", b'{"queue":"late","data":"kept-alive"}',
                         {"Content-Type": "application/json"})
            r = keep.getresponse()
            self.assertEqual((r.status, r.read()), stopping)
            self.assertEqual(r.getheader("Retry-After"), "5")
            st, hdr, body = d.publish_json({"queue": "late", "data": "new connection"})
            self.assertEqual((st, body, hdr["retry-after"]), stopping + ("5",))
            self.assertEqual(d.poll("late", since=0, timeout=0)[::2], stopping)
            self.assertIsNotNone(d.wait_for(re.compile(r"some held requests did not finish in time"), 10))
            rc, _ = d.stop()
            self.assertEqual(rc, 0, d.log)
        finally:
            keep.close()
            stuck.close()
            d.cleanup()

    def _closing_browsers_are_freed(self, queue, closed, wait_first):
        """For each transport: a browser sends a request on queue and closes
        (after its request is held when wait_first); within 2 s the daemon
        logs a line matching closed and holds nothing."""
        d = Daemon("--log-level", "debug")
        try:
            # A long-poll closed before it is held may have its request
            # thrown away by a reset, so there it closes with a FIN: a
            # half-close, answered when its timeout (1 s) ends.
            poll = "/poll/%s?timeout=%d" % (queue, 60 if wait_first else 1)
            for path, transport in ((poll, "long-poll"), ("/stream/" + queue, "stream"), ("/events/" + queue, "sse")):
                before = d.count(closed)
                sock = socket.create_connection((d.bhost, d.bport))
                sock.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
                if wait_first:
                    d.wait_held(1, transport)
                if transport == "long-poll" and wait_first:
                    # a FIN alone may be a half-close, answered as usual
                    # (test_review.HalfClosed); a reset means gone
                    reset_close(sock)
                else:
                    sock.close()  # a stream is probed with a heartbeat, which the closed peer resets
                deadline = time.monotonic() + (5 if transport == "long-poll" and not wait_first else 2)
                while d.count(closed) == before and time.monotonic() < deadline:
                    time.sleep(0.02)
                self.assertEqual(d.count(closed), before + 1, path + "\n" + d.log)
                d.wait_held(0, transport, timeout=1)
            self.assertEqual(d.stop()[0], 0)
        finally:
            d.cleanup()

    def test_disconnected_browser_is_freed_within_2s(self):
        self._closing_browsers_are_freed(
            "gone", re.compile(r"client \d+ \((long-poll|stream|sse), [^)]*\) closed: browser went away"), True)

    def test_browser_that_closes_right_after_its_request_is_freed(self):
        # the connection is watched for a closed peer only when its request
        # is about to wait: a peer that is already gone must still be seen
        # (whether the daemon saw the close before or after answering)
        self._closing_browsers_are_freed(
            "gone2", re.compile(r"client \d+ \((long-poll|stream|sse), [^)]*\) closed: "), False)

    def test_browser_connection_gauge_stays_exact_over_reaper_ticks(self):
        # the gauge counts browsers only, and stays exact over the reaper's
        # ticks (it once connected to the browser port itself at each tick)
        d = Daemon()
        try:
            sock = socket.create_connection((d.bhost, d.bport))
            sock.sendall(b"GET /poll/gauge?timeout=60 HTTP/1.1\r\nHost: x\r\n\r\n")
            d.wait_held(1)
            seen = set()
            end = time.monotonic() + 1.5  # about 7 ticks
            while time.monotonic() < end:
                seen.add(d.metrics()["cometbox_browser_connections"])
                time.sleep(0.05)
            self.assertEqual(seen, {1.0})
            reset_close(sock)
            d.wait_held(0, timeout=3)
            deadline = time.monotonic() + 3
            while d.metrics()["cometbox_browser_connections"] != 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertEqual(d.metrics()["cometbox_browser_connections"], 0)
            self.assertEqual(d.stop()[0], 0)
        finally:
            d.cleanup()

    def test_ids_after_restart_are_above_every_id_before(self):
        d = Daemon()
        try:
            last = max(json.loads(d.publish_json([{"queue": "r", "data": i} for i in range(100)])[2])["ids"])
            self.assertEqual(d.stop()[0], 0)
        finally:
            d.cleanup()
        d = Daemon()
        try:
            new = d.pub("r", "after")
            self.assertGreater(new, last)
            self.assertLess(new, 2 ** 53)
            st, _, body = d.poll("r", since=last)
            self.assertEqual(json.loads(body)[1:], [msg(new, "r", "after")])
            gap = json.loads(body)[0]
            self.assertEqual((gap["type"], gap["queue"], gap["from"], gap["reason"]), ("gap", "r", last + 1, "restart"))
            self.assertLess(gap["to"], new)
            self.assertEqual(d.stop()[0], 0)
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
