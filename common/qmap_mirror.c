/* qmap_mirror.c - broker = redis: the map as a mirror of the queues this
 * node's browsers wait on (qmap.h, cbx_qmap_mirror_apply()). Redis decides
 * ids, drops and acknowledgements; this file only follows. Locking:
 * qmap.c's opening comment. */
#include <stdlib.h>
#include <string.h>

#include "mirror.h"
#include "qmap_int.h"

/* The id after which q takes new messages: its newest, or what it dropped. */
static uint64_t queue_last(struct cbx_queue *q)
{
    uint64_t last = q->count ? cbx_queue_entry(q, q->count - 1)->m->id : 0;
    return last > q->purged_to ? last : q->purged_to;
}

static enum cbx_err apply_queue(struct cbx_qmap *m, const struct cbx_mirror_queue *mq, bool load, int64_t now,
                                int64_t now_real, struct cbx_waiter **filled)
{
    uint32_t h = cbx_qmap_hash(mq->name, mq->name_len);
    struct cbx_queue *q = cbx_queue_find(m, mq->name, mq->name_len, h);
    size_t first = 0;
    bool history; /* its first load: what it brings was published before */

    if (q == NULL && !load)
        return CBX_OK; /* not mirrored here: nobody waits on it */
    if (q == NULL && (q = cbx_queue_get(m, mq->name, mq->name_len, true)) == NULL)
        return CBX_ERR_NOMEM;
    if (!q->mirrored && !load)
        return CBX_OK; /* a placeholder whose load is under way: the load brings it */
    history = load && !q->mirrored;
    if (history) {
        q->mirrored = true;
        if (q->placeholder) { /* what max-queues counts is Redis's business */
            q->placeholder = false;
            m->nplaceholders--;
            m->nqueues++;
        }
    }
    /* Redis's drops: what it purged is gone here too */
    while (q->count > 0 && cbx_queue_entry(q, 0)->m->id <= mq->purged_to)
        cbx_queue_drop(m, q, (enum cbx_drop_reason)mq->purged_reason);
    if (mq->purged_to > q->purged_to) {
        q->purged_to = mq->purged_to;
        q->purged_reason = (enum cbx_drop_reason)mq->purged_reason;
    }
    if (mq->lost_to > q->lost_to) {
        q->lost_to = mq->lost_to;
        q->lost_reason = (enum cbx_drop_reason)mq->lost_reason;
    }
    while (first < mq->n && mq->msgs[first]->id <= queue_last(q))
        first++;
    if (first < mq->n && !cbx_queue_reserve(q, q->count + (mq->n - first)))
        return CBX_ERR_NOMEM;
    for (size_t i = first; i < mq->n; i++) {
        struct cbx_msg *msg = mq->msgs[i];
        int64_t age = now_real - msg->published_us;

        /* its age counts from its publish, on whichever node */
        cbx_queue_push(m, q, cbx_msg_ref(msg), now - (age > 0 ? age : 0));
        q->last_publish_real_us = msg->published_us;
        m->st.published++;
        /* a browser subscribes after the first load; only a tail (an
         * observer, of messages published from now on) waits before it */
        if (!history)
            cbx_qmap_deliver(m, q, msg, now, filled);
    }
    if (first < mq->n)
        q->active_us = now;
    cbx_queue_ack_quietly(m, q, mq->acked, now, false);
    return CBX_OK;
}

/* Every mirrored queue as if Redis had never held it: no message, nothing
 * acknowledged, lost or dropped (as one node after a restart without a
 * journal). */
static void forget_sequence(struct cbx_qmap *m)
{
    for (size_t b = 0; b < m->nbuckets; b++)
        for (struct cbx_queue *q = m->buckets[b]; q != NULL; q = q->hnext) {
            if (!q->mirrored)
                continue;
            cbx_queue_forget(m, q);
            q->acked = q->lost_to = q->purged_to = 0;
            q->lost_reason = q->purged_reason = CBX_DROP_NONE;
        }
}

enum cbx_err cbx_qmap_mirror_apply(struct cbx_qmap *m, const struct cbx_mirror_update *u)
{
    struct cbx_waiter *filled = NULL;
    enum cbx_err rc = CBX_OK;
    int64_t now, now_real;

    pthread_mutex_lock(&m->mu);
    now = cbx_now_mono_us();
    now_real = cbx_now_real_us();
    if (u->load && u->first_id != 0 && u->first_id != m->first_id) {
        /* Redis's sequence, in place of the one this map began with at
         * start: ids are Redis's from now on. A new sequence (a Redis that
         * lost its data) leaves nothing of the old one here: the loads
         * that follow bring what Redis holds now */
        m->first_id = u->first_id;
        m->last_id = u->last_id;
        forget_sequence(m);
    } else if (u->last_id > m->last_id) {
        m->last_id = u->last_id;
    }
    if (m->last_id < m->first_id - 1)
        m->last_id = m->first_id - 1;
    m->visible_id = m->last_id; /* before delivering: a stream acknowledges up to it */
    for (size_t i = 0; i < u->nq; i++) {
        enum cbx_err r = apply_queue(m, &u->qs[i], u->load, now, now_real, &filled);
        if (r != CBX_OK)
            rc = r;
    }
    cbx_qmap_wake_filled(m, filled, now);
    pthread_mutex_unlock(&m->mu);
    if (m->hooked)
        m->log.kick(m->log.ctx); /* what streams acknowledged on delivery */
    return rc;
}

enum cbx_mirror_need cbx_qmap_mirror_need(struct cbx_qmap *m, const struct cbx_qlist *queues, bool has_since,
                                          uint64_t since)
{
    enum cbx_mirror_need need;

    pthread_mutex_lock(&m->mu);
    /* without since a browser takes what is not acknowledged: where that
     * is, Redis knows now (an acknowledgement on another node may be on
     * its way here) */
    need = has_since && since <= m->last_id ? CBX_MIRROR_READY : CBX_MIRROR_LOAD;
    for (size_t i = 0; need != CBX_MIRROR_LOAD && i < queues->n; i++) {
        const char *name = queues->names[i];
        size_t len = strlen(name);
        struct cbx_queue *q = cbx_queue_find(m, name, len, cbx_qmap_hash(name, len));
        if (q == NULL || !q->mirrored)
            need = CBX_MIRROR_LOAD;
        else if (since > q->acked)
            need = CBX_MIRROR_ACK;
    }
    pthread_mutex_unlock(&m->mu);
    return need;
}

bool cbx_qmap_mirrored(struct cbx_qmap *m, const char *name, size_t len)
{
    struct cbx_queue *q;
    bool mirrored;

    pthread_mutex_lock(&m->mu);
    q = cbx_queue_find(m, name, len, cbx_qmap_hash(name, len));
    mirrored = q != NULL && q->mirrored;
    pthread_mutex_unlock(&m->mu);
    return mirrored;
}

void cbx_qmap_mirror_acked(struct cbx_qmap *m, const char *name, size_t len, uint64_t upto)
{
    struct cbx_queue *q;

    pthread_mutex_lock(&m->mu);
    q = cbx_queue_find(m, name, len, cbx_qmap_hash(name, len));
    if (q != NULL && q->mirrored)
        cbx_queue_ack_quietly(m, q, upto, cbx_now_mono_us(), false); /* (it stops at the last id seen) */
    pthread_mutex_unlock(&m->mu);
}
