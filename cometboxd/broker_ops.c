/* broker_ops.c - broker = redis (broker.h, broker_int.h): the work other
 * threads hand to the broker thread. Operations are built here (a script
 * call's arguments), queued under the broker lock and the thread woken
 * through its eventfd; tickets tell the request that waits. Also the map's
 * hooks (acknowledgements to send, queues to forget) and the requests of
 * broker.h. Not for talking to Redis (broker_sub.c, broker.c). */
#include "broker.h"
#include "broker_int.h"

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
#include "settings.h"

/* ---- small pieces ---- */

void cbx_broker_ring_push(struct ring *r, int64_t t)
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

void cbx_broker_ring_pop(struct ring *r)
{
    if (r->n > 0) {
        r->head = (r->head + 1) % r->cap;
        r->n--;
    }
}

__attribute__((format(printf, 2, 3)))
void cbx_broker_set_error(struct cbx_broker *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    pthread_mutex_lock(&b->mu);
    vsnprintf(b->last_error, sizeof b->last_error, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&b->mu);
    atomic_fetch_add(&b->errors, 1);
}

uint32_t cbx_broker_hash_name(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* ---- operations: built by any thread ---- */

struct op *cbx_broker_op_new(enum op_kind kind, struct cbx_broker_ticket *t)
{
    struct op *o = calloc(1, sizeof *o);

    if (o == NULL)
        return NULL;
    o->kind = kind;
    o->t = t;
    cbx_buf_init(&o->mem);
    return o;
}

void cbx_broker_op_arg(struct op *o, const char *s, size_t len)
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

void cbx_broker_op_args(struct op *o, const char *s) { cbx_broker_op_arg(o, s, strlen(s)); }

void cbx_broker_op_arg_u64(struct op *o, uint64_t v)
{
    char n[24];
    cbx_broker_op_arg(o, n, (size_t)snprintf(n, sizeof n, "%llu", (unsigned long long)v));
}

/* The script call's first arguments: EVALSHA (sha) 0 OP PREFIX TTL RETAIN
 * (publish has its own order after PREFIX). */
void cbx_broker_op_script(struct op *o, struct cbx_broker *b, const char *what)
{
    cbx_broker_op_args(o, "EVALSHA");
    cbx_broker_op_args(o, "");
    cbx_broker_op_args(o, "0");
    cbx_broker_op_args(o, what);
    cbx_broker_op_args(o, b->prefix);
}

/* message-ttl and retain-acked in µs, the arguments after PREFIX of
 * every operation but publish */
void cbx_broker_op_limits(struct op *o, const struct cbx_config *cfg)
{
    cbx_broker_op_arg_u64(o, (uint64_t)cfg->message_ttl * 1000000);
    cbx_broker_op_arg_u64(o, (uint64_t)cfg->retain_acked * 1000000);
}

void cbx_broker_op_free(struct op *o)
{
    if (o == NULL)
        return;
    while (o->riders != NULL) { /* (told already when they were told at all) */
        struct op *r = o->riders;
        o->riders = r->next;
        cbx_broker_op_free(r);
    }
    cbx_buf_free(&o->mem);
    free(o->offs);
    free(o->argvlen);
    free(o->argv);
    free(o);
}

/* Turns the offsets into pointers; false when memory ran out. */
bool cbx_broker_op_finish(struct op *o)
{
    if (!o->mem.ok || o->argc == 0 || (o->argv = malloc((size_t)o->argc * sizeof *o->argv)) == NULL)
        return false;
    for (int i = 0; i < o->argc; i++)
        o->argv[i] = o->mem.s + o->offs[i];
    return true;
}

void cbx_broker_wake_thread(struct cbx_broker *b)
{
    uint64_t one = 1;
    ssize_t n = write(b->efd, &one, sizeof one);
    (void)n; /* a full counter wakes it as well */
}

/* Queues o for the thread, unless Redis is down (then o is freed). */
static enum cbx_err op_submit(struct cbx_broker *b, struct op *o)
{
    if (!cbx_broker_op_finish(o)) {
        cbx_broker_op_free(o);
        return CBX_ERR_NOMEM;
    }
    if (atomic_load(&b->state) != CBX_BROKER_UP && o->kind != OP_FORGET) {
        cbx_broker_op_free(o);
        return CBX_ERR_UNAVAILABLE;
    }
    if (o->t != NULL) {
        o->t->done = false;
        o->t->rc = CBX_OK;
        o->t->value = 0;
    }
    bool wake = o->kind != OP_FORGET; /* a cbx_broker_forget comes under the map lock: the kick hook wakes */

    pthread_mutex_lock(&b->mu);
    if (b->ops_tail != NULL)
        b->ops_tail->next = o;
    else
        b->ops = o;
    b->ops_tail = o;
    pthread_mutex_unlock(&b->mu);
    if (wake) /* o may be gone already */
        cbx_broker_wake_thread(b);
    return CBX_OK;
}

void cbx_broker_ticket_done(struct cbx_broker *b, struct cbx_broker_ticket *t, enum cbx_err rc, uint64_t value)
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
    struct op *o = cbx_broker_op_new(OP_PUBLISH, t);

    if (o == NULL)
        return CBX_ERR_NOMEM;
    cbx_broker_op_script(o, b, "publish");
    cbx_broker_op_arg_u64(o, (uint64_t)cfg->queue_max_messages);
    cbx_broker_op_arg_u64(o, cfg->queue_max_bytes);
    cbx_broker_op_arg_u64(o, (uint64_t)cfg->message_ttl * 1000000);
    cbx_broker_op_arg_u64(o, (uint64_t)cfg->retain_acked * 1000000);
    cbx_broker_op_arg_u64(o, (uint64_t)cfg->max_queues);
    cbx_broker_op_arg_u64(o, (uint64_t)cfg->max_total_messages);
    cbx_broker_op_arg_u64(o, cfg->max_total_bytes);
    cbx_broker_op_arg_u64(o, batch->n);
    for (size_t i = 0; i < batch->n; i++) {
        const struct cbx_pub_item *it = &batch->items[i];
        /* the encoding is made here, once; Redis keeps what follows the id */
        struct cbx_msg *m = cbx_msg_create(it->queue, it->queue_len, it->data, it->len, it->is_json);
        const char *tail;
        size_t tlen;
        if (m == NULL) {
            cbx_broker_op_free(o);
            return CBX_ERR_NOMEM;
        }
        tail = cbx_msg_tail(m, &tlen);
        cbx_broker_op_arg(o, it->queue, it->queue_len);
        cbx_broker_op_arg(o, tail, tlen);
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

struct op *cbx_broker_load_new(struct cbx_broker *b, struct cbx_broker_ticket *t, bool has_since, uint64_t since)
{
    struct op *o = cbx_broker_op_new(OP_LOAD, t);

    if (o == NULL)
        return NULL;
    cbx_broker_op_script(o, b, "load");
    cbx_broker_op_limits(o, cbx_settings_get(b->s));
    if (has_since)
        cbx_broker_op_arg_u64(o, since);
    else
        cbx_broker_op_args(o, "");
    return o; /* LOAD_NAMES arguments */
}

enum cbx_err cbx_broker_sync(struct cbx_broker *b, const struct cbx_qlist *queues, bool has_since, uint64_t since,
                             struct cbx_broker_ticket *t)
{
    struct op *o = cbx_broker_load_new(b, t, has_since, since);

    if (o == NULL)
        return CBX_ERR_NOMEM;
    for (size_t i = 0; i < queues->n; i++)
        cbx_broker_op_args(o, queues->names[i]);
    return op_submit(b, o);
}

enum cbx_err cbx_broker_ack(struct cbx_broker *b, const struct cbx_qlist *queues, uint64_t upto,
                            struct cbx_broker_ticket *t)
{
    struct op *o = cbx_broker_op_new(OP_ACK, t);

    if (o == NULL)
        return CBX_ERR_NOMEM;
    for (size_t i = 0; i < queues->n; i++) {
        cbx_broker_op_args(o, queues->names[i]);
        cbx_broker_op_arg_u64(o, upto);
    }
    return op_submit(b, o);
}

enum cbx_err cbx_broker_flush(struct cbx_broker *b, const char *name, const struct cbx_config *cfg,
                              struct cbx_broker_ticket *t)
{
    struct op *o = cbx_broker_op_new(OP_FLUSH, t);

    if (o == NULL)
        return CBX_ERR_NOMEM;
    cbx_broker_op_script(o, b, "flush");
    cbx_broker_op_limits(o, cfg);
    if (name != NULL)
        cbx_broker_op_args(o, name);
    return op_submit(b, o);
}

enum cbx_err cbx_broker_kick(struct cbx_broker *b, const char *name, const char *reason)
{
    struct op *o = cbx_broker_op_new(OP_PLAIN, NULL);
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
    cbx_broker_op_args(o, "PUBLISH");
    cbx_broker_op_args(o, chan);
    cbx_broker_op_arg(o, msg.s ? msg.s : "", msg.len);
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
        cbx_broker_wake_thread(b);
}

static void hook_forget(void *ctx, const char *name, size_t len)
{
    struct cbx_broker *b = ctx;
    struct op *o = cbx_broker_op_new(OP_FORGET, NULL);

    if (o == NULL)
        return; /* the subscription stays: changes for it are ignored */
    cbx_broker_op_arg(o, name, len);
    op_submit(b, o);
}

const struct cbx_qmap_log cbx_broker_hooks = { NULL, NULL, NULL, hook_kick, NULL, NULL, hook_ack, hook_forget };
