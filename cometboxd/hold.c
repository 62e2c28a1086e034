/* hold.c - a held request's life (long-poll, stream, SSE): one struct with
 * one wake-up entry point, fed by the queue map. This is the only file that
 * knows the threads mode:
 *  - pool: the content reader suspends the connection when it has nothing
 *    to send; wake() queues it on its own pool thread, which resumes it
 *    (pool.c);
 *  - per-connection: the content reader waits on the hold's own condition
 *    variable, on the connection's own thread; wake() signals it.
 * Either way, "look at the inbox" and "start waiting" happen under the
 * waiter's mu, and publishers fill the inbox and wake under the same mu,
 * so a publish can never slip between them. Locks: docs/THREADS.md. */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "../common/log.h"
#include "hold.h"
#include "hold_int.h"
#include "broker.h"
#include "limits.h"
#include "server.h"
#include "transport.h"

/* ---- wake-up: the two modes ------------------------------------------- */

static void wake_thread(struct cbx_waiter *w)
{
    pthread_cond_signal(&hold_of(w)->cond);
}

/* Waits for something to do. Returns true when the connection was
 * suspended (pool mode: the reader must return 0 and will be called again
 * after wake_pool), false when there is something to do now. */
static bool hold_wait(struct cbx_hold *h)
{
    bool suspended = false;

    cbx_conn_watch(h->srv, h->cconn); /* before the first wait: a closed peer must end it */
    pthread_mutex_lock(&h->w.mu);
    if (h->w.n_inbox == 0 && h->w.flags == 0) {
        cbx_hold_park(h);
        if (h->srv->cfg.threads == CBX_THREADS_POOL) {
            h->suspended = true;
            MHD_suspend_connection(h->conn);
            suspended = true; /* unparked when libmicrohttpd calls us again */
        } else {
            while (h->w.n_inbox == 0 && h->w.flags == 0)
                pthread_cond_wait(&h->cond, &h->w.mu);
        }
    }
    pthread_mutex_unlock(&h->w.mu);
    if (!suspended)
        cbx_hold_unpark(h);
    return suspended;
}

/* ---- producing bytes -------------------------------------------------- */

static bool has_work(struct cbx_hold *h)
{
    bool has;

    pthread_mutex_lock(&h->w.mu);
    has = h->w.n_inbox > 0 || h->w.flags != 0;
    pthread_mutex_unlock(&h->w.mu);
    return has;
}

/* Room for max-batch message refs: on the stack for the usual sizes. */
#define SCRATCH_STACK 128
static struct cbx_msg **scratch_get(struct cbx_msg **stackbuf, size_t n)
{
    return n <= SCRATCH_STACK ? stackbuf : malloc(n * sizeof *stackbuf);
}

static void scratch_put(struct cbx_msg **scratch, struct cbx_msg **stackbuf)
{
    if (scratch != stackbuf)
        free(scratch);
}

static void add_kick(struct cbx_hold *h)
{
    char reason[256];

    cbx_waiter_kick_reason(&h->w, reason, sizeof reason);
    cbx_tr_kick(&h->out, h->transport, reason);
}

static void add_headers(struct MHD_Response *r, struct cbx_hold *h);

/* Pool mode's wake(), with w->mu held: a suspended hold is queued on its
 * own thread, which resumes it (pool.c); one eventfd write per thread and
 * batch, whatever the number of holds. */
static void wake_pool(struct cbx_waiter *w)
{
    struct cbx_hold *h = hold_of(w);

    if (!h->suspended)
        return;
    h->suspended = false;
    cbx_pool_wake(h->home, &h->wake);
}

/* ---- answering -------------------------------------------------------- */

/* Long-poll: answer once, with what subscribe found or what arrived. */
static bool produce_poll(struct cbx_hold *h)
{
    struct cbx_server *s = h->srv;
    struct cbx_msg *stackbuf[SCRATCH_STACK], **scratch;
    unsigned flags = 0;
    size_t n;

    if (!h->started) {
        h->started = true;
        if (!has_work(h) && h->w.n_gaps == 0)
            return false;
    } else if (!has_work(h)) {
        return false;
    }
    cbx_qmap_unsubscribe(s->qmap, &h->w); /* nothing more may land in the inbox */
    scratch = scratch_get(stackbuf, (size_t)h->cfg->max_batch);
    n = scratch ? cbx_waiter_take(&h->w, scratch, (size_t)h->cfg->max_batch, &flags) : 0;
    h->finished = true;
    if (scratch == NULL || (flags & CBX_W_GONE)) {
        h->failed = true;
    } else if (flags & CBX_W_KICK) {
        add_kick(h);
    } else {
        struct shared_answer *a = cbx_share_fits(h, n) ? h->share : NULL;
        if (a == NULL || (h->shared = cbx_share_find(a, h, scratch, n)) == NULL) {
            cbx_tr_batch(&h->out, h->transport, h->w.gaps, h->w.n_gaps, scratch, n);
            struct MHD_Response *r = a != NULL && h->out.ok
                ? MHD_create_response_from_buffer(h->out.len, h->out.s, MHD_RESPMEM_MUST_FREE) : NULL;
            if (r != NULL) {
                cbx_buf_init(&h->out); /* the response owns the bytes now */
                add_headers(r, h);
                cbx_share_keep(a, h, r, scratch, n); /* our reference passes to the entry */
                h->shared = r;
            }
        }
    }
    cbx_hold_note_sent(h, scratch, n);
    scratch_put(scratch, stackbuf);
    return true;
}

/* Stream and SSE: a first line at once, then a line per batch. */
static bool produce_stream(struct cbx_hold *h)
{
    struct cbx_msg *stackbuf[SCRATCH_STACK], **scratch = scratch_get(stackbuf, (size_t)h->cfg->max_batch);
    size_t before = h->out.len;
    unsigned flags = 0, f;
    size_t n;

    if (scratch == NULL) {
        h->finished = h->failed = true;
        return true;
    }
    if (!h->started) {
        h->started = true;
        if (h->transport == CBX_T_SSE)
            cbx_tr_retry(&h->out, 3000 + (unsigned)(hold_client_id(h) * 2654435761u % 2001));
        n = cbx_waiter_take(&h->w, scratch, (size_t)h->cfg->max_batch, &flags);
        if (n > 0 || h->w.n_gaps > 0 || h->transport == CBX_T_STREAM)
            cbx_tr_batch(&h->out, h->transport, h->w.gaps, h->w.n_gaps, scratch, n);
        cbx_hold_note_sent(h, scratch, n);
    }
    while ((n = cbx_waiter_take(&h->w, scratch, (size_t)h->cfg->max_batch, &f)) > 0 || f != 0) {
        flags |= f;
        if (n > 0)
            cbx_tr_batch(&h->out, h->transport, NULL, 0, scratch, n);
        cbx_hold_note_sent(h, scratch, n);
        if (n == 0)
            break;
    }
    scratch_put(scratch, stackbuf);
    if (flags & CBX_W_GONE) {
        h->finished = h->failed = true;
        return true;
    }
    if (flags & CBX_W_KICK) {
        add_kick(h);
        h->finished = true;
    }
    if (flags & (CBX_W_STOP | CBX_W_MAXAGE | CBX_W_OVERFLOW))
        h->finished = true;
    if ((flags & CBX_W_HEARTBEAT) && h->out.len == before && !h->finished)
        cbx_tr_heartbeat(&h->out, h->transport);
    h->written += h->out.len - before;
    if (h->written >= h->cfg->stream_max_bytes)
        h->finished = true;
    if (!h->out.ok) {
        h->finished = h->failed = true; /* out of memory: drop it, the client resumes by id */
        cbx_log(CBX_LOG_WARN, "client %llu: out of memory building an answer", (unsigned long long)hold_client_id(h));
    }
    if (h->out.len != before)
        atomic_store(&h->last_write_us, cbx_now_mono_us());
    return h->out.len != before || h->finished;
}

static ssize_t hold_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct cbx_hold *h = cls;

    (void)pos;
    cbx_hold_unpark(h);
    for (;;) {
        if (h->out_off < h->out.len) {
            size_t n = h->out.len - h->out_off;
            if (n > max)
                n = max;
            memcpy(buf, h->out.s + h->out_off, n);
            h->out_off += n;
            if (h->out_off == h->out.len) {
                h->out_off = 0;
                cbx_buf_reset(&h->out);
            }
            return (ssize_t)n;
        }
        if (h->finished) {
            cbx_hold_uncount(h);
            return h->failed ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (produce_stream(h))
            continue;
        if (hold_wait(h))
            return 0; /* suspended; libmicrohttpd calls again after the resume */
    }
}

/* ---- life of a hold ----------------------------------------------------- */

static void hold_free(struct cbx_hold *h)
{
    cbx_hold_ws_free(h->ws);
    if (h->srv->cfg.threads == CBX_THREADS_PER_CONNECTION)
        pthread_cond_destroy(&h->cond);
    cbx_waiter_cleanup(&h->w);
    cbx_buf_free(&h->out);
    free(h);
}

static void add_stream_headers(struct MHD_Response *r, enum cbx_transport t)
{
    if (t == CBX_T_POLL) {
        MHD_add_response_header(r, "Content-Type", "application/json");
        cbx_http_common_headers(r);
        return;
    }
    MHD_add_response_header(r, "Content-Type",
                            t == CBX_T_SSE ? "text/event-stream; charset=utf-8" : "application/x-ndjson; charset=utf-8");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Cache-Control", "no-cache, no-store, no-transform");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
}

static void add_headers(struct MHD_Response *r, struct cbx_hold *h)
{
    add_stream_headers(r, h->transport);
    if (h->transport != CBX_T_POLL) {
        char start[24];
        snprintf(start, sizeof start, "%llu", (unsigned long long)h->w.start);
        MHD_add_response_header(r, "Cometbox-Cursor", start);
    }
    cbx_http_cors_headers(r, h->origin);
}

/* A long-poll answers once, with a whole buffer (one write, with a
 * Content-Length): it waits before its answer exists. In pool mode the wait
 * suspends the connection and libmicrohttpd calls the access handler, and so
 * this function, again after the resume; in per-connection mode it blocks
 * this connection's own thread. */
static enum MHD_Result poll_step(struct MHD_Connection *c, struct cbx_hold *h)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    cbx_hold_unpark(h);
    while (!produce_poll(h))
        if (hold_wait(h))
            return MHD_YES; /* suspended */
    cbx_hold_uncount(h);
    if (h->shared != NULL && !h->failed) {
        r = h->shared; /* this thread's entry keeps its reference */
        h->shared = NULL;
        return MHD_queue_response(c, MHD_HTTP_OK, r);
    }
    if (h->failed || !h->out.ok || h->out.len == 0)
        return MHD_NO; /* the browser went away (or no memory): close the connection */
    r = MHD_create_response_from_buffer(h->out.len, h->out.s, MHD_RESPMEM_MUST_FREE);
    if (r == NULL)
        return MHD_NO;
    cbx_buf_init(&h->out); /* the response owns the bytes now */
    add_headers(r, h);
    ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* libmicrohttpd calls the browser handler again for a resumed long-poll. */
static enum MHD_Result hold_resumed(struct cbx_req *r, struct MHD_Connection *c, void **con_cls)
{
    (void)con_cls;
    return poll_step(c, (struct cbx_hold *)r);
}

/* The request is over: unsubscribe, forget, free. */
static void hold_completed(struct cbx_req *r, bool clean)
{
    struct cbx_hold *h = (struct cbx_hold *)r;
    struct cbx_server *s = h->srv;

    cbx_qmap_unsubscribe(s->qmap, &h->w);
    cbx_hold_unpark(h);
    if (h->home != NULL)
        cbx_pool_forget(h->home, &h->wake);
    if (cbx_log_enabled(CBX_LOG_DEBUG)) {
        char addr[64];
        cbx_hold_peer_address(h->conn, addr, sizeof addr);
        cbx_log(CBX_LOG_DEBUG, "client %llu (%s, %s) closed: %s", (unsigned long long)hold_client_id(h),
                cbx_transport_name(h->transport), addr, h->failed || !clean ? "browser went away" : "answered");
    }
    cbx_hold_uncount(h);
    cbx_hold_reg_remove(s, h);
    hold_free(h);
}

/* libmicrohttpd allocates (and zeroes) this much per stream for the reader's
 * chunks: 16 KiB cost 18 KiB per held SSE stream, 1 KiB costs 11 KiB. */
#define STREAM_BLOCK 1024

/* broker = redis, pool mode: a request suspended while Redis takes its
 * acknowledgement or loads its queues (broker.h: cbx_broker_ack(),
 * cbx_broker_sync()). */
struct sync_wait {
    struct cbx_req req; /* first: the connection's con_cls points here */
    struct cbx_server *srv;
    struct cbx_hold_params p;
    struct cbx_broker_ticket t;
    struct cbx_wake wake;
    struct cbx_pool_thread *home;
};

static struct cbx_req answered_marker; /* an error was answered: nothing to do at completion */

static void sync_answered(struct cbx_broker_ticket *t)
{
    struct sync_wait *sw = (struct sync_wait *)((char *)t - offsetof(struct sync_wait, t));

    cbx_pool_wake(sw->home, &sw->wake);
}

static enum MHD_Result broker_unavailable(struct cbx_server *s, struct MHD_Connection *c, struct cbx_hold_params *p,
                                          enum cbx_err rc)
{
    cbx_qlist_free(&p->queues);
    if (rc != CBX_ERR_UNAVAILABLE)
        return cbx_http_error_cors(c, p->origin, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", cbx_strerror(rc));
    cbx_refuse(s, CBX_REFUSE_BROKER);
    return cbx_http_error_cors(c, p->origin, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                               "the broker (Redis) is unreachable; retry");
}

static enum MHD_Result hold_begin(struct cbx_server *s, struct MHD_Connection *c, struct cbx_hold_params *p,
                                  void **con_cls);

/* Redis answered: the request goes on (or gets 503) on its pool thread. */
static enum MHD_Result sync_resumed(struct cbx_req *r, struct MHD_Connection *c, void **con_cls)
{
    struct sync_wait *sw = (struct sync_wait *)r;
    struct cbx_server *s = sw->srv;
    struct cbx_hold_params p = sw->p;
    enum cbx_err rc = sw->t.rc;
    enum MHD_Result ret;

    cbx_unpark(s);
    free(sw);
    *con_cls = NULL;
    ret = rc == CBX_OK ? hold_begin(s, c, &p, con_cls) : broker_unavailable(s, c, &p, rc);
    if (*con_cls == NULL)
        *con_cls = &answered_marker;
    return ret;
}

/* broker = redis: asks Redis for what the request needs first (an
 * acknowledgement, or a load); t is told when it is done. */
static enum cbx_err broker_prepare(struct cbx_server *s, enum cbx_mirror_need need, const struct cbx_hold_params *p,
                                   struct cbx_broker_ticket *t)
{
    if (need == CBX_MIRROR_ACK)
        return cbx_broker_ack(s->broker, &p->queues, p->since, t);
    return cbx_broker_sync(s->broker, &p->queues, p->has_since, p->since, t);
}

enum MHD_Result cbx_hold_start(struct cbx_server *s, struct MHD_Connection *c, struct cbx_hold_params *p,
                               void **con_cls)
{
    struct sync_wait *sw;
    enum cbx_mirror_need need;
    enum cbx_err rc;

    if (s->broker == NULL ||
        (need = cbx_qmap_mirror_need(s->qmap, &p->queues, p->has_since, p->since)) == CBX_MIRROR_READY)
        return hold_begin(s, c, p, con_cls);
    /* broker = redis: Redis first */
    if (s->cfg.threads != CBX_THREADS_POOL) {
        struct cbx_broker_ticket t = { 0 };
        rc = broker_prepare(s, need, p, &t);
        if (rc == CBX_OK) {
            cbx_broker_wait(s->broker, &t);
            rc = t.rc;
        }
        return rc == CBX_OK ? hold_begin(s, c, p, con_cls) : broker_unavailable(s, c, p, rc);
    }
    if ((sw = calloc(1, sizeof *sw)) == NULL)
        return broker_unavailable(s, c, p, CBX_ERR_NOMEM);
    sw->req.resumed = sync_resumed;
    sw->srv = s;
    sw->p = *p; /* the names pass to it */
    sw->t.notify = sync_answered;
    sw->wake.conn = c;
    sw->wake.slot = 0; /* the browser port's daemon (serve.c) */
    sw->home = cbx_pool_current();
    *con_cls = sw;
    cbx_park(s);
    MHD_suspend_connection(c);
    rc = broker_prepare(s, need, &sw->p, &sw->t);
    if (rc != CBX_OK) { /* not sent: answered at once */
        sw->t.rc = rc;
        cbx_pool_wake(sw->home, &sw->wake);
    }
    return MHD_YES;
}

static enum MHD_Result hold_begin(struct cbx_server *s, struct MHD_Connection *c, struct cbx_hold_params *p,
                                  void **con_cls)
{
    struct cbx_hold *h = calloc(1, sizeof *h);
    struct MHD_Response *r = NULL;
    enum cbx_err rc;
    int64_t now = cbx_now_mono_us();
    enum MHD_Result ret;

    if (h == NULL) {
        cbx_qlist_free(&p->queues);
        return cbx_http_error_cors(c, p->origin, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", "out of memory");
    }
    cbx_waiter_init(&h->w);
    cbx_buf_init(&h->out);
    h->req.completed = hold_completed;
    h->req.resumed = p->transport == CBX_T_POLL ? hold_resumed : NULL;
    h->srv = s;
    h->cfg = p->cfg;
    h->transport = p->transport;
    h->conn = c;
    h->since_real_us = cbx_now_real_us();
    /* a WebSocket has no age limit: no proxy holds its bytes back */
    h->deadline_us = p->transport == CBX_T_WS ? INT64_MAX
                   : now + (p->transport == CBX_T_POLL ? p->timeout : h->cfg->stream_max_age) * 1000000;
    atomic_init(&h->last_write_us, now);
    atomic_init(&h->cursor, p->has_since ? p->since : 0);
    h->w.queues = p->queues; /* the hold owns the names now */
    p->queues.buf = NULL;
    h->w.one_shot = p->transport == CBX_T_POLL;
    /* a WebSocket's client acknowledges with {"ack":ID} frames instead */
    h->w.ack_on_deliver = p->transport == CBX_T_STREAM || p->transport == CBX_T_SSE;
    h->w.inbox_max = p->transport == CBX_T_POLL ? 0 : (size_t)h->cfg->queue_max_messages * p->queues.n;
    if (s->cfg.threads == CBX_THREADS_POOL) {
        h->w.wake = wake_pool;
        h->home = cbx_pool_current(); /* a connection stays on its pool thread */
        h->wake.conn = c;
        h->wake.slot = 0; /* the browser port's daemon (serve.c) */
        h->share = cbx_share_mine();
    } else {
        h->w.wake = wake_thread;
        pthread_cond_init(&h->cond, NULL);
    }
    h->cconn = cbx_conn_of(c);

    cbx_hold_reg_add(s, h); /* before subscribing, so a stop signals it */
    rc = cbx_qmap_subscribe(s->qmap, &h->w, p->has_since, p->since,
                            p->transport == CBX_T_POLL ? (size_t)h->cfg->max_batch : SIZE_MAX,
                            p->transport != CBX_T_POLL);
    if (rc == CBX_ERR_AGAIN) {
        /* broker = redis: a queue was forgotten since cbx_hold_start()
         * found it mirrored: load it again, then start over */
        cbx_hold_reg_remove(s, h);
        p->queues = h->w.queues;
        h->w.queues.buf = NULL;
        h->w.queues.n = 0;
        hold_free(h);
        return cbx_hold_start(s, c, p, con_cls);
    }
    if (rc != CBX_OK) {
        cbx_hold_reg_remove(s, h);
        hold_free(h);
        if (rc == CBX_ERR_BUSY) {
            cbx_refuse(s, CBX_REFUSE_QUEUE_WAITERS);
            return cbx_http_error_cors(c, p->origin, MHD_HTTP_TOO_MANY_REQUESTS, "too_many_requests",
                                  "too many requests held on this queue (max-waiters-per-queue)");
        }
        if (rc == CBX_ERR_STOPPING) {
            cbx_refuse(s, CBX_REFUSE_STOPPING);
            return cbx_http_error_cors(c, p->origin, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", "the server is stopping");
        }
        return cbx_http_error_cors(c, p->origin, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", cbx_strerror(rc));
    }
    if (atomic_load(&s->stopping))
        cbx_waiter_signal(&h->w, CBX_W_STOP, NULL); /* a stop that ran before reg_add saw it */

    h->origin = p->origin;
    atomic_fetch_add(&s->ctr.held[h->transport], 1);
    h->counted = true;
    *con_cls = h;
    if (h->transport == CBX_T_POLL)
        return poll_step(c, h);
    if (h->transport == CBX_T_WS)
        return cbx_hold_ws_answer(c, h, p->ws_accept);

    r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, hold_read, h, NULL);
    if (r == NULL)
        return MHD_NO; /* libmicrohttpd closes; the completion callback frees h */
    add_headers(r, h);
    ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

