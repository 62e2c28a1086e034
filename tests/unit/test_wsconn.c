/* test_wsconn.c - the WebSocket frames of common/wsconn.c, bytes in and out
 * through memory: the handshake key, acknowledgement frames, the close
 * code each bad frame gets, and what we send. */
#include <stdlib.h>
#include <string.h>

#include "../../common/wsconn.h"
#include "test.h"

struct pipe {
    const uint8_t *in;
    size_t in_len, in_off;
    uint8_t out[4096];
    size_t out_len;
    uint64_t acks[8];
    size_t n_acks;
    size_t calls;   /* send and sendv calls that moved bytes */
    size_t limit;   /* sendv: at most this many bytes a call (0: no limit) */
};

static ssize_t p_recv(void *ctx, uint8_t *buf, size_t len)
{
    struct pipe *p = ctx;
    size_t n = p->in_len - p->in_off < len ? p->in_len - p->in_off : len;

    memcpy(buf, p->in + p->in_off, n);
    p->in_off += n;
    return (ssize_t)n;
}

static ssize_t p_send(void *ctx, const uint8_t *buf, size_t len)
{
    struct pipe *p = ctx;

    if (len > sizeof p->out - p->out_len)
        len = sizeof p->out - p->out_len;
    memcpy(p->out + p->out_len, buf, len);
    p->out_len += len;
    return (ssize_t)len;
}

/* Gathers a and b as one write (sendmsg), at most p->limit bytes. */
static ssize_t p_sendv(void *ctx, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    struct pipe *p = ctx;
    size_t room = p->limit ? p->limit : SIZE_MAX, n = 0;

    if (room == 0)
        return 0;
    for (int k = 0; k < 2; k++) {
        const uint8_t *s = k ? b : a;
        size_t len = k ? blen : alen;
        if (len > room - n)
            len = room - n;
        memcpy(p->out + p->out_len, s, len);
        p->out_len += len;
        n += len;
    }
    p->calls++;
    return (ssize_t)n;
}

static void p_ack(void *ctx, uint64_t id)
{
    struct pipe *p = ctx;

    if (p->n_acks < 8)
        p->acks[p->n_acks++] = id;
}

/* A client frame: FIN, opcode, masked with key 1,2,3,4 (unmasked when mask is false). */
static size_t frame(uint8_t *out, unsigned first, const char *payload, size_t len, bool mask)
{
    static const uint8_t key[4] = { 1, 2, 3, 4 };
    size_t n = 0;

    out[n++] = (uint8_t)first;
    out[n++] = (uint8_t)((mask ? 0x80 : 0) | len); /* len < 126 here */
    if (mask) {
        memcpy(out + n, key, 4);
        n += 4;
    }
    for (size_t i = 0; i < len; i++)
        out[n++] = (uint8_t)payload[i] ^ (mask ? key[i % 4] : 0);
    return n;
}

/* Feeds bytes to a fresh connection; returns the close code it sent (0: none). */
static unsigned feed(const uint8_t *in, size_t len, struct pipe *p, size_t max_msg)
{
    struct cbx_wsconn_io io = { p, p_recv, p_send, p_ack, NULL };
    struct cbx_wsconn *c;
    unsigned code = 0;

    memset(p, 0, sizeof *p);
    p->in = in;
    p->in_len = len;
    c = cbx_wsconn_new(&io, max_msg);
    CHECK(c != NULL);
    if (c == NULL)
        return 0;
    if (cbx_wsconn_read(c) == 0) /* -1: dropped, after its close frame (1002) */
        CHECK_INT(cbx_wsconn_write(c), 0);
    if (p->out_len >= 4 && p->out[0] == 0x88)
        code = (unsigned)p->out[2] << 8 | p->out[3];
    cbx_wsconn_free(c);
    return code;
}

static void test_accept_key(void)
{
    char out[29];

    CHECK(cbx_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out)); /* RFC 6455 1.3 */
    CHECK_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    CHECK(!cbx_ws_accept_key("", out));
    CHECK(!cbx_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ", out));   /* 23 characters */
    CHECK(!cbx_ws_accept_key("dGhlIHNhbXBsZSBub25j!Q==", out)); /* not base64 */
    CHECK(!cbx_ws_accept_key("dGhlIHNhbXBsZSBub25jZXM=", out)); /* 17 bytes */
}

static void test_parse_ack(void)
{
    uint64_t id = 7;

    CHECK(cbx_ws_parse_ack("{\"ack\":42}", 10, &id));
    CHECK_INT(id, 42);
    CHECK(cbx_ws_parse_ack(" { \"ack\" : 9007199254740991 } \n", 31, &id));
    CHECK_INT(id, 9007199254740991ULL);
    CHECK(cbx_ws_parse_ack("{\"ack\":0}", 9, &id));
    CHECK_INT(id, 0);
    CHECK(!cbx_ws_parse_ack("{\"ack\":9007199254740992}", 24, &id));
    CHECK(!cbx_ws_parse_ack("{\"ack\":-1}", 10, &id));
    CHECK(!cbx_ws_parse_ack("{\"ack\":1.5}", 11, &id));
    CHECK(!cbx_ws_parse_ack("{\"ack\":\"5\"}", 11, &id));
    CHECK(!cbx_ws_parse_ack("{\"ack\":1,\"x\":2}", 15, &id));
    CHECK(!cbx_ws_parse_ack("{\"ACK\":1}", 9, &id));
    CHECK(!cbx_ws_parse_ack("[1]", 3, &id));
    CHECK(!cbx_ws_parse_ack("{\"ack\":1} x", 11, &id));
    CHECK(!cbx_ws_parse_ack("hello", 5, &id));
}

static void test_frames(void)
{
    struct pipe p;
    uint8_t in[256];
    size_t n;

    n = frame(in, 0x81, "{\"ack\":5}", 9, true);
    n += frame(in + n, 0x81, "{\"ack\":6}", 9, true);
    CHECK_INT(feed(in, n, &p, 4096), 0);
    CHECK_INT(p.n_acks, 2);
    CHECK_INT(p.acks[0], 5);
    CHECK_INT(p.acks[1], 6);
    CHECK_INT(p.out_len, 0); /* nothing to answer */

    n = frame(in, 0x89, "hi", 2, true); /* a ping is answered with a pong */
    CHECK_INT(feed(in, n, &p, 4096), 0);
    CHECK_INT(p.out_len, 4);
    CHECK_INT(p.out[0], 0x8a);
    CHECK(memcmp(p.out + 2, "hi", 2) == 0);

    n = frame(in, 0x82, "\x01\x02", 2, true);
    CHECK_INT(feed(in, n, &p, 4096), 1003); /* binary */
    n = frame(in, 0x81, "hello", 5, true);
    CHECK_INT(feed(in, n, &p, 4096), 1008); /* not an ack */
    CHECK_INT(p.n_acks, 0);
    n = frame(in, 0x81, "{\"ack\":\xff}", 9, true);
    CHECK_INT(feed(in, n, &p, 4096), 1007); /* not UTF-8 */
    n = frame(in, 0x81, "{\"ack\":5}", 9, false);
    CHECK_INT(feed(in, n, &p, 4096), 1002); /* unmasked */
    n = frame(in, 0x09, "", 0, true);
    CHECK_INT(feed(in, n, &p, 4096), 1002); /* a fragmented ping */
    in[0] = 0x89;
    in[1] = 0x80 | 126; /* a ping of 200 bytes */
    in[2] = 0;
    in[3] = 200;
    memset(in + 4, 0, 204);
    CHECK_INT(feed(in, 208, &p, 4096), 1002);
    n = frame(in, 0xc1, "{\"ack\":5}", 9, true);
    CHECK_INT(feed(in, n, &p, 4096), 1002); /* RSV1 set */
    n = frame(in, 0x81, "{\"ack\":12345678}", 16, true);
    CHECK_INT(feed(in, n, &p, 10), 1009); /* over the limit */
    CHECK_INT(p.n_acks, 0);
}

static void test_send(void)
{
    struct pipe p;
    struct cbx_wsconn_io io = { &p, p_recv, p_send, p_ack, NULL };
    struct cbx_wsconn *c;
    char reason[200];

    memset(&p, 0, sizeof p);
    c = cbx_wsconn_new(&io, 4096);
    CHECK(cbx_wsconn_text(c, "[1]\n", 4));
    CHECK(cbx_wsconn_want_write(c));
    CHECK_INT(cbx_wsconn_write(c), 0);
    CHECK(!cbx_wsconn_want_write(c));
    CHECK_INT(p.out_len, 6);
    CHECK(memcmp(p.out, "\x81\x04[1]\n", 6) == 0);
    CHECK(cbx_wsconn_ping(c));
    CHECK(cbx_wsconn_ping_unanswered(c));
    memset(reason, 'r', sizeof reason);
    reason[sizeof reason - 1] = '\0';
    CHECK(cbx_wsconn_close(c, CBX_WS_KICK, reason)); /* cut to 123 bytes */
    CHECK_INT(cbx_wsconn_close_code(c), 4000);
    p.out_len = 0;
    CHECK_INT(cbx_wsconn_write(c), 0);
    CHECK_INT(p.out_len, 127); /* the close goes first, and the ping never: nothing follows a close */
    CHECK_INT(p.out[0], 0x88);
    CHECK_INT(p.out[1], 125);
    CHECK_INT((p.out[2] << 8) | p.out[3], 4000);
    CHECK(!cbx_wsconn_text(c, "x", 1)); /* nothing after a close */
    cbx_wsconn_free(c);
}

/* With sendv a frame's header goes out with its payload in one call, and
 * a short write leaves the rest (of the header, then the payload) for the
 * next turn, bytes in order. */
static void test_send_gathered(void)
{
    struct pipe p;
    struct cbx_wsconn_io io = { &p, p_recv, p_send, p_ack, p_sendv };
    struct cbx_wsconn *c;
    char big[300];

    memset(&p, 0, sizeof p);
    c = cbx_wsconn_new(&io, 4096);
    CHECK(cbx_wsconn_text(c, "[1]\n", 4));
    CHECK_INT(cbx_wsconn_write(c), 0);
    CHECK_INT(p.calls, 1); /* one call for header and payload */
    CHECK_INT(p.out_len, 6);
    CHECK(memcmp(p.out, "\x81\x04[1]\n", 6) == 0);

    memset(big, 'x', sizeof big);
    memset(&p, 0, sizeof p);
    p.limit = 1; /* one byte a call: the 4-byte header is split */
    CHECK(cbx_wsconn_text(c, big, sizeof big));
    for (int turns = 0; turns < 400 && cbx_wsconn_want_write(c); turns++)
        CHECK_INT(cbx_wsconn_write(c), 0);
    CHECK(!cbx_wsconn_want_write(c));
    CHECK_INT(p.out_len, 304);
    CHECK_INT(p.out[0], 0x81);
    CHECK_INT(p.out[1], 126);
    CHECK_INT((p.out[2] << 8) | p.out[3], 300);
    CHECK(memcmp(p.out + 4, big, sizeof big) == 0);
    cbx_wsconn_free(c);
}

int main(void)
{
    RUN(test_accept_key);
    RUN(test_parse_ack);
    RUN(test_frames);
    RUN(test_send);
    RUN(test_send_gathered);
    TEST_DONE();
}
