/* qmap_restore.c - the queue map's side of the journal: the copy a
 * snapshot is written from, and the calls a replay rebuilds the map with.
 * Not for the files (journal.c) nor for publish and subscribe (qmap.c). */
#include <stdlib.h>
#include <string.h>

#include "qmap_int.h"

void cbx_qsnap_free(struct cbx_qsnap *s)
{
    for (size_t i = 0; i < s->nmsgs; i++)
        cbx_msg_unref(s->msgs[i]);
    free(s->msgs);
    free(s->acked_age_us);
    free(s->qs);
    free(s->names);
    memset(s, 0, sizeof *s);
}

void cbx_qmap_snapshot_begin(struct cbx_qmap *m, struct cbx_qsnap_iter *it, uint64_t *first_id, uint64_t *last_id)
{
    pthread_mutex_lock(&m->mu);
    it->epoch = ++m->snap_epoch;
    it->bucket = 0;
    it->nbuckets = m->nbuckets;
    *first_id = m->first_id;
    *last_id = m->last_id;
    pthread_mutex_unlock(&m->mu);
}

/* Grows *p (of *cap elements of size sz) to hold n; false when memory runs out. */
static bool grow(void **p, size_t *cap, size_t n, size_t sz)
{
    size_t c = *cap ? *cap : 64;
    void *np;

    if (n <= *cap)
        return true;
    while (c < n)
        c *= 2;
    if ((np = realloc(*p, c * sz)) == NULL)
        return false;
    *p = np;
    *cap = c;
    return true;
}

/* Appends queue q (its messages written so far) to out. Map lock held. */
static bool copy_queue(struct cbx_qmap *m, struct cbx_queue *q, struct cbx_qsnap *out, int64_t now)
{
    struct cbx_qsnap_queue *sq;

    size_t cap_ages = out->cap_msgs;

    /* msgs and acked_age_us have the same capacity: ages grow first */
    if (!grow((void **)&out->qs, &out->cap_q, out->nq + 1, sizeof *out->qs) ||
        !grow((void **)&out->names, &out->cap_names, out->names_len + q->name_len, 1) ||
        !grow((void **)&out->acked_age_us, &cap_ages, out->nmsgs + q->count, sizeof *out->acked_age_us) ||
        !grow((void **)&out->msgs, &out->cap_msgs, out->nmsgs + q->count, sizeof *out->msgs))
        return false;
    sq = &out->qs[out->nq++];
    *sq = (struct cbx_qsnap_queue){ out->names_len, q->name_len, q->acked, q->lost_to, q->purged_to,
                                    q->lost_reason, q->purged_reason, out->nmsgs, 0 };
    memcpy(out->names + out->names_len, q->name, q->name_len);
    out->names_len += q->name_len;
    for (size_t i = 0; i < q->count; i++) {
        struct entry *e = cbx_queue_entry(q, i);
        if (e->m->id > m->visible_id)
            break; /* not written yet: the journal has it after the copy's start */
        out->msgs[out->nmsgs] = cbx_msg_ref(e->m);
        out->acked_age_us[out->nmsgs] = i < q->nacked ? now - e->acked_us : -1;
        out->nmsgs++;
        sq->n++;
    }
    return true;
}

enum cbx_err cbx_qmap_snapshot_next(struct cbx_qmap *m, struct cbx_qsnap_iter *it, struct cbx_qsnap *out,
                                    size_t max_msgs)
{
    size_t bucket;
    int64_t now;

    for (size_t i = 0; i < out->nmsgs; i++)
        cbx_msg_unref(out->msgs[i]);
    out->nq = out->nmsgs = out->names_len = 0; /* the arrays are reused */
    pthread_mutex_lock(&m->mu);
    now = cbx_now_mono_us();
    if (m->nbuckets != it->nbuckets) { /* the table grew: queues moved; go round again, skipping the copied */
        it->bucket = 0;
        it->nbuckets = m->nbuckets;
    }
    for (bucket = it->bucket; bucket < m->nbuckets && out->nmsgs < max_msgs; bucket++) {
        for (struct cbx_queue *q = m->buckets[bucket]; q != NULL; q = q->hnext) {
            if (q->placeholder || q->snap_epoch == it->epoch)
                continue;
            if (!copy_queue(m, q, out, now)) {
                pthread_mutex_unlock(&m->mu);
                for (size_t i = 0; i < out->nmsgs; i++)
                    cbx_msg_unref(out->msgs[i]);
                out->nq = out->nmsgs = out->names_len = 0;
                return CBX_ERR_NOMEM; /* nothing marked: the next try copies these again */
            }
        }
    }
    /* mark only now: a failed part leaves its queues to the next try */
    for (size_t b = it->bucket; b < bucket; b++)
        for (struct cbx_queue *q = m->buckets[b]; q != NULL; q = q->hnext)
            if (!q->placeholder)
                q->snap_epoch = it->epoch;
    it->bucket = bucket;
    pthread_mutex_unlock(&m->mu);
    return CBX_OK;
}

/* An age from a file, in [0, about 30 years]: whatever the file says, the
 * clock arithmetic cannot overflow. */
#define AGE_MAX ((int64_t)1000000 * 86400 * 365 * 30)
static int64_t clamp_age(int64_t age)
{
    return age < 0 ? 0 : age > AGE_MAX ? AGE_MAX : age;
}

void cbx_qmap_restore_ids(struct cbx_qmap *m, uint64_t first_id, uint64_t last_id)
{
    pthread_mutex_lock(&m->mu);
    /* the state's ids, not the clock's guess of cbx_qmap_create() */
    m->first_id = first_id;
    m->last_id = last_id < first_id - 1 ? first_id - 1 : last_id;
    m->visible_id = m->last_id;
    pthread_mutex_unlock(&m->mu);
}

enum cbx_err cbx_qmap_restore_msg(struct cbx_qmap *m, const char *name, size_t len, struct cbx_msg *msg)
{
    enum cbx_err rc = CBX_OK;
    struct cbx_queue *q;
    int64_t age;

    pthread_mutex_lock(&m->mu);
    q = cbx_queue_get(m, name, len, true);
    if (q == NULL || !cbx_queue_reserve(q, q->count + 1)) {
        rc = CBX_ERR_NOMEM;
    } else if (msg->id <= q->purged_to || (q->count > 0 && msg->id <= cbx_queue_entry(q, q->count - 1)->m->id)) {
        rc = CBX_OK; /* it has it, or dropped it already */
    } else {
        /* its age by the wall clock, the only clock two runs share (docs/DURABILITY.md) */
        age = clamp_age(msg->published_us >= 0 ? cbx_now_real_us() - msg->published_us : AGE_MAX);
        cbx_queue_push(m, q, msg, cbx_now_mono_us() - age);
        msg = NULL;
        if (q->count == 1 || q->last_publish_real_us < cbx_queue_entry(q, q->count - 1)->m->published_us)
            q->last_publish_real_us = cbx_queue_entry(q, q->count - 1)->m->published_us;
        q->active_us = cbx_now_mono_us(); /* not counted as published: it was, in its own run */
    }
    if (q != NULL && q->count > 0 && cbx_queue_entry(q, q->count - 1)->m->id > m->last_id)
        m->last_id = m->visible_id = cbx_queue_entry(q, q->count - 1)->m->id;
    pthread_mutex_unlock(&m->mu);
    if (msg != NULL)
        cbx_msg_unref(msg);
    return rc;
}

enum cbx_err cbx_qmap_restore_queue(struct cbx_qmap *m, const char *name, size_t len, uint64_t acked,
                                    uint64_t lost_to, enum cbx_drop_reason lost_reason, uint64_t purged_to,
                                    enum cbx_drop_reason purged_reason)
{
    struct cbx_queue *q;

    pthread_mutex_lock(&m->mu);
    q = cbx_queue_get(m, name, len, true);
    if (q != NULL) {
        q->lost_to = lost_to;
        q->lost_reason = lost_reason;
        q->purged_to = purged_to;
        q->purged_reason = purged_reason;
        q->active_us = cbx_now_mono_us();
        if (acked > q->acked)
            q->acked = acked;
    }
    pthread_mutex_unlock(&m->mu);
    return q != NULL ? CBX_OK : CBX_ERR_NOMEM;
}

void cbx_qmap_restore_trim(struct cbx_qmap *m, const char *name, size_t len, uint64_t upto,
                           enum cbx_drop_reason reason)
{
    struct cbx_queue *q;

    pthread_mutex_lock(&m->mu);
    q = cbx_queue_get(m, name, len, false);
    if (q != NULL && !q->placeholder) {
        while (q->count > 0 && cbx_queue_entry(q, 0)->m->id <= upto)
            cbx_queue_drop(m, q, reason);
        if (upto > q->purged_to) { /* dropped before the snapshot this replays onto */
            q->purged_to = upto;
            q->purged_reason = reason;
        }
    }
    pthread_mutex_unlock(&m->mu);
}

void cbx_qmap_restore_ack(struct cbx_qmap *m, const char *name, size_t len, uint64_t upto, int64_t age_us)
{
    struct cbx_queue *q;

    pthread_mutex_lock(&m->mu);
    q = cbx_queue_get(m, name, len, false);
    if (q != NULL && !q->placeholder)
        cbx_queue_ack(m, q, upto, cbx_now_mono_us() - clamp_age(age_us));
    pthread_mutex_unlock(&m->mu);
}
