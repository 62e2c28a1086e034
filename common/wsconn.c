/* wsconn.c - a server-side WebSocket connection's frames, on wslay's event
 * API: wslay parses and builds frames, answers pings and close frames and
 * refuses what RFC 6455 forbids (1002, and 1009 over the message limit);
 * here are the rules of our transport on top: text frames must be
 * {"ack":ID} (1008), in UTF-8 (1007), and binary frames are refused (1003).
 * The handshake's accept key is SHA-1 and base64 from nettle. */
#include "wsconn.h"

#include <cjson/cJSON.h>
#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#include "msg.h"

struct cbx_wsconn {
    wslay_event_context_ptr ctx;
    struct cbx_wsconn_io io;
    bool gone;          /* the peer's side failed: drop without a close handshake */
    bool ping_out;      /* a ping went out, no pong since */
    size_t max_msg;
    unsigned close_code;
    uint8_t head[14];   /* a frame's header held back to go with its payload (io.sendv) */
    size_t head_len;
};

/* What wslay is told of n bytes moved: n, or its error (would block: 0;
 * the peer is gone: -1). */
static ssize_t moved(struct cbx_wsconn *c, wslay_event_context_ptr ctx, ssize_t n)
{
    if (n > 0)
        return n;
    if (n < 0)
        c->gone = true;
    wslay_event_set_error(ctx, n == 0 ? WSLAY_ERR_WOULDBLOCK : WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    struct cbx_wsconn *c = user;

    (void)flags;
    return moved(c, ctx, c->io.recv(c->io.ctx, buf, len));
}

/* wslay hands over a frame's header (flagged WSLAY_MSG_MORE) and its
 * payload in two calls; with io.sendv the header waits and goes out with
 * the payload, in one segment (the socket has TCP_NODELAY). */
static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
    struct cbx_wsconn *c = user;
    ssize_t n;

    if (c->io.sendv == NULL)
        return moved(c, ctx, c->io.send(c->io.ctx, data, len));
    if ((flags & WSLAY_MSG_MORE) && c->head_len == 0 && len <= sizeof c->head) {
        memcpy(c->head, data, len);
        c->head_len = len;
        return (ssize_t)len; /* wslay counts it sent; it is ours to send now */
    }
    if (c->head_len == 0)
        return moved(c, ctx, c->io.send(c->io.ctx, data, len));
    n = c->io.sendv(c->io.ctx, c->head, c->head_len, data, len);
    if (n <= 0)
        return moved(c, ctx, n);
    if ((size_t)n < c->head_len) { /* part of the header: the rest waits */
        memmove(c->head, c->head + n, c->head_len - (size_t)n);
        c->head_len -= (size_t)n;
        return moved(c, ctx, 0);
    }
    n -= (ssize_t)c->head_len;
    c->head_len = 0;
    return n > 0 ? n : moved(c, ctx, 0);
}

static void refuse(struct cbx_wsconn *c, enum cbx_ws_close code, const char *reason)
{
    cbx_wsconn_close(c, code, reason);
    wslay_event_shutdown_read(c->ctx); /* nothing more is read after a refusal */
}

/* A frame's header: one that announces more than the limit is refused at
 * once, not when its payload has come (wslay would wait for it). */
static void on_frame_start(wslay_event_context_ptr ctx, const struct wslay_event_on_frame_recv_start_arg *arg,
                           void *user)
{
    struct cbx_wsconn *c = user;

    (void)ctx;
    if (arg->payload_length > c->max_msg)
        refuse(c, CBX_WS_TOO_BIG, "message too big (max-ws-frame)");
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    struct cbx_wsconn *c = user;
    uint64_t id;

    (void)ctx;
    switch (arg->opcode) {
    case WSLAY_PONG:
        c->ping_out = false;
        return;
    case WSLAY_PING:
    case WSLAY_CONNECTION_CLOSE:
        return; /* wslay answers them */
    case WSLAY_BINARY_FRAME:
        refuse(c, CBX_WS_UNSUPPORTED, "binary frames are not accepted; send {\"ack\":ID} as text");
        return;
    case WSLAY_TEXT_FRAME:
        if (!cbx_utf8_valid((const char *)arg->msg, arg->msg_length)) {
            refuse(c, CBX_WS_BAD_DATA, "text is not UTF-8");
        } else if (!cbx_ws_parse_ack((const char *)arg->msg, arg->msg_length, &id)) {
            refuse(c, CBX_WS_POLICY, "expected {\"ack\":ID}, ID a message id");
        } else {
            c->io.ack(c->io.ctx, id);
        }
        return;
    default:
        refuse(c, CBX_WS_PROTOCOL, "unknown opcode");
    }
}

struct cbx_wsconn *cbx_wsconn_new(const struct cbx_wsconn_io *io, size_t max_msg)
{
    static const struct wslay_event_callbacks cbs = { on_recv, on_send, NULL, on_frame_start, NULL, NULL, on_msg };
    struct cbx_wsconn *c = calloc(1, sizeof *c);

    if (c == NULL)
        return NULL;
    c->io = *io;
    c->max_msg = max_msg;
    if (wslay_event_context_server_init(&c->ctx, &cbs, c) != 0) {
        free(c);
        return NULL;
    }
    wslay_event_config_set_max_recv_msg_length(c->ctx, max_msg);
    return c;
}

void cbx_wsconn_free(struct cbx_wsconn *c)
{
    if (c == NULL)
        return;
    wslay_event_context_free(c->ctx);
    free(c);
}

int cbx_wsconn_read(struct cbx_wsconn *c)
{
    if (c->gone)
        return -1;
    if (!wslay_event_want_read(c->ctx))
        return 0;
    if (wslay_event_recv(c->ctx) != 0 && !c->gone) {
        /* wslay gave up on a frame it could not take apart (a fragmented
         * or oversized control frame): it would send a close frame without
         * a code, so send the one RFC 6455 asks for, 1002, and drop */
        static const uint8_t proto[] = { 0x88, 2 + 14, 1002 >> 8, 1002 & 0xff, 'p', 'r', 'o', 't', 'o',
                                         'c', 'o', 'l', ' ', 'e', 'r', 'r', 'o', 'r' };
        c->io.send(c->io.ctx, proto, sizeof proto);
        c->close_code = CBX_WS_PROTOCOL;
        c->gone = true;
    }
    return c->gone ? -1 : 0;
}

int cbx_wsconn_write(struct cbx_wsconn *c)
{
    if (c->gone)
        return -1;
    if (wslay_event_send(c->ctx) != 0 || c->gone)
        return -1;
    return 0;
}

bool cbx_wsconn_text(struct cbx_wsconn *c, const char *s, size_t len)
{
    struct wslay_event_msg m = { WSLAY_TEXT_FRAME, (const uint8_t *)s, len };

    return wslay_event_queue_msg(c->ctx, &m) == 0;
}

bool cbx_wsconn_ping(struct cbx_wsconn *c)
{
    struct wslay_event_msg m = { WSLAY_PING, NULL, 0 };

    if (wslay_event_queue_msg(c->ctx, &m) != 0)
        return false;
    c->ping_out = true;
    return true;
}

bool cbx_wsconn_close(struct cbx_wsconn *c, enum cbx_ws_close code, const char *reason)
{
    size_t len = strlen(reason);

    if (len > 123) { /* a control frame carries 125 bytes: the code and 123 */
        len = 123;
        while (len > 0 && ((unsigned char)reason[len] & 0xc0) == 0x80)
            len--; /* not inside a UTF-8 character */
    }
    if (wslay_event_queue_close(c->ctx, (uint16_t)code, (const uint8_t *)reason, len) != 0)
        return false;
    if (c->close_code == 0)
        c->close_code = code;
    return true;
}

bool cbx_wsconn_ping_unanswered(const struct cbx_wsconn *c) { return c->ping_out; }
bool cbx_wsconn_want_write(const struct cbx_wsconn *c) { return wslay_event_want_write(c->ctx) != 0; }
size_t cbx_wsconn_queued(const struct cbx_wsconn *c) { return wslay_event_get_queued_msg_length(c->ctx); }
unsigned cbx_wsconn_close_code(const struct cbx_wsconn *c) { return c->close_code; }

bool cbx_wsconn_done(const struct cbx_wsconn *c)
{
    return c->gone || (!wslay_event_want_read(c->ctx) && !wslay_event_want_write(c->ctx));
}

bool cbx_ws_accept_key(const char *key, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    struct base64_decode_ctx dec;
    struct sha1_ctx sha;
    uint8_t raw[32], digest[SHA1_DIGEST_SIZE];
    size_t n = sizeof raw, klen = strlen(key);

    if (klen != 24)
        return false;
    base64_decode_init(&dec);
    if (!base64_decode_update(&dec, &n, raw, klen, key) || !base64_decode_final(&dec) || n != 16)
        return false;
    sha1_init(&sha);
    sha1_update(&sha, klen, (const uint8_t *)key);
    sha1_update(&sha, sizeof guid - 1, (const uint8_t *)guid);
    sha1_digest(&sha, sizeof digest, digest);
    base64_encode_raw(out, sizeof digest, digest);
    out[28] = '\0';
    return true;
}

bool cbx_ws_parse_ack(const char *s, size_t len, uint64_t *id)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(s, len, &end, false), *v;
    bool ok = false;

    while (j != NULL && end < s + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    if (j != NULL && end == s + len && cJSON_IsObject(j) && (v = j->child) != NULL && v->next == NULL && v->string != NULL &&
        strcmp(v->string, "ack") == 0 && cJSON_IsNumber(v) && v->valuedouble >= 0 &&
        v->valuedouble < 9007199254740992.0 && v->valuedouble == (double)(uint64_t)v->valuedouble) {
        *id = (uint64_t)v->valuedouble;
        ok = true;
    }
    cJSON_Delete(j);
    return ok;
}
