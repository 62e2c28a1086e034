/* hold_registry.c - every held request by client id: what a stop, a
 * kick, the reaper's ticks and the admin `clients` command reach them
 * through. reg_mu guards the registry and each hold's reg_next and
 * deadline_signalled; order: reg_mu before a waiter's mu, never with the
 * map lock. Not for a hold's own life (hold.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "hold.h"
#include "hold_int.h"
#include "server.h"

static size_t reg_slot(struct cbx_server *s, uint64_t id) { return (size_t)(id * 11400714819323198485ull) & (s->reg_nbuckets - 1); }

static void reg_grow(struct cbx_server *s)
{
    size_t n = s->reg_nbuckets * 2;
    struct cbx_hold **b = calloc(n, sizeof *b);
    struct cbx_hold **old = s->reg_buckets;
    size_t oldn = s->reg_nbuckets;

    if (b == NULL)
        return;
    s->reg_buckets = b;
    s->reg_nbuckets = n;
    for (size_t i = 0; i < oldn; i++) {
        struct cbx_hold *h = old[i];
        while (h != NULL) {
            struct cbx_hold *next = h->reg_next;
            size_t k = reg_slot(s, hold_client_id(h));
            h->reg_next = b[k];
            b[k] = h;
            h = next;
        }
    }
    free(old);
}

void cbx_hold_reg_add(struct cbx_server *s, struct cbx_hold *h)
{
    pthread_mutex_lock(&s->reg_mu);
    if (s->reg_count >= s->reg_nbuckets)
        reg_grow(s);
    size_t k = reg_slot(s, hold_client_id(h));
    h->reg_next = s->reg_buckets[k];
    s->reg_buckets[k] = h;
    s->reg_count++;
    pthread_mutex_unlock(&s->reg_mu);
}

void cbx_hold_reg_remove(struct cbx_server *s, struct cbx_hold *h)
{
    pthread_mutex_lock(&s->reg_mu);
    struct cbx_hold **pp = &s->reg_buckets[reg_slot(s, hold_client_id(h))];
    while (*pp != NULL && *pp != h)
        pp = &(*pp)->reg_next;
    if (*pp == h) {
        *pp = h->reg_next;
        if (--s->reg_count == 0)
            pthread_cond_broadcast(&s->reg_empty);
    }
    pthread_mutex_unlock(&s->reg_mu);
}

void cbx_hold_peer_address(struct MHD_Connection *c, char *out, size_t len)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;

    snprintf(out, len, "?");
    if (sa != NULL && sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)sa;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        snprintf(out, len, "%s:%u", ip, ntohs(a->sin_port));
    } else if (sa != NULL && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)sa;
        char ip[INET6_ADDRSTRLEN];
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) /* an IPv4 browser on a dual-stack socket */
            inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], ip, sizeof ip);
        else
            inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        snprintf(out, len, IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) ? "%s:%u" : "[%s]:%u", ip, ntohs(a->sin6_port));
    }
}

void cbx_hold_signal_all(struct cbx_server *s, unsigned flag)
{
    pthread_mutex_lock(&s->reg_mu);
    for (size_t i = 0; i < s->reg_nbuckets; i++)
        for (struct cbx_hold *h = s->reg_buckets[i]; h != NULL; h = h->reg_next)
            cbx_waiter_signal(&h->w, flag, NULL);
    pthread_mutex_unlock(&s->reg_mu);
}

static struct timespec mono_timespec(int64_t us)
{
    return (struct timespec){ .tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000 };
}

static int cond_init_monotonic(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    int rc;

    if (pthread_condattr_init(&attr) != 0)
        return -1;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 && pthread_cond_init(cond, &attr) == 0 ? 0 : -1;
    pthread_condattr_destroy(&attr);
    return rc;
}

int cbx_hold_registry_init(struct cbx_server *s)
{
    if (pthread_mutex_init(&s->reg_mu, NULL) != 0 || pthread_mutex_init(&s->park_mu, NULL) != 0)
        return -1;
    return cond_init_monotonic(&s->reg_empty) == 0 && cond_init_monotonic(&s->park_zero) == 0 ? 0 : -1;
}

bool cbx_hold_wait_empty(struct cbx_server *s, int64_t deadline_us)
{
    struct timespec ts = mono_timespec(deadline_us);
    bool empty;

    pthread_mutex_lock(&s->reg_mu);
    while (s->reg_count > 0)
        if (pthread_cond_timedwait(&s->reg_empty, &s->reg_mu, &ts) == ETIMEDOUT)
            break;
    empty = s->reg_count == 0;
    pthread_mutex_unlock(&s->reg_mu);
    return empty;
}

void cbx_park(struct cbx_server *s)
{
    atomic_fetch_add(&s->parked, 1);
}

void cbx_unpark(struct cbx_server *s)
{
    if (atomic_fetch_sub(&s->parked, 1) == 1) {
        pthread_mutex_lock(&s->park_mu);
        pthread_cond_broadcast(&s->park_zero);
        pthread_mutex_unlock(&s->park_mu);
    }
}

void cbx_hold_wait_unparked(struct cbx_server *s)
{
    int64_t next_note = cbx_now_mono_us() + 2000000;

    pthread_mutex_lock(&s->park_mu);
    while (atomic_load(&s->parked) > 0) {
        struct timespec ts = mono_timespec(next_note);
        if (pthread_cond_timedwait(&s->park_zero, &s->park_mu, &ts) == ETIMEDOUT) {
            /* no deadline: stopping libmicrohttpd now would abort or drop answers */
            cbx_log(CBX_LOG_WARN, "stopping: %llu held requests are still parked on busy threads; waiting for them",
                    (unsigned long long)atomic_load(&s->parked));
            next_note = cbx_now_mono_us() + 5000000;
        }
    }
    pthread_mutex_unlock(&s->park_mu);
}

void cbx_hold_tick(struct cbx_server *s, int64_t now)
{
    pthread_mutex_lock(&s->reg_mu);
    for (size_t i = 0; i < s->reg_nbuckets; i++) {
        for (struct cbx_hold *h = s->reg_buckets[i]; h != NULL; h = h->reg_next) {
            if (!h->deadline_signalled && now >= h->deadline_us) {
                h->deadline_signalled = true;
                cbx_waiter_signal(&h->w, h->transport == CBX_T_POLL ? CBX_W_TIMEOUT : CBX_W_MAXAGE, NULL);
            } else if (h->transport != CBX_T_POLL && now - atomic_load(&h->last_write_us) >= h->cfg->heartbeat * 1000000) {
                atomic_store(&h->last_write_us, now);
                cbx_waiter_signal(&h->w, CBX_W_HEARTBEAT, NULL);
            }
        }
    }
    pthread_mutex_unlock(&s->reg_mu);
}

void cbx_hold_peer_closed(struct cbx_server *s, uint64_t client_id)
{
    cbx_hold_signal_client(s, client_id, CBX_W_GONE, NULL);
}

void cbx_hold_peer_half_closed(struct cbx_server *s, uint64_t client_id)
{
    bool stream = false;

    pthread_mutex_lock(&s->reg_mu);
    for (struct cbx_hold *h = s->reg_buckets[reg_slot(s, client_id)]; h != NULL; h = h->reg_next) {
        if (hold_client_id(h) == client_id) {
            stream = h->transport != CBX_T_POLL;
            /* A stream writes a heartbeat at once: a peer that closed for
             * good answers it with a reset, which the reaper then sees. A
             * long-poll has nothing to write before its answer; it is
             * answered as usual, and a dead peer's reset comes then. */
            if (stream)
                cbx_waiter_signal(&h->w, CBX_W_HEARTBEAT, NULL);
            break;
        }
    }
    pthread_mutex_unlock(&s->reg_mu);
    cbx_log(CBX_LOG_DEBUG, "client %llu: peer half-closed; its answer is still sent%s", (unsigned long long)client_id,
            stream ? " (a heartbeat probes whether it is gone)" : "");
}

enum cbx_err cbx_hold_list(struct cbx_server *s, const char *queue, struct cbx_client_info **rows, size_t *n)
{
    struct cbx_client_info *out = NULL;
    size_t count = 0;
    enum cbx_err rc = CBX_OK;

    pthread_mutex_lock(&s->reg_mu);
    if (s->reg_count > 0 && (out = calloc(s->reg_count, sizeof *out)) == NULL) {
        rc = CBX_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < s->reg_nbuckets; i++) {
        for (struct cbx_hold *h = s->reg_buckets[i]; h != NULL; h = h->reg_next) {
            struct cbx_client_info *r = &out[count];
            bool match = queue == NULL;
            r->queues[0] = '\0';
            for (size_t k = 0; k < h->w.queues.n; k++) {
                if (queue != NULL && strcmp(queue, h->w.queues.names[k]) == 0)
                    match = true;
                if (k > 0)
                    strcat(r->queues, ",");
                strcat(r->queues, h->w.queues.names[k]);
            }
            if (!match)
                continue;
            r->id = hold_client_id(h);
            cbx_hold_peer_address(h->conn, r->addr, sizeof r->addr); /* formatted here, not per request */
            r->transport = h->transport;
            r->cursor = atomic_load(&h->cursor);
            r->since_us = h->since_real_us;
            count++;
        }
    }
out:
    pthread_mutex_unlock(&s->reg_mu);
    *rows = out;
    *n = count;
    return rc;
}

enum cbx_err cbx_hold_signal_client(struct cbx_server *s, uint64_t client_id, unsigned flag, const char *reason)
{
    enum cbx_err rc = CBX_ERR_NOT_FOUND;

    pthread_mutex_lock(&s->reg_mu);
    for (struct cbx_hold *h = s->reg_buckets[reg_slot(s, client_id)]; h != NULL; h = h->reg_next) {
        if (hold_client_id(h) == client_id) {
            cbx_waiter_signal(&h->w, flag, reason);
            rc = CBX_OK;
            break;
        }
    }
    pthread_mutex_unlock(&s->reg_mu);
    return rc;
}

/* ---- a hold's bookkeeping (hold.c and hold_ws.c) ----------------------- */

void cbx_hold_park(struct cbx_hold *h)
{
    h->parked = true;
    cbx_park(h->srv);
}

/* Called by the connection's own thread once it runs again after a wait. */
void cbx_hold_unpark(struct cbx_hold *h)
{
    if (!h->parked)
        return;
    h->parked = false;
    cbx_unpark(h->srv);
}

void cbx_hold_note_sent(struct cbx_hold *h, struct cbx_msg **msgs, size_t n)
{
    if (n > 0)
        atomic_store(&h->cursor, msgs[n - 1]->id);
    for (size_t i = 0; i < n; i++)
        cbx_msg_unref(msgs[i]);
}

/* A request stops counting as held when its answer is complete, before the
 * browser can see it: then `stats` never shows one that has been answered. */
void cbx_hold_uncount(struct cbx_hold *h)
{
    if (h->counted) {
        h->counted = false;
        atomic_fetch_sub(&h->srv->ctr.held[h->transport], 1);
    }
}
