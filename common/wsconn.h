/* wsconn.h - one server-side WebSocket connection's frames (RFC 6455,
 * read and written by Debian's wslay): what the peer sends (acknowledgement
 * frames, pongs, protocol errors, each error answered with its close code)
 * and what we queue for it. No sockets and no threads: bytes go in and out
 * through the owner's callbacks. Also the handshake's accept key. The
 * transport's rules: docs/PROTOCOL.md "WebSocket". */
#ifndef CBX_WSCONN_H
#define CBX_WSCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Close codes we send (RFC 6455 7.4, and 4000 for a kick). */
enum cbx_ws_close {
    CBX_WS_GOING_AWAY = 1001,   /* the daemon is stopping */
    CBX_WS_PROTOCOL = 1002,     /* wslay: a frame against RFC 6455 */
    CBX_WS_UNSUPPORTED = 1003,  /* a binary frame */
    CBX_WS_BAD_DATA = 1007,     /* text that is not UTF-8 */
    CBX_WS_POLICY = 1008,       /* text that is not {"ack":ID}; a reader too slow */
    CBX_WS_TOO_BIG = 1009,      /* over max-ws-frame */
    CBX_WS_ERROR = 1011,        /* no pong */
    CBX_WS_KICK = 4000,         /* an operator threw the client off */
};

struct cbx_wsconn;

struct cbx_wsconn_io {
    void *ctx;
    /* Reads into buf: bytes read, 0 when nothing is there now, -1 when the
     * peer is gone (end of file or an error). */
    ssize_t (*recv)(void *ctx, uint8_t *buf, size_t len);
    /* Writes buf: bytes written (0: none now), -1 when the peer is gone. */
    ssize_t (*send)(void *ctx, const uint8_t *buf, size_t len);
    /* The peer acknowledged everything up to id. */
    void (*ack)(void *ctx, uint64_t id);
    /* Optional: writes a then b in one call (a frame's header with its
     * payload: one segment, one system call), as send does. NULL: each
     * goes by send. */
    ssize_t (*sendv)(void *ctx, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
};

/* A connection whose messages are at most max_msg bytes. NULL when memory
 * runs out. Owned; free with cbx_wsconn_free(). */
struct cbx_wsconn *cbx_wsconn_new(const struct cbx_wsconn_io *io, size_t max_msg);
void cbx_wsconn_free(struct cbx_wsconn *c);

/* Reads and handles what the peer sent, until nothing more is there. -1
 * when the connection is to be dropped at once (the peer is gone, no
 * memory), else 0 (a protocol error queues its close frame and stops
 * reading: cbx_wsconn_done() tells when it is over). */
int cbx_wsconn_read(struct cbx_wsconn *c);
/* Writes what is queued, as far as the peer takes it; -1: drop it. */
int cbx_wsconn_write(struct cbx_wsconn *c);

/* Queue a text frame (copied), a ping, or the close frame (reason cut to
 * 123 bytes). False when nothing more may be queued (a close went out) or
 * memory runs out. */
bool cbx_wsconn_text(struct cbx_wsconn *c, const char *s, size_t len);
bool cbx_wsconn_ping(struct cbx_wsconn *c);
bool cbx_wsconn_close(struct cbx_wsconn *c, enum cbx_ws_close code, const char *reason);

/* A ping went out and no pong came back since. */
bool cbx_wsconn_ping_unanswered(const struct cbx_wsconn *c);
bool cbx_wsconn_want_write(const struct cbx_wsconn *c);
/* Bytes queued and not yet written. */
size_t cbx_wsconn_queued(const struct cbx_wsconn *c);
/* Nothing more to read or write: both close frames went, or an error. */
bool cbx_wsconn_done(const struct cbx_wsconn *c);
/* The close code we sent or are to send, 0 when none. */
unsigned cbx_wsconn_close_code(const struct cbx_wsconn *c);

/* Sec-WebSocket-Accept (28 characters and a NUL into out) for the
 * request's Sec-WebSocket-Key; false when the key is not 16 bytes in base64. */
bool cbx_ws_accept_key(const char *key, char out[29]);

/* Parses an acknowledgement frame: exactly {"ack":ID}, ID an integer from
 * 0 to 2^53-1 (whitespace allowed as in JSON). False otherwise. */
bool cbx_ws_parse_ack(const char *s, size_t len, uint64_t *id);

#endif
