/* qmap_release.c - what frees messages for readers and from them: a batch
 * stored by cbx_qmap_publish() waits, unseen, until the journal has
 * written it and releases it to the readers (or retracts it when it could
 * not); a WebSocket's client acknowledges what it got. Locking: qmap.c's
 * opening comment. */
#include <stdlib.h>
#include <string.h>

#include "qmap_int.h"

void cbx_qmap_set_log(struct cbx_qmap *m, const struct cbx_qmap_log *log)
{
    pthread_mutex_lock(&m->mu);
    m->logged = log != NULL && log->prepare != NULL;
    m->hooked = log != NULL;
    m->mirroring = log != NULL && log->forget != NULL;
    if (log != NULL)
        m->log = *log;
    m->visible_id = m->last_id; /* nothing is unreleased at either moment */
    pthread_mutex_unlock(&m->mu);
}

void cbx_qmap_release(struct cbx_qmap *m, uint64_t upto)
{
    struct cbx_waiter *filled = NULL;
    size_t k = 0;
    int64_t now;

    pthread_mutex_lock(&m->mu);
    now = cbx_now_mono_us();
    if (upto > m->visible_id)
        m->visible_id = upto; /* first: a stream's ack_on_deliver may move up to it */
    for (; k < m->n_unrel && m->unrel[k].msg->id <= upto; k++) {
        struct cbx_queue *q = m->unrel[k].q;
        struct cbx_msg *msg = m->unrel[k].msg;
        q->unreleased--;
        if (msg->id > q->purged_to) /* not dropped meanwhile (a flush, or room for a later one) */
            cbx_qmap_deliver(m, q, msg, now, &filled);
        cbx_msg_unref(msg);
    }
    if (k > 0) {
        m->n_unrel -= k;
        memmove(m->unrel, m->unrel + k, m->n_unrel * sizeof *m->unrel);
    }
    cbx_qmap_wake_filled(m, filled, now);
    pthread_mutex_unlock(&m->mu);
}

void cbx_qmap_retract(struct cbx_qmap *m, void (*done)(void *ctx), void *ctx)
{
    pthread_mutex_lock(&m->mu);
    /* newest first: each is then the newest entry of its queue, if still there */
    while (m->n_unrel > 0) {
        struct cbx_unreleased *u = &m->unrel[--m->n_unrel];
        struct cbx_queue *q = u->q;
        q->unreleased--;
        if (q->count > 0 && cbx_queue_entry(q, q->count - 1)->m == u->msg)
            cbx_queue_unpush(m, q);
        cbx_msg_unref(u->msg);
    }
    if (done != NULL)
        done(ctx);
    pthread_mutex_unlock(&m->mu);
}

void cbx_qmap_ack(struct cbx_qmap *m, struct cbx_waiter *w, uint64_t upto)
{
    int64_t now;

    if (w->observer || w->links == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    now = cbx_now_mono_us();
    for (size_t i = 0; i < w->queues.n; i++)
        if (w->links[i].q != NULL)
            cbx_queue_ack(m, w->links[i].q, upto, now);
    pthread_mutex_unlock(&m->mu);
    if (m->hooked)
        m->log.kick(m->log.ctx); /* what it acknowledged or dropped */
}
