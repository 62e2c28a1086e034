/* hold_ws.c - a held request on a WebSocket (GET /ws/{queues}): the 101
 * answer, then the upgraded socket, which libmicrohttpd hands over and no
 * longer runs. Its frames are common/wsconn.c's; this file drives them on
 * the connection's own thread: in pool mode its pool thread watches the
 * socket and runs it on readiness and on wake-ups (cbx_pool_watch); in
 * per-connection mode the connection's thread loops in poll() on the
 * socket and an eventfd the wake-ups write. Rules: docs/PROTOCOL.md
 * "WebSocket"; threads: docs/THREADS.md. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/wsconn.h"
#include "hold.h"
#include "hold_int.h"

struct cbx_ws {
    struct cbx_hold *h;
    struct cbx_wsconn *wc;
    int fd;
    struct MHD_UpgradeResponseHandle *urh;
    char *extra;               /* bytes the client sent after its handshake, read by libmicrohttpd (owned) */
    size_t extra_len, extra_off;
    struct cbx_wake io;        /* pool mode: the socket's readiness */
    unsigned watched;          /* pool mode: the events watched now */
    int efd;                   /* per-connection mode: wake-ups; -1 in pool mode */
    bool first_sent;
    /* our close: wslay sends control frames before queued text, so the
     * close waits until the text before it (a kick frame) is out */
    unsigned close_code;       /* 0: none to send */
    char close_reason[256];    /* cut to 123 bytes when sent */
    bool closing;              /* our close frame is queued: end once it is out */
    bool ended;
};

static struct cbx_ws *ws_of_io(struct cbx_wake *w)
{
    return (struct cbx_ws *)((char *)w - offsetof(struct cbx_ws, io));
}

/* ---- the socket, for wsconn ------------------------------------------- */

static ssize_t sock_recv(void *ctx, uint8_t *buf, size_t len)
{
    struct cbx_ws *ws = ctx;
    ssize_t n;

    if (ws->extra_off < ws->extra_len) {
        n = (ssize_t)(ws->extra_len - ws->extra_off < len ? ws->extra_len - ws->extra_off : len);
        memcpy(buf, ws->extra + ws->extra_off, (size_t)n);
        ws->extra_off += (size_t)n;
        return n;
    }
    do
        n = recv(ws->fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    return n > 0 ? n : -1;
}

static ssize_t sock_sendv(void *ctx, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    struct cbx_ws *ws = ctx;
    struct iovec iov[2] = { { (void *)a, alen }, { (void *)b, blen } };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
    ssize_t n;

    do
        n = sendmsg(ws->fd, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (n > 0)
        atomic_store(&ws->h->last_write_us, cbx_now_mono_us());
    return n > 0 ? n : -1;
}

static ssize_t sock_send(void *ctx, const uint8_t *buf, size_t len)
{
    return sock_sendv(ctx, buf, len, NULL, 0);
}

static void sock_ack(void *ctx, uint64_t id)
{
    struct cbx_ws *ws = ctx;

    cbx_qmap_ack(ws->h->srv->qmap, &ws->h->w, id);
}

/* ---- one turn ----------------------------------------------------------- */

/* The end: off the loop, unsubscribed, uncounted; libmicrohttpd closes the
 * socket, and its completion callback frees the hold (hold.c). */
static void ws_end(struct cbx_ws *ws, bool drop)
{
    struct cbx_hold *h = ws->h;

    ws->ended = true;
    if (h->srv->cfg.threads == CBX_THREADS_POOL) {
        cbx_pool_unwatch(ws->fd);
        cbx_pool_forget(h->home, &h->wake);
    }
    cbx_qmap_unsubscribe(h->srv->qmap, &h->w);
    cbx_hold_uncount(h);
    if (drop)
        shutdown(ws->fd, SHUT_RDWR); /* at once, without a close handshake */
    if (cbx_log_enabled(CBX_LOG_DEBUG))
        cbx_log(CBX_LOG_DEBUG, "client %llu (ws) closed: %s%u", (unsigned long long)hold_client_id(h),
                drop ? "dropped; close code " : "close code ", cbx_wsconn_close_code(ws->wc));
    cbx_hold_unpark(h);
    MHD_upgrade_action(ws->urh, MHD_UPGRADE_ACTION_CLOSE);
    if (h->srv->cfg.threads == CBX_THREADS_POOL)
        cbx_pool_due(0); /* libmicrohttpd cleans the connection up in its next run */
}

/* Sends our close frame once what was queued before it is out. */
static void close_after(struct cbx_ws *ws, enum cbx_ws_close code, const char *reason)
{
    if (ws->close_code != 0 || ws->closing)
        return;
    ws->close_code = code;
    snprintf(ws->close_reason, sizeof ws->close_reason, "%s", reason);
}

/* Frames for what the waiter got: the first frame (cursor, gaps, pending),
 * then a frame per batch. Returns the flags the waiter had. */
static unsigned produce(struct cbx_ws *ws)
{
    struct cbx_hold *h = ws->h;
    size_t max = (size_t)h->cfg->max_batch;
    struct cbx_msg *stackbuf[64], **msgs = max <= 64 ? stackbuf : malloc(max * sizeof *msgs);
    unsigned flags = 0, f;
    size_t n;

    if (msgs == NULL)
        return CBX_W_GONE; /* no memory: drop it; the client resumes by id */
    do {
        n = cbx_waiter_take(&h->w, msgs, max, &f);
        flags |= f;
        if (n == 0 && ws->first_sent)
            break;
        cbx_buf_reset(&h->out);
        if (!ws->first_sent)
            cbx_tr_ws_first(&h->out, h->w.start == UINT64_MAX ? 0 : h->w.start, h->w.gaps, h->w.n_gaps, msgs, n);
        else
            cbx_tr_batch(&h->out, CBX_T_WS, NULL, 0, msgs, n);
        ws->first_sent = true;
        if (!h->out.ok || !cbx_wsconn_text(ws->wc, h->out.s, h->out.len))
            flags |= CBX_W_GONE;
        cbx_hold_note_sent(h, msgs, n);
    } while (n == max && !(flags & CBX_W_GONE));
    if (msgs != stackbuf)
        free(msgs);
    return flags;
}

/* Everything the connection has to do now: read what came, queue what the
 * waiter got and what its flags ask, write. events: the socket's readiness
 * (0: a wake-up). */
static void ws_turn(struct cbx_ws *ws, unsigned events)
{
    struct cbx_hold *h = ws->h;
    unsigned flags;
    bool drop = false;

    if (ws->ended)
        return;
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && cbx_wsconn_read(ws->wc) != 0)
        drop = true;
    flags = drop ? 0 : produce(ws);
    if (flags & CBX_W_GONE) {
        drop = true;
    } else if (flags & CBX_W_KICK) {
        char reason[256];
        cbx_waiter_kick_reason(&h->w, reason, sizeof reason);
        cbx_buf_reset(&h->out);
        cbx_tr_kick(&h->out, CBX_T_WS, reason);
        if (h->out.ok)
            cbx_wsconn_text(ws->wc, h->out.s, h->out.len);
        close_after(ws, CBX_WS_KICK, reason);
    } else if (flags & CBX_W_STOP) {
        close_after(ws, CBX_WS_GOING_AWAY, "server stopping");
    } else if (flags & CBX_W_OVERFLOW) {
        close_after(ws, CBX_WS_POLICY, "too slow: messages came faster than it read");
    } else if (flags & CBX_W_HEARTBEAT) {
        if (ws->closing || ws->close_code != 0 || cbx_wsconn_ping_unanswered(ws->wc)) {
            if (!ws->closing && cbx_wsconn_close(ws->wc, CBX_WS_ERROR, "no pong"))
                cbx_wsconn_write(ws->wc);
            drop = true; /* a peer that answers nothing would not answer a close either */
        } else {
            cbx_wsconn_ping(ws->wc);
        }
    }
    if (!drop && cbx_wsconn_write(ws->wc) != 0)
        drop = true;
    if (!drop && ws->close_code != 0 && !ws->closing && !cbx_wsconn_want_write(ws->wc)) {
        ws->closing = cbx_wsconn_close(ws->wc, (enum cbx_ws_close)ws->close_code, ws->close_reason);
        if (!ws->closing || cbx_wsconn_write(ws->wc) != 0)
            drop = true;
    }
    if (!drop && cbx_wsconn_queued(ws->wc) > h->cfg->stream_max_bytes)
        drop = true; /* it does not read: dropped like a slow stream reader */
    if (drop || cbx_wsconn_done(ws->wc) || (ws->closing && !cbx_wsconn_want_write(ws->wc))) {
        /* once our close frame is out, the end does not wait for the
         * peer's: the stop and a kick must not depend on the client */
        cbx_wsconn_write(ws->wc);
        ws_end(ws, drop);
        return;
    }
    if (h->srv->cfg.threads == CBX_THREADS_POOL) {
        unsigned want = EPOLLIN | (cbx_wsconn_want_write(ws->wc) ? EPOLLOUT : 0);
        if (want != ws->watched && cbx_pool_watch(ws->fd, want, &ws->io, true) == 0)
            ws->watched = want;
    }
}

/* ---- the two modes ------------------------------------------------------ */

static void io_ready(struct cbx_wake *w, unsigned events)
{
    ws_turn(ws_of_io(w), events ? events : EPOLLIN);
}

/* A wake-up queued on the pool thread (hold->wake.run). */
static void woken(struct cbx_wake *w, unsigned events)
{
    struct cbx_hold *h = (struct cbx_hold *)((char *)w - offsetof(struct cbx_hold, wake));

    (void)events;
    if (h->ws != NULL)
        ws_turn(h->ws, 0);
}

/* The waiter's wake() (w->mu held; must not block). */
static void wake_ws_pool(struct cbx_waiter *w)
{
    struct cbx_hold *h = hold_of(w);

    cbx_pool_wake(h->home, &h->wake);
}

static void wake_ws_thread(struct cbx_waiter *w)
{
    uint64_t one = 1;
    struct cbx_hold *h = hold_of(w);

    if (h->ws != NULL && h->ws->efd >= 0 && write(h->ws->efd, &one, sizeof one) < 0 && errno != EAGAIN)
        cbx_log(CBX_LOG_ERROR, "ws: cannot wake a connection: %s", strerror(errno));
}

/* Per-connection mode: the connection's own thread runs it to the end. */
static void run_here(struct cbx_ws *ws)
{
    while (!ws->ended) {
        struct pollfd p[2] = { { ws->fd, POLLIN, 0 }, { ws->efd, POLLIN, 0 } };
        unsigned events = 0;
        if (cbx_wsconn_want_write(ws->wc))
            p[0].events |= POLLOUT;
        if (poll(p, 2, -1) < 0 && errno != EINTR) {
            ws_end(ws, true);
            break;
        }
        if (p[1].revents & POLLIN) {
            uint64_t v;
            if (read(ws->efd, &v, sizeof v) < 0 && errno != EAGAIN)
                cbx_log(CBX_LOG_ERROR, "ws: reading its eventfd: %s", strerror(errno));
        }
        if (p[0].revents & (POLLIN | POLLERR | POLLHUP))
            events |= EPOLLIN;
        if (p[0].revents & POLLOUT)
            events |= EPOLLOUT;
        ws_turn(ws, events);
    }
}

static void upgraded(void *cls, struct MHD_Connection *c, void *con_cls, const char *extra_in, size_t extra_in_size,
                     MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    struct cbx_hold *h = cls;
    struct cbx_ws *ws = calloc(1, sizeof *ws);
    bool pool = h->srv->cfg.threads == CBX_THREADS_POOL;
    struct cbx_wsconn_io io;
    int one = 1, sndbuf;

    (void)c, (void)con_cls;
    if (ws == NULL || (extra_in_size > 0 && (ws->extra = malloc(extra_in_size)) == NULL)) {
        free(ws);
        cbx_qmap_unsubscribe(h->srv->qmap, &h->w);
        cbx_hold_uncount(h);
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        return;
    }
    ws->h = h;
    ws->fd = sock;
    ws->urh = urh;
    ws->efd = -1;
    if (extra_in_size > 0)
        memcpy(ws->extra, extra_in, extra_in_size);
    ws->extra_len = extra_in_size;
    io = (struct cbx_wsconn_io){ ws, sock_recv, sock_send, sock_ack, sock_sendv };
    ws->wc = cbx_wsconn_new(&io, h->cfg->max_ws_frame);
    if (!pool)
        ws->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    /* libmicrohttpd leaves Nagle on after an upgrade: frames are to go at once */
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* The kernel would take up to tcp_wmem's 4 MiB for a client that does
     * not read; with this (doubled by the kernel) about stream-max-bytes
     * wait there, and at most as much again in wslay's queue before the
     * client is dropped. */
    sndbuf = (int)(h->cfg->stream_max_bytes / 2 > (1u << 30) ? (1u << 30) : h->cfg->stream_max_bytes / 2);
    setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK); /* per-connection mode's are blocking */
    pthread_mutex_lock(&h->w.mu);
    h->ws = ws;
    h->w.wake = pool ? wake_ws_pool : wake_ws_thread;
    pthread_mutex_unlock(&h->w.mu);
    /* parked until it ends: the stop waits for it (docs/THREADS.md) */
    cbx_hold_park(h);
    if (ws->wc == NULL || (!pool && ws->efd < 0)) {
        ws_end(ws, true);
    } else if (pool) {
        h->wake.run = woken;
        ws->io.run = io_ready;
        ws->watched = EPOLLIN;
        if (cbx_pool_watch(sock, EPOLLIN, &ws->io, false) != 0)
            ws_end(ws, true);
        else
            ws_turn(ws, EPOLLIN);
    } else {
        ws_turn(ws, EPOLLIN);
        run_here(ws);
    }
}

void cbx_hold_ws_free(struct cbx_ws *ws)
{
    if (ws == NULL)
        return;
    cbx_wsconn_free(ws->wc);
    if (ws->efd >= 0)
        close(ws->efd);
    free(ws->extra);
    free(ws);
}

enum MHD_Result cbx_hold_ws_answer(struct MHD_Connection *c, struct cbx_hold *h, const char *accept)
{
    struct MHD_Response *r = MHD_create_response_for_upgrade(upgraded, h);
    enum MHD_Result ret;

    if (r == NULL)
        return MHD_NO; /* libmicrohttpd closes; the completion callback frees h */
    MHD_add_response_header(r, MHD_HTTP_HEADER_UPGRADE, "websocket"); /* libmicrohttpd adds Connection: Upgrade */
    MHD_add_response_header(r, "Sec-WebSocket-Accept", accept);
    ret = MHD_queue_response(c, MHD_HTTP_SWITCHING_PROTOCOLS, r);
    MHD_destroy_response(r);
    return ret;
}
