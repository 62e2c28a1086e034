/* qmap_ring.c - a queue's messages: a ring, oldest first, with the
 * acknowledged ones at its front and the memory of what was dropped. Called
 * with the map lock held; knows nothing of waiters or of the id counter. */
#include <stdlib.h>

#include "qmap_int.h"

void cbx_queue_drop(struct cbx_qmap *m, struct cbx_queue *q, enum cbx_drop_reason reason)
{
    struct entry *e = cbx_queue_entry(q, 0);
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
    if (m->hooked && m->log.trim != NULL)
        m->log.trim(m->log.ctx, q->name, q->name_len, msg->id, reason);
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

void cbx_queue_forget(struct cbx_qmap *m, struct cbx_queue *q)
{
    while (q->count > 0) {
        struct entry *e = cbx_queue_entry(q, 0);
        if (q->nacked > 0) {
            q->nacked--;
            q->acked_bytes -= e->m->len;
        } else {
            m->pending--;
            m->pending_bytes -= e->m->len;
        }
        q->bytes -= e->m->len;
        m->stored--;
        m->stored_bytes -= e->m->len;
        cbx_msg_unref(e->m);
        q->head = (q->head + 1) & (q->cap - 1);
        q->count--;
    }
}

void cbx_queue_unpush(struct cbx_qmap *m, struct cbx_queue *q)
{
    struct entry *e = cbx_queue_entry(q, q->count - 1);
    struct cbx_msg *msg = e->m;

    if (q->nacked == q->count) { /* acknowledged already (cannot be: it was never visible) */
        q->nacked--;
        q->acked_bytes -= msg->len;
    } else {
        m->pending--;
        m->pending_bytes -= msg->len;
    }
    q->bytes -= msg->len;
    m->stored--;
    m->stored_bytes -= msg->len;
    m->st.published--;
    q->count--;
    cbx_msg_unref(msg);
}

bool cbx_queue_reserve(struct cbx_queue *q, size_t n)
{
    size_t cap = q->cap ? q->cap : 4;
    struct entry *ring;

    if (n <= q->cap)
        return true;
    while (cap < n)
        cap *= 2;
    if ((ring = cbx_qmap_malloc(cap * sizeof *ring)) == NULL)
        return false;
    for (size_t i = 0; i < q->count; i++)
        ring[i] = *cbx_queue_entry(q, i);
    free(q->ring);
    q->ring = ring;
    q->head = 0;
    q->cap = cap;
    return true;
}

void cbx_queue_push(struct cbx_qmap *m, struct cbx_queue *q, struct cbx_msg *msg, int64_t now)
{
    q->ring[(q->head + q->count) & (q->cap - 1)] = (struct entry){ msg, now, 0 };
    q->count++;
    q->bytes += msg->len;
    m->stored++;
    m->stored_bytes += msg->len;
    m->pending++;
    m->pending_bytes += msg->len;
}

void cbx_queue_ack(struct cbx_qmap *m, struct cbx_queue *q, uint64_t upto, int64_t now)
{
    cbx_queue_ack_quietly(m, q, upto, now, true);
}

void cbx_queue_ack_quietly(struct cbx_qmap *m, struct cbx_queue *q, uint64_t upto, int64_t now, bool tell)
{
    if (upto > m->visible_id)
        upto = m->visible_id; /* nobody saw more */
    if (upto <= q->acked)
        return;
    q->acked = upto;
    if (tell && m->hooked && m->log.ack != NULL)
        m->log.ack(m->log.ctx, q->name, q->name_len, upto);
    while (q->nacked < q->count) {
        struct entry *e = cbx_queue_entry(q, q->nacked);
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

size_t cbx_queue_after(struct cbx_queue *q, uint64_t id)
{
    size_t lo = 0, hi = q->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cbx_queue_entry(q, mid)->m->id <= id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}
