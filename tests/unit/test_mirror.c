/* test_mirror.c - cbx_mirror_parse(): the text broker.lua writes for a load
 * ('L') and a change ('N') read into exactly its queues and messages, and
 * every other text refused with out left empty. Not for applying it to the
 * map (qmap_mirror.c) nor for the "E BATCH" lines (cometboxd/broker_sub.c). */
#include <stdbool.h>
#include <stdint.h>

#include "../../common/mirror.h"
#include "../../common/qmap.h"
#include "test.h"

/* A literal and its length (it may hold NUL bytes). */
#define LIT(s) s, sizeof s - 1

/* Prints bytes with what is not printable as \xHH, for a failed check. */
static void put_bytes(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            fputc(c, stderr);
        else
            fprintf(stderr, "\\x%02x", c);
    }
}

#define CHECK_MEM(got, got_len, want, want_len)                                                          \
    do {                                                                                                 \
        size_t gl_ = (got_len), wl_ = (want_len);                                                        \
        test_checks++;                                                                                   \
        if (gl_ != wl_ || memcmp((got), (want), wl_) != 0) {                                             \
            fprintf(stderr, "%s:%d: FAILED: %s:\n  expected \"", __FILE__, __LINE__, #got);              \
            put_bytes((want), wl_);                                                                      \
            fprintf(stderr, "\"\n  got      \"");                                                        \
            put_bytes((got), gl_);                                                                       \
            fprintf(stderr, "\"\n");                                                                     \
            test_failures++;                                                                             \
        }                                                                                                \
    } while (0)

/* The text in a buffer of exactly its length, so that ASan reports a read
 * past it (the parser must not rely on a NUL after the text). */
static char *exact(const char *text, size_t len)
{
    char *p = malloc(len ? len : 1);

    if (p == NULL)
        abort();
    memcpy(p, text, len);
    return p;
}

/* Parses text and checks it is accepted; u is then the caller's to free. */
static void parse_ok(int line, const char *text, size_t len, struct cbx_mirror_update *u)
{
    char *t = exact(text, len), err[128] = "";
    int before = test_failures;

    memset(u, 0x5a, sizeof *u); /* the parser zeroes it first */
    CHECK_INT(cbx_mirror_parse(t, len, u, err, sizeof err), CBX_OK);
    CHECK_STR(err, "");
    if (test_failures != before) {
        fprintf(stderr, "  (the text of line %d: \"", line);
        put_bytes(text, len);
        fprintf(stderr, "\")\n");
        memset(u, 0, sizeof *u); /* nothing to free */
    }
    free(t);
}

/* Parses text and checks it is refused with want in err and out empty. */
static void refused(int line, const char *text, size_t len, const char *want)
{
    char *t = exact(text, len), err[128] = "";
    struct cbx_mirror_update u;
    int before = test_failures;

    enum cbx_err rc;

    memset(&u, 0x5a, sizeof u);
    rc = cbx_mirror_parse(t, len, &u, err, sizeof err);
    CHECK_INT(rc, CBX_ERR_INVALID);
    CHECK_STR(err, want);
    CHECK(!u.load);
    CHECK_INT(u.last_id, 0);
    CHECK_INT(u.first_id, 0);
    CHECK(u.qs == NULL);
    CHECK_INT(u.nq, 0);
    if (test_failures != before) {
        fprintf(stderr, "  (the text of line %d: \"", line);
        put_bytes(text, len);
        fprintf(stderr, "\")\n");
    }
    if (rc == CBX_OK)
        cbx_mirror_update_free(&u); /* accepted by mistake: not a leak of the parser's */
    free(t);
}

#define OK(lit, u) parse_ok(__LINE__, LIT(lit), u)
#define BAD(lit, want) refused(__LINE__, LIT(lit), want)

static void check_queue(const struct cbx_mirror_queue *q, const char *name, uint64_t acked, uint64_t lost_to,
                        int lost_reason, uint64_t purged_to, int purged_reason, size_t n)
{
    CHECK_STR(q->name, name);
    CHECK_INT(q->name_len, strlen(name));
    CHECK_INT(q->acked, acked);
    CHECK_INT(q->lost_to, lost_to);
    CHECK_INT(q->lost_reason, lost_reason);
    CHECK_INT(q->purged_to, purged_to);
    CHECK_INT(q->purged_reason, purged_reason);
    CHECK_INT(q->n, n);
    CHECK(n > 0 ? q->msgs != NULL : q->msgs == NULL);
}

/* m is message id, published at pub, whose encoding is {"id":ID then tail. */
static void check_msg(const struct cbx_msg *m, uint64_t id, int64_t pub, const char *tail, size_t tail_len)
{
    char want[256];
    size_t n = (size_t)snprintf(want, sizeof want, "{\"id\":%llu", (unsigned long long)id);
    size_t got_tail_len;
    const char *got_tail = cbx_msg_tail(m, &got_tail_len);

    memcpy(want + n, tail, tail_len);
    CHECK_INT(m->id, id);
    CHECK_INT(m->published_us, pub);
    CHECK_INT(m->refs, 1);
    CHECK_MEM(got_tail, got_tail_len, tail, tail_len);
    CHECK_MEM(m->json, m->len, want, n + tail_len);
}

/* A load of three queues, as broker.lua's 'load' writes it: one with two
 * messages, one empty, one whose drops and acknowledgement are set. */
static const char load3[] = "L 1002 900 3\n"
                            "Q 5 alice 950 0 0 0 0 2\n"
                            "50 950 1700000000000000 ,\"queue\":\"alice\",\"data\":\"hi\"}\n"
                            "54 1001 1700000000000001 ,\"queue\":\"alice\",\"data\":\"there\"}\n"
                            "Q 3 bob 0 0 0 0 0 0\n"
                            "Q 3 c.d 10 8 1 9 2 1\n"
                            "52 1002 1700000000000002 ,\"queue\":\"c.d\",\"data\":{\"n\":1}}\n";

static void test_load_several_queues(void)
{
    struct cbx_mirror_update u;

    OK(load3, &u);
    CHECK(u.load);
    CHECK_INT(u.last_id, 1002);
    CHECK_INT(u.first_id, 900);
    CHECK_INT(u.nq, 3);
    if (u.nq != 3)
        goto out;
    check_queue(&u.qs[0], "alice", 950, 0, CBX_DROP_NONE, 0, CBX_DROP_NONE, 2);
    if (u.qs[0].n == 2) {
        check_msg(u.qs[0].msgs[0], 950, 1700000000000000, LIT(",\"queue\":\"alice\",\"data\":\"hi\"}"));
        check_msg(u.qs[0].msgs[1], 1001, 1700000000000001, LIT(",\"queue\":\"alice\",\"data\":\"there\"}"));
    }
    check_queue(&u.qs[1], "bob", 0, 0, CBX_DROP_NONE, 0, CBX_DROP_NONE, 0);
    check_queue(&u.qs[2], "c.d", 10, 8, CBX_DROP_OVERFLOW, 9, CBX_DROP_EXPIRED, 1);
    if (u.qs[2].n == 1)
        check_msg(u.qs[2].msgs[0], 1002, 1700000000000002, LIT(",\"queue\":\"c.d\",\"data\":{\"n\":1}}"));
out:
    cbx_mirror_update_free(&u);
    CHECK(u.qs == NULL);
    CHECK_INT(u.nq, 0);
}

/* A load of no queue, and one of a Redis that has no sequence yet. */
static void test_load_empty(void)
{
    struct cbx_mirror_update u;

    OK("L 1002 900 0\n", &u);
    CHECK(u.load);
    CHECK_INT(u.last_id, 1002);
    CHECK_INT(u.first_id, 900);
    CHECK_INT(u.nq, 0);
    CHECK(u.qs == NULL);
    cbx_mirror_update_free(&u);

    OK("L 0 0 1\nQ 1 a 0 0 0 0 0 0\n", &u);
    CHECK(u.load);
    CHECK_INT(u.last_id, 0);
    CHECK_INT(u.first_id, 0);
    CHECK_INT(u.nq, 1);
    if (u.nq == 1)
        check_queue(&u.qs[0], "a", 0, 0, CBX_DROP_NONE, 0, CBX_DROP_NONE, 0);
    cbx_mirror_update_free(&u);
}

/* A publish to one queue: a change, not part of a batch. */
static void test_change_publish(void)
{
    struct cbx_mirror_update u;

    OK("N 1003 0 1\n"
       "Q 5 alice 950 0 0 0 0 1\n"
       "54 1003 1700000000000003 ,\"queue\":\"alice\",\"data\":\"again\"}\n",
       &u);
    CHECK(!u.load);
    CHECK_INT(u.last_id, 1003);
    CHECK_INT(u.first_id, 0);
    CHECK_INT(u.nq, 1);
    if (u.nq == 1) {
        check_queue(&u.qs[0], "alice", 950, 0, CBX_DROP_NONE, 0, CBX_DROP_NONE, 1);
        if (u.qs[0].n == 1)
            check_msg(u.qs[0].msgs[0], 1003, 1700000000000003, LIT(",\"queue\":\"alice\",\"data\":\"again\"}"));
    }
    cbx_mirror_update_free(&u);
}

/* One queue's part of a publish to several: first_id is the batch; the
 * "E BATCH" line that ends it is cometboxd/broker_sub.c's, not the parser's. */
static void test_change_batch_part(void)
{
    struct cbx_mirror_update u;

    OK("N 1005 1004 1\n"
       "Q 1 b 0 0 0 0 0 1\n"
       "29 1005 1700000000000004 ,\"x\":1}\n",
       &u);
    CHECK(!u.load);
    CHECK_INT(u.last_id, 1005);
    CHECK_INT(u.first_id, 1004);
    CHECK_INT(u.nq, 1);
    if (u.nq == 1) {
        check_queue(&u.qs[0], "b", 0, 0, CBX_DROP_NONE, 0, CBX_DROP_NONE, 1);
        if (u.qs[0].n == 1)
            check_msg(u.qs[0].msgs[0], 1005, 1700000000000004, LIT(",\"x\":1}"));
    }
    cbx_mirror_update_free(&u);
    BAD("E 1004", "not broker.lua's text at byte 0 of 6: no L or N header");
}

/* An acknowledgement and a flush: changes without messages; and every
 * drop reason there is (enum cbx_drop_reason) in both places. */
static void test_change_ack_and_drops(void)
{
    struct cbx_mirror_update u;
    char text[128];

    OK("N 1005 0 1\nQ 5 alice 1003 0 0 0 0 0\n", &u);
    CHECK(!u.load);
    CHECK_INT(u.last_id, 1005);
    CHECK_INT(u.nq, 1);
    if (u.nq == 1)
        check_queue(&u.qs[0], "alice", 1003, 0, CBX_DROP_NONE, 0, CBX_DROP_NONE, 0);
    cbx_mirror_update_free(&u);

    OK("N 1005 0 1\nQ 5 alice 1003 1004 3 1005 3 0\n", &u);
    if (u.nq == 1)
        check_queue(&u.qs[0], "alice", 1003, 1004, CBX_DROP_FLUSHED, 1005, CBX_DROP_FLUSHED, 0);
    cbx_mirror_update_free(&u);

    for (int lr = CBX_DROP_NONE; lr <= CBX_DROP_RESTART; lr++)
        for (int pr = CBX_DROP_NONE; pr <= CBX_DROP_RESTART; pr++) {
            int n = snprintf(text, sizeof text, "N 7 0 1\nQ 1 a 4 5 %d 6 %d 0\n", lr, pr);
            parse_ok(__LINE__, text, (size_t)n, &u);
            CHECK_INT(u.nq, 1);
            if (u.nq == 1)
                check_queue(&u.qs[0], "a", 4, 5, lr, 6, pr, 0);
            cbx_mirror_update_free(&u);
        }
}

/* Bodies are length-prefixed: a line break, CR LF, a NUL, UTF-8 (U+2028
 * too) and a byte that is no UTF-8 inside one come through byte for byte;
 * a message whose data is 0 bytes, and the shortest tail there is. */
static void test_bodies_binary(void)
{
    static const char tail7[] = ",\"queue\":\"bin\",\"data\":\"a\nb\0c\xc3\xa9\xe2\x80\xa8\r\n\xff\"}";
    struct cbx_mirror_update u;

    OK("N 9 7 1\n"
       "Q 3 bin 0 0 0 0 0 3\n"
       "42 7 5 ,\"queue\":\"bin\",\"data\":\"a\nb\0c\xc3\xa9\xe2\x80\xa8\r\n\xff\"}\n"
       "29 8 6 ,\"queue\":\"bin\",\"data\":\"\"}\n"
       "6 9 0 ,}\n",
       &u);
    CHECK_INT(u.last_id, 9);
    CHECK_INT(u.first_id, 7);
    CHECK_INT(u.nq, 1);
    if (u.nq == 1) {
        check_queue(&u.qs[0], "bin", 0, 0, CBX_DROP_NONE, 0, CBX_DROP_NONE, 3);
        if (u.qs[0].n == 3) {
            check_msg(u.qs[0].msgs[0], 7, 5, tail7, sizeof tail7 - 1);
            CHECK_INT(u.qs[0].msgs[0]->tail_len, 38);
            check_msg(u.qs[0].msgs[1], 8, 6, LIT(",\"queue\":\"bin\",\"data\":\"\"}"));
            check_msg(u.qs[0].msgs[2], 9, 0, LIT(",}"));
            CHECK_INT(u.qs[0].msgs[2]->len, 9); /* {"id":9,} */
        }
    }
    cbx_mirror_update_free(&u);
}

/* The largest values the format allows: a 128-byte name of every kind of
 * character a name may hold, ids up to 2^53-1 (broker.lua's), a publish
 * time up to INT64_MAX. */
static void test_limits_accepted(void)
{
    struct cbx_mirror_update u;
    char text[512], name[CBX_QNAME_MAX + 1];
    int n;

    for (size_t i = 0; i < CBX_QNAME_MAX; i++)
        name[i] = "aZ09._:@-"[i % 9];
    name[CBX_QNAME_MAX] = '\0';
    n = snprintf(text, sizeof text, "N 9007199254740991 9007199254740990 1\nQ %d %s 9007199254740991 "
                 "9007199254740991 4 9007199254740991 4 1\n"
                 "39 9007199254740991 9223372036854775807 ,}\n",
                 CBX_QNAME_MAX, name);
    parse_ok(__LINE__, text, (size_t)n, &u);
    CHECK_INT(u.last_id, 9007199254740991);
    CHECK_INT(u.first_id, 9007199254740990);
    CHECK_INT(u.nq, 1);
    if (u.nq == 1) {
        check_queue(&u.qs[0], name, 9007199254740991, 9007199254740991, CBX_DROP_RESTART, 9007199254740991,
                    CBX_DROP_RESTART, 1);
        if (u.qs[0].n == 1)
            check_msg(u.qs[0].msgs[0], 9007199254740991, INT64_MAX, LIT(",}"));
    }
    cbx_mirror_update_free(&u);
}

/* The first line: its letter, its spaces, its three numbers. */
static void test_refused_header(void)
{
    BAD("", "not broker.lua's text at byte 0 of 0: no L or N header");
    BAD("L", "not broker.lua's text at byte 0 of 1: no L or N header");
    BAD("X 1 0 0\n", "not broker.lua's text at byte 0 of 8: no L or N header");
    BAD("l 1 0 0\n", "not broker.lua's text at byte 0 of 8: no L or N header");
    BAD("L1 0 0\n", "not broker.lua's text at byte 0 of 7: no L or N header");
    BAD("L  1 0 0\n", "not broker.lua's text at byte 2 of 9: a number expected");
    BAD("L -1 0 0\n", "not broker.lua's text at byte 2 of 9: a number expected");
    BAD("L +1 0 0\n", "not broker.lua's text at byte 2 of 9: a number expected");
    BAD("L 1 0\n", "not broker.lua's text at byte 5 of 6: a space expected after a number");
    BAD("L 1 0 0", "not broker.lua's text at byte 7 of 7: a line end expected after a number");
    BAD("L 1 0 0 \n", "not broker.lua's text at byte 7 of 9: a line end expected after a number");
    BAD("L 1 0 0\r\n", "not broker.lua's text at byte 7 of 9: a line end expected after a number");
    BAD("L 1\t0 0\n", "not broker.lua's text at byte 3 of 8: a space expected after a number");
}

/* Numbers past their limits: ids past 2^53-1 (2^63, 2^64), more queues or
 * messages than can be, a drop reason that is none, a name or a message
 * longer than the limits. */
static void test_refused_numbers(void)
{
    char text[512];
    int n;

    BAD("L 9007199254740992 0 0\n", "not broker.lua's text at byte 17 of 23: a number out of range"); /* 2^53 */
    BAD("N 1 0 1\nQ 1 a 0 0 0 0 0 1\n21 9007199254740992 0 ,}\n", "not broker.lua's text at byte 51 of 51: a number out of range");
    BAD("L 9223372036854775808 0 0\n", "not broker.lua's text at byte 17 of 26: a number out of range");
    BAD("L 18446744073709551616 0 0\n", "not broker.lua's text at byte 18 of 27: a number out of range");
    BAD("L 1 99999999999999999999999 0\n", "not broker.lua's text at byte 19 of 30: a number out of range");
    BAD("N 1 0 1048577\n", "not broker.lua's text at byte 12 of 14: a number out of range");
    /* within the limit, but more queues than 14 bytes can hold */
    BAD("N 1 0 1048576\n", "not broker.lua's text at byte 14 of 14: more queues than the text can hold");
    BAD("N 1 0 1\nQ 1 a 9223372036854775808 0 0 0 0 0\n", "not broker.lua's text at byte 29 of 44: a number out of range");
    /* a drop reason past CBX_DROP_RESTART */
    BAD("N 1 0 1\nQ 1 a 0 0 5 0 0 0\n", "not broker.lua's text at byte 18 of 26: a number out of range");
    BAD("N 1 0 1\nQ 1 a 0 0 0 0 9 0\n", "not broker.lua's text at byte 22 of 26: a number out of range");
    BAD("N 1 0 1\nQ 1 a 0 0 10 0 0 0\n", "not broker.lua's text at byte 19 of 27: a number out of range");
    BAD("N 1 0 1\nQ 1 a 0 0 49 0 0 0\n", "not broker.lua's text at byte 19 of 27: a number out of range");
    BAD("N 1 0 1\nQ 1 a 0 0 0 0 99 0\n", "not broker.lua's text at byte 22 of 27: a number out of range");
    BAD("N 1 0 1\nQ 1 a 0 0 0 0 0 16777217\n", "not broker.lua's text at byte 31 of 33: a number out of range");
    BAD("N 1 0 1\nQ 1 a 0 0 0 0 0 1\n1073741825 1 0 ,}\n", "not broker.lua's text at byte 35 of 44: a number out of range");
    BAD("N 1 0 1\nQ 1 a 0 0 0 0 0 1\n24 9223372036854775808 0 ,}\n", "not broker.lua's text at byte 54 of 54: a number out of range");
    BAD("N 1 0 1\nQ 1 a 0 0 0 0 0 1\n24 1 9223372036854775808 ,}\n", "not broker.lua's text at byte 54 of 54: a number out of range");
    /* a name of 129 bytes */
    n = snprintf(text, sizeof text, "N 1 0 1\nQ 129 %0129d 0 0 0 0 0 0\n", 0);
    refused(__LINE__, text, (size_t)n, "not broker.lua's text at byte 12 of 156: a number out of range");
}

/* Names that are no queue name (qname.h), and name lengths that lie. */
static void test_refused_names(void)
{
    BAD("N 1 0 1\nQ 3 a/b 0 0 0 0 0 0\n", "not broker.lua's text at byte 16 of 28: not a queue name");
    BAD("N 1 0 1\nQ 1 . 0 0 0 0 0 0\n", "not broker.lua's text at byte 14 of 26: not a queue name");
    BAD("N 1 0 1\nQ 2 .. 0 0 0 0 0 0\n", "not broker.lua's text at byte 15 of 27: not a queue name");
    BAD("N 1 0 1\nQ 0  0 0 0 0 0 0\n", "not broker.lua's text at byte 13 of 25: not a queue name");
    BAD("N 1 0 1\nQ 3 a\0b 0 0 0 0 0 0\n", "not broker.lua's text at byte 16 of 28: not a queue name");
    BAD("N 1 0 1\nQ 3 a b 0 0 0 0 0 0\n", "not broker.lua's text at byte 16 of 28: not a queue name");
    BAD("N 1 0 1\nQ 2 \xc3\xa9 0 0 0 0 0 0\n", "not broker.lua's text at byte 15 of 27: not a queue name");
    BAD("N 1 0 1\nQ 4 abc 0 0 0 0 0 0\n", "not broker.lua's text at byte 12 of 28: a space expected after a name");
    BAD("N 1 0 1\nQ 2 abc 0 0 0 0 0 0\n", "not broker.lua's text at byte 12 of 28: a space expected after a name");
    /* a length that runs past the end of the text */
    BAD("N 1 0 1\nQ 100 abc 0 0 0 0 0 0\n", "not broker.lua's text at byte 14 of 30: a length past the end of the text");
}

/* Ids within a queue rise strictly, from 1 up. */
static void test_refused_ids(void)
{
    struct cbx_mirror_update u;

    OK("N 5 0 1\nQ 1 a 0 0 0 0 0 2\n6 4 0 ,}\n6 5 0 ,}\n", &u);
    cbx_mirror_update_free(&u);
    BAD("N 5 0 1\nQ 1 a 0 0 0 0 0 2\n6 5 0 ,}\n6 5 0 ,}\n", "not broker.lua's text at byte 44 of 44: message ids not rising");
    BAD("N 5 0 1\nQ 1 a 0 0 0 0 0 2\n6 5 0 ,}\n6 4 0 ,}\n", "not broker.lua's text at byte 44 of 44: message ids not rising");
    BAD("N 5 0 1\nQ 1 a 0 0 0 0 0 1\n6 0 0 ,}\n", "not broker.lua's text at byte 35 of 35: message ids not rising");
}

/* A message's line: its length against what follows, its three parts, the
 * tail's first and last bytes. */
static void test_refused_members(void)
{
    BAD("N 1 0 1\nQ 1 a 0 0 0 0 0 1\n0 \nzzzzz", "not broker.lua's text at byte 29 of 34: a number expected");
    BAD("N 1 0 1\nQ 1 a 0 0 0 0 0 1\n9 1 0 ,}\n", "not broker.lua's text at byte 28 of 35: a length past the end of the text");
    BAD("N 1 0 1\nQ 1 a 0 0 0 0 0 1\n5 1 0 ,}\n", "not broker.lua's text at byte 28 of 35: a line end expected after a member");
    BAD("N 1 0 1\nQ 1 a 0 0 0 0 0 1\n7 1 0 ,}\n", "not broker.lua's text at byte 28 of 35: a length past the end of the text");
    BAD("N 1 0 1\nQ 1 a 0 0 0 0 0 1\n6 1 0 ;}\n", "not broker.lua's text at byte 35 of 35: a message that is not cometbox's JSON");
    BAD("N 1 0 1\nQ 1 a 0 0 0 0 0 1\n6 1 0 ,]\n", "not broker.lua's text at byte 35 of 35: a message that is not cometbox's JSON");
    BAD("N 1 0 1\nQ 1 a 0 0 0 0 0 1\n5 1 0 }\n", "not broker.lua's text at byte 34 of 34: a message that is not cometbox's JSON");
    BAD("N 1 0 1\nQ 1 a 0 0 0 0 0 1\n4 1 ,}\n\n", "not broker.lua's text at byte 33 of 34: a number expected");
    BAD("N 1 0 1\nQ 1 a 0 0 0 0 0 1\n6 1,0,,}\n", "not broker.lua's text at byte 35 of 35: a space expected after a number");
    BAD("N 1 0 1\nQ 1 a 0 0 0 0 0 1\n6 -1 0 }\n", "not broker.lua's text at byte 35 of 35: a number expected");
    /* fewer messages than the count: too few bytes for them, then junk */
    BAD("N 1 0 1\nQ 1 a 0 0 0 0 0 2\n6 1 0 ,}\n", "not broker.lua's text at byte 26 of 35: more messages than the text can hold");
    BAD("N 1 0 1\nQ 1 a 0 0 0 0 0 2\n6 1 0 ,}\nxxxxxxx", "not broker.lua's text at byte 35 of 42: a number expected");
}

/* A queue's line, and the number of queues against the queues there are. */
static void test_refused_queues(void)
{
    BAD("N 1 0 1\nq 1 a 0 0 0 0 0 0\n", "not broker.lua's text at byte 8 of 26: a queue line (Q) expected");
    BAD("N 1 0 1\nQ1 a 0 0 0 0 0 0\n", "not broker.lua's text at byte 8 of 25: a queue line (Q) expected");
    BAD("N 1 0 1\nQ 1 a 0 0 0 0 0\n", "not broker.lua's text at byte 23 of 24: a space expected after a number");
    BAD("N 1 0 2\nQ 1 a 0 0 0 0 0 0\n", "not broker.lua's text at byte 8 of 26: more queues than the text can hold");
    BAD("N 1 0 2\nQ 1 a 0 0 0 0 0 0\n......", "not broker.lua's text at byte 26 of 32: a queue line (Q) expected");
}

/* Bytes after the last queue: a line break, a NUL, a queue more than
 * the count says. */
static void test_refused_trailing(void)
{
    char text[sizeof load3 + 32];
    size_t len = sizeof load3 - 1;

    memcpy(text, load3, len);
    memcpy(text + len, "\n", 1);
    refused(__LINE__, text, len + 1, "not broker.lua's text at byte 246 of 247: bytes after the last queue");
    memcpy(text + len, "\0", 1);
    refused(__LINE__, text, len + 1, "not broker.lua's text at byte 246 of 247: bytes after the last queue");
    memcpy(text + len, "Q 1 e 0 0 0 0 0 0\n", 18);
    refused(__LINE__, text, len + 18, "not broker.lua's text at byte 246 of 264: bytes after the last queue");
    BAD("N 1 0 1\nQ 1 a 0 0 0 0 0 0\nQ 1 b 0 0 0 0 0 0\n", "not broker.lua's text at byte 26 of 44: bytes after the last queue");
}

/* Every prefix of a well-formed text is refused (each in a buffer of its
 * exact length: ASan catches a read past it) and leaves nothing behind. */
static void test_refused_truncated(void)
{
    static const char bin[] = "N 9 7 1\n"
                              "Q 3 bin 0 0 0 0 0 3\n"
                              "42 7 5 ,\"queue\":\"bin\",\"data\":\"a\nb\0c\xc3\xa9\xe2\x80\xa8\r\n\xff\"}\n"
                              "29 8 6 ,\"queue\":\"bin\",\"data\":\"\"}\n"
                              "6 9 0 ,}\n";
    const char *texts[] = { load3, bin };
    size_t lens[] = { sizeof load3 - 1, sizeof bin - 1 };
    char err[128];

    CHECK_INT(lens[0], 246);
    CHECK_INT(lens[1], 116);
    for (size_t t = 0; t < 2; t++)
        for (size_t len = 0; len < lens[t]; len++) {
            char *p = exact(texts[t], len);
            struct cbx_mirror_update u;
            enum cbx_err rc = cbx_mirror_parse(p, len, &u, err, sizeof err);

            if (rc != CBX_ERR_INVALID || u.qs != NULL || u.nq != 0)
                fprintf(stderr, "  (text %zu cut to %zu bytes)\n", t, len);
            CHECK_INT(rc, CBX_ERR_INVALID);
            CHECK(u.qs == NULL && u.nq == 0);
            free(p);
        }
    refused(__LINE__, load3, 13, "not broker.lua's text at byte 13 of 13: more queues than the text can hold");
    refused(__LINE__, load3, 245, "not broker.lua's text at byte 193 of 245: a length past the end of the text");
    refused(__LINE__, bin, 115, "not broker.lua's text at byte 109 of 115: a length past the end of the text");
}

/* A text refused after messages were made (in an earlier queue and earlier
 * in the same queue) frees them: ASan's leak check sees it if not. */
static void test_refused_frees(void)
{
    char text[sizeof load3];

    BAD("N 1003 0 2\n"
        "Q 1 a 0 0 0 0 0 2\n6 7 0 ,}\n6 8 0 ,}\n"
        "Q 1 b 0 0 0 0 0 2\n6 9 0 ,}\n6 9 0 ,}\n",
        "not broker.lua's text at byte 83 of 83: message ids not rising");
    memcpy(text, load3, sizeof load3);
    memcpy(strstr(text, "c.d 10"), "c/d", 3);
    refused(__LINE__, text, sizeof text - 1, "not broker.lua's text at byte 177 of 246: not a queue name");
}

/* err is cut to errlen; none at all may be asked for. */
static void test_err_buffer(void)
{
    struct cbx_mirror_update u;
    char err[11];

    CHECK_INT(cbx_mirror_parse("X", 1, &u, err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "not broker");
    CHECK_INT(cbx_mirror_parse("X", 1, &u, NULL, 0), CBX_ERR_INVALID);
    CHECK(u.qs == NULL && u.nq == 0);
}

int main(void)
{
    RUN(test_load_several_queues);
    RUN(test_load_empty);
    RUN(test_change_publish);
    RUN(test_change_batch_part);
    RUN(test_change_ack_and_drops);
    RUN(test_bodies_binary);
    RUN(test_limits_accepted);
    RUN(test_refused_header);
    RUN(test_refused_numbers);
    RUN(test_refused_names);
    RUN(test_refused_ids);
    RUN(test_refused_members);
    RUN(test_refused_queues);
    RUN(test_refused_trailing);
    RUN(test_refused_truncated);
    RUN(test_refused_frees);
    RUN(test_err_buffer);
    TEST_DONE();
}
