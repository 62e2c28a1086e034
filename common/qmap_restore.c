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
    free(s->acked);
    free(s->acked_age_us);
    free(s->qs);
    free(s->names);
    memset(s, 0, sizeof *s);
}

enum cbx_err cbx_qmap_snapshot(struct cbx_qmap *m, struct cbx_qsnap *out, void (*at)(void *ctx), void *ctx)
{
    size_t names_len = 0, nq = 0, nm = 0;
    int64_t now;

    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&m->mu);
    now = cbx_now_mono_us();
    for (size_t b = 0; b < m->nbuckets; b++)
        for (struct cbx_queue *q = m->buckets[b]; q != NULL; q = q->hnext)
            if (!q->placeholder) {
                nq++;
                names_len += q->name_len;
            }
    out->qs = malloc((nq ? nq : 1) * sizeof *out->qs);
    out->names = malloc(names_len ? names_len : 1);
    out->msgs = malloc((m->stored ? m->stored : 1) * sizeof *out->msgs);
    out->acked = malloc(m->stored ? m->stored : 1);
    out->acked_age_us = malloc((m->stored ? m->stored : 1) * sizeof *out->acked_age_us);
    if (out->qs == NULL || out->names == NULL || out->msgs == NULL || out->acked == NULL ||
        out->acked_age_us == NULL) {
        pthread_mutex_unlock(&m->mu);
        cbx_qsnap_free(out);
        return CBX_ERR_NOMEM;
    }
    out->first_id = m->first_id;
    out->last_id = m->last_id;
    names_len = 0;
    for (size_t b = 0; b < m->nbuckets; b++) {
        for (struct cbx_queue *q = m->buckets[b]; q != NULL; q = q->hnext) {
            struct cbx_qsnap_queue *sq;
            if (q->placeholder)
                continue;
            sq = &out->qs[out->nq++];
            *sq = (struct cbx_qsnap_queue){ names_len, q->name_len, q->acked, q->lost_to, q->purged_to,
                                            q->lost_reason, q->purged_reason, nm, 0 };
            memcpy(out->names + names_len, q->name, q->name_len);
            names_len += q->name_len;
            for (size_t i = 0; i < q->count; i++) {
                struct entry *e = cbx_queue_entry(q, i);
                if (e->m->id > m->visible_id)
                    break; /* not written yet: the next journal has it */
                out->msgs[nm] = cbx_msg_ref(e->m);
                out->acked[nm] = i < q->nacked;
                out->acked_age_us[nm] = i < q->nacked ? now - e->acked_us : 0;
                nm++;
                sq->n++;
            }
        }
    }
    out->nmsgs = nm;
    if (at != NULL)
        at(ctx);
    pthread_mutex_unlock(&m->mu);
    return CBX_OK;
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
        age = cbx_now_real_us() - msg->published_us;
        cbx_queue_push(m, q, msg, cbx_now_mono_us() - (age > 0 ? age : 0));
        msg = NULL;
        if (q->count == 1 || q->last_publish_real_us < cbx_queue_entry(q, q->count - 1)->m->published_us)
            q->last_publish_real_us = cbx_queue_entry(q, q->count - 1)->m->published_us;
        q->active_us = cbx_now_mono_us();
        m->st.published++;
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
        cbx_queue_ack(m, q, upto, cbx_now_mono_us() - age_us);
    pthread_mutex_unlock(&m->mu);
}
