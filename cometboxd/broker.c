/* broker.c - broker = redis (broker.h, docs/SCALING.md): the thread that
 * talks to Redis. It owns two hiredis async connections, driven by its own
 * poll() loop (hiredis calls our addRead/addWrite hooks; we call its
 * handlers when poll says so): "cmd" runs broker.lua and PUBLISH, "sub"
 * holds the subscriptions (P:ctl, and P:c:NAME for each queue this node
 * mirrors). Other threads queue work (struct op) under mu and wake the
 * thread through an eventfd; everything else here belongs to the thread.
 *
 * A queue's way into the mirror: SUBSCRIBE its channel; once Redis
 * confirms, load it whole (broker.lua "load") while the changes that arrive
 * meanwhile are kept; apply the load, then the kept changes (applying is
 * idempotent: ids only grow, drops and acknowledgements only move
 * forward). From then on each change is applied as it comes. */
#include "broker.h"

#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/log.h"
#include "../common/mirror.h"
#include "../common/msg.h"
#include "../common/qmap.h"
#include "embedded.h"
#include "pool.h"
#include "settings.h"

#define BACKOFF_MIN_US 100000
#define BACKOFF_MAX_US 5000000
#define RESYNC_CHUNK 256
#define ARG_SHA 1   /* argv[1] of a script call: the sha, set when sent */
#define LOAD_NAMES 8 /* EVALSHA sha 0 load P ttl retain SINCE NAME... */

enum op_kind {
    OP_PUBLISH, /* broker.lua publish: the reply is the first id */
    OP_FLUSH,   /* broker.lua flush: the reply is a count */
    OP_LOAD,    /* broker.lua load of argv[LOAD_NAMES..]: a sync */
    OP_PLAIN,   /* a command of Redis's own (PUBLISH of a kick) */
    OP_FORGET,  /* argv[0] is a queue nobody here waits on any more */
};

/* Work for the thread: one command (and its reply), or a forget. */
struct op {
    struct op *next;
    enum op_kind kind;
    struct cbx_broker_ticket *t; /* NULL: nobody waits */
    int argc;
    const char **argv;
    size_t *argvlen;
    size_t unconfirmed; /* OP_LOAD: its queues' subscriptions not confirmed yet */
    bool failed;        /* already told (a teardown) */
    struct cbx_buf mem; /* the arguments' bytes */
    size_t *offs;       /* while building: offsets into mem */
    int cap;
};

/* A kept change of a queue whose load is under way. */
struct note {
    struct note *next;
    size_t len;
    char text[];
};

enum qstate { Q_NEW, Q_SUBSCRIBING, Q_LOADING, Q_READY };

/* A queue this node subscribes to (thread only). */
struct qent {
    struct qent *next;
    uint32_t hash;
    enum qstate state;
    unsigned loads;       /* loads sent, not answered */
    struct op **waiting;  /* loads waiting for the subscription */
    size_t nwaiting, capwaiting;
    struct note *notes, *notes_tail;
    size_t len;
    char name[];
};

/* Send times of a connection's commands not answered yet, oldest first. */
struct ring {
    int64_t *t;
    size_t head, n, cap;
};

struct rconn {
    struct cbx_broker *b;
    redisAsyncContext *ac; /* NULL when not connected */
    bool r, w;             /* what hiredis wants polled */
    struct ring sent;
};

struct cbx_broker {
    struct cbx_server *s;
    pthread_t thread;
    bool started;
    int efd;
    pthread_mutex_t mu;     /* guards ops, acks, stop, tickets' done, last_error */
    pthread_cond_t done;
    struct op *ops, *ops_tail;
    struct ack { char name[CBX_QNAME_MAX + 1]; uint64_t upto; } *acks;
    size_t nacks, capacks;
    bool stop;
    char last_error[160];

    /* redis-url, parsed */
    char host[256], path[256], password[256];
    int port, db;
    char url_shown[512];
    char prefix[64];
    size_t prefix_len;
    int64_t timeout_us;
    uint64_t node_id;

    /* the thread's */
    struct rconn cmd, sub;
    char sha[41];
    bool cmd_ready, sub_ready, ever_up;
    int64_t connect_at, connect_started, backoff, last_ping, last_sweep;
    char teardown[160];     /* set in a callback: tear down in the loop */
    struct qent **qbuckets;
    size_t nqbuckets, nq;

    struct cbx_mirror_update batch; /* the parts of a publish to several queues, till its "E" */
    uint64_t batch_id;

    _Atomic int state;      /* enum cbx_broker_state */
    _Atomic uint64_t reconnects, errors, mirrored;
};

/* ---- small pieces ---- */

static void ring_push(struct ring *r, int64_t t)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        int64_t *nt = malloc(cap * sizeof *nt);
        if (nt == NULL)
            return; /* one command less watched for a timeout */
        for (size_t i = 0; i < r->n; i++)
            nt[i] = r->t[(r->head + i) % r->cap];
        free(r->t);
        r->t = nt;
        r->head = 0;
        r->cap = cap;
    }
    r->t[(r->head + r->n) % r->cap] = t;
    r->n++;
}

static void ring_pop(struct ring *r)
{
    if (r->n > 0) {
        r->head = (r->head + 1) % r->cap;
        r->n--;
    }
}

__attribute__((format(printf, 2, 3)))
static void set_error(struct cbx_broker *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    pthread_mutex_lock(&b->mu);
    vsnprintf(b->last_error, sizeof b->last_error, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&b->mu);
    atomic_fetch_add(&b->errors, 1);
}

static uint32_t hash_name(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* ---- operations: built by any thread ---- */

static struct op *op_new(enum op_kind kind, struct cbx_broker_ticket *t)
{
    struct op *o = calloc(1, sizeof *o);

    if (o == NULL)
        return NULL;
    o->kind = kind;
    o->t = t;
    cbx_buf_init(&o->mem);
    return o;
}

static void op_arg(struct op *o, const char *s, size_t len)
{
    if (o->argc == o->cap) {
        int cap = o->cap ? o->cap * 2 : 16;
        size_t *offs = realloc(o->offs, (size_t)cap * sizeof *offs);
        size_t *lens = realloc(o->argvlen, (size_t)cap * sizeof *lens);
        if (offs != NULL)
            o->offs = offs;
        if (lens != NULL)
            o->argvlen = lens;
        if (offs == NULL || lens == NULL) {
            o->mem.ok = false;
            return;
        }
        o->cap = cap;
    }
    o->offs[o->argc] = o->mem.len;
    o->argvlen[o->argc++] = len;
    cbx_buf_add(&o->mem, s, len);
    cbx_buf_add(&o->mem, "", 1); /* each ends in a NUL: a queue name is a C string */
}

static void op_args(struct op *o, const char *s) { op_arg(o, s, strlen(s)); }

static void op_arg_u64(struct op *o, uint64_t v)
{
    char n[24];
    op_arg(o, n, (size_t)snprintf(n, sizeof n, "%llu", (unsigned long long)v));
}

/* The script call's first arguments: EVALSHA (sha) 0 OP PREFIX TTL RETAIN
 * (publish has its own order after PREFIX). */
static void op_script(struct op *o, struct cbx_broker *b, const char *what)
{
    op_args(o, "EVALSHA");
    op_args(o, "");
    op_args(o, "0");
    op_args(o, what);
    op_args(o, b->prefix);
}

/* message-ttl and retain-acked in µs, the arguments after PREFIX of
 * every operation but publish */
static void op_limits(struct op *o, const struct cbx_config *cfg)
{
    op_arg_u64(o, (uint64_t)cfg->message_ttl * 1000000);
    op_arg_u64(o, (uint64_t)cfg->retain_acked * 1000000);
}

static void op_free(struct op *o)
{
    if (o == NULL)
        return;
    cbx_buf_free(&o->mem);
    free(o->offs);
    free(o->argvlen);
    free(o->argv);
    free(o);
}

/* Turns the offsets into pointers; false when memory ran out. */
static bool op_finish(struct op *o)
{
    if (!o->mem.ok || o->argc == 0 || (o->argv = malloc((size_t)o->argc * sizeof *o->argv)) == NULL)
        return false;
    for (int i = 0; i < o->argc; i++)
        o->argv[i] = o->mem.s + o->offs[i];
    return true;
}

static void wake_thread(struct cbx_broker *b)
{
    uint64_t one = 1;
    ssize_t n = write(b->efd, &one, sizeof one);
    (void)n; /* a full counter wakes it as well */
}

/* Queues o for the thread, unless Redis is down (then o is freed). */
static enum cbx_err op_submit(struct cbx_broker *b, struct op *o)
{
    if (!op_finish(o)) {
        op_free(o);
        return CBX_ERR_NOMEM;
    }
    if (atomic_load(&b->state) != CBX_BROKER_UP && o->kind != OP_FORGET) {
        op_free(o);
        return CBX_ERR_UNAVAILABLE;
    }
    if (o->t != NULL) {
        o->t->done = false;
        o->t->rc = CBX_OK;
        o->t->value = 0;
    }
    bool wake = o->kind != OP_FORGET; /* a forget comes under the map lock: the kick hook wakes */

    pthread_mutex_lock(&b->mu);
    if (b->ops_tail != NULL)
        b->ops_tail->next = o;
    else
        b->ops = o;
    b->ops_tail = o;
    pthread_mutex_unlock(&b->mu);
    if (wake) /* o may be gone already */
        wake_thread(b);
    return CBX_OK;
}

static void ticket_done(struct cbx_broker *b, struct cbx_broker_ticket *t, enum cbx_err rc, uint64_t value)
{
    if (t == NULL)
        return;
    pthread_mutex_lock(&b->mu);
    t->rc = rc;
    t->value = value;
    t->done = true;
    if (t->notify != NULL)
        t->notify(t);
    pthread_cond_broadcast(&b->done);
    pthread_mutex_unlock(&b->mu);
}

void cbx_broker_wait(struct cbx_broker *b, struct cbx_broker_ticket *t)
{
    pthread_mutex_lock(&b->mu);
    while (!t->done)
        pthread_cond_wait(&b->done, &b->mu);
    pthread_mutex_unlock(&b->mu);
}

enum cbx_err cbx_broker_publish(struct cbx_broker *b, const struct cbx_pub_batch *batch, const struct cbx_config *cfg,
                                struct cbx_broker_ticket *t)
{
    struct op *o = op_new(OP_PUBLISH, t);

    if (o == NULL)
        return CBX_ERR_NOMEM;
    op_script(o, b, "publish");
    op_arg_u64(o, (uint64_t)cfg->queue_max_messages);
    op_arg_u64(o, cfg->queue_max_bytes);
    op_arg_u64(o, (uint64_t)cfg->message_ttl * 1000000);
    op_arg_u64(o, (uint64_t)cfg->retain_acked * 1000000);
    op_arg_u64(o, (uint64_t)cfg->max_queues);
    op_arg_u64(o, (uint64_t)cfg->max_total_messages);
    op_arg_u64(o, cfg->max_total_bytes);
    op_arg_u64(o, batch->n);
    for (size_t i = 0; i < batch->n; i++) {
        const struct cbx_pub_item *it = &batch->items[i];
        /* the encoding is made here, once; Redis keeps what follows the id */
        struct cbx_msg *m = cbx_msg_create(it->queue, it->queue_len, it->data, it->len, it->is_json);
        const char *tail;
        size_t tlen;
        if (m == NULL) {
            op_free(o);
            return CBX_ERR_NOMEM;
        }
        tail = cbx_msg_tail(m, &tlen);
        op_arg(o, it->queue, it->queue_len);
        op_arg(o, tail, tlen);
        cbx_msg_unref(m);
    }
    return op_submit(b, o);
}

enum cbx_err cbx_broker_publish_wait(struct cbx_broker *b, const struct cbx_pub_batch *batch,
                                     const struct cbx_config *cfg, uint64_t *first_id)
{
    struct cbx_broker_ticket t = { 0 };
    enum cbx_err rc = cbx_broker_publish(b, batch, cfg, &t);

    if (rc != CBX_OK)
        return rc;
    cbx_broker_wait(b, &t);
    *first_id = t.value;
    return t.rc;
}

enum cbx_err cbx_broker_sync(struct cbx_broker *b, const struct cbx_qlist *queues, bool has_since, uint64_t since,
                             struct cbx_broker_ticket *t)
{
    struct op *o = op_new(OP_LOAD, t);

    if (o == NULL)
        return CBX_ERR_NOMEM;
    op_script(o, b, "load");
    op_limits(o, cbx_settings_get(b->s));
    if (has_since)
        op_arg_u64(o, since);
    else
        op_args(o, "");
    for (size_t i = 0; i < queues->n; i++)
        op_args(o, queues->names[i]);
    return op_submit(b, o);
}

enum cbx_err cbx_broker_flush(struct cbx_broker *b, const char *name, const struct cbx_config *cfg,
                              struct cbx_broker_ticket *t)
{
    struct op *o = op_new(OP_FLUSH, t);

    if (o == NULL)
        return CBX_ERR_NOMEM;
    op_script(o, b, "flush");
    op_limits(o, cfg);
    if (name != NULL)
        op_args(o, name);
    return op_submit(b, o);
}

enum cbx_err cbx_broker_kick(struct cbx_broker *b, const char *name, const char *reason)
{
    struct op *o = op_new(OP_PLAIN, NULL);
    char chan[80], head[64];
    struct cbx_buf msg;

    if (o == NULL)
        return CBX_ERR_NOMEM;
    snprintf(chan, sizeof chan, "%s:ctl", b->prefix);
    /* "K NODE LEN NAME REASON" */
    snprintf(head, sizeof head, "K %llu %zu ", (unsigned long long)b->node_id, strlen(name));
    cbx_buf_init(&msg);
    cbx_buf_adds(&msg, head);
    cbx_buf_adds(&msg, name);
    cbx_buf_adds(&msg, " ");
    cbx_buf_adds(&msg, reason ? reason : "");
    op_args(o, "PUBLISH");
    op_args(o, chan);
    op_arg(o, msg.s ? msg.s : "", msg.len);
    if (!msg.ok)
        o->mem.ok = false;
    cbx_buf_free(&msg);
    return op_submit(b, o);
}

/* The map's log: acknowledgements go to Redis, forgotten queues are
 * unsubscribed. Called with the map lock held: appends to memory only. */
static void hook_ack(void *ctx, const char *name, size_t len, uint64_t upto)
{
    struct cbx_broker *b = ctx;

    pthread_mutex_lock(&b->mu);
    if (b->nacks == b->capacks) {
        size_t cap = b->capacks ? b->capacks * 2 : 64;
        struct ack *a = realloc(b->acks, cap * sizeof *a);
        if (a == NULL) {
            pthread_mutex_unlock(&b->mu);
            return; /* the browser's next since acknowledges it again */
        }
        b->acks = a;
        b->capacks = cap;
    }
    memcpy(b->acks[b->nacks].name, name, len);
    b->acks[b->nacks].name[len] = '\0';
    b->acks[b->nacks++].upto = upto;
    pthread_mutex_unlock(&b->mu);
}

static void hook_kick(void *ctx)
{
    struct cbx_broker *b = ctx;
    bool any;

    pthread_mutex_lock(&b->mu);
    any = b->nacks > 0 || b->ops != NULL;
    pthread_mutex_unlock(&b->mu);
    if (any)
        wake_thread(b);
}

static void hook_forget(void *ctx, const char *name, size_t len)
{
    struct cbx_broker *b = ctx;
    struct op *o = op_new(OP_FORGET, NULL);

    if (o == NULL)
        return; /* the subscription stays: changes for it are ignored */
    op_arg(o, name, len);
    op_submit(b, o);
}

/* ---- the thread: queues it subscribes to ---- */

static struct qent *qent_find(struct cbx_broker *b, const char *name, size_t len)
{
    uint32_t h = hash_name(name, len);

    for (struct qent *e = b->qbuckets[h & (b->nqbuckets - 1)]; e != NULL; e = e->next)
        if (e->hash == h && e->len == len && memcmp(e->name, name, len) == 0)
            return e;
    return NULL;
}

static struct qent *qent_get(struct cbx_broker *b, const char *name, size_t len)
{
    struct qent *e = qent_find(b, name, len);

    if (e != NULL)
        return e;
    if (b->nq >= b->nqbuckets) {
        size_t n = b->nqbuckets * 2;
        struct qent **nb = calloc(n, sizeof *nb);
        if (nb != NULL) {
            for (size_t i = 0; i < b->nqbuckets; i++)
                while (b->qbuckets[i] != NULL) {
                    struct qent *x = b->qbuckets[i];
                    b->qbuckets[i] = x->next;
                    x->next = nb[x->hash & (n - 1)];
                    nb[x->hash & (n - 1)] = x;
                }
            free(b->qbuckets);
            b->qbuckets = nb;
            b->nqbuckets = n;
        }
    }
    if ((e = calloc(1, sizeof *e + len + 1)) == NULL)
        return NULL;
    e->hash = hash_name(name, len);
    e->len = len;
    memcpy(e->name, name, len);
    e->next = b->qbuckets[e->hash & (b->nqbuckets - 1)];
    b->qbuckets[e->hash & (b->nqbuckets - 1)] = e;
    b->nq++;
    atomic_store(&b->mirrored, b->nq);
    return e;
}

static void notes_free(struct qent *e)
{
    while (e->notes != NULL) {
        struct note *n = e->notes;
        e->notes = n->next;
        free(n);
    }
    e->notes_tail = NULL;
}

static void qent_remove(struct cbx_broker *b, struct qent *e)
{
    struct qent **pp = &b->qbuckets[e->hash & (b->nqbuckets - 1)];

    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    notes_free(e);
    free(e->waiting);
    free(e);
    b->nq--;
    atomic_store(&b->mirrored, b->nq);
}

/* ---- the thread: sending ---- */

static void on_reply(redisAsyncContext *ac, void *r, void *priv);
static void on_sub(redisAsyncContext *ac, void *r, void *priv);
static void teardown(struct cbx_broker *b, const char *why);

static bool send_cmd(struct cbx_broker *b, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                     const size_t *lens)
{
    if (b->cmd.ac == NULL || redisAsyncCommandArgv(b->cmd.ac, fn, priv, argc, argv, lens) != REDIS_OK)
        return false;
    ring_push(&b->cmd.sent, cbx_now_mono_us());
    return true;
}

static void op_fail(struct cbx_broker *b, struct op *o, enum cbx_err rc)
{
    ticket_done(b, o->t, rc, 0);
    op_free(o);
}

static void send_op(struct cbx_broker *b, struct op *o)
{
    if (o->argc > ARG_SHA && o->argvlen[0] == 7 && memcmp(o->argv[0], "EVALSHA", 7) == 0) {
        o->argv[ARG_SHA] = b->sha;
        o->argvlen[ARG_SHA] = strlen(b->sha);
    }
    if (!send_cmd(b, on_reply, o, o->argc, o->argv, o->argvlen))
        op_fail(b, o, CBX_ERR_UNAVAILABLE);
}

static void channel_of(struct cbx_broker *b, const char *name, size_t len, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s:c:%.*s", b->prefix, (int)len, name);
}

static bool subscribe(struct cbx_broker *b, struct qent *e)
{
    char chan[CBX_QNAME_MAX + 80];

    channel_of(b, e->name, e->len, chan, sizeof chan);
    if (b->sub.ac == NULL || redisAsyncCommand(b->sub.ac, on_sub, b, "SUBSCRIBE %s", chan) != REDIS_OK)
        return false;
    ring_push(&b->sub.sent, cbx_now_mono_us());
    e->state = Q_SUBSCRIBING;
    return true;
}

/* A load whose queues are all subscribed to: send it. */
static void send_load(struct cbx_broker *b, struct op *o)
{
    for (int i = LOAD_NAMES; i < o->argc; i++) {
        struct qent *e = qent_find(b, o->argv[i], o->argvlen[i]);
        if (e == NULL)
            continue;
        if (e->state != Q_READY)
            e->state = Q_LOADING;
        e->loads++;
    }
    send_op(b, o);
}

/* A sync: subscribe to what is not subscribed yet, load once Redis
 * confirms every subscription. */
static void start_load(struct cbx_broker *b, struct op *o)
{
    o->unconfirmed = 0;
    for (int i = LOAD_NAMES; i < o->argc; i++) {
        struct qent *e = qent_get(b, o->argv[i], o->argvlen[i]);
        if (e == NULL) {
            op_fail(b, o, CBX_ERR_NOMEM); /* (nothing waits on it yet) */
            return;
        }
        if (e->state == Q_NEW && !subscribe(b, e))
            break; /* the connection is going: the teardown fails o */
        if (e->state == Q_SUBSCRIBING) {
            if (e->nwaiting == e->capwaiting) {
                size_t cap = e->capwaiting ? e->capwaiting * 2 : 4;
                struct op **w = realloc(e->waiting, cap * sizeof *w);
                if (w == NULL)
                    break;
                e->waiting = w;
                e->capwaiting = cap;
            }
            e->waiting[e->nwaiting++] = o;
            o->unconfirmed++;
        }
    }
    if (o->unconfirmed == 0)
        send_load(b, o);
}

static void forget(struct cbx_broker *b, struct op *o)
{
    struct qent *e = qent_find(b, o->argv[0], o->argvlen[0]);
    struct cbx_qlist one = { 1, { (char *)o->argv[0] }, NULL };
    char chan[CBX_QNAME_MAX + 80];

    /* a load since may have brought it back: then it stays */
    if (e != NULL && e->nwaiting == 0 && e->loads == 0 && !cbx_qmap_mirror_ready(b->s->qmap, &one, false, 0)) {
        if (e->state != Q_NEW && b->sub.ac != NULL) {
            channel_of(b, e->name, e->len, chan, sizeof chan);
            redisAsyncCommand(b->sub.ac, on_sub, b, "UNSUBSCRIBE %s", chan);
        }
        qent_remove(b, e);
    }
    op_free(o);
}

static void send_acks(struct cbx_broker *b)
{
    struct op *o;
    struct ack *acks;
    size_t n;

    pthread_mutex_lock(&b->mu);
    acks = b->acks;
    n = b->nacks;
    b->acks = NULL;
    b->nacks = b->capacks = 0;
    pthread_mutex_unlock(&b->mu);
    if (n == 0 || atomic_load(&b->state) != CBX_BROKER_UP || (o = op_new(OP_PLAIN, NULL)) == NULL) {
        free(acks); /* Redis is away: the browsers' next since acknowledges again */
        return;
    }
    op_script(o, b, "ack");
    op_limits(o, cbx_settings_get(b->s));
    for (size_t i = 0; i < n; i++) {
        op_args(o, acks[i].name);
        op_arg_u64(o, acks[i].upto);
    }
    free(acks);
    if (!op_finish(o))
        op_free(o);
    else
        send_op(b, o);
}

/* Once a second: Redis drops what expired in queues nobody touches (a
 * node's own sweep does so for its mirror only). */
static void send_sweep(struct cbx_broker *b, int64_t now)
{
    struct op *o;

    if (atomic_load(&b->state) != CBX_BROKER_UP || now - b->last_sweep < 1000000)
        return;
    b->last_sweep = now;
    if ((o = op_new(OP_PLAIN, NULL)) == NULL)
        return;
    op_script(o, b, "sweep");
    op_limits(o, cbx_settings_get(b->s));
    if (!op_finish(o))
        op_free(o);
    else
        send_op(b, o);
}

/* ---- the thread: replies ---- */

static enum cbx_err script_error(struct cbx_broker *b, const redisReply *r)
{
    if (strncmp(r->str, "FULL", 4) == 0)
        return CBX_ERR_FULL;
    if (strncmp(r->str, "BUDGET", 6) == 0)
        return CBX_ERR_BUDGET;
    if (strncmp(r->str, "NOTFOUND", 8) == 0)
        return CBX_ERR_NOT_FOUND;
    set_error(b, "Redis answered: %s", r->str);
    if (strncmp(r->str, "NOSCRIPT", 8) == 0)
        snprintf(b->teardown, sizeof b->teardown, "the script is gone from Redis (SCRIPT FLUSH?)");
    return CBX_ERR_UNAVAILABLE;
}

static void apply(struct cbx_broker *b, const char *text, size_t len)
{
    struct cbx_mirror_update u;
    char err[96];

    if (cbx_mirror_parse(text, len, &u, err, sizeof err) != CBX_OK) {
        set_error(b, "a change from Redis could not be read (%s)", err);
        cbx_log(CBX_LOG_WARN, "broker: a change from Redis could not be read (%s); ignored", err);
        return;
    }
    cbx_pool_defer_begin(); /* one wake-up per pool thread for the whole change */
    if (cbx_qmap_mirror_apply(b->s->qmap, &u) != CBX_OK)
        cbx_log(CBX_LOG_WARN, "broker: out of memory applying a change; the next load completes it");
    cbx_pool_defer_end();
    cbx_mirror_update_free(&u);
}

/* Applies the batch kept so far, all its queues at once. */
static void batch_apply(struct cbx_broker *b)
{
    if (b->batch.nq > 0) {
        cbx_pool_defer_begin();
        if (cbx_qmap_mirror_apply(b->s->qmap, &b->batch) != CBX_OK)
            cbx_log(CBX_LOG_WARN, "broker: out of memory applying a change; the next load completes it");
        cbx_pool_defer_end();
    }
    cbx_mirror_update_free(&b->batch);
    b->batch_id = 0;
}

/* A change of a queue this node mirrors: applied now, or, when it is part
 * of a publish to several queues, kept until the batch's "E" so that a
 * browser waiting on several of them sees the batch whole. */
static void change(struct cbx_broker *b, const char *text, size_t len)
{
    struct cbx_mirror_update u;
    struct cbx_mirror_queue *qs;
    char err[96];

    if (len > 2 && text[0] == 'E') {
        if (b->batch_id != 0 && strtoull(text + 2, NULL, 10) == b->batch_id)
            batch_apply(b);
        return;
    }
    if (cbx_mirror_parse(text, len, &u, err, sizeof err) != CBX_OK) {
        apply(b, text, len); /* (logs why) */
        return;
    }
    if (u.first_id == 0 && b->batch_id == 0) {
        cbx_mirror_update_free(&u);
        apply(b, text, len);
        return;
    }
    if (u.first_id != b->batch_id && b->batch_id != 0)
        batch_apply(b); /* (its "E" cannot have been lost on one connection) */
    if (u.first_id == 0) {
        cbx_mirror_update_free(&u);
        apply(b, text, len);
        return;
    }
    qs = realloc(b->batch.qs, (b->batch.nq + u.nq) * sizeof *qs);
    if (qs == NULL) {
        batch_apply(b);
        apply(b, text, len);
        cbx_mirror_update_free(&u);
        return;
    }
    memcpy(qs + b->batch.nq, u.qs, u.nq * sizeof *qs);
    b->batch.qs = qs;
    b->batch.nq += u.nq;
    if (u.last_id > b->batch.last_id)
        b->batch.last_id = u.last_id;
    b->batch_id = u.first_id;
    free(u.qs); /* its queues are the batch's now */
}

static void load_done(struct cbx_broker *b, struct op *o, const redisReply *r)
{
    bool ok = r != NULL && r->type == REDIS_REPLY_STRING;

    if (r != NULL && r->type == REDIS_REPLY_ERROR)
        script_error(b, r);
    if (ok)
        apply(b, r->str, r->len);
    for (int i = LOAD_NAMES; i < o->argc; i++) {
        struct qent *e = qent_find(b, o->argv[i], o->argvlen[i]);
        if (e == NULL)
            continue;
        if (e->loads > 0)
            e->loads--;
        if (ok && e->state == Q_LOADING) {
            /* what changed while it loaded, in order */
            for (struct note *n = e->notes; n != NULL; n = n->next)
                apply(b, n->text, n->len);
            notes_free(e);
            e->state = Q_READY;
        }
    }
    op_fail(b, o, ok ? CBX_OK : CBX_ERR_UNAVAILABLE);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct cbx_broker *b = ac->data;
    struct op *o = priv;
    redisReply *r = reply;

    ring_pop(&b->cmd.sent);
    if (o->kind == OP_LOAD) {
        load_done(b, o, r);
        return;
    }
    if (r == NULL) {
        op_fail(b, o, CBX_ERR_UNAVAILABLE);
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        op_fail(b, o, script_error(b, r));
        return;
    }
    if (o->kind == OP_PUBLISH && r->type == REDIS_REPLY_STRING)
        ticket_done(b, o->t, CBX_OK, strtoull(r->str, NULL, 10));
    else if (o->kind == OP_FLUSH && r->type == REDIS_REPLY_INTEGER)
        ticket_done(b, o->t, CBX_OK, (uint64_t)r->integer);
    else
        ticket_done(b, o->t, o->kind == OP_PLAIN ? CBX_OK : CBX_ERR_UNAVAILABLE, 0);
    op_free(o);
}

/* A kick another node sent: "K NODE LEN NAME REASON". */
static void control(struct cbx_broker *b, const char *s, size_t len)
{
    unsigned long long node;
    size_t nlen;
    int at = 0;
    char name[CBX_QNAME_MAX + 1], reason[256];
    uint64_t count;

    if (len < 2 || s[0] != 'K' || sscanf(s, "K %llu %zu %n", &node, &nlen, &at) != 2 || nlen > CBX_QNAME_MAX ||
        (size_t)at + nlen > len)
        return;
    if (node == b->node_id)
        return; /* ours: kicked here already */
    memcpy(name, s + at, nlen);
    name[nlen] = '\0';
    at += (int)nlen + 1;
    snprintf(reason, sizeof reason, "%.*s", (size_t)at < len ? (int)(len - (size_t)at) : 0, s + at);
    cbx_qmap_signal_queue(b->s->qmap, name, CBX_W_KICK, reason[0] ? reason : NULL, &count);
}

static void maybe_up(struct cbx_broker *b);

static void on_sub(redisAsyncContext *ac, void *reply, void *priv)
{
    struct cbx_broker *b = priv;
    redisReply *r = reply, *kind, *chan, *body;
    size_t plen = b->prefix_len;
    const char *name;
    size_t nlen;
    struct qent *e;

    (void)ac;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 3)
        return;
    kind = r->element[0];
    chan = r->element[1];
    body = r->element[2];
    if (kind->type != REDIS_REPLY_STRING || chan->type != REDIS_REPLY_STRING)
        return;
    if (chan->len == plen + 4 && memcmp(chan->str + plen, ":ctl", 4) == 0) {
        if (strcmp(kind->str, "subscribe") == 0) {
            ring_pop(&b->sub.sent);
            b->sub_ready = true;
            maybe_up(b);
        } else if (strcmp(kind->str, "message") == 0 && body->type == REDIS_REPLY_STRING) {
            control(b, body->str, body->len);
        }
        return;
    }
    if (chan->len <= plen + 3 || memcmp(chan->str + plen, ":c:", 3) != 0)
        return;
    name = chan->str + plen + 3;
    nlen = chan->len - plen - 3;
    e = qent_find(b, name, nlen);
    if (strcmp(kind->str, "subscribe") == 0) {
        ring_pop(&b->sub.sent);
        if (e == NULL || e->state != Q_SUBSCRIBING)
            return;
        e->state = Q_LOADING; /* changes are kept from now on until a load is applied */
        for (size_t i = 0; i < e->nwaiting; i++)
            if (--e->waiting[i]->unconfirmed == 0)
                send_load(b, e->waiting[i]);
        e->nwaiting = 0;
        return;
    }
    if (strcmp(kind->str, "message") != 0 || body->type != REDIS_REPLY_STRING || e == NULL)
        return;
    if (e->state == Q_READY) {
        change(b, body->str, body->len);
    } else if (e->state == Q_LOADING && body->str[0] != 'E') {
        struct note *n = malloc(sizeof *n + body->len);
        if (n == NULL) {
            snprintf(b->teardown, sizeof b->teardown, "out of memory keeping a change");
            return;
        }
        n->next = NULL;
        n->len = body->len;
        memcpy(n->text, body->str, body->len);
        if (e->notes_tail != NULL)
            e->notes_tail->next = n;
        else
            e->notes = n;
        e->notes_tail = n;
    }
}

/* ---- the thread: connecting ---- */

static void ev_add_read(void *p) { ((struct rconn *)p)->r = true; }
static void ev_del_read(void *p) { ((struct rconn *)p)->r = false; }
static void ev_add_write(void *p) { ((struct rconn *)p)->w = true; }
static void ev_del_write(void *p) { ((struct rconn *)p)->w = false; }
static void ev_cleanup(void *p)
{
    struct rconn *c = p;
    c->ac = NULL;
    c->r = c->w = false;
    c->sent.n = 0;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct cbx_broker *b = ac->data;

    if (status != REDIS_OK) {
        set_error(b, "cannot connect: %s", ac->errstr);
        snprintf(b->teardown, sizeof b->teardown, "cannot connect: %s", ac->errstr);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct cbx_broker *b = ac->data;

    (void)status;
    if (!b->teardown[0])
        snprintf(b->teardown, sizeof b->teardown, "connection lost%s%s", ac->errstr[0] ? ": " : "", ac->errstr);
}

static void on_setup(redisAsyncContext *ac, void *reply, void *priv)
{
    struct cbx_broker *b = ac->data;
    redisReply *r = reply;

    (void)priv;
    ring_pop(&b->cmd.sent);
    if (r != NULL && r->type == REDIS_REPLY_ERROR) {
        set_error(b, "Redis refused the setup: %s", r->str);
        snprintf(b->teardown, sizeof b->teardown, "Redis refused the setup: %.100s", r->str);
    }
}

static void on_ids(redisAsyncContext *ac, void *reply, void *priv)
{
    struct cbx_broker *b = ac->data;
    redisReply *r = reply;

    (void)priv;
    ring_pop(&b->cmd.sent);
    if (r == NULL)
        return;
    if (r->type != REDIS_REPLY_STRING) {
        if (r->type == REDIS_REPLY_ERROR)
            script_error(b, r);
        snprintf(b->teardown, sizeof b->teardown, "the script's first call failed");
        return;
    }
    apply(b, r->str, r->len);
    b->cmd_ready = true;
    maybe_up(b);
}

static void on_script(redisAsyncContext *ac, void *reply, void *priv)
{
    struct cbx_broker *b = ac->data;
    redisReply *r = reply;
    const char *argv[6];
    size_t lens[6];

    (void)priv;
    ring_pop(&b->cmd.sent);
    if (r == NULL)
        return;
    if (r->type != REDIS_REPLY_STRING || r->len != 40) {
        set_error(b, "SCRIPT LOAD failed: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected answer");
        snprintf(b->teardown, sizeof b->teardown, "SCRIPT LOAD failed");
        return;
    }
    memcpy(b->sha, r->str, 40);
    b->sha[40] = '\0';
    /* the ids: a load of no queue */
    argv[0] = "EVALSHA"; argv[1] = b->sha; argv[2] = "0"; argv[3] = "load"; argv[4] = b->prefix; argv[5] = "0";
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    /* ttl and retain: only expiry of the queues named, of which there are none */
    {
        const char *a8[8] = { argv[0], argv[1], argv[2], argv[3], argv[4], "0", "0", "" };
        size_t l8[8] = { lens[0], lens[1], lens[2], lens[3], lens[4], 1, 1, 0 };
        send_cmd(b, on_ids, NULL, 8, a8, l8);
    }
}

static redisAsyncContext *open_conn(struct cbx_broker *b, struct rconn *c)
{
    redisAsyncContext *ac = b->path[0] ? redisAsyncConnectUnix(b->path) : redisAsyncConnect(b->host, b->port);

    if (ac == NULL)
        return NULL;
    if (ac->err) {
        set_error(b, "cannot connect: %s", ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = b;
    c->ac = ac;
    c->b = b;
    ac->ev.data = c;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect); /* (watches for the socket to be writable) */
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->r = true;
    return ac;
}

static void connect_redis(struct cbx_broker *b)
{
    char chan[80];

    b->cmd_ready = b->sub_ready = false;
    b->teardown[0] = '\0';
    b->connect_started = cbx_now_mono_us();
    if (open_conn(b, &b->cmd) == NULL || open_conn(b, &b->sub) == NULL) {
        snprintf(b->teardown, sizeof b->teardown, "cannot connect");
        return;
    }
    if (b->password[0]) {
        send_cmd(b, on_setup, NULL, 2, (const char *[]){ "AUTH", b->password },
                 (const size_t[]){ 4, strlen(b->password) });
        redisAsyncCommand(b->sub.ac, on_sub, b, "AUTH %s", b->password);
    }
    if (b->db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", b->db);
        send_cmd(b, on_setup, NULL, 2, (const char *[]){ "SELECT", db }, (const size_t[]){ 6, strlen(db) });
    }
    send_cmd(b, on_script, NULL, 3, (const char *[]){ "SCRIPT", "LOAD", cbx_embedded_lua.data },
             (const size_t[]){ 6, 4, cbx_embedded_lua.len });
    snprintf(chan, sizeof chan, "%s:ctl", b->prefix);
    if (redisAsyncCommand(b->sub.ac, on_sub, b, "SUBSCRIBE %s", chan) == REDIS_OK)
        ring_push(&b->sub.sent, cbx_now_mono_us());
}

/* Both connections ready: Redis is up; every queue mirrored before is
 * subscribed to and loaded again (changes were missed meanwhile). */
static void maybe_up(struct cbx_broker *b)
{
    struct op *o = NULL;
    size_t in_op = 0;

    if (!b->cmd_ready || !b->sub_ready || atomic_load(&b->state) == CBX_BROKER_UP)
        return;
    atomic_store(&b->state, CBX_BROKER_UP);
    b->backoff = BACKOFF_MIN_US;
    if (b->ever_up)
        atomic_fetch_add(&b->reconnects, 1);
    b->ever_up = true;
    cbx_log(CBX_LOG_INFO, "broker: connected to Redis at %s", b->url_shown);
    for (size_t i = 0; i < b->nqbuckets; i++)
        for (struct qent *e = b->qbuckets[i]; e != NULL; e = e->next) {
            if (o == NULL) {
                if ((o = op_new(OP_LOAD, NULL)) == NULL)
                    return;
                op_script(o, b, "load");
                op_limits(o, cbx_settings_get(b->s));
                op_args(o, "");
            }
            op_arg(o, e->name, e->len);
            if (++in_op == RESYNC_CHUNK) {
                if (op_finish(o))
                    start_load(b, o);
                else
                    op_free(o);
                o = NULL;
                in_op = 0;
            }
        }
    if (o != NULL) {
        if (op_finish(o))
            start_load(b, o);
        else
            op_free(o);
    }
}

/* Lost Redis (or gave up on it): every command waiting fails (hiredis runs
 * their callbacks with no reply), every queue is to be subscribed to again. */
static void teardown(struct cbx_broker *b, const char *why)
{
    struct op *failed = NULL;

    if (atomic_load(&b->state) == CBX_BROKER_UP)
        cbx_log(CBX_LOG_WARN, "broker: lost Redis at %s (%s); publishes get 503 until it is back", b->url_shown,
                why);
    else if (!b->ever_up)
        cbx_log(CBX_LOG_DEBUG, "broker: Redis at %s not reachable (%s)", b->url_shown, why);
    atomic_store(&b->state, CBX_BROKER_DOWN);
    if (b->ever_up || why[0])
        atomic_fetch_add(&b->errors, 1);
    set_error(b, "%s", why);
    /* loads waiting for a subscription: fail each once */
    for (size_t i = 0; i < b->nqbuckets; i++)
        for (struct qent *e = b->qbuckets[i]; e != NULL; e = e->next) {
            for (size_t k = 0; k < e->nwaiting; k++) {
                struct op *o = e->waiting[k];
                if (!o->failed) {
                    o->failed = true;
                    ticket_done(b, o->t, CBX_ERR_UNAVAILABLE, 0);
                    o->next = failed;
                    failed = o;
                }
            }
            e->nwaiting = 0;
            e->state = Q_NEW;
            e->loads = 0;
            notes_free(e);
        }
    while (failed != NULL) {
        struct op *next = failed->next;
        op_free(failed);
        failed = next;
    }
    if (b->cmd.ac != NULL)
        redisAsyncFree(b->cmd.ac);
    if (b->sub.ac != NULL)
        redisAsyncFree(b->sub.ac);
    b->cmd_ready = b->sub_ready = false;
    b->teardown[0] = '\0';
    b->connect_at = cbx_now_mono_us() + b->backoff;
    b->backoff = b->backoff * 2 > BACKOFF_MAX_US ? BACKOFF_MAX_US : b->backoff * 2;
}

/* ---- the thread's loop ---- */

static void run_ops(struct cbx_broker *b)
{
    struct op *o;

    pthread_mutex_lock(&b->mu);
    o = b->ops;
    b->ops = b->ops_tail = NULL;
    pthread_mutex_unlock(&b->mu);
    while (o != NULL) {
        struct op *next = o->next;
        o->next = NULL;
        if (o->kind == OP_FORGET)
            forget(b, o);
        else if (atomic_load(&b->state) != CBX_BROKER_UP)
            op_fail(b, o, CBX_ERR_UNAVAILABLE);
        else if (o->kind == OP_LOAD)
            start_load(b, o);
        else
            send_op(b, o);
        o = next;
    }
    send_acks(b);
}

static void check_timeouts(struct cbx_broker *b, int64_t now)
{
    bool connecting = b->cmd.ac != NULL && atomic_load(&b->state) != CBX_BROKER_UP;

    if (b->teardown[0])
        return;
    if ((b->cmd.sent.n > 0 && now - b->cmd.sent.t[b->cmd.sent.head] > b->timeout_us) ||
        (b->sub.sent.n > 0 && now - b->sub.sent.t[b->sub.sent.head] > b->timeout_us) ||
        (connecting && now - b->connect_started > b->timeout_us))
        snprintf(b->teardown, sizeof b->teardown, "no answer within redis-timeout (%llds)",
                 (long long)(b->timeout_us / 1000000));
    else if (atomic_load(&b->state) == CBX_BROKER_UP && b->cmd.sent.n == 0 && now - b->last_ping > b->timeout_us / 2) {
        /* an idle connection is asked now and then, so a Redis that went
         * silent is noticed */
        b->last_ping = now;
        send_cmd(b, on_setup, NULL, 1, (const char *[]){ "PING" }, (const size_t[]){ 4 });
    }
}

static void handle(struct rconn *c, short revents)
{
    if (c->ac != NULL && (revents & (POLLIN | POLLHUP | POLLERR)))
        redisAsyncHandleRead(c->ac);
    if (c->ac != NULL && (revents & POLLOUT))
        redisAsyncHandleWrite(c->ac);
}

static void *broker_main(void *arg)
{
    struct cbx_broker *b = arg;

    for (;;) {
        struct pollfd p[3];
        int n = 1, ci = -1, si = -1;
        int64_t now = cbx_now_mono_us(), wait_ms = 100;
        bool stop;

        pthread_mutex_lock(&b->mu);
        stop = b->stop;
        pthread_mutex_unlock(&b->mu);
        if (stop)
            break;
        if (b->teardown[0])
            teardown(b, b->teardown);
        if (b->cmd.ac == NULL && b->sub.ac == NULL && now >= b->connect_at)
            connect_redis(b);
        else if ((b->cmd.ac == NULL) != (b->sub.ac == NULL) && !b->teardown[0])
            snprintf(b->teardown, sizeof b->teardown, "connection lost");
        check_timeouts(b, now);
        if (b->teardown[0])
            continue;
        p[0] = (struct pollfd){ b->efd, POLLIN, 0 };
        if (b->cmd.ac != NULL) {
            ci = n;
            p[n++] = (struct pollfd){ b->cmd.ac->c.fd, (short)((b->cmd.r ? POLLIN : 0) | (b->cmd.w ? POLLOUT : 0)), 0 };
        }
        if (b->sub.ac != NULL) {
            si = n;
            p[n++] = (struct pollfd){ b->sub.ac->c.fd, (short)((b->sub.r ? POLLIN : 0) | (b->sub.w ? POLLOUT : 0)), 0 };
        }
        if (b->cmd.ac == NULL && b->connect_at > now && (b->connect_at - now) / 1000 < wait_ms)
            wait_ms = (b->connect_at - now) / 1000 + 1;
        if (poll(p, (nfds_t)n, (int)wait_ms) < 0 && errno != EINTR)
            break;
        if (p[0].revents & POLLIN) {
            uint64_t v;
            ssize_t r = read(b->efd, &v, sizeof v);
            (void)r;
        }
        if (ci >= 0)
            handle(&b->cmd, p[ci].revents);
        if (si >= 0)
            handle(&b->sub, p[si].revents);
        run_ops(b);
        send_sweep(b, cbx_now_mono_us());
    }
    /* stopping: everything waiting fails */
    teardown(b, "the daemon is stopping");
    run_ops(b);
    return NULL;
}

/* ---- start, stop, stats ---- */

/* redis://[:PASSWORD@]HOST[:PORT][/DB] or unix:/PATH[?db=N&password=P] */
static int parse_url(struct cbx_broker *b, const char *url, char *err, size_t errlen)
{
    char tmp[256], *p, *q; /* as long as host, path and password: each part fits */

    b->port = 6379;
    b->db = 0;
    if (strlen(url) >= sizeof tmp)
        goto bad;
    snprintf(tmp, sizeof tmp, "%s", url);
    if (strncmp(tmp, "unix:", 5) == 0) {
        p = tmp + 5;
        while (p[0] == '/' && p[1] == '/')
            p++; /* unix:///path too */
        if ((q = strchr(p, '?')) != NULL) {
            *q++ = '\0';
            for (char *kv = strtok(q, "&"); kv != NULL; kv = strtok(NULL, "&")) {
                if (strncmp(kv, "db=", 3) == 0)
                    b->db = atoi(kv + 3);
                else if (strncmp(kv, "password=", 9) == 0)
                    snprintf(b->password, sizeof b->password, "%s", kv + 9);
                else
                    goto bad;
            }
        }
        if (p[0] != '/')
            goto bad;
        snprintf(b->path, sizeof b->path, "%s", p);
        snprintf(b->url_shown, sizeof b->url_shown, "unix:%s%s", b->path, b->db ? "?db=..." : "");
        if (b->db)
            snprintf(b->url_shown, sizeof b->url_shown, "unix:%s?db=%d", b->path, b->db);
        return 0;
    }
    if (strncmp(tmp, "redis://", 8) != 0)
        goto bad;
    p = tmp + 8;
    if ((q = strrchr(p, '@')) != NULL) {
        *q = '\0';
        if (p[0] != ':' && strchr(p, ':') == NULL)
            goto bad;
        snprintf(b->password, sizeof b->password, "%s", strchr(p, ':') + 1);
        p = q + 1;
    }
    if ((q = strchr(p, '/')) != NULL) {
        char *end;
        *q++ = '\0';
        if (*q) {
            b->db = (int)strtol(q, &end, 10);
            if (*end || b->db < 0)
                goto bad;
        }
    }
    if ((q = strrchr(p, ':')) != NULL && strchr(p, ']') < q) {
        char *end;
        *q++ = '\0';
        b->port = (int)strtol(q, &end, 10);
        if (*end || b->port <= 0 || b->port > 65535)
            goto bad;
    }
    if (p[0] == '[') { /* [::1] */
        p++;
        if ((q = strchr(p, ']')) == NULL)
            goto bad;
        *q = '\0';
    }
    if (!p[0])
        goto bad;
    snprintf(b->host, sizeof b->host, "%s", p);
    snprintf(b->url_shown, sizeof b->url_shown, "redis://%s:%d/%d", b->host, b->port, b->db);
    return 0;
bad:
    snprintf(err, errlen, "redis-url %s: not redis://[:PASSWORD@]HOST[:PORT][/DB] nor unix:/PATH[?db=N&password=P]",
             url);
    return -1;
}

int cbx_broker_start(struct cbx_server *s, char *err, size_t errlen)
{
    static const struct cbx_qmap_log hooks_tmpl = { NULL, NULL, NULL, hook_kick, NULL, NULL, hook_ack, hook_forget };
    struct cbx_qmap_log hooks = hooks_tmpl;
    struct cbx_broker *b;
    uint64_t seed = 0;
    FILE *f;

    if (s->cfg.broker != CBX_BROKER_REDIS)
        return 0;
    if ((b = calloc(1, sizeof *b)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->broker = b;
    b->s = s;
    b->efd = -1;
    if (parse_url(b, s->cfg.redis_url, err, errlen) != 0)
        return -1;
    if (!cbx_qname_valid(s->cfg.redis_prefix, strlen(s->cfg.redis_prefix))) {
        snprintf(err, errlen, "redis-prefix %s: 1-63 letters, digits and ._:@-", s->cfg.redis_prefix);
        return -1;
    }
    snprintf(b->prefix, sizeof b->prefix, "%s", s->cfg.redis_prefix);
    b->prefix_len = strlen(b->prefix);
    b->timeout_us = (int64_t)s->cfg.redis_timeout * 1000000;
    b->backoff = BACKOFF_MIN_US;
    b->nqbuckets = 1024;
    if ((f = fopen("/dev/urandom", "rb")) != NULL) {
        if (fread(&seed, sizeof seed, 1, f) != 1)
            seed = 0;
        fclose(f);
    }
    b->node_id = seed ^ (uint64_t)cbx_now_real_us() ^ ((uint64_t)getpid() << 32);
    atomic_init(&b->state, CBX_BROKER_DOWN);
    if ((b->qbuckets = calloc(b->nqbuckets, sizeof *b->qbuckets)) == NULL ||
        (b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 || pthread_mutex_init(&b->mu, NULL) != 0 ||
        pthread_cond_init(&b->done, NULL) != 0) {
        snprintf(err, errlen, "cannot set up the broker: %s", strerror(errno));
        return -1;
    }
    hooks.ctx = b;
    cbx_qmap_set_log(s->qmap, &hooks);
    if (pthread_create(&b->thread, NULL, broker_main, b) != 0) {
        cbx_qmap_set_log(s->qmap, NULL);
        snprintf(err, errlen, "cannot start the broker thread");
        return -1;
    }
    b->started = true;
    cbx_log(CBX_LOG_INFO, "broker: redis at %s, prefix %s", b->url_shown, b->prefix);
    return 0;
}

void cbx_broker_stop(struct cbx_broker *b)
{
    if (b == NULL)
        return;
    if (b->started) {
        pthread_mutex_lock(&b->mu);
        b->stop = true;
        pthread_mutex_unlock(&b->mu);
        wake_thread(b);
        pthread_join(b->thread, NULL);
        cbx_qmap_set_log(b->s->qmap, NULL); /* freeing the map's queues tells no one */
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->done);
    }
    for (size_t i = 0; b->qbuckets != NULL && i < b->nqbuckets; i++)
        while (b->qbuckets[i] != NULL)
            qent_remove(b, b->qbuckets[i]);
    free(b->qbuckets);
    free(b->acks);
    free(b->cmd.sent.t);
    free(b->sub.sent.t);
    if (b->efd >= 0)
        close(b->efd);
    free(b);
}

void cbx_broker_stats(struct cbx_broker *b, struct cbx_broker_stats *out)
{
    memset(out, 0, sizeof *out);
    out->state = (enum cbx_broker_state)atomic_load(&b->state);
    snprintf(out->url, sizeof out->url, "%s", b->url_shown);
    out->reconnects = atomic_load(&b->reconnects);
    out->errors = atomic_load(&b->errors);
    out->mirrored = atomic_load(&b->mirrored);
    pthread_mutex_lock(&b->mu);
    snprintf(out->last_error, sizeof out->last_error, "%s", b->last_error);
    pthread_mutex_unlock(&b->mu);
}

bool cbx_broker_up(struct cbx_broker *b)
{
    return atomic_load(&b->state) == CBX_BROKER_UP;
}
