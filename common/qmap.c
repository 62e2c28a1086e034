/* qmap.c - the queue map: its hash table of queues, the id counter,
 * publish and subscribe, and the waiter lists of each queue. A queue's ring
 * is qmap_ring.c, the sweep, flush and listing qmap_admin.c, a waiter's
 * inbox waiter.c.
 * Locking: m->mu guards every field of struct cbx_qmap and of every
 * struct cbx_queue, and the links/filled_next of every waiter. A waiter's
 * own mu is taken inside m->mu (order: map, then waiter), never the
 * reverse. Nothing here blocks or does I/O while holding m->mu. */
#include "qmap.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qmap_int.h"

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

#ifdef CBX_QMAP_TESTING
long cbx_qmap_test_allocs_left = -1;

static bool test_alloc_fails(void)
{
    if (cbx_qmap_test_allocs_left < 0)
        return false;
    return cbx_qmap_test_allocs_left-- == 0;
}
#else
static bool test_alloc_fails(void) { return false; }
#endif

void *cbx_qmap_malloc(size_t n) { return test_alloc_fails() ? NULL : malloc(n); }
void *cbx_qmap_calloc(size_t k, size_t n) { return test_alloc_fails() ? NULL : calloc(k, n); }

uint32_t cbx_qmap_hash(const char *s, size_t len)
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
    /* The only hint about the previous run without a state directory: its
     * ids were most likely below the clock now. From here on ids count up
     * by one and never look at the clock again (docs/PROTOCOL.md). */
    m->first_id = (uint64_t)cbx_now_real_us();
    m->last_id = m->first_id - 1;
    m->visible_id = m->last_id;
    return m;
}

void cbx_queue_free(struct cbx_qmap *m, struct cbx_queue *q)
{
    struct cbx_queue **pp = &m->buckets[q->hash & (m->nbuckets - 1)];

    if (q->mirrored) {
        /* Redis keeps its messages: nothing is dropped, only forgotten here */
        cbx_queue_forget(m, q);
        if (m->hooked && m->log.forget != NULL)
            m->log.forget(m->log.ctx, q->name, q->name_len);
    }
    while (q->count > 0)
        cbx_queue_drop(m, q, CBX_DROP_FLUSHED);
    while (*pp != q)
        pp = &(*pp)->hnext;
    *pp = q->hnext;
    if (q->placeholder)
        m->nplaceholders--;
    else
        m->nqueues--;
    free(q->ring);
    free(q);
}

void cbx_qmap_destroy(struct cbx_qmap *m)
{
    if (m == NULL)
        return;
    m->logged = m->hooked = false;
    for (size_t i = 0; i < m->n_unrel; i++)
        cbx_msg_unref(m->unrel[i].msg);
    free(m->unrel);
    for (size_t i = 0; i < m->nbuckets; i++)
        while (m->buckets[i] != NULL)
            cbx_queue_free(m, m->buckets[i]);
    free(m->buckets);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

struct cbx_queue *cbx_queue_find(struct cbx_qmap *m, const char *name, size_t len, uint32_t hash)
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

/* Makes a placeholder: an empty queue that max-queues does not count. A
 * subscribe gives it a waiter, a publish makes it a queue (count_queue());
 * whoever made it frees it if neither happens. */
static struct cbx_queue *placeholder_create(struct cbx_qmap *m, const char *name, size_t len, uint32_t hash)
{
    struct cbx_queue *q = cbx_qmap_calloc(1, sizeof *q + len + 1);

    if (q == NULL)
        return NULL;
    q->hash = hash;
    q->placeholder = true;
    q->name_len = len;
    memcpy(q->name, name, len);
    q->active_us = cbx_now_mono_us();
    if (m->nqueues + m->nplaceholders >= m->nbuckets)
        grow_buckets(m);
    q->hnext = m->buckets[hash & (m->nbuckets - 1)];
    m->buckets[hash & (m->nbuckets - 1)] = q;
    m->nplaceholders++;
    return q;
}

static void count_queue(struct cbx_qmap *m, struct cbx_queue *q)
{
    if (q->placeholder) {
        q->placeholder = false;
        m->nplaceholders--;
        m->nqueues++;
    }
}

struct cbx_queue *cbx_queue_get(struct cbx_qmap *m, const char *name, size_t len, bool make)
{
    uint32_t h = cbx_qmap_hash(name, len);
    struct cbx_queue *q = cbx_queue_find(m, name, len, h);

    if (q == NULL && make && (q = placeholder_create(m, name, len, h)) != NULL)
        count_queue(m, q);
    return q;
}

static void link_waiter(struct cbx_qmap *m, struct cbx_waiter *w, struct cbx_queue **qs, const uint64_t *seen)
{
    for (size_t i = 0; i < w->queues.n; i++) {
        struct cbx_waitlink *l = &w->links[i];
        l->w = w;
        l->q = qs[i];
        l->seen = seen[i];
        l->prev = NULL;
        l->next = qs[i]->waiters;
        if (l->next != NULL)
            l->next->prev = l;
        qs[i]->waiters = l;
        if (!w->observer)
            qs[i]->n_waiters++;
    }
    if (!w->observer)
        m->waiters++;
    pthread_mutex_lock(&w->mu);
    w->linked = true;
    pthread_mutex_unlock(&w->mu);
}

/* Takes w off its queues' lists; a placeholder left without waiters goes. */
static void unlink_waiter(struct cbx_qmap *m, struct cbx_waiter *w, int64_t now)
{
    bool was = false;

    for (size_t i = 0; i < w->queues.n; i++) {
        struct cbx_waitlink *l = &w->links[i];
        struct cbx_queue *q = l->q;
        if (q == NULL)
            continue;
        was = true;
        if (l->prev != NULL)
            l->prev->next = l->next;
        else
            q->waiters = l->next;
        if (l->next != NULL)
            l->next->prev = l->prev;
        if (!w->observer)
            q->n_waiters--;
        q->active_us = now;
        l->q = NULL;
        l->prev = l->next = NULL;
        if (q->placeholder && q->waiters == NULL)
            cbx_queue_free(m, q);
    }
    if (was && !w->observer)
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

void cbx_qmap_deliver(struct cbx_qmap *m, struct cbx_queue *q, struct cbx_msg *msg, int64_t now,
                    struct cbx_waiter **filled)
{
    for (struct cbx_waitlink *l = q->waiters; l != NULL; l = l->next) {
        struct cbx_waiter *w = l->w;

        if (msg->id <= l->seen)
            continue; /* it has it, or resumed past it (qmap.h) */
        l->seen = msg->id;
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
        } else if (cbx_waiter_add(w, msg)) {
            if (!w->observer) /* an observer's copy is not a delivery (and acknowledges nothing) */
                m->st.delivered++;
            if (w->ack_on_deliver)
                cbx_queue_ack(m, q, msg->id, now);
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

void cbx_qmap_wake_filled(struct cbx_qmap *m, struct cbx_waiter *filled, int64_t now)
{
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
}

/* Room for n more unreleased messages; false when memory runs out. */
static bool unrel_reserve(struct cbx_qmap *m, size_t n)
{
    size_t cap = m->cap_unrel ? m->cap_unrel : 64;
    struct cbx_unreleased *u;

    if (m->n_unrel + n <= m->cap_unrel)
        return true;
    while (cap < m->n_unrel + n)
        cap *= 2;
    if ((u = cbx_qmap_malloc(cap * sizeof *u)) == NULL)
        return false;
    if (m->n_unrel > 0)
        memcpy(u, m->unrel, m->n_unrel * sizeof *u);
    free(m->unrel);
    m->unrel = u;
    m->cap_unrel = cap;
    return true;
}

static bool over_budget(struct cbx_qmap *m, struct cbx_msg **msgs, size_t n)
{
    if (m->lim.max_total_messages != 0 && m->stored + n > m->lim.max_total_messages)
        return true;
    if (m->lim.max_total_bytes != 0) {
        size_t incoming = 0;
        for (size_t i = 0; i < n; i++)
            incoming += msgs[i]->len + CBX_ID_DIGITS_MAX;
        if (m->stored_bytes + incoming > m->lim.max_total_bytes)
            return true;
    }
    return false;
}

/* The part of a publish that can fail, done before anything of the batch
 * is stored or dropped: finds (or makes, as placeholders) the queues of the
 * batch into qs, checks max-queues for those that would become counted, and
 * grows every ring to hold what it will hold at its fullest during the
 * batch. On failure it frees the placeholders it made and returns
 * CBX_ERR_FULL or CBX_ERR_NOMEM; the map is as before (a ring may be
 * bigger). On success each queue's batch_n is 0 again. */
static enum cbx_err publish_prepare(struct cbx_qmap *m, const struct cbx_pub_batch *b, struct cbx_queue **qs)
{
    struct cbx_queue *made = NULL;
    size_t counted = m->nqueues, done = 0;
    enum cbx_err rc = CBX_OK;

    for (; done < b->n; done++) {
        const struct cbx_pub_item *it = &b->items[done];
        uint32_t h = cbx_qmap_hash(it->queue, it->queue_len);
        struct cbx_queue *q = cbx_queue_find(m, it->queue, it->queue_len, h);

        if (q == NULL || (q->placeholder && q->batch_n == 0)) {
            if (counted >= m->lim.max_queues) {
                rc = CBX_ERR_FULL;
                goto fail;
            }
            counted++;
        }
        if (q == NULL) {
            if ((q = placeholder_create(m, it->queue, it->queue_len, h)) == NULL) {
                rc = CBX_ERR_NOMEM;
                goto fail;
            }
            q->batch_made = made;
            made = q;
        }
        q->batch_n++;
        qs[done] = q;
    }
    for (size_t i = 0; i < b->n; i++) {
        struct cbx_queue *q = qs[i];
        size_t most = m->lim.queue_max_messages ? m->lim.queue_max_messages : 1;

        if (q->batch_n == 0)
            continue; /* reserved already */
        /* the drops before each push keep count + 1 <= most (or count 0) */
        if (q->count + q->batch_n < most)
            most = q->count + q->batch_n;
        if (!cbx_queue_reserve(q, most > q->count ? most : q->count)) {
            rc = CBX_ERR_NOMEM;
            goto fail;
        }
        q->batch_n = 0;
    }
    while (made != NULL) {
        struct cbx_queue *next = made->batch_made;
        made->batch_made = NULL;
        made = next;
    }
    return CBX_OK;
fail:
    for (size_t i = 0; i < done; i++)
        qs[i]->batch_n = 0;
    while (made != NULL) {
        struct cbx_queue *next = made->batch_made;
        cbx_queue_free(m, made); /* empty, and no waiter: it was made just now */
        made = next;
    }
    return rc;
}

enum cbx_err cbx_qmap_publish(struct cbx_qmap *m, const struct cbx_pub_batch *b, uint64_t *ids, void *ticket)
{
    void *rec = NULL;
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
    /* set before any thread but the first one runs (cbx_qmap_set_log()) */
    if (m->logged && (rec = m->log.prepare(m->log.ctx, msgs, b, &rc)) == NULL)
        goto out;

    pthread_mutex_lock(&m->mu);
    if (m->stopping) {
        pthread_mutex_unlock(&m->mu);
        rc = CBX_ERR_STOPPING;
        goto out;
    }
    if (over_budget(m, msgs, b->n)) {
        m->st.refused_budget++;
        pthread_mutex_unlock(&m->mu);
        rc = CBX_ERR_BUDGET;
        goto out;
    }
    if (m->logged && !unrel_reserve(m, b->n)) {
        pthread_mutex_unlock(&m->mu);
        rc = CBX_ERR_NOMEM;
        goto out;
    }
    if ((rc = publish_prepare(m, b, qs)) != CBX_OK) {
        pthread_mutex_unlock(&m->mu);
        goto out;
    }
    /* from here on nothing can fail: the whole batch goes in */
    now = cbx_now_mono_us();
    now_real = cbx_now_real_us();
    for (size_t i = 0; i < b->n; i++) {
        struct cbx_queue *q = qs[i];
        struct cbx_msg *msg = msgs[i];
        uint64_t id = m->last_id + 1; /* never the clock: see cbx_qmap_create() */

        count_queue(m, q);
        cbx_msg_set_id(msg, id);
        /* make room first; a queue always keeps the newest message */
        while (q->count > 0 && (q->count + 1 > m->lim.queue_max_messages ||
                                q->bytes + msg->len > m->lim.queue_max_bytes))
            cbx_queue_drop(m, q, CBX_DROP_OVERFLOW);
        cbx_queue_push(m, q, msg, now); /* publish_prepare() made the room */
        m->last_id = id;
        msgs[i] = NULL; /* the queue owns it now */
        ids[i] = id;
        q->active_us = now;
        q->last_publish_real_us = now_real;
        m->st.published++;
        if (!m->logged)
            m->visible_id = id; /* before deliver(): a stream acknowledges up to it */
        if (m->logged) { /* seen once the journal wrote it: cbx_qmap_release() */
            m->unrel[m->n_unrel++] = (struct cbx_unreleased){ q, cbx_msg_ref(msg) };
            q->unreleased++;
        } else {
            cbx_qmap_deliver(m, q, msg, now, &filled);
        }
    }
    if (m->logged)
        m->log.append(m->log.ctx, rec, ids[0], ticket); /* rec is the journal's now */
    rec = NULL;
    cbx_qmap_wake_filled(m, filled, now);
    pthread_mutex_unlock(&m->mu);
    if (m->hooked)
        m->log.kick(m->log.ctx);
out:
    if (rec != NULL)
        m->log.discard(m->log.ctx, rec);
    for (size_t i = 0; i < made; i++)
        if (msgs != NULL && msgs[i] != NULL)
            cbx_msg_unref(msgs[i]);
    if (msgs != stack_msgs)
        free(msgs);
    if (qs != stack_qs)
        free(qs);
    return rc;
}

static bool room_for_waiter(struct cbx_qmap *m, const struct cbx_waiter *w, struct cbx_queue **qs, size_t n)
{
    if (w->observer)
        return true; /* not a subscriber: takes no place */
    for (size_t i = 0; i < n; i++)
        if (m->lim.max_waiters_per_queue != 0 && qs[i]->n_waiters >= m->lim.max_waiters_per_queue)
            return false;
    return true;
}

/* Works out the gap report and the cursor of queue q for a subscribe;
 * restart: since is above the newest id of this run. False when memory
 * runs out. */
static bool cursor_of(struct cbx_qmap *m, struct cbx_waiter *w, size_t i, struct cbx_queue *q, bool has_since,
                      uint64_t since, bool restart, int64_t now, uint64_t *cursor)
{
    const char *name = w->queues.names[i];
    size_t n = w->queues.n;
    struct cbx_gap g;

    if (restart) {
        /* ids of this run may have passed through since's range: from the
         * first id to since any id may name a new message, so acknowledge
         * nothing and hand over everything from this run's start */
        *cursor = m->first_id - 1;
        g = (struct cbx_gap){ m->first_id, since, CBX_DROP_RESTART, name };
        return add_gap(w, &g, n);
    }
    if (has_since) {
        cbx_queue_ack(m, q, since, now);
        *cursor = since;
        if (since != 0 && since < m->first_id - 1) {
            g = (struct cbx_gap){ since + 1, m->first_id - 1, CBX_DROP_RESTART, name };
            if (q->purged_to > g.to)
                g.to = q->purged_to;
            return add_gap(w, &g, n);
        }
        if (q->purged_to > since) {
            g = (struct cbx_gap){ since + 1, q->purged_to, q->purged_reason, name };
            return add_gap(w, &g, n);
        }
        return true;
    }
    /* every id of this run is >= first_id: below it, first_id - 1 resumes
     * the same and reports no restart gap */
    *cursor = q->acked < m->first_id - 1 ? m->first_id - 1 : q->acked;
    if (*cursor < w->start)
        w->start = *cursor;
    if (q->lost_to > q->acked) {
        g = (struct cbx_gap){ q->acked + 1, q->lost_to, q->lost_reason, name };
        return add_gap(w, &g, n);
    }
    return true;
}

enum cbx_err cbx_qmap_subscribe(struct cbx_qmap *m, struct cbx_waiter *w, bool has_since, uint64_t since,
                                size_t limit, bool link_always)
{
    struct cbx_queue *qs[CBX_QLIST_MAX];
    size_t next[CBX_QLIST_MAX];
    uint64_t seen[CBX_QLIST_MAX];
    size_t n = w->queues.n, found = 0, taken = 0;
    enum cbx_err rc = CBX_OK;
    bool restart;
    int64_t now;

    if (w->observer && (w->ack_on_deliver || has_since))
        return CBX_ERR_INVALID; /* an observer acknowledges nothing */
    if (w->links == NULL && (w->links = calloc(n ? n : 1, sizeof *w->links)) == NULL)
        return CBX_ERR_NOMEM;
    pthread_mutex_lock(&m->mu);
    if (m->stopping) {
        rc = CBX_ERR_STOPPING;
        goto out;
    }
    now = cbx_now_mono_us();
    /* a queue nobody published to gets a placeholder: subscribers do not
     * use up max-queues (docs/PROTOCOL.md, "Mailbox semantics") */
    for (; found < n; found++) {
        const char *name = w->queues.names[found];
        size_t len = strlen(name);
        uint32_t h = cbx_qmap_hash(name, len);
        struct cbx_queue *q = cbx_queue_find(m, name, len, h);
        if (q == NULL && (q = placeholder_create(m, name, len, h)) == NULL) {
            rc = CBX_ERR_NOMEM;
            goto out;
        }
        q->active_us = now;
        qs[found] = q;
    }

    /* broker = redis: a queue the sweep forgot since the caller found it
     * mirrored (cbx_qmap_mirror_need()) would hear no change: the caller
     * loads it again first */
    for (size_t i = 0; m->mirroring && !w->observer && i < n; i++)
        if (!qs[i]->mirrored) {
            rc = CBX_ERR_AGAIN;
            goto out;
        }
    /* a stream is refused before it acknowledges anything */
    if (link_always && !room_for_waiter(m, w, qs, n)) {
        rc = CBX_ERR_BUSY;
        goto out;
    }
    restart = has_since && since > m->visible_id;
    w->n_gaps = 0;
    w->start = restart ? m->first_id - 1 : has_since ? since : UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        uint64_t cursor;
        if (!cursor_of(m, w, i, qs[i], has_since, since, restart, now, &cursor)) {
            rc = CBX_ERR_NOMEM;
            goto out;
        }
        next[i] = cbx_queue_after(qs[i], cursor);
        seen[i] = cursor;
    }

    /* merge the queues' unseen messages by id, lowest first */
    pthread_mutex_lock(&w->mu);
    while (taken < limit) {
        size_t best = n;
        uint64_t best_id = UINT64_MAX;
        for (size_t i = 0; i < n; i++) {
            if (next[i] < qs[i]->count) {
                uint64_t id = cbx_queue_entry(qs[i], next[i])->m->id;
                if (id < best_id && id <= m->visible_id) {
                    best_id = id;
                    best = i;
                }
            }
        }
        if (best == n)
            break;
        if (!cbx_waiter_add(w, cbx_queue_entry(qs[best], next[best])->m)) {
            rc = CBX_ERR_NOMEM;
            break;
        }
        if (w->ack_on_deliver)
            cbx_queue_ack(m, qs[best], best_id, now);
        seen[best] = best_id;
        next[best]++;
        taken++;
    }
    if (!w->observer)
        m->st.delivered += taken;
    pthread_mutex_unlock(&w->mu);
    if (rc != CBX_OK)
        goto out;
    if (link_always || (taken == 0 && w->n_gaps == 0)) {
        if (!room_for_waiter(m, w, qs, n)) { /* a long-poll: nothing acknowledged on its behalf */
            rc = CBX_ERR_BUSY;
            goto out;
        }
        link_waiter(m, w, qs, seen);
    }
out:
    /* placeholders this call made and did not link w to */
    for (size_t i = 0; i < found; i++)
        if (qs[i]->placeholder && qs[i]->waiters == NULL)
            cbx_queue_free(m, qs[i]);
    pthread_mutex_unlock(&m->mu);
    if (m->hooked)
        m->log.kick(m->log.ctx); /* what it acknowledged or dropped */
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

