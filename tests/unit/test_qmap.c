/* test_qmap.c - the queue map: mailbox semantics, gaps, limits, expiry, and a
 * many-thread stress of publishers against waiting readers. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "../../common/mirror.h"
#include "../../common/qmap.h"
#include "test.h"

static const struct cbx_qmap_limits lim = {
    .queue_max_messages = 5, .queue_max_bytes = 1 << 20, .max_queues = 1000, .max_waiters_per_queue = 0,
    .max_total_bytes = 0, .retain_acked_us = 1000000, .message_ttl_us = 3600000000 };

static void wake_nothing(struct cbx_waiter *w) { (void)w; }

static uint64_t pub1(struct cbx_qmap *m, const char *q, const char *text)
{
    struct cbx_pub_batch b = { 0 };
    struct cbx_pub_limits pl = { 1000 };
    char why[128];
    uint64_t id = 0;

    CHECK_INT(cbx_pub_batch_add(&b, q, strlen(q), text, strlen(text), false, &pl, why, sizeof why), CBX_OK);
    CHECK_INT(cbx_qmap_publish(m, &b, &id, NULL), CBX_OK);
    cbx_pub_batch_free(&b);
    return id;
}

static void waiter_on(struct cbx_waiter *w, const char *queues)
{
    char why[128];

    cbx_waiter_init(w);
    w->wake = wake_nothing;
    CHECK_INT(cbx_qlist_parse(queues, &w->queues, why, sizeof why), CBX_OK);
}

/* Subscribes and returns the inbox ids, comma-joined, into out. */
static const char *sub(struct cbx_qmap *m, const char *queues, bool has_since, uint64_t since, char *out,
                       size_t len, struct cbx_waiter *w)
{
    struct cbx_msg *msgs[64];
    unsigned flags;
    size_t n;

    waiter_on(w, queues);
    w->one_shot = true;
    CHECK_INT(cbx_qmap_subscribe(m, w, has_since, since, 64, false), CBX_OK);
    n = cbx_waiter_take(w, msgs, 64, &flags);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        snprintf(out + strlen(out), len - strlen(out), "%s%.*s", i ? "," : "", (int)msgs[i]->len, msgs[i]->json);
        cbx_msg_unref(msgs[i]);
    }
    return out;
}

static void test_ids_and_delivery(void)
{
    struct cbx_qmap *m = cbx_qmap_create(&lim);
    struct cbx_qmap_stats st;
    struct cbx_waiter w;
    char out[4096], want[4096];
    uint64_t a, b;

    a = pub1(m, "alice", "hi");
    b = pub1(m, "alice", "there");
    CHECK(b > a);
    snprintf(want, sizeof want, "{\"id\":%llu,\"queue\":\"alice\",\"data\":\"hi\"},"
             "{\"id\":%llu,\"queue\":\"alice\",\"data\":\"there\"}", (unsigned long long)a, (unsigned long long)b);
    CHECK_STR(sub(m, "alice", false, 0, out, sizeof out, &w), want);
    CHECK(!w.linked); /* it had messages: answered at once */
    cbx_waiter_cleanup(&w);
    /* since=a acknowledges a */
    sub(m, "alice", true, a, out, sizeof out, &w);
    cbx_waiter_cleanup(&w);
    cbx_qmap_stats(m, &st);
    CHECK_INT(st.pending_messages, 1);
    CHECK_INT(st.stored_messages, 2);
    CHECK_INT(st.acked, 1);
    /* nothing new: the waiter is linked and the next publish fills it */
    sub(m, "alice,bob", true, b, out, sizeof out, &w);
    CHECK_STR(out, "");
    CHECK(w.linked);
    uint64_t c = pub1(m, "bob", "late");
    CHECK(!w.linked); /* one-shot: unlinked by the publish that filled it */
    CHECK_INT(w.n_inbox, 1);
    CHECK_INT(w.inbox[0]->id, c);
    cbx_waiter_cleanup(&w);
    cbx_qmap_destroy(m);
}

/* A stream whose browser went away (CBX_W_GONE, set by the reaper before
 * the stream ends) takes no message and acknowledges none: a client that
 * falls back to polling without an id still gets them as pending. */
static void test_gone_stream_takes_nothing(void)
{
    struct cbx_qmap *m = cbx_qmap_create(&lim);
    struct cbx_qmap_stats st;
    struct cbx_waiter w;
    char out[4096];

    waiter_on(&w, "carol");
    w.ack_on_deliver = true;
    w.inbox_max = 100;
    CHECK_INT(cbx_qmap_subscribe(m, &w, false, 0, SIZE_MAX, true), CBX_OK);
    cbx_waiter_signal(&w, CBX_W_GONE, NULL);
    uint64_t a = pub1(m, "carol", "one");
    CHECK_INT(w.n_inbox, 0);
    cbx_qmap_stats(m, &st);
    CHECK_INT(st.acked, 0);
    CHECK_INT(st.pending_messages, 1);
    cbx_qmap_unsubscribe(m, &w);
    cbx_waiter_cleanup(&w);
    struct cbx_waiter p;
    char want[256];
    snprintf(want, sizeof want, "{\"id\":%llu,\"queue\":\"carol\",\"data\":\"one\"}", (unsigned long long)a);
    CHECK_STR(sub(m, "carol", false, 0, out, sizeof out, &p), want);
    cbx_waiter_cleanup(&p);
    cbx_qmap_destroy(m);
}

/* A stream without since hands over (and acknowledges) what was pending;
 * w.start is where a client that never saw it resumes to get it all back:
 * the lowest acknowledgement point of the queues, never below this run. */
static void test_start_cursor(void)
{
    struct cbx_qmap *m = cbx_qmap_create(&lim);
    struct cbx_qmap_stats st;
    struct cbx_waiter w, p;
    char out[4096], want[4096];

    cbx_qmap_stats(m, &st);
    uint64_t a = pub1(m, "dave", "one");
    uint64_t b = pub1(m, "dave", "two");
    uint64_t c = pub1(m, "erin", "three");
    sub(m, "dave", true, a, out, sizeof out, &w); /* acknowledges a */
    cbx_waiter_cleanup(&w);
    CHECK_INT(w.start, a);

    waiter_on(&w, "dave");
    w.ack_on_deliver = true;
    w.inbox_max = 100;
    CHECK_INT(cbx_qmap_subscribe(m, &w, false, 0, SIZE_MAX, true), CBX_OK);
    CHECK_INT(w.start, a);
    CHECK_INT(w.n_inbox, 1); /* b, now acknowledged */
    cbx_qmap_unsubscribe(m, &w);
    cbx_waiter_cleanup(&w);
    snprintf(want, sizeof want, "{\"id\":%llu,\"queue\":\"dave\",\"data\":\"two\"}", (unsigned long long)b);
    CHECK_STR(sub(m, "dave", false, 0, out, sizeof out, &p), ""); /* nothing pending */
    cbx_qmap_unsubscribe(m, &p);
    cbx_waiter_cleanup(&p);
    CHECK_STR(sub(m, "dave", true, w.start, out, sizeof out, &p), want);
    cbx_waiter_cleanup(&p);

    /* two queues: the lower point; a queue never acknowledged: this run's start */
    waiter_on(&w, "dave,erin");
    w.ack_on_deliver = true;
    w.inbox_max = 100;
    CHECK_INT(cbx_qmap_subscribe(m, &w, false, 0, SIZE_MAX, true), CBX_OK);
    CHECK_INT(w.start, st.first_id - 1);
    CHECK(w.start < c);
    cbx_qmap_unsubscribe(m, &w);
    cbx_waiter_cleanup(&w);
    /* resuming there reports no restart gap: only the messages */
    snprintf(want, sizeof want, "{\"id\":%llu,\"queue\":\"dave\",\"data\":\"one\"},"
             "{\"id\":%llu,\"queue\":\"dave\",\"data\":\"two\"},"
             "{\"id\":%llu,\"queue\":\"erin\",\"data\":\"three\"}",
             (unsigned long long)a, (unsigned long long)b, (unsigned long long)c);
    CHECK_STR(sub(m, "dave,erin", true, st.first_id - 1, out, sizeof out, &p), want);
    CHECK_INT(p.n_gaps, 0);
    cbx_waiter_cleanup(&p);
    cbx_qmap_destroy(m);
}

static void test_overflow_gap(void)
{
    struct cbx_qmap *m = cbx_qmap_create(&lim);
    struct cbx_waiter w;
    char out[4096];
    uint64_t ids[8];

    for (int i = 0; i < 8; i++)
        ids[i] = pub1(m, "q", "x");
    sub(m, "q", true, 0, out, sizeof out, &w);
    CHECK_INT(w.n_gaps, 1);
    CHECK_INT(w.gaps[0].from, 1);
    CHECK_INT(w.gaps[0].to, ids[2]);
    CHECK_INT(w.gaps[0].reason, CBX_DROP_OVERFLOW);
    CHECK(strstr(out, "\"queue\"") != NULL);
    cbx_waiter_cleanup(&w);
    sub(m, "q", true, ids[2], out, sizeof out, &w);
    CHECK_INT(w.n_gaps, 0);
    cbx_waiter_cleanup(&w);
    /* a since before this map's first id is a restart gap */
    sub(m, "q", true, 5, out, sizeof out, &w);
    CHECK_INT(w.n_gaps, 1);
    CHECK_INT(w.gaps[0].reason, CBX_DROP_RESTART);
    CHECK_INT(w.gaps[0].from, 6);
    cbx_waiter_cleanup(&w);
    cbx_qmap_destroy(m);
}

static void test_flush_and_expiry(void)
{
    struct cbx_qmap_limits l = lim;
    struct cbx_qmap *m;
    struct cbx_qmap_stats st;
    struct cbx_waiter w;
    char out[256];
    uint64_t n, a;

    l.retain_acked_us = 0;
    m = cbx_qmap_create(&l);
    a = pub1(m, "f", "1");
    pub1(m, "f", "2");
    CHECK_INT(cbx_qmap_flush(m, "f", &n), CBX_OK);
    CHECK_INT(n, 2);
    CHECK_INT(cbx_qmap_flush(m, "nope", &n), CBX_ERR_NOT_FOUND);
    sub(m, "f", true, a, out, sizeof out, &w);
    CHECK_INT(w.n_gaps, 1);
    CHECK_INT(w.gaps[0].reason, CBX_DROP_FLUSHED);
    cbx_waiter_cleanup(&w);
    /* acknowledged messages go after retain-acked (0 here); idle empty queues are freed */
    a = pub1(m, "e", "x");
    sub(m, "e", true, a, out, sizeof out, &w);
    cbx_qmap_unsubscribe(m, &w);
    cbx_waiter_cleanup(&w);
    cbx_qmap_sweep(m, cbx_now_mono_us() + 1);
    cbx_qmap_stats(m, &st);
    CHECK_INT(st.stored_messages, 0);
    CHECK_INT(st.expired, 1);
    CHECK_INT(st.queues, 0);
    cbx_qmap_destroy(m);
}

static void test_max_queues(void)
{
    struct cbx_qmap_limits l = lim;
    struct cbx_qmap *m;
    struct cbx_pub_batch b = { 0 };
    struct cbx_pub_limits pl = { 100 };
    struct cbx_qmap_stats st;
    char why[64];
    uint64_t ids[2];

    l.max_queues = 1;
    m = cbx_qmap_create(&l);
    pub1(m, "one", "x");
    cbx_pub_batch_add(&b, "one", 3, "y", 1, false, &pl, why, sizeof why);
    cbx_pub_batch_add(&b, "two", 3, "z", 1, false, &pl, why, sizeof why);
    CHECK_INT(cbx_qmap_publish(m, &b, ids, NULL), CBX_ERR_FULL);
    cbx_qmap_stats(m, &st);
    CHECK_INT(st.published, 1); /* nothing of the refused batch */
    cbx_pub_batch_free(&b);
    cbx_qmap_destroy(m);
}

static void test_stop_refuses_publishes_and_subscriptions(void)
{
    struct cbx_qmap *m = cbx_qmap_create(&lim);
    struct cbx_pub_batch b = { 0 };
    struct cbx_pub_limits pl = { 100 };
    struct cbx_qmap_stats st;
    struct cbx_waiter w;
    char why[64];
    uint64_t id = 0;

    pub1(m, "stop", "before");
    cbx_qmap_stop(m);
    cbx_pub_batch_add(&b, "stop", 4, "after", 5, false, &pl, why, sizeof why);
    CHECK_INT(cbx_qmap_publish(m, &b, &id, NULL), CBX_ERR_STOPPING);
    cbx_qmap_stats(m, &st);
    CHECK_INT(st.published, 1); /* nothing of the refused batch */
    CHECK_INT(st.pending_messages, 1);
    waiter_on(&w, "stop");
    CHECK_INT(cbx_qmap_subscribe(m, &w, false, 0, 64, false), CBX_ERR_STOPPING);
    cbx_waiter_cleanup(&w);
    cbx_pub_batch_free(&b);
    cbx_qmap_destroy(m);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { 0, ms * 1000000 };
    nanosleep(&ts, NULL);
}

/* Within a run each id is the last one + 1, however far the clock moved
 * meanwhile (here a few milliseconds: the old rule took the clock's µs). */
static void test_ids_consecutive_regardless_of_clock(void)
{
    struct cbx_qmap *m = cbx_qmap_create(&lim);
    struct cbx_pub_batch b = { 0 };
    struct cbx_pub_limits pl = { 100 };
    struct cbx_qmap_stats st;
    char why[64];
    uint64_t a, c, ids[3];

    cbx_qmap_stats(m, &st);
    a = pub1(m, "tick", "1");
    CHECK_INT(a, st.first_id); /* the first id of a run is the wall clock at start, in µs */
    sleep_ms(3);
    c = pub1(m, "tock", "2");
    CHECK_INT(c, a + 1);
    sleep_ms(3);
    for (int i = 0; i < 3; i++)
        cbx_pub_batch_add(&b, "tick", 4, "b", 1, false, &pl, why, sizeof why);
    CHECK_INT(cbx_qmap_publish(m, &b, ids, NULL), CBX_OK);
    for (int i = 0; i < 3; i++)
        CHECK_INT(ids[i], c + 1 + (uint64_t)i);
    cbx_qmap_stats(m, &st);
    CHECK_INT(st.last_id, c + 3);
    cbx_pub_batch_free(&b);
    cbx_qmap_destroy(m);
}

/* A since above the newest id of this run (a client of an earlier run whose
 * clock was ahead) acknowledges nothing, reports a restart gap from this
 * run's first id F to since on each queue, and gets all this run holds. */
static void test_since_above_newest_is_a_restart_gap(void)
{
    struct cbx_qmap *m = cbx_qmap_create(&lim);
    struct cbx_qmap_stats st, st2;
    struct cbx_waiter w;
    char out[4096], want[4096];
    uint64_t f, a, b, c, d;

    cbx_qmap_stats(m, &st);
    f = st.first_id;
    /* nothing published yet: the newest is F - 1, so since = F is above it */
    sub(m, "r", true, f, out, sizeof out, &w);
    CHECK_STR(out, "");
    CHECK_INT(w.n_gaps, 1);
    if (w.n_gaps == 1) {
        CHECK_INT(w.gaps[0].from, f);
        CHECK_INT(w.gaps[0].to, f);
        CHECK_INT(w.gaps[0].reason, CBX_DROP_RESTART);
    }
    CHECK_INT(w.start, f - 1);
    CHECK(!w.linked); /* a gap is an answer */
    cbx_qmap_unsubscribe(m, &w);
    cbx_waiter_cleanup(&w);
    /* since = F - 1: the start of this run, no gap; the poll waits */
    sub(m, "r", true, f - 1, out, sizeof out, &w);
    CHECK_INT(w.n_gaps, 0);
    CHECK(w.linked);
    cbx_qmap_unsubscribe(m, &w);
    cbx_waiter_cleanup(&w);

    a = pub1(m, "r", "a");
    b = pub1(m, "r", "b");
    c = pub1(m, "r", "c");
    d = pub1(m, "s", "d");
    cbx_qmap_stats(m, &st);
    snprintf(want, sizeof want, "{\"id\":%llu,\"queue\":\"r\",\"data\":\"a\"},"
             "{\"id\":%llu,\"queue\":\"r\",\"data\":\"b\"},"
             "{\"id\":%llu,\"queue\":\"r\",\"data\":\"c\"},"
             "{\"id\":%llu,\"queue\":\"s\",\"data\":\"d\"}",
             (unsigned long long)a, (unsigned long long)b, (unsigned long long)c, (unsigned long long)d);
    CHECK_STR(sub(m, "r,s", true, d + 1000, out, sizeof out, &w), want);
    CHECK_INT(w.n_gaps, 2);
    for (size_t i = 0; i < w.n_gaps && i < 2; i++) {
        CHECK_STR(w.gaps[i].queue, i == 0 ? "r" : "s");
        CHECK_INT(w.gaps[i].from, f);
        CHECK_INT(w.gaps[i].to, d + 1000);
        CHECK_INT(w.gaps[i].reason, CBX_DROP_RESTART);
    }
    CHECK_INT(w.start, f - 1); /* the stream's Cometbox-Cursor */
    cbx_qmap_unsubscribe(m, &w);
    cbx_waiter_cleanup(&w);
    /* nothing was acknowledged */
    cbx_qmap_stats(m, &st2);
    CHECK_INT(st2.acked, st.acked);
    CHECK_INT(st2.pending_messages, 4);
    snprintf(want, sizeof want, "{\"id\":%llu,\"queue\":\"r\",\"data\":\"a\"},"
             "{\"id\":%llu,\"queue\":\"r\",\"data\":\"b\"},"
             "{\"id\":%llu,\"queue\":\"r\",\"data\":\"c\"}",
             (unsigned long long)a, (unsigned long long)b, (unsigned long long)c);
    CHECK_STR(sub(m, "r", false, 0, out, sizeof out, &w), want);
    cbx_qmap_unsubscribe(m, &w);
    cbx_waiter_cleanup(&w);
    /* the boundary: since = the newest id is an ordinary resume */
    sub(m, "r,s", true, d, out, sizeof out, &w);
    CHECK_STR(out, "");
    CHECK_INT(w.n_gaps, 0);
    cbx_qmap_unsubscribe(m, &w);
    cbx_waiter_cleanup(&w);
    /* newest + 1 is above it; a message dropped this run is inside [F, since] */
    for (int i = 0; i < 6; i++)
        pub1(m, "r", "more"); /* r keeps 5: a to c and one more are dropped */
    cbx_qmap_stats(m, &st);
    sub(m, "r", true, st.last_id + 1, out, sizeof out, &w);
    CHECK_INT(w.n_gaps, 1);
    if (w.n_gaps == 1) {
        CHECK_INT(w.gaps[0].from, f);
        CHECK_INT(w.gaps[0].to, st.last_id + 1);
        CHECK_INT(w.gaps[0].reason, CBX_DROP_RESTART);
    }
    CHECK_INT(w.n_inbox, 0); /* taken by sub(): five messages */
    CHECK(strstr(out, "\"more\"") != NULL);
    cbx_qmap_unsubscribe(m, &w);
    cbx_waiter_cleanup(&w);
    /* a stream with such a since: its cursor is F - 1 too, and it stays linked */
    waiter_on(&w, "r");
    w.ack_on_deliver = true;
    w.inbox_max = 100;
    CHECK_INT(cbx_qmap_subscribe(m, &w, true, st.last_id + 7, SIZE_MAX, true), CBX_OK);
    CHECK_INT(w.start, f - 1);
    CHECK_INT(w.n_gaps, 1);
    CHECK_INT(w.n_inbox, 5);
    CHECK(w.linked);
    cbx_qmap_unsubscribe(m, &w);
    cbx_waiter_cleanup(&w);
    cbx_qmap_destroy(m);
}

/* Subscribing creates no queue that counts against max-queues: polls with
 * timeout=0 (subscribe, unsubscribe) on many new queues leave nothing, and
 * a held poll's queues do not count until something is published there. */
static void test_subscriptions_do_not_use_up_max_queues(void)
{
    struct cbx_qmap_limits l = lim;
    struct cbx_qmap *m;
    struct cbx_qmap_stats st;
    struct cbx_waiter w, held;
    struct cbx_queue_info *rows;
    size_t n;
    char names[256], why[64];

    l.max_queues = 2;
    m = cbx_qmap_create(&l);
    for (int r = 0; r < 10; r++) {
        names[0] = '\0';
        for (int i = 0; i < 16; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%sn%d-%d", i ? "," : "", r, i);
        waiter_on(&w, names);
        w.one_shot = true;
        CHECK_INT(cbx_qmap_subscribe(m, &w, false, 0, 64, false), CBX_OK);
        cbx_qmap_unsubscribe(m, &w);
        cbx_qmap_unsubscribe(m, &w);
        cbx_waiter_cleanup(&w);
    }
    cbx_qmap_stats(m, &st);
    CHECK_INT(st.queues, 0);
    CHECK_INT(st.placeholders, 0);
    pub1(m, "first", "x");

    waiter_on(&held, "h1,h2");
    held.one_shot = true;
    CHECK_INT(cbx_qmap_subscribe(m, &held, false, 0, 64, false), CBX_OK);
    CHECK(held.linked);
    cbx_qmap_stats(m, &st);
    CHECK_INT(st.queues, 1);
    CHECK_INT(st.placeholders, 2);
    CHECK_INT(st.waiters, 1);
    CHECK_INT(cbx_qmap_list(m, "h*", &rows, &n), CBX_OK); /* listed, and marked */
    CHECK_INT(n, 2);
    for (size_t i = 0; i < n; i++) {
        CHECK(rows[i].placeholder);
        CHECK_INT(rows[i].waiters, 1);
        CHECK_INT(rows[i].stored, 0);
    }
    free(rows);
    uint64_t id = pub1(m, "h2", "for the held poll"); /* the second queue: within max-queues */
    CHECK(!held.linked);
    CHECK_INT(held.n_inbox, 1);
    if (held.n_inbox == 1)
        CHECK_INT(held.inbox[0]->id, id);
    cbx_qmap_unsubscribe(m, &held);
    cbx_waiter_cleanup(&held);
    cbx_qmap_stats(m, &st);
    CHECK_INT(st.queues, 2);
    CHECK_INT(st.placeholders, 0); /* h1 went with the poll */
    CHECK_INT(st.waiters, 0);
    /* a third queue is refused to a publish, not to a subscription */
    struct cbx_pub_batch b = { 0 };
    struct cbx_pub_limits pl = { 100 };
    uint64_t ids[1];
    cbx_pub_batch_add(&b, "h1", 2, "x", 1, false, &pl, why, sizeof why);
    CHECK_INT(cbx_qmap_publish(m, &b, ids, NULL), CBX_ERR_FULL);
    cbx_pub_batch_free(&b);
    waiter_on(&w, "h1");
    w.one_shot = true;
    CHECK_INT(cbx_qmap_subscribe(m, &w, false, 0, 64, false), CBX_OK);
    cbx_qmap_unsubscribe(m, &w);
    cbx_waiter_cleanup(&w);
    /* the sweep frees nothing a waiter needs, and an unlinked placeholder is gone */
    cbx_qmap_sweep(m, cbx_now_mono_us());
    cbx_qmap_stats(m, &st);
    CHECK_INT(st.queues, 2);
    CHECK_INT(st.placeholders, 0);
    CHECK_INT(cbx_qmap_flush(m, "h1", &id), CBX_ERR_NOT_FOUND);
    cbx_qmap_destroy(m);
}

/* An observer (an admin tail) takes no place: with max-waiters-per-queue 1
 * a subscriber still gets in beside it; it is in no count (waiters,
 * delivered, a queue's waiters), acknowledges nothing, is passed by a
 * kick, keeps a placeholder alive, and still gets every message. */
static void test_observer_is_not_counted(void)
{
    struct cbx_qmap_limits l = lim;
    struct cbx_qmap *m;
    struct cbx_qmap_stats st;
    struct cbx_waiter obs, browser, second;
    struct cbx_queue_info *rows;
    struct cbx_msg *msgs[8];
    unsigned flags;
    size_t n;
    uint64_t count, a, b;

    l.max_waiters_per_queue = 1;
    m = cbx_qmap_create(&l);
    waiter_on(&obs, "room");
    obs.observer = true;
    obs.ack_on_deliver = true; /* refused: an observer acknowledges nothing */
    CHECK_INT(cbx_qmap_subscribe(m, &obs, false, 0, 0, true), CBX_ERR_INVALID);
    obs.ack_on_deliver = false;
    CHECK_INT(cbx_qmap_subscribe(m, &obs, true, 5, 0, true), CBX_ERR_INVALID);
    CHECK_INT(cbx_qmap_subscribe(m, &obs, false, 0, 0, true), CBX_OK);
    CHECK(obs.linked);
    /* alone on a queue nobody published to, it keeps the placeholder */
    cbx_qmap_sweep(m, cbx_now_mono_us() + 10 * l.retain_acked_us);
    cbx_qmap_stats(m, &st);
    CHECK_INT(st.placeholders, 1);
    CHECK_INT(st.waiters, 0);

    /* the one place on the queue is still free for a subscriber (a stream) */
    waiter_on(&browser, "room");
    browser.ack_on_deliver = true;
    CHECK_INT(cbx_qmap_subscribe(m, &browser, false, 0, 64, true), CBX_OK);
    waiter_on(&second, "room"); /* and it is taken now */
    CHECK_INT(cbx_qmap_subscribe(m, &second, false, 0, 64, true), CBX_ERR_BUSY);
    cbx_qmap_unsubscribe(m, &second);
    cbx_waiter_cleanup(&second);

    a = pub1(m, "room", "one");
    b = pub1(m, "room", "two");
    n = cbx_waiter_take(&obs, msgs, 8, &flags);
    CHECK_INT(n, 2);
    for (size_t i = 0; i < n; i++) {
        CHECK_INT(msgs[i]->id, i == 0 ? a : b);
        cbx_msg_unref(msgs[i]);
    }
    cbx_qmap_stats(m, &st);
    CHECK_INT(st.waiters, 1);   /* the stream alone */
    CHECK_INT(st.delivered, 2); /* to the stream; the observer's copies are not deliveries */
    CHECK_INT(st.acked, 2);     /* by the stream */
    CHECK_INT(cbx_qmap_list(m, "room", &rows, &n), CBX_OK);
    CHECK_INT(n, 1);
    if (n == 1)
        CHECK_INT(rows[0].waiters, 1);
    free(rows);

    /* a kick reaches the stream, not the observer */
    CHECK_INT(cbx_qmap_signal_queue(m, "room", CBX_W_KICK, "bye", &count), CBX_OK);
    CHECK_INT(count, 1);
    CHECK_INT(cbx_waiter_take(&obs, msgs, 8, &flags), 0);
    CHECK_INT(flags, 0);
    n = cbx_waiter_take(&browser, msgs, 8, &flags);
    CHECK_INT(flags, CBX_W_KICK);
    for (size_t i = 0; i < n; i++)
        cbx_msg_unref(msgs[i]);
    cbx_qmap_unsubscribe(m, &browser);
    cbx_waiter_cleanup(&browser);

    /* the observer alone acknowledges nothing: pending stays */
    pub1(m, "room", "three");
    cbx_qmap_stats(m, &st);
    CHECK_INT(st.pending_messages, 1);
    CHECK_INT(st.delivered, 2);
    CHECK_INT(st.waiters, 0);
    cbx_qmap_unsubscribe(m, &obs);
    cbx_waiter_cleanup(&obs);
    cbx_qmap_destroy(m);
}

/* max-total-messages holds on its own, with max-total-bytes unlimited (0). */
static void test_max_total_messages_without_a_byte_budget(void)
{
    struct cbx_qmap_limits l = lim;
    struct cbx_qmap *m;
    struct cbx_pub_batch b = { 0 };
    struct cbx_pub_limits pl = { 100 };
    struct cbx_qmap_stats st;
    char why[64];
    uint64_t id;

    l.max_total_bytes = 0;
    l.max_total_messages = 2;
    m = cbx_qmap_create(&l);
    pub1(m, "t1", "x");
    pub1(m, "t2", "y");
    cbx_pub_batch_add(&b, "t1", 2, "z", 1, false, &pl, why, sizeof why);
    CHECK_INT(cbx_qmap_publish(m, &b, &id, NULL), CBX_ERR_BUDGET);
    cbx_qmap_stats(m, &st);
    CHECK_INT(st.stored_messages, 2);
    CHECK_INT(st.refused_budget, 1);
    cbx_pub_batch_free(&b);
    cbx_qmap_destroy(m);
}

/* ---- stress: publishers against readers that poll with since --------- */

#define PUBLISHERS 4
#define READERS 8
#define PER_PUBLISHER 2000

static struct cbx_qmap *stress_map;
static _Atomic int publishers_done;

struct stress_waiter {
    struct cbx_waiter w;
    pthread_cond_t cond;
};

static void wake_cond(struct cbx_waiter *w) { pthread_cond_signal(&((struct stress_waiter *)w)->cond); }

static void *publisher(void *arg)
{
    char q[16], text[32];

    for (int i = 0; i < PER_PUBLISHER; i++) {
        snprintf(q, sizeof q, "s%d", (int)(intptr_t)arg % 2);
        snprintf(text, sizeof text, "%d", i);
        pub1(stress_map, q, text);
    }
    atomic_fetch_add(&publishers_done, 1);
    return NULL;
}

/* Reads queues s0,s1 with since until it has seen every message once. */
static void *reader(void *arg)
{
    uint64_t since = (uint64_t)(uintptr_t)arg, last = 0;
    long got = 0, dup = 0;
    struct cbx_msg *msgs[64];

    while (got < PUBLISHERS * PER_PUBLISHER) {
        struct stress_waiter sw;
        unsigned flags;
        char why[64];
        size_t n;

        cbx_waiter_init(&sw.w);
        pthread_cond_init(&sw.cond, NULL);
        sw.w.wake = wake_cond;
        sw.w.one_shot = true;
        cbx_qlist_parse("s0,s1", &sw.w.queues, why, sizeof why);
        cbx_qmap_subscribe(stress_map, &sw.w, true, since, 64, false);
        pthread_mutex_lock(&sw.w.mu);
        while (sw.w.n_inbox == 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 5;
            if (pthread_cond_timedwait(&sw.cond, &sw.w.mu, &ts) != 0)
                break; /* a lost wake-up shows as a miss below */
        }
        pthread_mutex_unlock(&sw.w.mu);
        cbx_qmap_unsubscribe(stress_map, &sw.w);
        n = cbx_waiter_take(&sw.w, msgs, 64, &flags);
        if (n == 0) {
            fprintf(stderr, "reader: no wake-up within 5 s after %ld messages\n", got);
            cbx_waiter_cleanup(&sw.w);
            pthread_cond_destroy(&sw.cond);
            return (void *)1;
        }
        for (size_t i = 0; i < n; i++) {
            if (msgs[i]->id <= last)
                dup++;
            last = msgs[i]->id;
            got++;
            cbx_msg_unref(msgs[i]);
        }
        since = last;
        cbx_waiter_cleanup(&sw.w);
        pthread_cond_destroy(&sw.cond);
    }
    return (void *)(intptr_t)(dup != 0);
}

static void test_stress(void)
{
    struct cbx_qmap_limits l = lim;
    pthread_t p[PUBLISHERS], r[READERS];
    struct cbx_qmap_stats st;
    void *res;
    int bad = 0;

    l.queue_max_messages = 100000;
    stress_map = cbx_qmap_create(&l);
    cbx_qmap_stats(stress_map, &st);
    for (int i = 0; i < READERS; i++)
        pthread_create(&r[i], NULL, reader, (void *)(uintptr_t)0);
    for (int i = 0; i < PUBLISHERS; i++)
        pthread_create(&p[i], NULL, publisher, (void *)(intptr_t)i);
    for (int i = 0; i < PUBLISHERS; i++)
        pthread_join(p[i], NULL);
    for (int i = 0; i < READERS; i++) {
        pthread_join(r[i], &res);
        bad += res != NULL;
    }
    CHECK_INT(bad, 0);
    cbx_qmap_stats(stress_map, &st);
    CHECK_INT(st.published, PUBLISHERS * PER_PUBLISHER);
    CHECK_INT(st.waiters, 0);
    cbx_qmap_destroy(stress_map);
}

/* broker = redis: the map only mirrors Redis, so a browser may wait only on
 * a queue the broker loaded (one the sweep forgot would hear nothing): the
 * subscribe says CBX_ERR_AGAIN and changes nothing; a tail may watch
 * anything. */
static int forgotten;
static void hook_nothing(void *ctx) { (void)ctx; }
static void hook_forget(void *ctx, const char *name, size_t len)
{
    (void)ctx;
    CHECK(len == 1 && name[0] == 'a');
    forgotten++;
}

static void test_mirror_waits_only_on_loaded_queues(void)
{
    static const char load[] = "L 100 1 1\nQ 1 a 0 0 0 0 0 0\n";
    struct cbx_qmap_log log = { 0 };
    struct cbx_mirror_update u;
    struct cbx_qmap_stats st;
    struct cbx_waiter browser, tail, again;
    struct cbx_qmap *m = cbx_qmap_create(&lim);
    char err[128];

    log.kick = hook_nothing;
    log.forget = hook_forget;
    cbx_qmap_set_log(m, &log);
    waiter_on(&browser, "a");
    CHECK_INT(cbx_qmap_subscribe(m, &browser, false, 0, 64, true), CBX_ERR_AGAIN);
    CHECK(!browser.linked);
    cbx_qmap_stats(m, &st);
    CHECK_INT(st.placeholders + st.queues, 0); /* nothing made, nothing left */
    waiter_on(&tail, "a");
    tail.observer = true;
    CHECK_INT(cbx_qmap_subscribe(m, &tail, false, 0, 0, true), CBX_OK);

    CHECK_INT(cbx_mirror_parse(load, sizeof load - 1, &u, err, sizeof err), CBX_OK);
    CHECK_INT(cbx_qmap_mirror_apply(m, &u), CBX_OK);
    cbx_mirror_update_free(&u);
    /* what a request needs from Redis first (the last id heard of is 100) */
    {
        struct cbx_qlist a, ab;
        CHECK_INT(cbx_qlist_parse("a", &a, err, sizeof err), CBX_OK);
        CHECK_INT(cbx_qlist_parse("a,b", &ab, err, sizeof err), CBX_OK);
        CHECK_INT(cbx_qmap_mirror_need(m, &a, false, 0), CBX_MIRROR_LOAD);  /* no since */
        CHECK_INT(cbx_qmap_mirror_need(m, &a, true, 0), CBX_MIRROR_READY);
        CHECK_INT(cbx_qmap_mirror_need(m, &a, true, 50), CBX_MIRROR_ACK);   /* acknowledges more */
        CHECK_INT(cbx_qmap_mirror_need(m, &a, true, 101), CBX_MIRROR_LOAD); /* above the last id */
        CHECK_INT(cbx_qmap_mirror_need(m, &ab, true, 0), CBX_MIRROR_LOAD);  /* b is not mirrored */
        cbx_qmap_mirror_acked(m, "a", 1, 50);
        CHECK_INT(cbx_qmap_mirror_need(m, &a, true, 50), CBX_MIRROR_READY);
        CHECK(cbx_qmap_mirrored(m, "a", 1));
        CHECK(!cbx_qmap_mirrored(m, "b", 1));
        cbx_qlist_free(&a);
        cbx_qlist_free(&ab);
    }
    CHECK_INT(cbx_qmap_subscribe(m, &browser, false, 0, 64, true), CBX_OK);
    CHECK(browser.linked);

    /* nobody waits: the sweep forgets it, and the broker hears of it */
    cbx_qmap_unsubscribe(m, &browser);
    cbx_qmap_unsubscribe(m, &tail);
    cbx_qmap_sweep(m, cbx_now_mono_us() + 10 * lim.retain_acked_us);
    CHECK_INT(forgotten, 1);
    waiter_on(&again, "a");
    CHECK_INT(cbx_qmap_subscribe(m, &again, true, 0, 64, true), CBX_ERR_AGAIN);
    cbx_waiter_cleanup(&browser);
    cbx_waiter_cleanup(&tail);
    cbx_waiter_cleanup(&again);
    cbx_qmap_destroy(m);
}

int main(void)
{
    RUN(test_ids_and_delivery);
    RUN(test_gone_stream_takes_nothing);
    RUN(test_start_cursor);
    RUN(test_overflow_gap);
    RUN(test_flush_and_expiry);
    RUN(test_max_queues);
    RUN(test_stop_refuses_publishes_and_subscriptions);
    RUN(test_ids_consecutive_regardless_of_clock);
    RUN(test_since_above_newest_is_a_restart_gap);
    RUN(test_subscriptions_do_not_use_up_max_queues);
    RUN(test_observer_is_not_counted);
    RUN(test_mirror_waits_only_on_loaded_queues);
    RUN(test_max_total_messages_without_a_byte_budget);
    RUN(test_stress);
    TEST_DONE();
}
