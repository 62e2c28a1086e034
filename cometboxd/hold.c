/* hold.c - held requests (long-poll, stream, SSE): one struct with one
 * wake-up entry point, fed by the queue map. This is the only file that
 * knows the threads mode:
 *  - pool: the content reader suspends the connection when it has nothing
 *    to send; wake() resumes it (libmicrohttpd's epoll thread pool);
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
#include "itc.h"
#include "conn.h"
#include "server.h"
#include "transport.h"

struct cbx_hold {
    int kind;                  /* CBX_CTX_HOLD: first, so con_cls tells what it is */
    struct cbx_waiter w;       /* what the queue map sees */
    struct cbx_server *srv;
    enum cbx_transport transport;
    struct MHD_Connection *conn;
    const char *origin;        /* Access-Control-Allow-Origin to send, or NULL; valid for the request */
    struct cbx_conn *cconn;    /* the connection's context, or NULL; lives longer than the hold */
    int64_t since_real_us;     /* connected since (wall clock) */
    int64_t deadline_us;       /* monotonic: long-poll timeout, or stream-max-age */
    _Atomic int64_t last_write_us; /* monotonic; the reaper's heartbeat clock */
    _Atomic uint64_t cursor;   /* last id handed to this client */
    bool deadline_signalled;   /* guarded by reg_mu */

    /* guarded by w.mu */
    bool suspended;            /* pool mode: suspended in the reader */
    bool parked;               /* counted in srv->parked; only the connection's own thread touches it */
    pthread_cond_t cond;       /* per-connection mode: the reader waits here */

    /* pool mode: the pool thread that serves this connection (set once, in
     * that thread) and the link in its list of holds to resume (home->mu) */
    struct pool_thread *home;
    struct cbx_hold *relay_next;
    bool relayed;

    /* owned by the reader (one thread at a time, per libmicrohttpd) */
    struct cbx_buf out;
    size_t out_off;
    size_t written;
    bool started, finished, failed;
    bool counted;              /* in ctr.held[transport] */
    struct MHD_Response *shared; /* long-poll: a thread's shared answer to queue, not owned */

    struct cbx_hold *reg_next; /* guarded by reg_mu */
};

/* The id of the hold's connection (0 without a context): what the reaper
 * watches, and what `clients` and `kick` call the client. */
static uint64_t hold_client_id(const struct cbx_hold *h)
{
    return h->cconn != NULL ? h->cconn->id : 0;
}

static struct cbx_hold *hold_of(struct cbx_waiter *w)
{
    return (struct cbx_hold *)((char *)w - offsetof(struct cbx_hold, w));
}

/* ---- wake-up: the two modes ------------------------------------------- */

static void wake_thread(struct cbx_waiter *w)
{
    pthread_cond_signal(&hold_of(w)->cond);
}

static void park(struct cbx_hold *h)
{
    h->parked = true;
    atomic_fetch_add(&h->srv->parked, 1);
}

/* Called by the connection's own thread once it runs again after a wait. */
static void unpark(struct cbx_hold *h)
{
    struct cbx_server *s = h->srv;

    if (!h->parked)
        return;
    h->parked = false;
    if (atomic_fetch_sub(&s->parked, 1) == 1) {
        pthread_mutex_lock(&s->park_mu);
        pthread_cond_broadcast(&s->park_zero);
        pthread_mutex_unlock(&s->park_mu);
    }
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
        park(h);
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
        unpark(h);
    return suspended;
}

/* ---- producing bytes -------------------------------------------------- */

static void note_sent(struct cbx_hold *h, struct cbx_msg **msgs, size_t n)
{
    if (n > 0)
        atomic_store(&h->cursor, msgs[n - 1]->id);
    for (size_t i = 0; i < n; i++)
        cbx_msg_unref(msgs[i]);
}

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

/* ---- shared long-poll answers ------------------------------------------ */

/* In a fan-out every long-poll on the queue answers with the same bytes. Each
 * pool thread keeps its last answer (libmicrohttpd counts the references of
 * a response) and queues it again when the next long-poll's batch is the
 * same messages, without gaps, for the same Origin: one body, one response
 * and one set of headers per thread and message instead of per browser.
 * The entry holds refs on its messages, so their addresses cannot be reused
 * while it exists. Pool mode only: a per-connection thread answers one
 * browser. */
#define SHARE_MAX 4
struct shared_answer {
    struct MHD_Response *r;
    struct cbx_msg *msgs[SHARE_MAX];
    size_t n;
    bool has_origin;
    char origin[256];
};

static void share_clear(struct shared_answer *a)
{
    if (a->r != NULL)
        MHD_destroy_response(a->r);
    for (size_t i = 0; i < a->n; i++)
        cbx_msg_unref(a->msgs[i]);
    a->r = NULL;
    a->n = 0;
}

/* Only pool threads have a home entry to keep the answer in. */
static bool shareable(const struct cbx_hold *h, size_t n)
{
    return h->home != NULL && h->w.n_gaps == 0 && n > 0 && n <= SHARE_MAX &&
           (h->origin == NULL || strlen(h->origin) < sizeof ((struct shared_answer *)0)->origin);
}

/* ---- pool threads ------------------------------------------------------ */

/* What each libmicrohttpd pool thread keeps: made on first use in that
 * thread, freed when it exits, after libmicrohttpd closed its connections. */
struct pool_thread {
    pthread_mutex_t mu;
    struct cbx_hold *relay;    /* guarded by mu: woken holds this thread is to resume */
    bool leader_out;           /* guarded by mu: a hold was resumed by another thread and none of our callbacks ran since */
    struct shared_answer share; /* this thread only */
};

static pthread_key_t thread_key;
static pthread_once_t thread_once = PTHREAD_ONCE_INIT;

static void thread_free(void *p)
{
    struct pool_thread *t = p;

    share_clear(&t->share);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static void thread_key_init(void)
{
    if (pthread_key_create(&thread_key, thread_free) != 0)
        cbx_log(CBX_LOG_WARN, "no thread key: long-poll answers are not shared, every wake-up resumes directly");
}

/* This thread's entry, or NULL when it has none (not a pool thread). */
static struct pool_thread *thread_peek(void)
{
    pthread_once(&thread_once, thread_key_init);
    return pthread_getspecific(thread_key);
}

/* This thread's entry (made on first use), or NULL. */
static struct pool_thread *thread_mine(void)
{
    struct pool_thread *t = thread_peek();

    if (t == NULL && (t = calloc(1, sizeof *t)) != NULL) {
        pthread_mutex_init(&t->mu, NULL);
        if (pthread_setspecific(thread_key, t) != 0) {
            pthread_mutex_destroy(&t->mu);
            free(t);
            t = NULL;
        }
    }
    return t;
}

/* Resumes the holds other threads woke for this one (see wake_pool). Called
 * by this thread at the start of each of our callbacks, so its loop resumes
 * them before it waits again: no wake-up write is needed (itc.c). */
static void relay_drain(struct pool_thread *t)
{
    struct cbx_hold *list;
    bool here;

    if (t == NULL)
        return;
    here = t == thread_peek();
    pthread_mutex_lock(&t->mu);
    list = t->relay;
    t->relay = NULL;
    t->leader_out = false;
    for (struct cbx_hold *h = list; h != NULL; h = h->relay_next)
        h->relayed = false;
    pthread_mutex_unlock(&t->mu);
    while (list != NULL) {
        struct cbx_hold *next = list->relay_next; /* still suspended: nothing frees it */
        if (here)
            cbx_resume_here(list->conn);
        else
            MHD_resume_connection(list->conn);
        list = next;
    }
}

/* A hold that ends must not stay on its thread's list. */
static void relay_forget(struct cbx_hold *h)
{
    struct pool_thread *t = h->home;

    if (t == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    if (h->relayed) {
        struct cbx_hold **pp = &t->relay;
        while (*pp != h)
            pp = &(*pp)->relay_next;
        *pp = h->relay_next;
        h->relayed = false;
    }
    pthread_mutex_unlock(&t->mu);
}

/* Resuming a connection from another thread takes the pool thread's
 * connection lock, which the pool thread holds while it walks all its
 * suspended connections: a publisher that resumes thousands of browsers one
 * by one keeps meeting that lock. So a publisher resumes one hold per pool
 * thread (the leader) and queues the others on the thread; the thread itself
 * resumes them as soon as it runs any of our callbacks, which the leader's
 * resume guarantees. docs/THREADS.md ("Waking held requests").
 * Called with w->mu held. */
static void wake_pool(struct cbx_waiter *w)
{
    struct cbx_hold *h = hold_of(w);
    struct pool_thread *t = h->home;

    if (!h->suspended)
        return;
    h->suspended = false;
    if (t != NULL && t != thread_peek()) {
        bool queued;
        pthread_mutex_lock(&t->mu);
        queued = t->leader_out;
        if (queued) {
            h->relay_next = t->relay;
            t->relay = h;
            h->relayed = true;
        } else {
            t->leader_out = true;
        }
        pthread_mutex_unlock(&t->mu);
        if (queued)
            return;
    }
    MHD_resume_connection(h->conn);
}

static struct MHD_Response *share_find(const struct shared_answer *a, const struct cbx_hold *h,
                                       struct cbx_msg *const *msgs, size_t n)
{
    if (a->r == NULL || a->n != n || a->has_origin != (h->origin != NULL) ||
        (h->origin != NULL && strcmp(a->origin, h->origin) != 0))
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (a->msgs[i] != msgs[i])
            return NULL;
    return a->r;
}

/* Keeps r as this thread's answer for msgs; the caller's reference passes to
 * the entry. */
static void share_keep(struct shared_answer *a, const struct cbx_hold *h, struct MHD_Response *r,
                       struct cbx_msg *const *msgs, size_t n)
{
    share_clear(a);
    a->r = r;
    for (size_t i = 0; i < n; i++)
        a->msgs[i] = cbx_msg_ref(msgs[i]);
    a->n = n;
    a->has_origin = h->origin != NULL;
    if (h->origin != NULL)
        snprintf(a->origin, sizeof a->origin, "%s", h->origin);
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
    scratch = scratch_get(stackbuf, (size_t)s->cfg.max_batch);
    n = scratch ? cbx_waiter_take(&h->w, scratch, (size_t)s->cfg.max_batch, &flags) : 0;
    h->finished = true;
    if (scratch == NULL || (flags & CBX_W_GONE)) {
        h->failed = true;
    } else if (flags & CBX_W_KICK) {
        add_kick(h);
    } else {
        struct shared_answer *a = shareable(h, n) ? &h->home->share : NULL;
        if (a == NULL || (h->shared = share_find(a, h, scratch, n)) == NULL) {
            cbx_tr_batch(&h->out, h->transport, h->w.gaps, h->w.n_gaps, scratch, n);
            struct MHD_Response *r = a != NULL && h->out.ok
                ? MHD_create_response_from_buffer(h->out.len, h->out.s, MHD_RESPMEM_MUST_FREE) : NULL;
            if (r != NULL) {
                cbx_buf_init(&h->out); /* the response owns the bytes now */
                add_headers(r, h);
                share_keep(a, h, r, scratch, n); /* our reference passes to the entry */
                h->shared = r;
            }
        }
    }
    note_sent(h, scratch, n);
    scratch_put(scratch, stackbuf);
    return true;
}

/* Stream and SSE: a first line at once, then a line per batch. */
static bool produce_stream(struct cbx_hold *h)
{
    struct cbx_server *s = h->srv;
    struct cbx_msg *stackbuf[SCRATCH_STACK], **scratch = scratch_get(stackbuf, (size_t)s->cfg.max_batch);
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
        n = cbx_waiter_take(&h->w, scratch, (size_t)s->cfg.max_batch, &flags);
        if (n > 0 || h->w.n_gaps > 0 || h->transport == CBX_T_STREAM)
            cbx_tr_batch(&h->out, h->transport, h->w.gaps, h->w.n_gaps, scratch, n);
        note_sent(h, scratch, n);
    }
    while ((n = cbx_waiter_take(&h->w, scratch, (size_t)s->cfg.max_batch, &f)) > 0 || f != 0) {
        flags |= f;
        if (n > 0)
            cbx_tr_batch(&h->out, h->transport, NULL, 0, scratch, n);
        note_sent(h, scratch, n);
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
    if (h->written >= s->cfg.stream_max_bytes)
        h->finished = true;
    if (!h->out.ok) {
        h->finished = h->failed = true; /* out of memory: drop it, the client resumes by id */
        cbx_log(CBX_LOG_WARN, "client %llu: out of memory building an answer", (unsigned long long)hold_client_id(h));
    }
    if (h->out.len != before)
        atomic_store(&h->last_write_us, cbx_now_mono_us());
    return h->out.len != before || h->finished;
}

/* A request stops counting as held when its answer is complete, before the
 * browser can see it: then `stats` never shows one that has been answered. */
static void uncount(struct cbx_hold *h)
{
    if (h->counted) {
        h->counted = false;
        atomic_fetch_sub(&h->srv->ctr.held[h->transport], 1);
    }
}

static ssize_t hold_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct cbx_hold *h = cls;

    (void)pos;
    unpark(h);
    relay_drain(h->home);
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
            uncount(h);
            return h->failed ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (produce_stream(h))
            continue;
        if (hold_wait(h))
            return 0; /* suspended; libmicrohttpd calls again after the resume */
    }
}

/* ---- the registry of held requests ------------------------------------ */

static size_t reg_slot(struct cbx_server *s, uint64_t id) { return (size_t)(id * 11400714819323198485ull) & (s->reg_nbuckets - 1); }

static void reg_grow(struct cbx_server *s)
{
    size_t n = s->reg_nbuckets * 2;
    struct cbx_hold **b = calloc(n, sizeof *b);
    struct cbx_hold **old = s->reg_buckets;
    size_t oldn = s->reg_nbuckets;

    if (b == NULL)
        return;
    s->reg_buckets = b;
    s->reg_nbuckets = n;
    for (size_t i = 0; i < oldn; i++) {
        struct cbx_hold *h = old[i];
        while (h != NULL) {
            struct cbx_hold *next = h->reg_next;
            size_t k = reg_slot(s, hold_client_id(h));
            h->reg_next = b[k];
            b[k] = h;
            h = next;
        }
    }
    free(old);
}

static void reg_add(struct cbx_server *s, struct cbx_hold *h)
{
    pthread_mutex_lock(&s->reg_mu);
    if (s->reg_count >= s->reg_nbuckets)
        reg_grow(s);
    size_t k = reg_slot(s, hold_client_id(h));
    h->reg_next = s->reg_buckets[k];
    s->reg_buckets[k] = h;
    s->reg_count++;
    pthread_mutex_unlock(&s->reg_mu);
}

static void reg_remove(struct cbx_server *s, struct cbx_hold *h)
{
    pthread_mutex_lock(&s->reg_mu);
    struct cbx_hold **pp = &s->reg_buckets[reg_slot(s, hold_client_id(h))];
    while (*pp != NULL && *pp != h)
        pp = &(*pp)->reg_next;
    if (*pp == h) {
        *pp = h->reg_next;
        if (--s->reg_count == 0)
            pthread_cond_broadcast(&s->reg_empty);
    }
    pthread_mutex_unlock(&s->reg_mu);
}

/* ---- life of a hold ----------------------------------------------------- */

static void hold_free(struct cbx_hold *h)
{
    if (h->srv->cfg.threads == CBX_THREADS_PER_CONNECTION)
        pthread_cond_destroy(&h->cond);
    cbx_waiter_cleanup(&h->w);
    cbx_buf_free(&h->out);
    free(h);
}

static void peer_address(struct MHD_Connection *c, char *out, size_t len)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;

    snprintf(out, len, "?");
    if (sa != NULL && sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)sa;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        snprintf(out, len, "%s:%u", ip, ntohs(a->sin_port));
    } else if (sa != NULL && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)sa;
        char ip[INET6_ADDRSTRLEN];
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) /* an IPv4 browser on a dual-stack socket */
            inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], ip, sizeof ip);
        else
            inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        snprintf(out, len, IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) ? "%s:%u" : "[%s]:%u", ip, ntohs(a->sin6_port));
    }
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

    unpark(h);
    relay_drain(h->home);
    while (!produce_poll(h))
        if (hold_wait(h))
            return MHD_YES; /* suspended */
    uncount(h);
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

/* libmicrohttpd allocates (and zeroes) this much per stream for the reader's
 * chunks: 16 KiB cost 18 KiB per held SSE stream, 1 KiB costs 11 KiB. */
#define STREAM_BLOCK 1024

enum MHD_Result cbx_hold_start(struct cbx_server *s, struct MHD_Connection *c, struct cbx_hold_params *p,
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
    h->kind = CBX_CTX_HOLD;
    h->srv = s;
    h->transport = p->transport;
    h->conn = c;
    h->since_real_us = cbx_now_real_us();
    h->deadline_us = now + (p->transport == CBX_T_POLL ? p->timeout : s->cfg.stream_max_age) * 1000000;
    atomic_init(&h->last_write_us, now);
    atomic_init(&h->cursor, p->has_since ? p->since : 0);
    h->w.queues = p->queues; /* the hold owns the names now */
    p->queues.buf = NULL;
    h->w.one_shot = p->transport == CBX_T_POLL;
    h->w.ack_on_deliver = p->transport != CBX_T_POLL;
    h->w.inbox_max = p->transport == CBX_T_POLL ? 0 : (size_t)s->cfg.queue_max_messages * p->queues.n;
    if (s->cfg.threads == CBX_THREADS_POOL) {
        h->w.wake = wake_pool;
        h->home = thread_mine(); /* a connection stays on its pool thread */
    } else {
        h->w.wake = wake_thread;
        pthread_cond_init(&h->cond, NULL);
    }
    h->cconn = cbx_conn_of(c);

    reg_add(s, h); /* before subscribing, so a stop signals it */
    rc = cbx_qmap_subscribe(s->qmap, &h->w, p->has_since, p->since,
                            p->transport == CBX_T_POLL ? (size_t)s->cfg.max_batch : SIZE_MAX,
                            p->transport != CBX_T_POLL);
    if (rc != CBX_OK) {
        reg_remove(s, h);
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

    r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, hold_read, h, NULL);
    if (r == NULL)
        return MHD_NO; /* libmicrohttpd closes; the completion callback frees h */
    add_headers(r, h);
    ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result cbx_hold_continue(struct MHD_Connection *c, struct cbx_hold *h)
{
    return poll_step(c, h);
}

void cbx_hold_completed(struct cbx_server *s, struct cbx_hold *h, bool clean)
{
    cbx_qmap_unsubscribe(s->qmap, &h->w);
    unpark(h);
    relay_forget(h);
    relay_drain(h->home); /* this may have been the leader */
    if (cbx_log_enabled(CBX_LOG_DEBUG)) {
        char addr[64];
        peer_address(h->conn, addr, sizeof addr);
        cbx_log(CBX_LOG_DEBUG, "client %llu (%s, %s) closed: %s", (unsigned long long)hold_client_id(h),
                cbx_transport_names[h->transport], addr, h->failed || !clean ? "browser went away" : "answered");
    }
    uncount(h);
    reg_remove(s, h);
    hold_free(h);
}

void cbx_hold_signal_all(struct cbx_server *s, unsigned flag)
{
    pthread_mutex_lock(&s->reg_mu);
    for (size_t i = 0; i < s->reg_nbuckets; i++)
        for (struct cbx_hold *h = s->reg_buckets[i]; h != NULL; h = h->reg_next)
            cbx_waiter_signal(&h->w, flag, NULL);
    pthread_mutex_unlock(&s->reg_mu);
}

static struct timespec mono_timespec(int64_t us)
{
    return (struct timespec){ .tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000 };
}

static int cond_init_monotonic(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    int rc;

    if (pthread_condattr_init(&attr) != 0)
        return -1;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 && pthread_cond_init(cond, &attr) == 0 ? 0 : -1;
    pthread_condattr_destroy(&attr);
    return rc;
}

int cbx_hold_registry_init(struct cbx_server *s)
{
    if (pthread_mutex_init(&s->reg_mu, NULL) != 0 || pthread_mutex_init(&s->park_mu, NULL) != 0)
        return -1;
    return cond_init_monotonic(&s->reg_empty) == 0 && cond_init_monotonic(&s->park_zero) == 0 ? 0 : -1;
}

bool cbx_hold_wait_empty(struct cbx_server *s, int64_t deadline_us)
{
    struct timespec ts = mono_timespec(deadline_us);
    bool empty;

    pthread_mutex_lock(&s->reg_mu);
    while (s->reg_count > 0)
        if (pthread_cond_timedwait(&s->reg_empty, &s->reg_mu, &ts) == ETIMEDOUT)
            break;
    empty = s->reg_count == 0;
    pthread_mutex_unlock(&s->reg_mu);
    return empty;
}

void cbx_hold_wait_unparked(struct cbx_server *s)
{
    int64_t next_note = cbx_now_mono_us() + 2000000;

    pthread_mutex_lock(&s->park_mu);
    while (atomic_load(&s->parked) > 0) {
        struct timespec ts = mono_timespec(next_note);
        if (pthread_cond_timedwait(&s->park_zero, &s->park_mu, &ts) == ETIMEDOUT) {
            /* no deadline: stopping libmicrohttpd now would abort or drop answers */
            cbx_log(CBX_LOG_WARN, "stopping: %llu held requests are still parked on busy threads; waiting for them",
                    (unsigned long long)atomic_load(&s->parked));
            next_note = cbx_now_mono_us() + 5000000;
        }
    }
    pthread_mutex_unlock(&s->park_mu);
}

void cbx_hold_tick(struct cbx_server *s, int64_t now)
{
    int64_t beat = s->cfg.heartbeat * 1000000;

    pthread_mutex_lock(&s->reg_mu);
    for (size_t i = 0; i < s->reg_nbuckets; i++) {
        for (struct cbx_hold *h = s->reg_buckets[i]; h != NULL; h = h->reg_next) {
            if (!h->deadline_signalled && now >= h->deadline_us) {
                h->deadline_signalled = true;
                cbx_waiter_signal(&h->w, h->transport == CBX_T_POLL ? CBX_W_TIMEOUT : CBX_W_MAXAGE, NULL);
            } else if (h->transport != CBX_T_POLL && now - atomic_load(&h->last_write_us) >= beat) {
                atomic_store(&h->last_write_us, now);
                cbx_waiter_signal(&h->w, CBX_W_HEARTBEAT, NULL);
            }
        }
    }
    pthread_mutex_unlock(&s->reg_mu);
}

void cbx_hold_peer_closed(struct cbx_server *s, uint64_t client_id)
{
    cbx_hold_signal_client(s, client_id, CBX_W_GONE, NULL);
}

void cbx_hold_peer_half_closed(struct cbx_server *s, uint64_t client_id)
{
    bool stream = false;

    pthread_mutex_lock(&s->reg_mu);
    for (struct cbx_hold *h = s->reg_buckets[reg_slot(s, client_id)]; h != NULL; h = h->reg_next) {
        if (hold_client_id(h) == client_id) {
            stream = h->transport != CBX_T_POLL;
            /* A stream writes a heartbeat at once: a peer that closed for
             * good answers it with a reset, which the reaper then sees. A
             * long-poll has nothing to write before its answer; it is
             * answered as usual, and a dead peer's reset comes then. */
            if (stream)
                cbx_waiter_signal(&h->w, CBX_W_HEARTBEAT, NULL);
            break;
        }
    }
    pthread_mutex_unlock(&s->reg_mu);
    cbx_log(CBX_LOG_DEBUG, "client %llu: peer half-closed; its answer is still sent%s", (unsigned long long)client_id,
            stream ? " (a heartbeat probes whether it is gone)" : "");
}

enum cbx_err cbx_hold_list(struct cbx_server *s, const char *queue, struct cbx_client_info **rows, size_t *n)
{
    struct cbx_client_info *out = NULL;
    size_t count = 0;
    enum cbx_err rc = CBX_OK;

    pthread_mutex_lock(&s->reg_mu);
    if (s->reg_count > 0 && (out = calloc(s->reg_count, sizeof *out)) == NULL) {
        rc = CBX_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < s->reg_nbuckets; i++) {
        for (struct cbx_hold *h = s->reg_buckets[i]; h != NULL; h = h->reg_next) {
            struct cbx_client_info *r = &out[count];
            bool match = queue == NULL;
            r->queues[0] = '\0';
            for (size_t k = 0; k < h->w.queues.n; k++) {
                if (queue != NULL && strcmp(queue, h->w.queues.names[k]) == 0)
                    match = true;
                if (k > 0)
                    strcat(r->queues, ",");
                strcat(r->queues, h->w.queues.names[k]);
            }
            if (!match)
                continue;
            r->id = hold_client_id(h);
            peer_address(h->conn, r->addr, sizeof r->addr); /* formatted here, not per request */
            r->transport = h->transport;
            r->cursor = atomic_load(&h->cursor);
            r->since_us = h->since_real_us;
            count++;
        }
    }
out:
    pthread_mutex_unlock(&s->reg_mu);
    *rows = out;
    *n = count;
    return rc;
}

enum cbx_err cbx_hold_signal_client(struct cbx_server *s, uint64_t client_id, unsigned flag, const char *reason)
{
    enum cbx_err rc = CBX_ERR_NOT_FOUND;

    pthread_mutex_lock(&s->reg_mu);
    for (struct cbx_hold *h = s->reg_buckets[reg_slot(s, client_id)]; h != NULL; h = h->reg_next) {
        if (hold_client_id(h) == client_id) {
            cbx_waiter_signal(&h->w, flag, reason);
            rc = CBX_OK;
            break;
        }
    }
    pthread_mutex_unlock(&s->reg_mu);
    return rc;
}
