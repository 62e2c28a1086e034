/* admin_tail.c - admin tails: each is an observer of the queue map
 * (struct cbx_waiter.observer), so it gets every message of its queues but
 * counts nowhere, acknowledges nothing and is not kicked. Its wake() only
 * rings the admin thread's eventfd; that thread moves the messages into the
 * client's output. Not for the connection (admin.c) nor other commands. */
#include "admin_tail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/admin_proto.h"
#include "../common/buf.h"
#include "../common/msg.h"
#include "../common/qmap.h"
#include "../common/qname.h"
#include "broker.h"
#include "server.h"

#define TAILS_PER_CLIENT 16
#define TAIL_INBOX_MAX 10000       /* messages a tail may have waiting before it ends with "overflow" */
#define TAIL_TAKE 256

/* Called by the map with the waiter's mu held (often the map lock too):
 * only rings the eventfd, once until the thread looks. */
static void tail_wake(struct cbx_waiter *w)
{
    struct cbx_admin_tail *t = (struct cbx_admin_tail *)w;
    uint64_t one = 1;

    if (!atomic_exchange(&t->a->rung, true)) {
        ssize_t r = write(t->a->evfd, &one, sizeof one); /* non-blocking; never full in practice */
        (void)r;
    }
}

void cbx_admin_tail_end(struct cbx_admin_client *c, struct cbx_admin_tail *t, const char *reason)
{
    if (reason != NULL)
        cbx_admin_reply_end(&c->out, t->id, reason);
    cbx_qmap_unsubscribe(t->a->s->qmap, &t->w);
    cbx_waiter_cleanup(&t->w); /* drops what is still in the inbox */
    for (struct cbx_admin_tail **p = &c->tails; *p != NULL; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            break;
        }
    }
    c->ntails--;
    free(t);
}

void cbx_admin_tail_drain(struct cbx_admin_client *c, struct cbx_admin_tail *t)
{
    struct cbx_msg *msgs[TAIL_TAKE];
    unsigned flags;
    size_t n;

    do {
        if (c->out.len - c->out_off > CBX_ADMIN_OUT_SOFT_MAX)
            return; /* taken again when the client has read (admin.c, client_flush) */
        n = cbx_waiter_take(&t->w, msgs, TAIL_TAKE, &flags);
        for (size_t i = 0; i < n; i++) {
            cbx_admin_reply_message(&c->out, t->id, msgs[i]->json, msgs[i]->len);
            cbx_msg_unref(msgs[i]);
        }
        /* (a kick passes observers by: no CBX_W_KICK comes here) */
        if (flags & CBX_W_OVERFLOW) {
            cbx_admin_tail_end(c, t, "overflow");
            return;
        }
        if (flags & CBX_W_STOP) {
            cbx_admin_tail_end(c, t, "stopping");
            return;
        }
    } while (n == TAIL_TAKE);
}

enum cbx_err cbx_admin_tail_cmd(struct cbx_admin *a, struct cbx_admin_client *c, const struct cbx_admin_request *r,
                                cJSON *res, char *err, size_t errlen)
{
    const cJSON *qs = cbx_admin_arg(r, "queues"), *el;
    struct cbx_admin_tail *t = NULL;
    struct cbx_buf names;
    char detail[256];
    cJSON *copy;
    enum cbx_err rc;
    size_t n;

    n = cJSON_IsArray(qs) ? (size_t)cJSON_GetArraySize(qs) : 0;
    if (n < 1 || n > CBX_QLIST_MAX) {
        snprintf(err, errlen, "tail: \"queues\" must be an array of 1 to %d queue names", CBX_QLIST_MAX);
        return CBX_ERR_INVALID;
    }
    if (c->ntails >= TAILS_PER_CLIENT) {
        snprintf(err, errlen, "tail: at most %d tails on one connection", TAILS_PER_CLIENT);
        return CBX_ERR_FULL;
    }
    if ((t = calloc(1, sizeof *t)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return CBX_ERR_NOMEM;
    }
    cbx_waiter_init(&t->w);
    /* the names as a browser's queue list "a,b", so they pass the same checks */
    cbx_buf_init(&names);
    cJSON_ArrayForEach(el, qs) {
        if (!cJSON_IsString(el) || strchr(el->valuestring, ',') != NULL) {
            snprintf(err, errlen, "tail: \"queues\" must be an array of queue names");
            rc = CBX_ERR_INVALID;
            goto fail;
        }
        if (names.len > 0)
            cbx_buf_add(&names, ",", 1);
        cbx_buf_adds(&names, el->valuestring);
    }
    if (!names.ok) {
        snprintf(err, errlen, "out of memory");
        rc = CBX_ERR_NOMEM;
        goto fail;
    }
    if ((rc = cbx_qlist_parse(names.s, &t->w.queues, detail, sizeof detail)) != CBX_OK) {
        snprintf(err, errlen, "tail: %s", detail);
        goto fail;
    }
    t->a = a;
    t->c = c;
    snprintf(t->id, sizeof t->id, "%s", r->id);
    t->w.wake = tail_wake;
    t->w.observer = true; /* counted nowhere, acknowledges nothing, not kicked (qmap.h) */
    t->w.inbox_max = TAIL_INBOX_MAX;
    /* no since and limit 0: nothing old is taken; linked from now on (an
     * observer is never refused for max-waiters-per-queue, nor max-queues) */
    rc = cbx_qmap_subscribe(a->s->qmap, &t->w, false, 0, 0, true);
    if (rc != CBX_OK) {
        snprintf(err, errlen, "%s", rc == CBX_ERR_STOPPING ? "the daemon is stopping" : cbx_strerror(rc));
        cbx_qmap_unsubscribe(a->s->qmap, &t->w);
        goto fail;
    }
    /* broker = redis: the node follows the queues in Redis from now on
     * (not answered: the tail begins with the first change after the load;
     * docs/SCALING.md) */
    if (a->s->broker != NULL)
        (void)cbx_broker_sync(a->s->broker, &t->w.queues, false, 0, NULL);
    cbx_buf_free(&names);
    t->next = c->tails;
    c->tails = t;
    c->ntails++;
    copy = cJSON_Duplicate(qs, true);
    if (copy == NULL || !cJSON_AddItemToObject(res, "queues", copy)) {
        cJSON_Delete(copy);
        cbx_admin_tail_end(c, t, NULL);
        snprintf(err, errlen, "out of memory");
        return CBX_ERR_NOMEM;
    }
    return CBX_OK;
fail:
    cbx_buf_free(&names);
    cbx_waiter_cleanup(&t->w);
    free(t);
    return rc;
}
