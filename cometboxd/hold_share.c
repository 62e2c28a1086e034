/* hold_share.c - shared long-poll answers: in a fan-out each pool thread
 * answers its long-polls with one response object. Not for streams, nor for
 * per-connection mode (a thread there answers one browser). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "hold_int.h"

/* In a fan-out every long-poll on the queue answers with the same bytes. Each
 * pool thread keeps its last answer (libmicrohttpd counts the references of
 * a response) and queues it again when the next long-poll's batch is the
 * same messages, without gaps, for the same Origin: one body, one response
 * and one set of headers per thread and message instead of per browser.
 * The entry holds refs on its messages, so their addresses cannot be reused
 * while it exists. Pool mode only: a per-connection thread answers one
 * browser. */
struct shared_answer {
    struct MHD_Response *r;
    struct cbx_msg *msgs[CBX_SHARE_MAX];
    size_t n;
    bool has_origin;
    char origin[256];
};

static void share_clear(struct shared_answer *a)
{
    if (a->r != NULL)
        MHD_destroy_response(a->r);
    for (size_t i = 0; i < a->n; i++)
        cbx_msg_unref(a->msgs[i]);
    a->r = NULL;
    a->n = 0;
}

/* Only pool threads have a shared answer to keep. */
bool cbx_share_fits(const struct cbx_hold *h, size_t n)
{
    return h->share != NULL && h->w.n_gaps == 0 && n > 0 && n <= CBX_SHARE_MAX &&
           (h->origin == NULL || strlen(h->origin) < sizeof ((struct shared_answer *)0)->origin);
}

/* Each pool thread's shared answer: made on first use in that thread,
 * freed when it exits, after its daemons are stopped or not (libmicrohttpd
 * counts the references of a response). */
static pthread_key_t share_key;
static pthread_once_t share_once = PTHREAD_ONCE_INIT;

static void share_free(void *p)
{
    share_clear(p);
    free(p);
}

static void share_key_init(void)
{
    if (pthread_key_create(&share_key, share_free) != 0)
        cbx_log(CBX_LOG_WARN, "no thread key: long-poll answers are not shared");
}

struct shared_answer *cbx_share_mine(void)
{
    struct shared_answer *a;

    pthread_once(&share_once, share_key_init);
    a = pthread_getspecific(share_key);
    if (a == NULL && (a = calloc(1, sizeof *a)) != NULL && pthread_setspecific(share_key, a) != 0) {
        free(a);
        a = NULL;
    }
    return a;
}

struct MHD_Response *cbx_share_find(const struct shared_answer *a, const struct cbx_hold *h,
                                       struct cbx_msg *const *msgs, size_t n)
{
    if (a->r == NULL || a->n != n || a->has_origin != (h->origin != NULL) ||
        (h->origin != NULL && strcmp(a->origin, h->origin) != 0))
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (a->msgs[i] != msgs[i])
            return NULL;
    return a->r;
}

/* Keeps r as this thread's answer for msgs; the caller's reference passes to
 * the entry. */
void cbx_share_keep(struct shared_answer *a, const struct cbx_hold *h, struct MHD_Response *r,
                       struct cbx_msg *const *msgs, size_t n)
{
    share_clear(a);
    a->r = r;
    for (size_t i = 0; i < n; i++)
        a->msgs[i] = cbx_msg_ref(msgs[i]);
    a->n = n;
    a->has_origin = h->origin != NULL;
    if (h->origin != NULL)
        snprintf(a->origin, sizeof a->origin, "%s", h->origin);
}
