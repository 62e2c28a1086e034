"""Integration tests of the queue map as the daemon shows it (docs/PROTOCOL.md
"Queues and ids", "Mailbox semantics", "Gaps"): consecutive ids, the restart
gap for a cursor above the newest id, subscriptions that do not use up
max-queues, and publish batches that are all or nothing. Run once per
threads mode (CBX_THREADS); not for transports or admin output."""
import json
import subprocess
import time
import unittest

from cbx import COMETBOXCTL, DaemonTest


def body_of(objs):
    """The exact bytes of a JSON answer: compact, then a newline."""
    return (json.dumps(objs, separators=(",", ":")) + "\n").encode()


def text_msg(id_, queue, data):
    return {"id": id_, "queue": queue, "data": data}


class QueueTest(DaemonTest):
    def stats(self):
        p = subprocess.run([COMETBOXCTL, "-s", self.d.admin, "--json", "stats"], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        return json.loads(p.stdout)

    def publish(self, items):
        """Publishes a JSON batch; checks the exact answer and returns the ids."""
        st, _, body = self.d.publish_json(items)
        self.assertEqual(st, 200, body)
        ids = json.loads(body)["ids"]
        self.assertEqual(body, body_of({"ids": ids}))
        return ids


class Ids(QueueTest):
    def test_ids_are_consecutive_within_a_run(self):
        first = self.stats()["first_id"]
        a = self.publish([{"queue": "tick", "data": "1"}])
        time.sleep(0.01)  # the clock moves on; the ids do not follow it
        b = self.publish([{"queue": "tock", "data": "2"}])
        time.sleep(0.01)
        c = self.publish([{"queue": "tick", "data": str(i)} for i in range(3)])
        self.assertEqual(a + b + c, list(range(first, first + 5)))
        self.assertEqual(self.stats()["last_id"], first + 4)

    def test_since_above_the_newest_id_is_a_restart_gap_and_acknowledges_nothing(self):
        first = self.stats()["first_id"]
        ids = self.publish([{"queue": "resume", "data": "m%d" % i} for i in range(3)])
        self.assertEqual(ids, [first, first + 1, first + 2])
        msgs = [text_msg(i, "resume", "m%d" % k) for k, i in enumerate(ids)]
        since = ids[-1] + 1000
        gap = {"type": "gap", "queue": "resume", "from": first, "to": since, "reason": "restart"}
        st, _, body = self.d.poll("resume", since=since)
        self.assertEqual((st, body), (200, body_of([gap] + msgs)))
        # nothing was acknowledged: a poll without since gets all three again
        st, _, body = self.d.poll("resume", timeout=0)
        self.assertEqual((st, body), (200, body_of(msgs)))
        # since = the newest id is an ordinary resume: nothing new
        st, _, body = self.d.poll("resume", since=ids[-1], timeout=0)
        self.assertEqual((st, body), (200, b"[]\n"))
        # a stream from such a cursor: Cometbox-Cursor is the first id - 1
        s = self.d.open_stream("/stream/resume,other?since=%d" % since)
        try:
            self.assertEqual(s.status, 200)
            self.assertEqual(s.headers["cometbox-cursor"], str(first - 1))
            gap2 = dict(gap, queue="other")
            self.assertEqual(s.line(), body_of([gap, gap2] + msgs).decode())
        finally:
            s.close()

    def test_restart_gap_on_a_fresh_daemon(self):
        first = self.stats()["first_id"]
        # nothing published: the newest id is first - 1, so first is above it ...
        st, _, body = self.d.poll("fresh", since=first, timeout=0)
        self.assertEqual((st, body), (200, body_of([{"type": "gap", "queue": "fresh", "from": first,
                                                     "to": first, "reason": "restart"}])))
        # ... and first - 1 resumes from the start of this run, with no gap
        st, _, body = self.d.poll("fresh", since=first - 1, timeout=0)
        self.assertEqual((st, body), (200, b"[]\n"))


class SubscriptionsAndMaxQueues(QueueTest):
    ARGS = ["--max-queues", "5"]
    FULL = b'{"error":"unavailable","detail":"too many queues (max-queues)"}\n'

    def test_polls_on_new_queues_do_not_use_up_max_queues(self):
        for r in range(50):
            names = ",".join("p%d-%d" % (r, i) for i in range(16))
            st, _, body = self.d.poll(names, timeout=0)
            self.assertEqual((st, body), (200, b"[]\n"), "poll %d" % r)
        self.publish([{"queue": "mailbox", "data": "hi"}])
        self.assertEqual(self.stats()["queues"], 1)
        # the publish side's limit still holds: five queues, then 503
        self.publish([{"queue": "m%d" % i, "data": "x"} for i in range(4)])
        st, hdr, body = self.d.publish_json({"queue": "one-too-many", "data": 1})
        self.assertEqual((st, body, hdr["retry-after"]), (503, self.FULL, "5"))
        self.assertEqual(self.stats()["queues"], 5)

    def test_held_polls_on_new_queues_do_not_count(self):
        polls = [self.d.start_polls("h%da,h%db" % (i, i), [None], since=0, timeout=20) for i in range(3)]
        self.d.wait_held(3)
        self.publish([{"queue": "other", "data": "x"}])
        self.assertEqual(self.stats()["queues"], 1)
        for i, (threads, results) in enumerate(polls):
            q = "h%d%s" % (i, "ab"[i % 2])
            [id_] = self.publish([{"queue": q, "data": "for %d" % i}])
            threads[0].join(10)
            self.assertEqual(results[0][0], 200)
            self.assertEqual(results[0][2], body_of([text_msg(id_, q, "for %d" % i)]))
        self.d.wait_held(0)
        st = self.stats()
        self.assertEqual((st["queues"], st["waiters"]), (4, 0))


class BatchBudget(QueueTest):
    ARGS = ["--max-total-bytes", "4k", "--queue-max-messages", "2"]
    BUDGET = (b'{"error":"unavailable","detail":"the memory budget for messages is full '
              b'(max-total-bytes, max-total-messages)"}\n')

    def test_batch_over_the_budget_changes_nothing(self):
        ids = self.publish([{"queue": "bq", "data": "old%d-" % i + "x" * 1000} for i in range(2)])
        before = [text_msg(id_, "bq", "old%d-" % i + "x" * 1000) for i, id_ in enumerate(ids)]
        # two more would push both out of the queue, but do not fit the budget
        st, hdr, body = self.d.publish_json([{"queue": "bq", "data": "new%d-" % i + "x" * 1000} for i in range(2)])
        self.assertEqual((st, body, hdr["retry-after"]), (503, self.BUDGET, "5"))
        st, _, body = self.d.poll("bq", since=0)
        self.assertEqual((st, body), (200, body_of(before)))
        s = self.stats()
        self.assertEqual((s["counters"]["published"], s["counters"]["dropped"], s["stored_messages"],
                          s["pending_messages"], s["last_id"]), (2, 0, 2, 2, ids[-1]))
        # and a batch that fits goes through whole, dropping for overflow as usual
        new = self.publish([{"queue": "bq", "data": "n%d" % i} for i in range(2)])
        self.assertEqual(new, [ids[-1] + 1, ids[-1] + 2])
        st, _, body = self.d.poll("bq", since=0)
        self.assertEqual(body, body_of([{"type": "gap", "queue": "bq", "from": 1, "to": ids[-1],
                                         "reason": "overflow"}] + [text_msg(new[i], "bq", "n%d" % i)
                                                                   for i in range(2)]))


if __name__ == "__main__":
    unittest.main()
