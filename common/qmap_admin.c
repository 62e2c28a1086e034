/* qmap_admin.c - what the reaper and the operator do to the queue map:
 * the once-a-second sweep, flush, signalling a queue's waiters, stop,
 * counters and the per-queue listing. Not for publish or subscribe
 * (qmap.c). Each function takes the map lock itself. */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "qmap_int.h"

void cbx_qmap_sweep(struct cbx_qmap *m, int64_t now)
{
    pthread_mutex_lock(&m->mu);
    for (size_t b = 0; b < m->nbuckets; b++) {
        struct cbx_queue *q = m->buckets[b];
        while (q != NULL) {
            struct cbx_queue *next = q->hnext;
            while (q->count > 0) {
                struct entry *e = cbx_queue_entry(q, 0);
                if (e->m->id > m->visible_id)
                    break; /* not written yet: not even seen */
                if (!((e->acked_us != 0 && now - e->acked_us >= m->lim.retain_acked_us) ||
                      now - e->added_us >= m->lim.message_ttl_us))
                    break;
                cbx_queue_drop(m, q, CBX_DROP_EXPIRED);
            }
            /* (a placeholder always has a waiter, so it is never freed here;
             * nor is a queue an observer watches) */
            /* a mirrored queue goes with its last waiter as an empty one
             * does: Redis keeps its messages */
            if ((q->count == 0 || q->mirrored) && q->waiters == NULL && q->unreleased == 0 &&
                now - q->active_us >= m->lim.retain_acked_us)
                cbx_queue_free(m, q);
            q = next;
        }
    }
    pthread_mutex_unlock(&m->mu);
    if (m->hooked)
        m->log.kick(m->log.ctx); /* what it acknowledged or dropped */
}

static void flush_queue(struct cbx_qmap *m, struct cbx_queue *q, uint64_t *count)
{
    *count += q->count;
    while (q->count > 0)
        cbx_queue_drop(m, q, CBX_DROP_FLUSHED);
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
        struct cbx_queue *q = cbx_queue_find(m, name, strlen(name), cbx_qmap_hash(name, strlen(name)));
        if (q == NULL)
            rc = CBX_ERR_NOT_FOUND;
        else
            flush_queue(m, q, count);
    }
    pthread_mutex_unlock(&m->mu);
    if (m->hooked)
        m->log.kick(m->log.ctx); /* what it acknowledged or dropped */
    return rc;
}

enum cbx_err cbx_qmap_signal_queue(struct cbx_qmap *m, const char *name, unsigned flag, const char *reason,
                                   uint64_t *count)
{
    struct cbx_queue *q;
    enum cbx_err rc = CBX_OK;

    *count = 0;
    pthread_mutex_lock(&m->mu);
    q = cbx_queue_find(m, name, strlen(name), cbx_qmap_hash(name, strlen(name)));
    if (q == NULL)
        rc = CBX_ERR_NOT_FOUND;
    else
        for (struct cbx_waitlink *l = q->waiters; l != NULL; l = l->next) {
            if (l->w->observer)
                continue; /* it only watches: nothing to kick (qmap.h) */
            cbx_waiter_signal(l->w, flag, reason);
            (*count)++;
        }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

void cbx_qmap_stop(struct cbx_qmap *m)
{
    pthread_mutex_lock(&m->mu);
    m->stopping = true;
    pthread_mutex_unlock(&m->mu);
}

void cbx_qmap_set_limits(struct cbx_qmap *m, const struct cbx_qmap_limits *lim)
{
    pthread_mutex_lock(&m->mu);
    m->lim = *lim;
    pthread_mutex_unlock(&m->mu);
}

void cbx_qmap_stats(struct cbx_qmap *m, struct cbx_qmap_stats *out)
{
    pthread_mutex_lock(&m->mu);
    *out = m->st;
    out->queues = m->nqueues;
    out->placeholders = m->nplaceholders;
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
    size_t count = 0, all;
    enum cbx_err rc = CBX_OK;

    pthread_mutex_lock(&m->mu);
    all = m->nqueues + m->nplaceholders;
    if (all > 0 && (out = calloc(all, sizeof *out)) == NULL) {
        rc = CBX_ERR_NOMEM;
        goto out;
    }
    for (size_t b = 0; b < m->nbuckets; b++) {
        for (struct cbx_queue *q = m->buckets[b]; q != NULL; q = q->hnext) {
            struct cbx_queue_info *r = &out[count];
            if (pattern != NULL && fnmatch(pattern, q->name, 0) != 0)
                continue;
            memcpy(r->name, q->name, q->name_len + 1);
            r->placeholder = q->placeholder;
            r->pending = q->count - q->nacked;
            r->stored = q->count;
            r->bytes = q->bytes;
            r->waiters = q->n_waiters;
            r->oldest_us = q->count ? cbx_queue_entry(q, 0)->m->published_us : 0;
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
