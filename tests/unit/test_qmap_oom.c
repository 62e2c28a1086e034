/* test_qmap_oom.c - a publish batch is all or nothing when memory runs out.
 * Built with CBX_QMAP_TESTING (tests/unit/CMakeLists.txt), which lets the
 * test fail the map's N-th allocation; not for the ordinary mailbox rules
 * (test_qmap.c). */
#include "../../common/qmap.h"
#include "test.h"

static const struct cbx_qmap_limits lim = {
    .queue_max_messages = 5, .queue_max_bytes = 1 << 20, .max_queues = 1000, .max_waiters_per_queue = 0,
    .max_total_bytes = 0, .retain_acked_us = 1000000, .message_ttl_us = 3600000000 };

static void wake_nothing(struct cbx_waiter *w) { (void)w; }

static void add(struct cbx_pub_batch *b, const char *q, const char *text)
{
    struct cbx_pub_limits pl = { 1000 };
    char why[128];

    CHECK_INT(cbx_pub_batch_add(b, q, strlen(q), text, strlen(text), false, &pl, why, sizeof why), CBX_OK);
}

/* What a batch may not change when it fails: the counters, the queues and
 * every message of queue "a" (read with since=0, which acknowledges nothing). */
static void snapshot(struct cbx_qmap *m, char *out, size_t len)
{
    struct cbx_qmap_stats st;
    struct cbx_queue_info *rows;
    struct cbx_waiter w;
    struct cbx_msg *msgs[64];
    unsigned flags;
    size_t n;
    char why[64];

    cbx_qmap_stats(m, &st);
    snprintf(out, len, "published %llu dropped %llu stored %llu/%llu B pending %llu/%llu B queues %llu last %llu;",
             (unsigned long long)st.published, (unsigned long long)st.dropped,
             (unsigned long long)st.stored_messages, (unsigned long long)st.stored_bytes,
             (unsigned long long)st.pending_messages, (unsigned long long)st.pending_bytes,
             (unsigned long long)st.queues, (unsigned long long)st.last_id);
    CHECK_INT(cbx_qmap_list(m, NULL, &rows, &n), CBX_OK);
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), len - strlen(out), " %s %llu/%llu", rows[i].name,
                 (unsigned long long)rows[i].pending, (unsigned long long)rows[i].stored);
    free(rows);
    cbx_waiter_init(&w);
    w.wake = wake_nothing;
    w.one_shot = true;
    CHECK_INT(cbx_qlist_parse("a", &w.queues, why, sizeof why), CBX_OK);
    CHECK_INT(cbx_qmap_subscribe(m, &w, true, 0, 64, false), CBX_OK);
    cbx_qmap_unsubscribe(m, &w);
    n = cbx_waiter_take(&w, msgs, 64, &flags);
    for (size_t i = 0; i < n; i++) {
        snprintf(out + strlen(out), len - strlen(out), " %.*s", (int)msgs[i]->len, msgs[i]->json);
        cbx_msg_unref(msgs[i]);
    }
    cbx_waiter_cleanup(&w);
}

/* Queue "a" is full to its ring (4 of 4 slots, 5 messages allowed); the batch
 * grows that ring, drops a's oldest message for overflow, and creates queue
 * "b" with a ring of its own (b_exists false) or grows b's full ring (true).
 * Whichever of those allocations fails, the publish fails with nothing of
 * the batch stored and nothing dropped. */
static void batch_all_or_nothing(bool b_exists)
{
    struct cbx_qmap *m = cbx_qmap_create(&lim);
    struct cbx_pub_batch b = { 0 }, pre = { 0 };
    char before[4096], after[4096];
    uint64_t ids[4], pre_ids[8];
    enum cbx_err rc = CBX_ERR_NOMEM;
    long k;

    for (int i = 0; i < 4; i++)
        add(&pre, "a", "old");
    for (int i = 0; i < 4 && b_exists; i++)
        add(&pre, "b", "old");
    CHECK_INT(cbx_qmap_publish(m, &pre, pre_ids, NULL), CBX_OK);
    add(&b, "a", "x1");
    add(&b, "a", "x2");
    add(&b, "b", "y");
    add(&b, "a", "x3");
    snapshot(m, before, sizeof before);
    for (k = 0; k < 32; k++) {
        cbx_qmap_test_allocs_left = k;
        rc = cbx_qmap_publish(m, &b, ids, NULL);
        cbx_qmap_test_allocs_left = -1;
        if (rc == CBX_OK)
            break;
        CHECK_INT(rc, CBX_ERR_NOMEM);
        snapshot(m, after, sizeof after);
        if (strcmp(before, after) != 0)
            fprintf(stderr, "allocation %ld failed:\n", k);
        CHECK_STR(after, before);
    }
    CHECK(k >= 2); /* the batch does allocate: a's bigger ring, b's ring (and queue b) */
    CHECK_INT(rc, CBX_OK);
    /* the successful attempt: consecutive ids right after the earlier batch */
    for (int i = 0; i < 4; i++)
        CHECK_INT(ids[i], pre_ids[b_exists ? 7 : 3] + 1 + (uint64_t)i);
    snapshot(m, after, sizeof after);
    CHECK(strstr(after, b_exists ? "published 12 dropped 2 stored 10/" : "published 8 dropped 2 stored 6/") != NULL);
    cbx_pub_batch_free(&b);
    cbx_pub_batch_free(&pre);
    cbx_qmap_destroy(m);
}

static void test_batch_with_a_new_queue_is_all_or_nothing(void) { batch_all_or_nothing(false); }
static void test_batch_growing_two_rings_is_all_or_nothing(void) { batch_all_or_nothing(true); }

int main(void)
{
    RUN(test_batch_with_a_new_queue_is_all_or_nothing);
    RUN(test_batch_growing_two_rings_is_all_or_nothing);
    TEST_DONE();
}
