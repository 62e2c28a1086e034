/* broker_sub.c - broker = redis (broker.h, broker_int.h): the broker
 * thread's side of Redis once connected: commands sent and their replies,
 * the subscriptions of the queues this node mirrors, their loads and the
 * changes Redis publishes, applied to the queue map; kicks from other
 * nodes. Not for connecting or the loop (broker.c).
 *
 * A queue's way into the mirror: SUBSCRIBE its channel; once Redis
 * confirms, load it whole (broker.lua "load") while the changes that arrive
 * meanwhile are kept; apply the load, then the kept changes (applying is
 * idempotent: ids only grow, drops and acknowledgements only move
 * forward). From then on each change is applied as it comes. */
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
#include "pool.h"
#include "settings.h"

/* ---- the thread: queues it subscribes to ---- */

static struct qent *qent_find(struct cbx_broker *b, const char *name, size_t len)
{
    uint32_t h = cbx_broker_hash_name(name, len);

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
    e->hash = cbx_broker_hash_name(name, len);
    e->len = len;
    memcpy(e->name, name, len);
    e->next = b->qbuckets[e->hash & (b->nqbuckets - 1)];
    b->qbuckets[e->hash & (b->nqbuckets - 1)] = e;
    b->nq++;
    atomic_store(&b->mirrored, b->nq);
    return e;
}

void cbx_broker_notes_free(struct qent *e)
{
    while (e->notes != NULL) {
        struct note *n = e->notes;
        e->notes = n->next;
        free(n);
    }
    e->notes_tail = NULL;
}

void cbx_broker_qent_remove(struct cbx_broker *b, struct qent *e)
{
    struct qent **pp = &b->qbuckets[e->hash & (b->nqbuckets - 1)];

    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    cbx_broker_notes_free(e);
    free(e->waiting);
    free(e);
    b->nq--;
    atomic_store(&b->mirrored, b->nq);
}

/* ---- the thread: sending ---- */

static void on_reply(redisAsyncContext *ac, void *r, void *priv);

bool cbx_broker_send_cmd(struct cbx_broker *b, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                     const size_t *lens)
{
    if (b->cmd.ac == NULL || redisAsyncCommandArgv(b->cmd.ac, fn, priv, argc, argv, lens) != REDIS_OK)
        return false;
    cbx_broker_ring_push(&b->cmd.sent, cbx_now_mono_us());
    return true;
}

/* Tells each rider (an OP_ACK) rc and frees it; with CBX_OK the mirror
 * takes its acknowledgements first, so the request that waits finds them. */
static void riders_done(struct cbx_broker *b, struct op *r, enum cbx_err rc)
{
    while (r != NULL) {
        struct op *next = r->next;
        for (int i = 0; rc == CBX_OK && i + 1 < r->argc; i += 2)
            cbx_qmap_mirror_acked(b->s->qmap, r->argv[i], r->argvlen[i], strtoull(r->argv[i + 1], NULL, 10));
        cbx_broker_ticket_done(b, r->t, rc, 0);
        cbx_broker_op_free(r);
        r = next;
    }
}

void cbx_broker_op_fail(struct cbx_broker *b, struct op *o, enum cbx_err rc)
{
    riders_done(b, o->riders, rc);
    o->riders = NULL;
    cbx_broker_ticket_done(b, o->t, rc, 0);
    cbx_broker_op_free(o);
}

void cbx_broker_send_op(struct cbx_broker *b, struct op *o)
{
    if (o->argc > ARG_SHA && o->argvlen[0] == 7 && memcmp(o->argv[0], "EVALSHA", 7) == 0) {
        o->argv[ARG_SHA] = b->sha;
        o->argvlen[ARG_SHA] = strlen(b->sha);
    }
    if (!cbx_broker_send_cmd(b, on_reply, o, o->argc, o->argv, o->argvlen))
        cbx_broker_op_fail(b, o, CBX_ERR_UNAVAILABLE);
}

static void channel_of(struct cbx_broker *b, const char *name, size_t len, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s:c:%.*s", b->prefix, (int)len, name);
}

static bool subscribe(struct cbx_broker *b, struct qent *e)
{
    char chan[CBX_QNAME_MAX + 80];

    channel_of(b, e->name, e->len, chan, sizeof chan);
    if (b->sub.ac == NULL || redisAsyncCommand(b->sub.ac, cbx_broker_on_sub, b, "SUBSCRIBE %s", chan) != REDIS_OK)
        return false;
    cbx_broker_ring_push(&b->sub.sent, cbx_now_mono_us());
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
    cbx_broker_send_op(b, o);
}

/* A sync: subscribe to what is not subscribed yet, load once Redis
 * confirms every subscription. */
void cbx_broker_start_load(struct cbx_broker *b, struct op *o)
{
    o->unconfirmed = 0;
    for (int i = LOAD_NAMES; i < o->argc; i++) {
        struct qent *e = qent_get(b, o->argv[i], o->argvlen[i]);
        if (e == NULL) {
            cbx_broker_op_fail(b, o, CBX_ERR_NOMEM); /* (nothing waits on it yet) */
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

void cbx_broker_forget(struct cbx_broker *b, struct op *o)
{
    struct qent *e = qent_find(b, o->argv[0], o->argvlen[0]);
    char chan[CBX_QNAME_MAX + 80];

    /* a load since may have brought it back: then it stays */
    if (e != NULL && e->nwaiting == 0 && e->loads == 0 && !cbx_qmap_mirrored(b->s->qmap, o->argv[0], o->argvlen[0])) {
        if (e->state != Q_NEW && b->sub.ac != NULL) {
            channel_of(b, e->name, e->len, chan, sizeof chan);
            redisAsyncCommand(b->sub.ac, cbx_broker_on_sub, b, "UNSUBSCRIBE %s", chan);
        }
        cbx_broker_qent_remove(b, e);
    }
    cbx_broker_op_free(o);
}

void cbx_broker_send_acks(struct cbx_broker *b, struct op *riders)
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
    if (n == 0 && riders == NULL) {
        free(acks);
        return;
    }
    if (atomic_load(&b->state) != CBX_BROKER_UP || (o = cbx_broker_op_new(OP_PLAIN, NULL)) == NULL) {
        free(acks); /* Redis is away: the browsers' next since acknowledges again */
        riders_done(b, riders, atomic_load(&b->state) != CBX_BROKER_UP ? CBX_ERR_UNAVAILABLE : CBX_ERR_NOMEM);
        return;
    }
    o->riders = riders;
    cbx_broker_op_script(o, b, "ack");
    cbx_broker_op_limits(o, cbx_settings_get(b->s));
    for (size_t i = 0; i < n; i++) {
        cbx_broker_op_args(o, acks[i].name);
        cbx_broker_op_arg_u64(o, acks[i].upto);
    }
    free(acks);
    for (struct op *r = riders; r != NULL; r = r->next)
        for (int i = 0; i + 1 < r->argc; i += 2) {
            cbx_broker_op_arg(o, r->argv[i], r->argvlen[i]);
            cbx_broker_op_arg(o, r->argv[i + 1], r->argvlen[i + 1]);
        }
    if (!cbx_broker_op_finish(o))
        cbx_broker_op_fail(b, o, CBX_ERR_NOMEM);
    else
        cbx_broker_send_op(b, o);
}

/* Once a second: Redis drops what expired in queues nobody touches (a
 * node's own sweep does so for its mirror only). */
void cbx_broker_send_sweep(struct cbx_broker *b, int64_t now)
{
    struct op *o;

    if (atomic_load(&b->state) != CBX_BROKER_UP || now - b->last_sweep < 1000000)
        return;
    b->last_sweep = now;
    if ((o = cbx_broker_op_new(OP_PLAIN, NULL)) == NULL)
        return;
    cbx_broker_op_script(o, b, "sweep");
    cbx_broker_op_limits(o, cbx_settings_get(b->s));
    if (!cbx_broker_op_finish(o))
        cbx_broker_op_free(o);
    else
        cbx_broker_send_op(b, o);
}

/* ---- the thread: replies ---- */

enum cbx_err cbx_broker_script_error(struct cbx_broker *b, const redisReply *r)
{
    if (strncmp(r->str, "FULL", 4) == 0)
        return CBX_ERR_FULL;
    if (strncmp(r->str, "BUDGET", 6) == 0)
        return CBX_ERR_BUDGET;
    if (strncmp(r->str, "NOTFOUND", 8) == 0)
        return CBX_ERR_NOT_FOUND;
    cbx_broker_set_error(b, "Redis answered: %s", r->str);
    if (strncmp(r->str, "NOSCRIPT", 8) == 0)
        snprintf(b->teardown, sizeof b->teardown, "the script is gone from Redis (SCRIPT FLUSH?)");
    return CBX_ERR_UNAVAILABLE;
}

/* Reads a change or load text of broker.lua into u; false (counted and
 * logged) when it is not one. */
static bool parse(struct cbx_broker *b, const char *text, size_t len, struct cbx_mirror_update *u)
{
    char err[128];

    if (cbx_mirror_parse(text, len, u, err, sizeof err) == CBX_OK)
        return true;
    cbx_broker_set_error(b, "a change from Redis could not be read (%s)", err);
    cbx_log(CBX_LOG_WARN, "broker: a change from Redis could not be read (%s); ignored", err);
    return false;
}

/* Applies u to the queue map, one wake-up per pool thread for all of it,
 * and frees it. */
static void apply_update(struct cbx_broker *b, struct cbx_mirror_update *u)
{
    cbx_pool_defer_begin();
    if (cbx_qmap_mirror_apply(b->s->qmap, u) != CBX_OK)
        cbx_log(CBX_LOG_WARN, "broker: out of memory applying a change; the next load completes it");
    cbx_pool_defer_end();
    cbx_mirror_update_free(u);
}

void cbx_broker_apply(struct cbx_broker *b, const char *text, size_t len)
{
    struct cbx_mirror_update u;

    if (parse(b, text, len, &u))
        apply_update(b, &u);
}

/* Applies the batch kept so far, all its queues at once. */
static void batch_apply(struct cbx_broker *b)
{
    if (b->batch.nq > 0)
        apply_update(b, &b->batch);
    else
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

    if (len > 2 && text[0] == 'E') {
        if (b->batch_id != 0 && strtoull(text + 2, NULL, 10) == b->batch_id)
            batch_apply(b);
        return;
    }
    if (!parse(b, text, len, &u))
        return;
    if (u.first_id != b->batch_id && b->batch_id != 0)
        batch_apply(b); /* (its "E" cannot have been lost on one connection) */
    if (u.first_id == 0) {
        apply_update(b, &u);
        return;
    }
    qs = realloc(b->batch.qs, (b->batch.nq + u.nq) * sizeof *qs);
    if (qs == NULL) {
        batch_apply(b);
        apply_update(b, &u);
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
        cbx_broker_script_error(b, r);
    if (ok)
        cbx_broker_apply(b, r->str, r->len);
    for (int i = LOAD_NAMES; i < o->argc; i++) {
        struct qent *e = qent_find(b, o->argv[i], o->argvlen[i]);
        if (e == NULL)
            continue;
        if (e->loads > 0)
            e->loads--;
        if (ok && e->state == Q_LOADING) {
            /* what changed while it loaded, in order */
            for (struct note *n = e->notes; n != NULL; n = n->next)
                cbx_broker_apply(b, n->text, n->len);
            cbx_broker_notes_free(e);
            e->state = Q_READY;
        }
    }
    cbx_broker_op_fail(b, o, ok ? CBX_OK : CBX_ERR_UNAVAILABLE);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct cbx_broker *b = ac->data;
    struct op *o = priv;
    redisReply *r = reply;

    cbx_broker_ring_pop(&b->cmd.sent);
    if (o->kind == OP_LOAD) {
        load_done(b, o, r);
        return;
    }
    if (r == NULL) {
        cbx_broker_op_fail(b, o, CBX_ERR_UNAVAILABLE);
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        cbx_broker_op_fail(b, o, cbx_broker_script_error(b, r));
        return;
    }
    riders_done(b, o->riders, CBX_OK);
    o->riders = NULL;
    if (o->kind == OP_PUBLISH && r->type == REDIS_REPLY_STRING)
        cbx_broker_ticket_done(b, o->t, CBX_OK, strtoull(r->str, NULL, 10));
    else if (o->kind == OP_FLUSH && r->type == REDIS_REPLY_INTEGER)
        cbx_broker_ticket_done(b, o->t, CBX_OK, (uint64_t)r->integer);
    else
        cbx_broker_ticket_done(b, o->t, o->kind == OP_PLAIN ? CBX_OK : CBX_ERR_UNAVAILABLE, 0);
    cbx_broker_op_free(o);
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

void cbx_broker_on_sub(redisAsyncContext *ac, void *reply, void *priv)
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
            cbx_broker_ring_pop(&b->sub.sent);
            b->sub_ready = true; /* the loop goes up once both are ready */
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
        cbx_broker_ring_pop(&b->sub.sent);
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
