/* waiter.c - a held request as the queue map sees it: an inbox of message
 * references and a set of flags behind the waiter's own lock, and its wake()
 * entry point. Not for linking it to queues (qmap.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmap_int.h"

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

bool cbx_waiter_add(struct cbx_waiter *w, struct cbx_msg *msg)
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
