/* qmap.c - queues (a ring of messages each), the id counter, waiter lists.
 * Locking: m->mu guards every field of struct cbx_qmap and of every
 * struct cbx_queue, and the links/filled_next of every waiter. A waiter's
 * own mu is taken inside m->mu (order: map, then waiter), never the
 * reverse. Nothing here blocks or does I/O while holding m->mu. */
#include "qmap.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct entry {
    struct cbx_msg *m;  /* owned ref */
    int64_t added_us;   /* monotonic */
    int64_t acked_us;   /* monotonic; 0 while pending */
};

struct cbx_queue {
    struct cbx_queue *hnext;
    uint32_t hash;
    struct entry *ring; /* cap is a power of two */
    size_t head, count, cap;
    size_t nacked;      /* the first nacked entries are acknowledged */
    size_t bytes;       /* encoded bytes of all stored messages */
    size_t acked_bytes;
    uint64_t acked;     /* everything <= acked is acknowledged */
    uint64_t lost_to;   /* highest id dropped while still pending */
    enum cbx_drop_reason lost_reason;
    uint64_t purged_to; /* highest id dropped for any reason */
    enum cbx_drop_reason purged_reason;
    struct cbx_waitlink *waiters;
    size_t n_waiters;
    int64_t active_us;  /* monotonic: last publish, subscribe or unsubscribe */
    int64_t last_publish_real_us;
    size_t name_len;
    char name[];
};

struct cbx_qmap {
    pthread_mutex_t mu; /* guards everything below, all queues, waiter links */
    struct cbx_queue **buckets;
    size_t nbuckets, nqueues;
    uint64_t last_id, first_id;
    bool stopping;
    struct cbx_qmap_limits lim;
    struct cbx_qmap_stats st; /* counters; gauges are filled in on read */
    uint64_t stored, stored_bytes, pending, pending_bytes, waiters;
};

int64_t cbx_now_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t cbx_now_real_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

const char *cbx_drop_reason_name(enum cbx_drop_reason r)
{
    switch (r) {
    case CBX_DROP_OVERFLOW: return "overflow";
    case CBX_DROP_EXPIRED: return "expired";
    case CBX_DROP_FLUSHED: return "flushed";
    case CBX_DROP_RESTART: return "restart";
    case CBX_DROP_NONE: break;
    }
    return "none";
}

static uint32_t hash_name(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

struct cbx_qmap *cbx_qmap_create(const struct cbx_qmap_limits *lim)
{
    struct cbx_qmap *m = calloc(1, sizeof *m);

    if (m == NULL)
        return NULL;
    m->nbuckets = 1024;
    m->buckets = calloc(m->nbuckets, sizeof *m->buckets);
    if (m->buckets == NULL || pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m->buckets);
        free(m);
        return NULL;
    }
    m->lim = *lim;
    m->first_id = (uint64_t)cbx_now_real_us();
    m->last_id = m->first_id - 1;
    return m;
}

static void entry_drop(struct cbx_qmap *m, struct cbx_queue *q, enum cbx_drop_reason reason);

static void queue_free(struct cbx_qmap *m, struct cbx_queue *q)
{
    struct cbx_queue **pp = &m->buckets[q->hash & (m->nbuckets - 1)];

    while (q->count > 0)
        entry_drop(m, q, CBX_DROP_FLUSHED);
    while (*pp != q)
        pp = &(*pp)->hnext;
    *pp = q->hnext;
    m->nqueues--;
    free(q->ring);
    free(q);
}

void cbx_qmap_destroy(struct cbx_qmap *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nbuckets; i++)
        while (m->buckets[i] != NULL)
            queue_free(m, m->buckets[i]);
    free(m->buckets);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static struct cbx_queue *queue_find(struct cbx_qmap *m, const char *name, size_t len, uint32_t hash)
{
    for (struct cbx_queue *q = m->buckets[hash & (m->nbuckets - 1)]; q != NULL; q = q->hnext)
        if (q->hash == hash && q->name_len == len && memcmp(q->name, name, len) == 0)
            return q;
    return NULL;
}

static void grow_buckets(struct cbx_qmap *m)
{
    size_t n = m->nbuckets * 2;
    struct cbx_queue **b = calloc(n, sizeof *b);

    if (b == NULL)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct cbx_queue *q = m->buckets[i];
        while (q != NULL) {
            struct cbx_queue *next = q->hnext;
            q->hnext = b[q->hash & (n - 1)];
            b[q->hash & (n - 1)] = q;
            q = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

static struct cbx_queue *queue_create(struct cbx_qmap *m, const char *name, size_t len, uint32_t hash)
{
    struct cbx_queue *q = calloc(1, sizeof *q + len + 1);

    if (q == NULL)
        return NULL;
    q->hash = hash;
    q->name_len = len;
    memcpy(q->name, name, len);
    q->active_us = cbx_now_mono_us();
    if (m->nqueues >= m->nbuckets)
        grow_buckets(m);
    q->hnext = m->buckets[hash & (m->nbuckets - 1)];
    m->buckets[hash & (m->nbuckets - 1)] = q;
    m->nqueues++;
    return q;
}

static struct entry *entry_at(struct cbx_queue *q, size_t i)
{
    return &q->ring[(q->head + i) & (q->cap - 1)];
}

/* Drops the oldest entry of q, remembering what a gap report needs. */
static void entry_drop(struct cbx_qmap *m, struct cbx_queue *q, enum cbx_drop_reason reason)
{
    struct entry *e = entry_at(q, 0);
    struct cbx_msg *msg = e->m;

    if (q->nacked > 0) {
        q->nacked--;
        q->acked_bytes -= msg->len;
    } else {
        q->lost_to = msg->id;
        q->lost_reason = reason;
        m->pending--;
        m->pending_bytes -= msg->len;
    }
    q->purged_to = msg->id;
    q->purged_reason = reason;
    q->bytes -= msg->len;
    m->stored--;
    m->stored_bytes -= msg->len;
    if (reason == CBX_DROP_EXPIRED)
        m->st.expired++;
    else if (reason == CBX_DROP_OVERFLOW)
        m->st.dropped++;
    else if (reason == CBX_DROP_FLUSHED)
        m->st.flushed++;
    q->head = (q->head + 1) & (q->cap - 1);
    q->count--;
    cbx_msg_unref(msg);
}

static bool queue_push(struct cbx_qmap *m, struct cbx_queue *q, struct cbx_msg *msg, int64_t now)
{
    if (q->count == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 4;
        struct entry *ring = malloc(cap * sizeof *ring);
        if (ring == NULL)
            return false;
        for (size_t i = 0; i < q->count; i++)
            ring[i] = *entry_at(q, i);
        free(q->ring);
        q->ring = ring;
        q->head = 0;
        q->cap = cap;
    }
    q->ring[(q->head + q->count) & (q->cap - 1)] = (struct entry){ msg, now, 0 };
    q->count++;
    q->bytes += msg->len;
    m->stored++;
    m->stored_bytes += msg->len;
    m->pending++;
    m->pending_bytes += msg->len;
    return true;
}

/* Acknowledges everything up to id upto (never beyond the last id handed out). */
static void queue_ack(struct cbx_qmap *m, struct cbx_queue *q, uint64_t upto, int64_t now)
{
    if (upto > m->last_id)
        upto = m->last_id;
    if (upto <= q->acked)
        return;
    q->acked = upto;
    while (q->nacked < q->count) {
        struct entry *e = entry_at(q, q->nacked);
        if (e->m->id > upto)
            break;
        e->acked_us = now;
        q->nacked++;
        q->acked_bytes += e->m->len;
        m->pending--;
        m->pending_bytes -= e->m->len;
        m->st.acked++;
    }
}

/* Index of the first entry with an id above id. */
static size_t queue_after(struct cbx_queue *q, uint64_t id)
{
    size_t lo = 0, hi = q->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (entry_at(q, mid)->m->id <= id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void link_waiter(struct cbx_qmap *m, struct cbx_waiter *w, struct cbx_queue **qs)
{
    for (size_t i = 0; i < w->queues.n; i++) {
        struct cbx_waitlink *l = &w->links[i];
        l->w = w;
        l->q = qs[i];
        l->prev = NULL;
        l->next = qs[i]->waiters;
        if (l->next != NULL)
            l->next->prev = l;
        qs[i]->waiters = l;
        qs[i]->n_waiters++;
    }
    m->waiters++;
    pthread_mutex_lock(&w->mu);
    w->linked = true;
    pthread_mutex_unlock(&w->mu);
}

static void unlink_waiter(struct cbx_qmap *m, struct cbx_waiter *w, int64_t now)
{
    bool was = false;

    for (size_t i = 0; i < w->queues.n; i++) {
        struct cbx_waitlink *l = &w->links[i];
        if (l->q == NULL)
            continue;
        was = true;
        if (l->prev != NULL)
            l->prev->next = l->next;
        else
            l->q->waiters = l->next;
        if (l->next != NULL)
            l->next->prev = l->prev;
        l->q->n_waiters--;
        l->q->active_us = now;
        l->q = NULL;
        l->prev = l->next = NULL;
    }
    if (was)
        m->waiters--;
}

/* Appends a gap report; allocates room for one per queue at the first. */
static bool add_gap(struct cbx_waiter *w, const struct cbx_gap *g, size_t nqueues)
{
    if (w->gaps == NULL && (w->gaps = malloc(nqueues * sizeof *w->gaps)) == NULL)
        return false;
    w->gaps[w->n_gaps++] = *g;
    return true;
}

void cbx_waiter_init(struct cbx_waiter *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
}

void cbx_waiter_cleanup(struct cbx_waiter *w)
{
    for (size_t i = 0; i < w->n_inbox; i++)
        cbx_msg_unref(w->inbox[i]);
    if (w->inbox != w->inbox_small)
        free(w->inbox);
    w->inbox = NULL;
    w->n_inbox = w->cap_inbox = 0;
    free(w->kick_reason);
    free(w->gaps);
    free(w->links);
    w->kick_reason = NULL;
    w->gaps = NULL;
    w->links = NULL;
    cbx_qlist_free(&w->queues);
    pthread_mutex_destroy(&w->mu);
}

/* Appends a ref to w's inbox; w->mu held. False when memory runs out. */
static bool inbox_add(struct cbx_waiter *w, struct cbx_msg *msg)
{
    if (w->inbox == NULL) {
        w->inbox = w->inbox_small;
        w->cap_inbox = sizeof w->inbox_small / sizeof w->inbox_small[0];
    }
    if (w->n_inbox == w->cap_inbox) {
        size_t cap = w->cap_inbox * 4;
        struct cbx_msg **in = malloc(cap * sizeof *in);
        if (in == NULL)
            return false;
        memcpy(in, w->inbox, w->n_inbox * sizeof *in);
        if (w->inbox != w->inbox_small)
            free(w->inbox);
        w->inbox = in;
        w->cap_inbox = cap;
    }
    w->inbox[w->n_inbox++] = cbx_msg_ref(msg);
    return true;
}

/* Hands msg (just stored in q) to every waiter of q; w->mu taken inside m->mu. */
static void deliver(struct cbx_qmap *m, struct cbx_queue *q, struct cbx_msg *msg, int64_t now,
                    struct cbx_waiter **filled)
{
    for (struct cbx_waitlink *l = q->waiters; l != NULL; l = l->next) {
        struct cbx_waiter *w = l->w;

        pthread_mutex_lock(&w->mu);
        if (w->flags & CBX_W_GONE) {
            /* its browser went away and it is about to end: it must not
             * take, and for a stream acknowledge, what that browser will
             * never read */
            pthread_mutex_unlock(&w->mu);
            continue;
        }
        if (w->inbox_max != 0 && w->n_inbox >= w->inbox_max) {
            w->flags |= CBX_W_OVERFLOW;
        } else if (inbox_add(w, msg)) {
            m->st.delivered++;
            if (w->ack_on_deliver)
                queue_ack(m, q, msg->id, now);
        } else {
            w->flags |= CBX_W_OVERFLOW; /* out of memory: end it, the client resumes by id */
        }
        if (!w->one_shot)
            w->wake(w); /* a long-poll is woken once, when its batch is in (below) */
        pthread_mutex_unlock(&w->mu);
        if (w->one_shot && w->filled_next == NULL) {
            w->filled_next = *filled ? *filled : w; /* self marks the end of the list */
            *filled = w;
        }
    }
}

enum cbx_err cbx_qmap_publish(struct cbx_qmap *m, const struct cbx_pub_batch *b, uint64_t *ids)
{
    struct cbx_msg *stack_msgs[16];
    struct cbx_msg **msgs = b->n <= 16 ? stack_msgs : calloc(b->n, sizeof *msgs);
    struct cbx_queue *stack_qs[16];
    struct cbx_queue **qs = b->n <= 16 ? stack_qs : calloc(b->n, sizeof *qs);
    struct cbx_waiter *filled = NULL;
    enum cbx_err rc = CBX_OK;
    size_t made = 0;
    int64_t now, now_real;

    if (msgs == NULL || qs == NULL) {
        rc = CBX_ERR_NOMEM;
        goto out;
    }
    for (made = 0; made < b->n; made++) {
        const struct cbx_pub_item *it = &b->items[made];
        msgs[made] = cbx_msg_create(it->queue, it->queue_len, it->data, it->len, it->is_json);
        if (msgs[made] == NULL) {
            rc = CBX_ERR_NOMEM;
            goto out;
        }
    }

    pthread_mutex_lock(&m->mu);
    if (m->stopping) {
        pthread_mutex_unlock(&m->mu);
        rc = CBX_ERR_STOPPING;
        goto out;
    }
    now = cbx_now_mono_us();
    now_real = cbx_now_real_us();
    if (m->lim.max_total_bytes != 0) {
        size_t incoming = 0;
        for (size_t i = 0; i < b->n; i++)
            incoming += msgs[i]->len + CBX_ID_DIGITS_MAX;
        if (m->stored_bytes + incoming > m->lim.max_total_bytes ||
            (m->lim.max_total_messages != 0 && m->stored + b->n > m->lim.max_total_messages)) {
            m->st.refused_budget++;
            pthread_mutex_unlock(&m->mu);
            rc = CBX_ERR_BUDGET;
            goto out;
        }
    }
    /* find or create every queue first, so a full map refuses the whole batch */
    for (size_t i = 0; i < b->n; i++) {
        const struct cbx_pub_item *it = &b->items[i];
        uint32_t h = hash_name(it->queue, it->queue_len);
        qs[i] = queue_find(m, it->queue, it->queue_len, h);
        if (qs[i] == NULL) {
            if (m->nqueues >= m->lim.max_queues ||
                (qs[i] = queue_create(m, it->queue, it->queue_len, h)) == NULL) {
                rc = m->nqueues >= m->lim.max_queues ? CBX_ERR_FULL : CBX_ERR_NOMEM;
                /* queues made for this batch are empty and waiterless: the sweep frees them */
                pthread_mutex_unlock(&m->mu);
                goto out;
            }
        }
    }
    for (size_t i = 0; i < b->n; i++) {
        struct cbx_queue *q = qs[i];
        struct cbx_msg *msg = msgs[i];
        uint64_t id = m->last_id + 1;

        if ((uint64_t)now_real > id)
            id = (uint64_t)now_real;
        cbx_msg_set_id(msg, id);
        /* make room first; a queue always keeps the newest message */
        while (q->count > 0 && (q->count + 1 > m->lim.queue_max_messages ||
                                q->bytes + msg->len > m->lim.queue_max_bytes))
            entry_drop(m, q, CBX_DROP_OVERFLOW);
        if (!queue_push(m, q, msg, now)) {
            rc = CBX_ERR_NOMEM; /* the messages before this one are queued: a partial batch */
            break;
        }
        m->last_id = id;
        msgs[i] = NULL; /* the queue owns it now */
        ids[i] = id;
        q->active_us = now;
        q->last_publish_real_us = now_real;
        m->st.published++;
        deliver(m, q, msg, now, &filled);
    }
    /* long-polls answer once: unlink the ones this batch filled */
    while (filled != NULL) {
        struct cbx_waiter *w = filled, *next = w->filled_next == w ? NULL : w->filled_next;
        unlink_waiter(m, w, now);
        w->filled_next = NULL;
        /* Woken only now, unlinked, its owner answers without the map lock, so
         * a fan-out's woken long-polls do not queue up behind this publish.
         * Last touch: once linked is false its owner may free it. */
        pthread_mutex_lock(&w->mu);
        w->linked = false;
        w->wake(w);
        pthread_mutex_unlock(&w->mu);
        filled = next;
    }
    pthread_mutex_unlock(&m->mu);
out:
    for (size_t i = 0; i < made; i++)
        if (msgs != NULL && msgs[i] != NULL)
            cbx_msg_unref(msgs[i]);
    if (msgs != stack_msgs)
        free(msgs);
    if (qs != stack_qs)
        free(qs);
    return rc;
}

static bool room_for_waiter(struct cbx_qmap *m, struct cbx_queue **qs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (m->lim.max_waiters_per_queue != 0 && qs[i]->n_waiters >= m->lim.max_waiters_per_queue)
            return false;
    return true;
}

enum cbx_err cbx_qmap_subscribe(struct cbx_qmap *m, struct cbx_waiter *w, bool has_since, uint64_t since,
                                size_t limit, bool link_always)
{
    struct cbx_queue *qs[CBX_QLIST_MAX];
    size_t next[CBX_QLIST_MAX];
    size_t n = w->queues.n, taken = 0;
    enum cbx_err rc = CBX_OK;
    int64_t now;

    if (w->links == NULL && (w->links = calloc(n ? n : 1, sizeof *w->links)) == NULL)
        return CBX_ERR_NOMEM;
    pthread_mutex_lock(&m->mu);
    if (m->stopping) {
        rc = CBX_ERR_STOPPING;
        goto out;
    }
    now = cbx_now_mono_us();
    for (size_t i = 0; i < n; i++) {
        const char *name = w->queues.names[i];
        size_t len = strlen(name);
        uint32_t h = hash_name(name, len);
        qs[i] = queue_find(m, name, len, h);
        if (qs[i] == NULL) {
            if (m->nqueues >= m->lim.max_queues) {
                rc = CBX_ERR_FULL;
                goto out;
            }
            if ((qs[i] = queue_create(m, name, len, h)) == NULL) {
                rc = CBX_ERR_NOMEM;
                goto out;
            }
        }
        qs[i]->active_us = now;
    }

    /* a stream is refused before it acknowledges anything */
    if (link_always && !room_for_waiter(m, qs, n)) {
        rc = CBX_ERR_BUSY;
        goto out;
    }
    w->n_gaps = 0;
    w->start = has_since ? since : UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        struct cbx_queue *q = qs[i];
        struct cbx_gap gap, *g = &gap;
        uint64_t cursor;

        if (has_since) {
            queue_ack(m, q, since, now);
            cursor = since;
            if (since != 0 && since < m->first_id - 1) {
                *g = (struct cbx_gap){ since + 1, m->first_id - 1, CBX_DROP_RESTART, w->queues.names[i] };
                if (q->purged_to > g->to)
                    g->to = q->purged_to;
                if (!add_gap(w, g, n)) {
                    rc = CBX_ERR_NOMEM;
                    goto out;
                }
            } else if (q->purged_to > since) {
                *g = (struct cbx_gap){ since + 1, q->purged_to, q->purged_reason, w->queues.names[i] };
                if (!add_gap(w, g, n)) {
                    rc = CBX_ERR_NOMEM;
                    goto out;
                }
            }
        } else {
            cursor = q->acked;
            /* every id of this run is >= first_id: below it, first_id - 1
             * resumes the same and reports no restart gap */
            if (cursor < m->first_id - 1)
                cursor = m->first_id - 1;
            if (cursor < w->start)
                w->start = cursor;
            if (q->lost_to > q->acked) {
                *g = (struct cbx_gap){ q->acked + 1, q->lost_to, q->lost_reason, w->queues.names[i] };
                if (!add_gap(w, g, n)) {
                    rc = CBX_ERR_NOMEM;
                    goto out;
                }
            }
        }
        next[i] = queue_after(q, cursor);
    }

    /* merge the queues' unseen messages by id, lowest first */
    pthread_mutex_lock(&w->mu);
    while (taken < limit) {
        size_t best = n;
        uint64_t best_id = UINT64_MAX;
        for (size_t i = 0; i < n; i++) {
            if (next[i] < qs[i]->count) {
                uint64_t id = entry_at(qs[i], next[i])->m->id;
                if (id < best_id) {
                    best_id = id;
                    best = i;
                }
            }
        }
        if (best == n)
            break;
        if (!inbox_add(w, entry_at(qs[best], next[best])->m)) {
            rc = CBX_ERR_NOMEM;
            break;
        }
        if (w->ack_on_deliver)
            queue_ack(m, qs[best], best_id, now);
        next[best]++;
        taken++;
    }
    m->st.delivered += taken;
    pthread_mutex_unlock(&w->mu);
    if (rc != CBX_OK)
        goto out;
    if (link_always || (taken == 0 && w->n_gaps == 0)) {
        if (!room_for_waiter(m, qs, n)) { /* a long-poll: nothing acknowledged on its behalf */
            rc = CBX_ERR_BUSY;
            goto out;
        }
        link_waiter(m, w, qs);
    }
out:
    pthread_mutex_unlock(&m->mu);
    return rc;
}

void cbx_qmap_unsubscribe(struct cbx_qmap *m, struct cbx_waiter *w)
{
    bool linked;

    pthread_mutex_lock(&w->mu);
    linked = w->linked;
    pthread_mutex_unlock(&w->mu);
    if (!linked)
        return; /* only the owner links it, so it stays unlinked */
    pthread_mutex_lock(&m->mu);
    unlink_waiter(m, w, cbx_now_mono_us());
    pthread_mutex_lock(&w->mu);
    w->linked = false;
    pthread_mutex_unlock(&w->mu);
    pthread_mutex_unlock(&m->mu);
}

size_t cbx_waiter_take(struct cbx_waiter *w, struct cbx_msg **out, size_t max, unsigned *flags)
{
    size_t n;

    pthread_mutex_lock(&w->mu);
    n = w->n_inbox < max ? w->n_inbox : max;
    if (n > 0) {
        memcpy(out, w->inbox, n * sizeof *out);
        memmove(w->inbox, w->inbox + n, (w->n_inbox - n) * sizeof *out);
        w->n_inbox -= n;
    }
    *flags = w->flags;
    w->flags = 0;
    pthread_mutex_unlock(&w->mu);
    return n;
}

void cbx_waiter_kick_reason(struct cbx_waiter *w, char *out, size_t len)
{
    pthread_mutex_lock(&w->mu);
    snprintf(out, len, "%s", w->kick_reason ? w->kick_reason : "");
    pthread_mutex_unlock(&w->mu);
}

void cbx_waiter_signal(struct cbx_waiter *w, unsigned flag, const char *reason)
{
    char *copy = reason != NULL ? strdup(reason) : NULL;

    pthread_mutex_lock(&w->mu);
    w->flags |= flag;
    if (copy != NULL) {
        free(w->kick_reason);
        w->kick_reason = copy;
    }
    w->wake(w);
    pthread_mutex_unlock(&w->mu);
}

void cbx_qmap_sweep(struct cbx_qmap *m, int64_t now)
{
    pthread_mutex_lock(&m->mu);
    for (size_t b = 0; b < m->nbuckets; b++) {
        struct cbx_queue *q = m->buckets[b];
        while (q != NULL) {
            struct cbx_queue *next = q->hnext;
            while (q->count > 0) {
                struct entry *e = entry_at(q, 0);
                if (!((e->acked_us != 0 && now - e->acked_us >= m->lim.retain_acked_us) ||
                      now - e->added_us >= m->lim.message_ttl_us))
                    break;
                entry_drop(m, q, CBX_DROP_EXPIRED);
            }
            if (q->count == 0 && q->n_waiters == 0 && now - q->active_us >= m->lim.retain_acked_us)
                queue_free(m, q);
            q = next;
        }
    }
    pthread_mutex_unlock(&m->mu);
}

static void flush_queue(struct cbx_qmap *m, struct cbx_queue *q, uint64_t *count)
{
    *count += q->count;
    while (q->count > 0)
        entry_drop(m, q, CBX_DROP_FLUSHED);
}

enum cbx_err cbx_qmap_flush(struct cbx_qmap *m, const char *name, uint64_t *count)
{
    enum cbx_err rc = CBX_OK;

    *count = 0;
    pthread_mutex_lock(&m->mu);
    if (name == NULL) {
        for (size_t b = 0; b < m->nbuckets; b++)
            for (struct cbx_queue *q = m->buckets[b]; q != NULL; q = q->hnext)
                flush_queue(m, q, count);
    } else {
        struct cbx_queue *q = queue_find(m, name, strlen(name), hash_name(name, strlen(name)));
        if (q == NULL)
            rc = CBX_ERR_NOT_FOUND;
        else
            flush_queue(m, q, count);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

enum cbx_err cbx_qmap_signal_queue(struct cbx_qmap *m, const char *name, unsigned flag, const char *reason,
                                   uint64_t *count)
{
    struct cbx_queue *q;
    enum cbx_err rc = CBX_OK;

    *count = 0;
    pthread_mutex_lock(&m->mu);
    q = queue_find(m, name, strlen(name), hash_name(name, strlen(name)));
    if (q == NULL)
        rc = CBX_ERR_NOT_FOUND;
    else
        for (struct cbx_waitlink *l = q->waiters; l != NULL; l = l->next, (*count)++)
            cbx_waiter_signal(l->w, flag, reason);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

void cbx_qmap_stop(struct cbx_qmap *m)
{
    pthread_mutex_lock(&m->mu);
    m->stopping = true;
    pthread_mutex_unlock(&m->mu);
}

void cbx_qmap_stats(struct cbx_qmap *m, struct cbx_qmap_stats *out)
{
    pthread_mutex_lock(&m->mu);
    *out = m->st;
    out->queues = m->nqueues;
    out->pending_messages = m->pending;
    out->pending_bytes = m->pending_bytes;
    out->stored_messages = m->stored;
    out->stored_bytes = m->stored_bytes;
    out->waiters = m->waiters;
    out->first_id = m->first_id;
    out->last_id = m->last_id;
    pthread_mutex_unlock(&m->mu);
}

enum cbx_err cbx_qmap_list(struct cbx_qmap *m, const char *pattern, struct cbx_queue_info **rows, size_t *n)
{
    struct cbx_queue_info *out = NULL;
    size_t count = 0;
    enum cbx_err rc = CBX_OK;

    pthread_mutex_lock(&m->mu);
    if (m->nqueues > 0 && (out = calloc(m->nqueues, sizeof *out)) == NULL) {
        rc = CBX_ERR_NOMEM;
        goto out;
    }
    for (size_t b = 0; b < m->nbuckets; b++) {
        for (struct cbx_queue *q = m->buckets[b]; q != NULL; q = q->hnext) {
            struct cbx_queue_info *r = &out[count];
            if (pattern != NULL && fnmatch(pattern, q->name, 0) != 0)
                continue;
            memcpy(r->name, q->name, q->name_len + 1);
            r->pending = q->count - q->nacked;
            r->stored = q->count;
            r->bytes = q->bytes;
            r->waiters = q->n_waiters;
            r->oldest_us = q->count ? entry_at(q, 0)->m->published_us : 0;
            r->last_publish_us = q->last_publish_real_us;
            count++;
        }
    }
out:
    pthread_mutex_unlock(&m->mu);
    *rows = out;
    *n = count;
    return rc;
}
