/* admin.c - the admin socket server (docs/ADMIN.md): one thread runs an
 * epoll loop over the listening UNIX socket, every admin connection and an
 * eventfd that the tails' wake() rings. Every socket is non-blocking and
 * every buffer bounded, so a slow or hostile admin client costs at most its
 * own share of memory and never holds up publishing, polling or another
 * admin client. Not for the line format (common/admin_proto.c) nor for the
 * stats snapshot (metrics.c). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/admin_proto.h"
#include "../common/log.h"
#include "../common/pub.h"
#include "admin.h"
#include "hold.h"
#include "server.h"

#define CLIENTS_MAX 64             /* admin connections at once; more get an error line */
#define READ_CHUNK 16384
#define OUT_SOFT_MAX (1u << 20)    /* unsent bytes above which a client's requests and tails wait */
#define IDLE_US (120 * 1000000LL)  /* no request (and no tail) for this long: closed */
#define STALL_US (30 * 1000000LL)  /* unsent output that makes no progress for this long: closed */
#define TAILS_PER_CLIENT 16
#define TAIL_INBOX_MAX 10000       /* messages a tail may have waiting before it ends with "overflow" */
#define TAIL_TAKE 256
#define LINES_PER_TURN 32          /* requests of one client handled before the others get a turn */
#define RATE_SAMPLES 61            /* one a second: a minute of history */
#define LIST_LIMIT_DEFAULT 1000    /* rows of queues/clients unless the request says "limit" */
#define REASON_MAX 199             /* bytes of a kick reason (struct cbx_waiter.kick_reason) */
#define DEFAULT_REASON "kicked by an operator"

struct admin;
struct client;

struct tail {
    struct cbx_waiter w;       /* first member: wake() gets &w; a waiter of the map while subscribed */
    struct admin *a;
    struct client *c;          /* the client that asked; the tail ends before it goes */
    char id[sizeof ((struct cbx_admin_request *)0)->id]; /* the request's id, echoed on every line */
    struct tail *next;
};

struct client {
    int fd;
    uint64_t no;               /* numbers clients in the log */
    long pid, uid;             /* SO_PEERCRED, -1 when unknown */
    struct cbx_buf in;         /* received bytes not yet handled (at most one line and a chunk) */
    struct cbx_buf out;        /* answer bytes; out_off of them are sent */
    size_t out_off;
    bool eof;                  /* the client shut its sending side */
    bool closing;              /* close once out is sent */
    bool more;                 /* complete request lines wait in in: handled on a later turn */
    uint32_t events;           /* the epoll mask in force */
    int64_t last_request_us;   /* monotonic */
    int64_t stalled_since_us;  /* monotonic: since when unsent output made no progress; 0 when none */
    struct tail *tails;        /* owned */
    size_t ntails;
    struct client *next;
};

/* Counter values at one moment, for rates over the last minute. */
struct sample {
    int64_t t; /* monotonic µs */
    uint64_t published, delivered, acked, expired, dropped, flushed, publish_requests, publish_errors, rejected;
};

/* Everything below belongs to the admin thread, except what is _Atomic. */
struct admin {
    struct cbx_server *s;
    char path[sizeof ((struct sockaddr_un *)0)->sun_path];
    bool made;                 /* path is a socket we created: remove it at stop */
    dev_t dev;
    ino_t ino;
    int listen_fd, ep, evfd;
    bool listening;            /* listen_fd is in the epoll set (off while out of descriptors) */
    pthread_t thread;
    bool thread_started;
    _Atomic bool stop;
    _Atomic bool rung;         /* evfd was written and the thread has not looked yet */
    struct client *clients;
    size_t nclients;
    uint64_t next_no;
    struct sample ring[RATE_SAMPLES];
    size_t ring_n, ring_next;
    int64_t next_tick_us;
};

static struct admin *the_admin; /* one daemon, one admin socket; set by start, cleared by stop */
static _Atomic uint64_t count_clients, count_tails, count_tail_delivered;

void cbx_admin_counts(struct cbx_admin_counts *out)
{
    out->clients = atomic_load(&count_clients);
    out->tails = atomic_load(&count_tails);
    out->tail_delivered = atomic_load(&count_tail_delivered);
}

/* Copies user text into a log or error message: printable ASCII only. */
static void safe_copy(char *dst, size_t n, const char *src)
{
    size_t i = 0;

    for (; src[i] != '\0' && i + 1 < n; i++)
        dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
    dst[i] = '\0';
}

/* ---- tails ---- */

/* Called by the map with the waiter's mu held (often the map lock too):
 * only rings the eventfd, once until the thread looks. */
static void tail_wake(struct cbx_waiter *w)
{
    struct tail *t = (struct tail *)w;
    uint64_t one = 1;

    if (!atomic_exchange(&t->a->rung, true)) {
        ssize_t r = write(t->a->evfd, &one, sizeof one); /* non-blocking; never full in practice */
        (void)r;
    }
}

/* Ends t: an end line when reason is not NULL, then out of the map and freed. */
static void tail_end(struct client *c, struct tail *t, const char *reason)
{
    struct cbx_msg *msgs[TAIL_TAKE];
    unsigned flags;
    size_t n;

    if (reason != NULL)
        cbx_admin_reply_end(&c->out, t->id, reason);
    cbx_qmap_unsubscribe(t->a->s->qmap, &t->w);
    /* what is still in the inbox was counted as delivered by the map */
    while ((n = cbx_waiter_take(&t->w, msgs, TAIL_TAKE, &flags)) > 0) {
        atomic_fetch_add(&count_tail_delivered, n);
        for (size_t i = 0; i < n; i++)
            cbx_msg_unref(msgs[i]);
    }
    cbx_waiter_cleanup(&t->w);
    for (struct tail **p = &c->tails; *p != NULL; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            break;
        }
    }
    c->ntails--;
    atomic_fetch_sub(&count_tails, 1);
    free(t);
}

/* Moves a tail's messages into its client's output while the client keeps up. */
static void tail_drain(struct client *c, struct tail *t)
{
    struct cbx_msg *msgs[TAIL_TAKE];
    unsigned flags;
    size_t n;

    do {
        if (c->out.len - c->out_off > OUT_SOFT_MAX)
            return; /* taken again when the client has read (client_flush) */
        n = cbx_waiter_take(&t->w, msgs, TAIL_TAKE, &flags);
        atomic_fetch_add(&count_tail_delivered, n);
        for (size_t i = 0; i < n; i++) {
            cbx_admin_reply_message(&c->out, t->id, msgs[i]->json, msgs[i]->len);
            cbx_msg_unref(msgs[i]);
        }
        /* a kick on the queue reaches every waiter, tails too: a tail only watches */
        if (flags & CBX_W_OVERFLOW) {
            tail_end(c, t, "overflow");
            return;
        }
        if (flags & CBX_W_STOP) {
            tail_end(c, t, "stopping");
            return;
        }
    } while (n == TAIL_TAKE);
}

/* How many of this admin's tails watch queue name (they are waiters of the
 * map, which counts them where only browsers should be counted). */
static uint64_t tails_on(struct admin *a, const char *name)
{
    uint64_t n = 0;

    for (struct client *c = a->clients; c != NULL; c = c->next)
        for (struct tail *t = c->tails; t != NULL; t = t->next)
            for (size_t i = 0; i < t->w.queues.n; i++)
                if (strcmp(t->w.queues.names[i], name) == 0)
                    n++;
    return n;
}

/* ---- JSON helpers: each sets *ok false when memory runs out ---- */

static cJSON *jobj(cJSON *o, const char *k, bool *ok)
{
    cJSON *v = cJSON_AddObjectToObject(o, k);
    if (v == NULL)
        *ok = false;
    return v;
}

static void jnum(cJSON *o, const char *k, double v, bool *ok)
{
    if (cJSON_AddNumberToObject(o, k, v) == NULL)
        *ok = false;
}

/* A wall-clock time in µs, or null for 0 ("never"). */
static void jtime(cJSON *o, const char *k, int64_t us, bool *ok)
{
    if ((us != 0 ? cJSON_AddNumberToObject(o, k, (double)us) : cJSON_AddNullToObject(o, k)) == NULL)
        *ok = false;
}

static void jstr(cJSON *o, const char *k, const char *v, bool *ok)
{
    if (cJSON_AddStringToObject(o, k, v) == NULL)
        *ok = false;
}

static enum cbx_err nomem(char *err, size_t errlen)
{
    snprintf(err, errlen, "out of memory");
    return CBX_ERR_NOMEM;
}

/* Reads an optional "limit" argument: a whole number >= 1. */
static enum cbx_err arg_limit(const struct cbx_admin_request *r, size_t *limit, char *err, size_t errlen)
{
    const cJSON *v = cbx_admin_arg(r, "limit");

    *limit = LIST_LIMIT_DEFAULT;
    if (v == NULL)
        return CBX_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 1e9 ||
        v->valuedouble != (double)(long long)v->valuedouble) {
        snprintf(err, errlen, "%s: \"limit\" must be a whole number from 1 to 1000000000", r->cmd);
        return CBX_ERR_INVALID;
    }
    *limit = (size_t)v->valuedouble;
    return CBX_OK;
}

/* Reads a queue-name argument: NULL when absent; an error when not a valid name. */
static enum cbx_err arg_queue(const struct cbx_admin_request *r, const char *name, const char **out, char *err,
                              size_t errlen)
{
    const cJSON *v = cbx_admin_arg(r, name);

    *out = NULL;
    if (v == NULL)
        return CBX_OK;
    if (!cJSON_IsString(v) || !cbx_qname_valid(v->valuestring, strlen(v->valuestring))) {
        char shown[80];
        safe_copy(shown, sizeof shown, cJSON_IsString(v) ? v->valuestring : "(not a string)");
        snprintf(err, errlen, "bad queue name \"%s\": 1 to %d letters, digits or ._:@-", shown, CBX_QNAME_MAX);
        return CBX_ERR_INVALID;
    }
    *out = v->valuestring;
    return CBX_OK;
}

static bool queue_exists(struct admin *a, const char *name)
{
    struct cbx_queue_info *rows = NULL;
    size_t n = 0;

    /* queue names hold no fnmatch metacharacters, so the pattern is the name */
    cbx_qmap_list(a->s->qmap, name, &rows, &n);
    free(rows);
    return n > 0;
}

/* ---- rates ---- */

static void sample_of(const struct cbx_stats *st, struct sample *out)
{
    *out = (struct sample){ cbx_now_mono_us(), st->q.published, st->q.delivered, st->q.acked, st->q.expired,
                            st->q.dropped, st->q.flushed, st->publish_requests, st->publish_errors,
                            st->rejected_connections };
}

static void sample_store(struct admin *a)
{
    struct cbx_stats st;

    cbx_stats_collect(a->s, &st);
    sample_of(&st, &a->ring[a->ring_next]);
    a->ring_next = (a->ring_next + 1) % RATE_SAMPLES;
    if (a->ring_n < RATE_SAMPLES)
        a->ring_n++;
}

static double per_second(uint64_t now, uint64_t then, double secs)
{
    double r;

    if (secs <= 0 || now < then)
        return 0;
    r = (double)(now - then) / secs;
    return (double)(long long)(r * 1000 + 0.5) / 1000; /* three decimals are plenty */
}

/* ---- commands ---- */

typedef enum cbx_err (*cmd_fn)(struct admin *a, struct client *c, const struct cbx_admin_request *r,
                               cJSON *result, char *err, size_t errlen);

static enum cbx_err cmd_ping(struct admin *a, struct client *c, const struct cbx_admin_request *r, cJSON *res,
                             char *err, size_t errlen)
{
    bool ok = true;

    (void)a, (void)c, (void)r;
    if (cJSON_AddTrueToObject(res, "pong") == NULL)
        ok = false;
    jstr(res, "version", CBX_VERSION, &ok);
    jnum(res, "protocol", CBX_ADMIN_PROTOCOL, &ok);
    return ok ? CBX_OK : nomem(err, errlen);
}

static enum cbx_err cmd_stats(struct admin *a, struct client *c, const struct cbx_admin_request *r, cJSON *res,
                              char *err, size_t errlen)
{
    struct cbx_stats st;
    struct sample now, *old;
    cJSON *o;
    double secs;
    bool ok = true;

    (void)c, (void)r;
    cbx_stats_collect(a->s, &st);
    sample_of(&st, &now);
    /* the oldest sample of the ring is about a minute old (less just after start) */
    old = &a->ring[a->ring_n < RATE_SAMPLES ? 0 : a->ring_next];
    secs = (double)(now.t - old->t) / 1e6;

    jstr(res, "version", CBX_VERSION, &ok);
    jnum(res, "protocol", CBX_ADMIN_PROTOCOL, &ok);
    jnum(res, "pid", (double)getpid(), &ok);
    jstr(res, "threads", a->s->cfg.threads == CBX_THREADS_POOL ? "pool" : "per-connection", &ok);
    jnum(res, "started_us", (double)st.started_real_us, &ok);
    jnum(res, "uptime_us", (double)(st.now_real_us - st.started_real_us), &ok);
    jnum(res, "memory_rss_bytes", (double)st.rss_bytes, &ok);
    o = jobj(res, "connections", &ok);
    jnum(o, "browser", (double)st.browser_connections, &ok);
    jnum(o, "publish", (double)st.publish_connections, &ok);
    jnum(o, "admin", (double)st.admin_clients, &ok);
    o = jobj(res, "held", &ok);
    for (int t = 0; t < CBX_T_COUNT; t++)
        jnum(o, cbx_transport_names[t], (double)st.held[t], &ok);
    jnum(o, "total", (double)st.held_total, &ok);
    jnum(res, "queues", (double)st.q.queues, &ok);
    jnum(res, "pending_messages", (double)st.q.pending_messages, &ok);
    jnum(res, "pending_bytes", (double)st.q.pending_bytes, &ok);
    jnum(res, "stored_messages", (double)st.q.stored_messages, &ok);
    jnum(res, "stored_bytes", (double)st.q.stored_bytes, &ok);
    jnum(res, "waiters", (double)st.q.waiters, &ok);
    o = jobj(res, "counters", &ok);
    jnum(o, "published", (double)now.published, &ok);
    jnum(o, "delivered", (double)now.delivered, &ok);
    jnum(o, "acknowledged", (double)now.acked, &ok);
    jnum(o, "expired", (double)now.expired, &ok);
    jnum(o, "dropped", (double)now.dropped, &ok);
    jnum(o, "flushed", (double)now.flushed, &ok);
    jnum(o, "publish_requests", (double)now.publish_requests, &ok);
    jnum(o, "publish_errors", (double)now.publish_errors, &ok);
    jnum(o, "rejected_connections", (double)now.rejected, &ok);
    jnum(o, "bad_requests", (double)st.bad_requests, &ok);
    o = jobj(res, "refused", &ok);
    for (int i = 0; i < CBX_REFUSE_COUNT; i++)
        jnum(o, cbx_refusal_names[i], (double)st.refused[i], &ok);
    o = jobj(res, "rates", &ok);
    jnum(o, "window_us", (double)(now.t - old->t), &ok);
    jnum(o, "published", per_second(now.published, old->published, secs), &ok);
    jnum(o, "delivered", per_second(now.delivered, old->delivered, secs), &ok);
    jnum(o, "acknowledged", per_second(now.acked, old->acked, secs), &ok);
    jnum(o, "expired", per_second(now.expired, old->expired, secs), &ok);
    jnum(o, "dropped", per_second(now.dropped, old->dropped, secs), &ok);
    jnum(o, "flushed", per_second(now.flushed, old->flushed, secs), &ok);
    jnum(o, "publish_requests", per_second(now.publish_requests, old->publish_requests, secs), &ok);
    jnum(o, "publish_errors", per_second(now.publish_errors, old->publish_errors, secs), &ok);
    jnum(o, "rejected_connections", per_second(now.rejected, old->rejected, secs), &ok);
    jnum(res, "first_id", (double)st.q.first_id, &ok);
    jnum(res, "last_id", (double)st.q.last_id, &ok);
    return ok ? CBX_OK : nomem(err, errlen);
}

static int by_queue_name(const void *x, const void *y)
{
    return strcmp(((const struct cbx_queue_info *)x)->name, ((const struct cbx_queue_info *)y)->name);
}

static int by_client_id(const void *x, const void *y)
{
    uint64_t i = ((const struct cbx_client_info *)x)->id, j = ((const struct cbx_client_info *)y)->id;
    return i < j ? -1 : i > j;
}

static enum cbx_err cmd_queues(struct admin *a, struct client *c, const struct cbx_admin_request *r, cJSON *res,
                               char *err, size_t errlen)
{
    const cJSON *pat = cbx_admin_arg(r, "pattern");
    struct cbx_queue_info *rows = NULL;
    size_t n = 0, limit;
    cJSON *arr;
    enum cbx_err rc;
    bool ok = true;

    (void)c;
    if (pat != NULL && (!cJSON_IsString(pat) || strlen(pat->valuestring) > 256)) {
        snprintf(err, errlen, "queues: \"pattern\" must be a string of at most 256 bytes");
        return CBX_ERR_INVALID;
    }
    if ((rc = arg_limit(r, &limit, err, errlen)) != CBX_OK)
        return rc;
    if (cbx_qmap_list(a->s->qmap, pat ? pat->valuestring : NULL, &rows, &n) != CBX_OK)
        return nomem(err, errlen);
    if (n > 1)
        qsort(rows, n, sizeof *rows, by_queue_name);
    jnum(res, "now_us", (double)cbx_now_real_us(), &ok);
    jnum(res, "total", (double)n, &ok);
    if (cJSON_AddBoolToObject(res, "truncated", n > limit) == NULL)
        ok = false;
    arr = cJSON_AddArrayToObject(res, "queues");
    for (size_t i = 0; i < n && i < limit && ok; i++) {
        cJSON *q = cJSON_CreateObject();
        uint64_t tails = tails_on(a, rows[i].name);
        if (q == NULL || !cJSON_AddItemToArray(arr, q)) {
            cJSON_Delete(q);
            ok = false;
            break;
        }
        jstr(q, "name", rows[i].name, &ok);
        jnum(q, "pending", (double)rows[i].pending, &ok);
        jnum(q, "stored", (double)rows[i].stored, &ok);
        jnum(q, "bytes", (double)rows[i].bytes, &ok);
        jnum(q, "waiting", (double)(rows[i].waiters >= tails ? rows[i].waiters - tails : 0), &ok);
        jtime(q, "oldest_us", rows[i].oldest_us, &ok);
        jtime(q, "last_publish_us", rows[i].last_publish_us, &ok);
    }
    free(rows);
    return ok ? CBX_OK : nomem(err, errlen);
}

static enum cbx_err cmd_clients(struct admin *a, struct client *c, const struct cbx_admin_request *r, cJSON *res,
                                char *err, size_t errlen)
{
    struct cbx_client_info *rows = NULL;
    const char *queue;
    size_t n = 0, limit;
    cJSON *arr;
    enum cbx_err rc;
    bool ok = true;

    (void)c;
    if ((rc = arg_queue(r, "queue", &queue, err, errlen)) != CBX_OK ||
        (rc = arg_limit(r, &limit, err, errlen)) != CBX_OK)
        return rc;
    if (queue != NULL && !queue_exists(a, queue)) {
        snprintf(err, errlen, "no such queue: %s", queue);
        return CBX_ERR_NOT_FOUND;
    }
    if (cbx_hold_list(a->s, queue, &rows, &n) != CBX_OK)
        return nomem(err, errlen);
    if (n > 1)
        qsort(rows, n, sizeof *rows, by_client_id);
    jnum(res, "now_us", (double)cbx_now_real_us(), &ok);
    jnum(res, "total", (double)n, &ok);
    if (cJSON_AddBoolToObject(res, "truncated", n > limit) == NULL)
        ok = false;
    arr = cJSON_AddArrayToObject(res, "clients");
    for (size_t i = 0; i < n && i < limit && ok; i++) {
        cJSON *o = cJSON_CreateObject(), *qs;
        char *save = NULL, *name;
        if (o == NULL || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            ok = false;
            break;
        }
        jnum(o, "id", (double)rows[i].id, &ok);
        jstr(o, "addr", rows[i].addr, &ok);
        jstr(o, "transport", cbx_transport_names[rows[i].transport], &ok);
        qs = cJSON_AddArrayToObject(o, "queues");
        for (name = strtok_r(rows[i].queues, ",", &save); name != NULL && ok; name = strtok_r(NULL, ",", &save)) {
            cJSON *sv = cJSON_CreateString(name);
            if (sv == NULL || !cJSON_AddItemToArray(qs, sv)) {
                cJSON_Delete(sv);
                ok = false;
            }
        }
        jnum(o, "cursor", (double)rows[i].cursor, &ok);
        jtime(o, "since_us", rows[i].since_us, &ok);
    }
    free(rows);
    return ok ? CBX_OK : nomem(err, errlen);
}

static enum cbx_err cmd_kick(struct admin *a, struct client *c, const struct cbx_admin_request *r, cJSON *res,
                             char *err, size_t errlen)
{
    const cJSON *client = cbx_admin_arg(r, "client"), *rv = cbx_admin_arg(r, "reason");
    const char *queue, *reason = DEFAULT_REASON;
    uint64_t count = 0;
    enum cbx_err rc;
    bool ok = true;

    if ((rc = arg_queue(r, "queue", &queue, err, errlen)) != CBX_OK)
        return rc;
    if ((queue == NULL) == (client == NULL)) {
        snprintf(err, errlen, "kick: give either \"queue\" or \"client\"");
        return CBX_ERR_INVALID;
    }
    if (rv != NULL) {
        if (!cJSON_IsString(rv) || strlen(rv->valuestring) > REASON_MAX ||
            !cbx_utf8_valid(rv->valuestring, strlen(rv->valuestring))) {
            snprintf(err, errlen, "kick: \"reason\" must be UTF-8 text of at most %d bytes", REASON_MAX);
            return CBX_ERR_INVALID;
        }
        reason = rv->valuestring;
    }
    if (queue != NULL) {
        rc = cbx_qmap_signal_queue(a->s->qmap, queue, CBX_W_KICK, reason, &count);
        if (rc == CBX_ERR_NOT_FOUND) {
            snprintf(err, errlen, "no such queue: %s", queue);
            return rc;
        }
        /* tails are waiters of the queue too, but nobody to kick */
        uint64_t tails = tails_on(a, queue);
        count = count >= tails ? count - tails : 0;
    } else {
        if (!cJSON_IsNumber(client) || client->valuedouble < 0 || client->valuedouble > 9007199254740991.0 ||
            client->valuedouble != (double)(long long)client->valuedouble) {
            snprintf(err, errlen, "kick: \"client\" must be a client id (a whole number)");
            return CBX_ERR_INVALID;
        }
        if (cbx_hold_signal_client(a->s, (uint64_t)client->valuedouble, CBX_W_KICK, reason) != CBX_OK) {
            snprintf(err, errlen, "no such client: %.0f", client->valuedouble);
            return CBX_ERR_NOT_FOUND;
        }
        count = 1;
    }
    {
        char shown[REASON_MAX + 1];
        safe_copy(shown, sizeof shown, reason);
        if (queue != NULL)
            cbx_log(CBX_LOG_INFO, "admin (uid %ld pid %ld): kicked %llu client(s) on queue %s: %s", c->uid, c->pid,
                    (unsigned long long)count, queue, shown);
        else
            cbx_log(CBX_LOG_INFO, "admin (uid %ld pid %ld): kicked client %.0f: %s", c->uid, c->pid,
                    client->valuedouble, shown);
    }
    jnum(res, "kicked", (double)count, &ok);
    return ok ? CBX_OK : nomem(err, errlen);
}

static enum cbx_err cmd_flush(struct admin *a, struct client *c, const struct cbx_admin_request *r, cJSON *res,
                              char *err, size_t errlen)
{
    const cJSON *all = cbx_admin_arg(r, "all");
    const char *queue;
    uint64_t count = 0;
    enum cbx_err rc;
    bool ok = true;

    if ((rc = arg_queue(r, "queue", &queue, err, errlen)) != CBX_OK)
        return rc;
    if (all != NULL && !cJSON_IsTrue(all)) {
        snprintf(err, errlen, "flush: \"all\" must be true");
        return CBX_ERR_INVALID;
    }
    if ((queue == NULL) == (all == NULL)) {
        snprintf(err, errlen, "flush: give either \"queue\" or \"all\":true");
        return CBX_ERR_INVALID;
    }
    rc = cbx_qmap_flush(a->s->qmap, queue, &count);
    if (rc == CBX_ERR_NOT_FOUND) {
        snprintf(err, errlen, "no such queue: %s", queue);
        return rc;
    }
    cbx_log(CBX_LOG_INFO, "admin (uid %ld pid %ld): flushed %llu message(s) from %s", c->uid, c->pid,
            (unsigned long long)count, queue ? queue : "every queue");
    jnum(res, "flushed", (double)count, &ok);
    return ok ? CBX_OK : nomem(err, errlen);
}

static enum cbx_err cmd_publish(struct admin *a, struct client *c, const struct cbx_admin_request *r, cJSON *res,
                                char *err, size_t errlen)
{
    struct cbx_pub_limits lim = { a->s->cfg.max_message_bytes };
    struct cbx_pub_batch batch = { 0 };
    const cJSON *data = cbx_admin_arg(r, "data");
    const char *queue;
    struct cbx_buf json = { NULL, 0, 0, true };
    uint64_t id = 0;
    enum cbx_err rc;
    bool ok = true;

    (void)c;
    if ((rc = arg_queue(r, "queue", &queue, err, errlen)) != CBX_OK)
        return rc;
    if (queue == NULL || data == NULL) {
        snprintf(err, errlen, "publish: needs \"queue\" and \"data\"");
        return CBX_ERR_INVALID;
    }
    /* as a JSON publish on the publish port: a string is a text message, anything else JSON
     * (written with every digit of an integer, where cJSON_PrintUnformatted would round 16 digits) */
    if (cJSON_IsString(data)) {
        rc = cbx_pub_batch_add(&batch, queue, strlen(queue), data->valuestring, strlen(data->valuestring), false,
                               &lim, err, errlen);
    } else {
        cbx_buf_init(&json);
        cbx_admin_json_write(&json, data);
        if (!json.ok) {
            rc = nomem(err, errlen);
            goto out;
        }
        rc = cbx_pub_batch_add(&batch, queue, strlen(queue), json.s, json.len, true, &lim, err, errlen);
    }
    if (rc != CBX_OK)
        goto out;
    rc = cbx_qmap_publish(a->s->qmap, &batch, &id);
    if (rc == CBX_ERR_FULL)
        snprintf(err, errlen, "too many queues (max-queues)");
    else if (rc == CBX_ERR_BUDGET)
        snprintf(err, errlen, "the memory budget for messages is full (max-total-bytes, max-total-messages)");
    else if (rc != CBX_OK)
        snprintf(err, errlen, "%s", cbx_strerror(rc));
    if (rc != CBX_OK)
        goto out;
    jnum(res, "id", (double)id, &ok);
    rc = ok ? CBX_OK : nomem(err, errlen);
out:
    cbx_buf_free(&json);
    cbx_pub_batch_free(&batch);
    return rc;
}

static enum cbx_err cmd_tail(struct admin *a, struct client *c, const struct cbx_admin_request *r, cJSON *res,
                             char *err, size_t errlen)
{
    const cJSON *qs = cbx_admin_arg(r, "queues"), *el;
    struct tail *t = NULL;
    struct cbx_buf names;
    char detail[256];
    cJSON *copy;
    enum cbx_err rc;
    size_t n;

    n = cJSON_IsArray(qs) ? (size_t)cJSON_GetArraySize(qs) : 0;
    if (n < 1 || n > CBX_QLIST_MAX) {
        snprintf(err, errlen, "tail: \"queues\" must be an array of 1 to %d queue names", CBX_QLIST_MAX);
        return CBX_ERR_INVALID;
    }
    if (c->ntails >= TAILS_PER_CLIENT) {
        snprintf(err, errlen, "tail: at most %d tails on one connection", TAILS_PER_CLIENT);
        return CBX_ERR_FULL;
    }
    if ((t = calloc(1, sizeof *t)) == NULL)
        return nomem(err, errlen);
    cbx_waiter_init(&t->w);
    /* the names as a browser's queue list "a,b", so they pass the same checks */
    cbx_buf_init(&names);
    cJSON_ArrayForEach(el, qs) {
        if (!cJSON_IsString(el) || strchr(el->valuestring, ',') != NULL) {
            snprintf(err, errlen, "tail: \"queues\" must be an array of queue names");
            rc = CBX_ERR_INVALID;
            goto fail;
        }
        if (names.len > 0)
            cbx_buf_add(&names, ",", 1);
        cbx_buf_adds(&names, el->valuestring);
    }
    if (!names.ok) {
        rc = nomem(err, errlen);
        goto fail;
    }
    if ((rc = cbx_qlist_parse(names.s, &t->w.queues, detail, sizeof detail)) != CBX_OK) {
        snprintf(err, errlen, "tail: %s", detail);
        goto fail;
    }
    t->a = a;
    t->c = c;
    snprintf(t->id, sizeof t->id, "%s", r->id);
    t->w.wake = tail_wake;
    t->w.one_shot = false;
    t->w.ack_on_deliver = false; /* an observer: never acknowledges */
    t->w.inbox_max = TAIL_INBOX_MAX;
    /* no since: nothing is acknowledged; limit 0: nothing old is taken; linked from now on */
    rc = cbx_qmap_subscribe(a->s->qmap, &t->w, false, 0, 0, true);
    if (rc != CBX_OK) {
        snprintf(err, errlen, "%s", rc == CBX_ERR_FULL       ? "too many queues (max-queues)"
                                    : rc == CBX_ERR_BUSY     ? "too many waiters on a queue (max-waiters-per-queue)"
                                    : rc == CBX_ERR_STOPPING ? "the daemon is stopping"
                                                             : cbx_strerror(rc));
        cbx_qmap_unsubscribe(a->s->qmap, &t->w);
        goto fail;
    }
    cbx_buf_free(&names);
    t->next = c->tails;
    c->tails = t;
    c->ntails++;
    atomic_fetch_add(&count_tails, 1);
    copy = cJSON_Duplicate(qs, true);
    if (copy == NULL || !cJSON_AddItemToObject(res, "queues", copy)) {
        cJSON_Delete(copy);
        tail_end(c, t, NULL);
        return nomem(err, errlen);
    }
    return CBX_OK;
fail:
    cbx_buf_free(&names);
    cbx_waiter_cleanup(&t->w);
    free(t);
    return rc;
}

static const char *const args_none[] = { NULL };
static const char *const args_queues[] = { "pattern", "limit", NULL };
static const char *const args_clients[] = { "queue", "limit", NULL };
static const char *const args_kick[] = { "queue", "client", "reason", NULL };
static const char *const args_flush[] = { "queue", "all", NULL };
static const char *const args_publish[] = { "queue", "data", NULL };
static const char *const args_tail[] = { "queues", NULL };

static const struct command {
    const char *name;
    const char *const *args;
    cmd_fn run;
} commands[] = {
    { "ping", args_none, cmd_ping },
    { "stats", args_none, cmd_stats },
    { "queues", args_queues, cmd_queues },
    { "clients", args_clients, cmd_clients },
    { "kick", args_kick, cmd_kick },
    { "flush", args_flush, cmd_flush },
    { "publish", args_publish, cmd_publish },
    { "tail", args_tail, cmd_tail },
};

/* Answers one request line (without its newline) into c->out. */
static void handle_line(struct admin *a, struct client *c, const char *line, size_t len)
{
    struct cbx_admin_request req;
    const struct command *cmd = NULL;
    cJSON *result = NULL;
    char err[512];

    c->last_request_us = cbx_now_mono_us();
    if (cbx_admin_request_parse(line, len, &req, err, sizeof err) != CBX_OK) {
        cbx_log(CBX_LOG_DEBUG, "admin client %llu: %s", (unsigned long long)c->no, err);
        cbx_admin_reply_error(&c->out, req.id, err);
        goto out;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, req.cmd) == 0)
            cmd = &commands[i];
    if (cmd == NULL) {
        char shown[65];
        safe_copy(shown, sizeof shown, req.cmd);
        snprintf(err, sizeof err, "unknown command: %s", shown);
        cbx_admin_reply_error(&c->out, req.id, err);
        goto out;
    }
    if (cbx_admin_args_check(&req, cmd->args, err, sizeof err) != CBX_OK) {
        cbx_admin_reply_error(&c->out, req.id, err);
        goto out;
    }
    if ((result = cJSON_CreateObject()) == NULL) {
        cbx_admin_reply_error(&c->out, req.id, "out of memory");
        goto out;
    }
    if (cmd->run(a, c, &req, result, err, sizeof err) == CBX_OK)
        cbx_admin_reply_ok(&c->out, req.id, result);
    else
        cbx_admin_reply_error(&c->out, req.id, err);
out:
    cJSON_Delete(result);
    cbx_admin_request_free(&req);
}

/* ---- connections ---- */

static void client_set_events(struct admin *a, struct client *c)
{
    uint32_t ev = 0;
    struct epoll_event e;

    /* read only while earlier requests are handled and answered: input stays bounded */
    if (!c->eof && !c->closing && !c->more && c->out.len - c->out_off <= OUT_SOFT_MAX)
        ev |= EPOLLIN;
    if (c->out_off < c->out.len)
        ev |= EPOLLOUT;
    if (ev == c->events)
        return;
    e = (struct epoll_event){ .events = ev, .data.ptr = c };
    epoll_ctl(a->ep, EPOLL_CTL_MOD, c->fd, &e);
    c->events = ev;
}

static void client_close(struct admin *a, struct client *c, const char *why)
{
    while (c->tails != NULL)
        tail_end(c, c->tails, NULL);
    for (struct client **p = &a->clients; *p != NULL; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    cbx_log(CBX_LOG_DEBUG, "admin client %llu closed: %s", (unsigned long long)c->no, why);
    close(c->fd);
    cbx_buf_free(&c->in);
    cbx_buf_free(&c->out);
    free(c);
    a->nclients--;
    atomic_fetch_sub(&count_clients, 1);
}

/* Handles the complete lines in c->in while the client reads its answers;
 * at the end of its input also the last line without a newline. */
static void client_handle_input(struct admin *a, struct client *c)
{
    size_t start = 0, handled = 0;
    char *nl;

    c->more = false;
    while (start < c->in.len && !c->closing && c->out.len - c->out_off <= OUT_SOFT_MAX) {
        size_t end;

        nl = memchr(c->in.s + start, '\n', c->in.len - start);
        end = nl != NULL ? (size_t)(nl - c->in.s) : c->in.len;
        size_t len = end - start;

        if (nl == NULL && !c->eof)
            break;
        if (len > CBX_ADMIN_LINE_MAX)
            break; /* answered below */
        while (len > 0 && (c->in.s[start + len - 1] == '\r' || c->in.s[start + len - 1] == ' '))
            len--;
        if (handled == LINES_PER_TURN) {
            c->more = true; /* fairness: the other clients first */
            break;
        }
        if (len > 0) {
            handle_line(a, c, c->in.s + start, len);
            handled++;
        }
        start = nl != NULL ? end + 1 : c->in.len;
    }
    if (start > 0) {
        memmove(c->in.s, c->in.s + start, c->in.len - start);
        c->in.len -= start;
        c->in.s[c->in.len] = '\0';
    }
    if (!c->closing && c->in.len > CBX_ADMIN_LINE_MAX &&
        ((nl = memchr(c->in.s, '\n', c->in.len)) == NULL || (size_t)(nl - c->in.s) > CBX_ADMIN_LINE_MAX)) {
        char msg[96];
        snprintf(msg, sizeof msg, "request line over %d bytes", CBX_ADMIN_LINE_MAX);
        cbx_log(CBX_LOG_DEBUG, "admin client %llu: %s; closing", (unsigned long long)c->no, msg);
        cbx_admin_reply_error(&c->out, "null", msg);
        c->closing = true;
        cbx_buf_free(&c->in);
    }
    if (c->eof && c->in.len == 0 && !c->closing && !c->more) {
        /* nothing more will come: its tails end, and it closes once answered */
        while (c->tails != NULL)
            tail_end(c, c->tails, NULL);
        c->closing = true;
    }
}

/* Sends what it can; false when the client was closed. */
static bool client_flush(struct admin *a, struct client *c)
{
    bool had_backlog = c->out.len - c->out_off > OUT_SOFT_MAX, progress = false;

    if (!c->out.ok) {
        client_close(a, c, "out of memory");
        return false;
    }
    while (c->out_off < c->out.len) {
        ssize_t w = send(c->fd, c->out.s + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            c->out_off += (size_t)w;
            progress = true;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            client_close(a, c, w < 0 ? strerror(errno) : "write failed");
            return false;
        }
    }
    if (c->out_off < c->out.len && (progress || c->stalled_since_us == 0))
        c->stalled_since_us = cbx_now_mono_us();
    if (c->out_off == c->out.len) {
        c->stalled_since_us = 0;
        if (c->out.cap > 4 * OUT_SOFT_MAX)
            cbx_buf_free(&c->out); /* give a big answer's memory back */
        cbx_buf_reset(&c->out);
        c->out_off = 0;
        if (c->closing) {
            client_close(a, c, "done");
            return false;
        }
    } else if (c->out_off > OUT_SOFT_MAX) {
        memmove(c->out.s, c->out.s + c->out_off, c->out.len - c->out_off);
        c->out.len -= c->out_off;
        c->out.s[c->out.len] = '\0';
        c->out_off = 0;
    }
    if (had_backlog && c->out.len - c->out_off <= OUT_SOFT_MAX) {
        /* it caught up: the requests and tail messages that waited go on */
        client_handle_input(a, c);
        for (struct tail *t = c->tails, *next; t != NULL; t = next) {
            next = t->next;
            tail_drain(c, t);
        }
        if (c->out_off < c->out.len)
            return client_flush(a, c);
    }
    client_set_events(a, c);
    return true;
}

static void client_read(struct admin *a, struct client *c)
{
    char buf[READ_CHUNK];
    ssize_t r;

    do
        r = read(c->fd, buf, sizeof buf);
    while (r < 0 && errno == EINTR);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (r < 0) {
        client_close(a, c, strerror(errno));
        return;
    }
    if (r == 0)
        c->eof = true;
    else if (!c->closing)
        cbx_buf_add(&c->in, buf, (size_t)r);
    if (!c->in.ok) {
        client_close(a, c, "out of memory");
        return;
    }
    client_handle_input(a, c);
    client_flush(a, c);
}

static void accept_clients(struct admin *a)
{
    for (;;) {
        int fd = accept4(a->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct client *c;
        struct ucred cred;
        socklen_t clen = sizeof cred;
        struct epoll_event e;

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* out of descriptors: stop listening until the next tick instead of spinning */
                cbx_log(CBX_LOG_WARN, "admin socket: cannot accept: %s", strerror(errno));
                epoll_ctl(a->ep, EPOLL_CTL_DEL, a->listen_fd, NULL);
                a->listening = false;
            }
            return;
        }
        if (a->nclients >= CLIENTS_MAX) {
            static const char busy[] = "{\"id\":null,\"ok\":false,\"error\":\"too many admin clients\"}\n";
            ssize_t w = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)w;
            close(fd);
            cbx_log(CBX_LOG_WARN, "admin socket: refused a client: %d are connected", CLIENTS_MAX);
            continue;
        }
        c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->no = ++a->next_no;
        c->pid = c->uid = -1;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) {
            c->pid = cred.pid;
            c->uid = cred.uid;
        }
        cbx_buf_init(&c->in);
        cbx_buf_init(&c->out);
        c->last_request_us = cbx_now_mono_us();
        c->events = EPOLLIN;
        e = (struct epoll_event){ .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(a->ep, EPOLL_CTL_ADD, fd, &e) != 0) {
            close(fd);
            free(c);
            continue;
        }
        c->next = a->clients;
        a->clients = c;
        a->nclients++;
        atomic_fetch_add(&count_clients, 1);
        cbx_log(CBX_LOG_DEBUG, "admin client %llu connected (uid %ld pid %ld)", (unsigned long long)c->no, c->uid,
                c->pid);
    }
}

/* Once a second: a rate sample, and the clients that stalled or idle too long. */
static void tick(struct admin *a, int64_t now)
{
    sample_store(a);
    if (!a->listening) {
        struct epoll_event e = { .events = EPOLLIN, .data.ptr = NULL };
        if (epoll_ctl(a->ep, EPOLL_CTL_ADD, a->listen_fd, &e) == 0)
            a->listening = true;
    }
    for (struct client *c = a->clients, *next; c != NULL; c = next) {
        next = c->next;
        if (c->stalled_since_us != 0 && now - c->stalled_since_us > STALL_US)
            client_close(a, c, "it did not read its answers");
        else if (c->tails == NULL && c->out_off == c->out.len && now - c->last_request_us > IDLE_US)
            client_close(a, c, "idle");
    }
}

static void drain_tails(struct admin *a)
{
    uint64_t v;
    ssize_t r = read(a->evfd, &v, sizeof v);

    (void)r;
    atomic_store(&a->rung, false); /* before looking: a wake from now on rings again */
    for (struct client *c = a->clients, *next; c != NULL; c = next) {
        next = c->next;
        if (c->tails == NULL)
            continue;
        for (struct tail *t = c->tails, *tnext; t != NULL; t = tnext) {
            tnext = t->next;
            tail_drain(c, t);
        }
        client_flush(a, c);
    }
}

static void *admin_main(void *arg)
{
    struct admin *a = arg;
    struct epoll_event evs[32];

    while (!atomic_load(&a->stop)) {
        int64_t now = cbx_now_mono_us();
        int n, timeout;

        if (now >= a->next_tick_us) {
            tick(a, now);
            a->next_tick_us = now + 1000000;
        }
        timeout = (int)((a->next_tick_us - now + 999) / 1000);
        for (struct client *c = a->clients; c != NULL; c = c->next)
            if (c->more)
                timeout = 0; /* requests wait: only look for events */
        n = epoll_wait(a->ep, evs, 32, timeout < 0 ? 0 : timeout);
        for (int i = 0; i < n; i++) {
            struct client *c = evs[i].data.ptr;
            if (c == NULL) {
                accept_clients(a);
            } else if (c == (void *)a) {
                drain_tails(a);
            } else {
                /* a client closed by an earlier event of this batch is not in the set any more;
                 * look it up so a freed one is never touched */
                struct client *k = a->clients;
                while (k != NULL && k != c)
                    k = k->next;
                if (k == NULL)
                    continue;
                if (evs[i].events & (EPOLLERR | EPOLLHUP) && !(evs[i].events & EPOLLIN))
                    client_close(a, c, "connection reset");
                else if (evs[i].events & EPOLLIN)
                    client_read(a, c);
                else if (evs[i].events & EPOLLOUT)
                    client_flush(a, c);
            }
        }
        /* another turn for the clients whose requests wait (a client with a backlog of unsent
         * answers gets it when it reads them: client_flush) */
        for (struct client *c = a->clients, *next; c != NULL; c = next) {
            next = c->next;
            if (c->more && c->out.len - c->out_off <= OUT_SOFT_MAX) {
                client_handle_input(a, c);
                client_flush(a, c);
            }
        }
    }
    /* stopping: every tail gets its end line, then each client what can be sent at once */
    while (a->clients != NULL) {
        struct client *c = a->clients;
        while (c->tails != NULL)
            tail_end(c, c->tails, "stopping");
        if (c->out_off < c->out.len) {
            ssize_t w = send(c->fd, c->out.s + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)w;
        }
        client_close(a, c, "the daemon is stopping");
    }
    return NULL;
}

/* ---- start and stop ---- */

static void admin_free(struct admin *a)
{
    struct stat st;

    if (a->listen_fd >= 0)
        close(a->listen_fd);
    if (a->ep >= 0)
        close(a->ep);
    if (a->evfd >= 0)
        close(a->evfd);
    /* remove the socket only while it is still the one we made */
    if (a->made && lstat(a->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == a->dev && st.st_ino == a->ino)
        unlink(a->path);
    free(a);
}

/* Decides what to do with an existing path: 0 when it is free now. */
static int claim_path(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    int fd, rc;

    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "admin-socket %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "admin-socket %s exists and is not a socket; not removing it (remove it yourself, "
                              "or set admin-socket to another path)", path);
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "admin-socket %s: socket: %s", path, strerror(errno));
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    if (rc == 0 || errno == EAGAIN || errno == EINPROGRESS) {
        close(fd);
        snprintf(err, errlen, "another cometboxd is listening on %s", path);
        return -1;
    }
    if (errno != ECONNREFUSED) {
        snprintf(err, errlen, "admin-socket %s: cannot tell whether a daemon listens there: %s", path,
                 strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    /* a socket nobody listens on: left by a daemon that did not stop cleanly */
    if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot remove the stale admin socket %s: %s", path, strerror(errno));
        return -1;
    }
    cbx_log(CBX_LOG_INFO, "removed the stale admin socket %s", path);
    return 0;
}

int cbx_admin_start(struct cbx_server *s, char *err, size_t errlen)
{
    const char *path = s->cfg.admin_socket;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct epoll_event e;
    struct admin *a;
    struct stat st;
    mode_t old;
    int rc;

    if (path[0] == '\0') {
        cbx_log(CBX_LOG_INFO, "no admin socket (admin-socket is empty)");
        return 0;
    }
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "admin-socket %s: path too long (at most %zu bytes)", path, sizeof sa.sun_path - 1);
        return -1;
    }
    if ((a = calloc(1, sizeof *a)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    a->s = s;
    a->listen_fd = a->ep = a->evfd = -1;
    memcpy(a->path, path, strlen(path) + 1);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (claim_path(path, err, errlen) != 0)
        goto fail;
    a->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (a->listen_fd < 0) {
        snprintf(err, errlen, "admin-socket %s: socket: %s", path, strerror(errno));
        goto fail;
    }
    /* bind() creates the file with 0777 & ~umask: the umask gives it admin-socket-mode from the
     * start, with no moment of wider access. No other thread creates files at this point. */
    old = umask(~(mode_t)s->cfg.admin_socket_mode & 0777);
    rc = bind(a->listen_fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc != 0) {
        snprintf(err, errlen, "cannot create the admin socket %s: %s", path,
                 errno == EADDRINUSE ? "another process created it meanwhile" : strerror(errno));
        goto fail;
    }
    if (lstat(path, &st) == 0) {
        a->made = true;
        a->dev = st.st_dev;
        a->ino = st.st_ino;
    }
    if (listen(a->listen_fd, 64) != 0 || (a->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (a->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        snprintf(err, errlen, "admin socket %s: %s", path, strerror(errno));
        goto fail;
    }
    e = (struct epoll_event){ .events = EPOLLIN, .data.ptr = NULL };
    if (epoll_ctl(a->ep, EPOLL_CTL_ADD, a->listen_fd, &e) != 0)
        goto fail_errno;
    e = (struct epoll_event){ .events = EPOLLIN, .data.ptr = a };
    if (epoll_ctl(a->ep, EPOLL_CTL_ADD, a->evfd, &e) != 0)
        goto fail_errno;
    a->listening = true;
    the_admin = a;
    sample_store(a); /* rates count from the start */
    a->next_tick_us = cbx_now_mono_us() + 1000000;
    if ((rc = pthread_create(&a->thread, NULL, admin_main, a)) != 0) {
        errno = rc;
        goto fail_errno;
    }
    pthread_setname_np(a->thread, "cbx-admin");
    a->thread_started = true;
    cbx_log(CBX_LOG_DEBUG, "admin socket %s (mode %04lo)", path, s->cfg.admin_socket_mode);
    return 0;
fail_errno:
    snprintf(err, errlen, "admin socket %s: %s", path, strerror(errno));
fail:
    the_admin = NULL;
    admin_free(a);
    return -1;
}

void cbx_admin_stop(struct cbx_server *s)
{
    struct admin *a = the_admin;
    uint64_t one = 1;

    (void)s;
    if (a == NULL)
        return;
    if (a->thread_started) {
        atomic_store(&a->stop, true);
        if (write(a->evfd, &one, sizeof one) < 0)
            cbx_log(CBX_LOG_WARN, "admin: cannot wake its thread: %s", strerror(errno));
        pthread_join(a->thread, NULL);
    }
    the_admin = NULL;
    admin_free(a);
}
