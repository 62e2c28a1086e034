/* limits.c - counting connections per client address (for
 * max-connections-per-ip) and refusals by reason. The table has its own
 * mutex, taken only by libmicrohttpd's connection open/close callbacks and
 * never together with another lock. Not for deciding what is refused. */
#include "limits.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "server.h"

const char *const cbx_refusal_names[CBX_REFUSE_COUNT] = {
    "max-connections", "max-connections-per-ip", "max-waiters-per-queue", "max-queues", "memory-budget",
    "publish-auth", "subscribe-auth", "bad-request", "too-large", "stopping", "request-timeout",
    "journal",
    "broker",
};

#define NBUCKETS 4096

struct ip_entry {
    struct ip_entry *next;
    uint8_t addr[16];         /* IPv4 addresses as v4-mapped IPv6 */
    unsigned refs;            /* open connections; guarded by the table's mu */
    _Atomic uint64_t admitted; /* admitted connections */
};

struct cbx_ip_table {
    pthread_mutex_t mu; /* guards buckets and every entry's next and existence */
    struct ip_entry *buckets[NBUCKETS];
};

struct cbx_ip_table *cbx_ips_create(void)
{
    struct cbx_ip_table *t = calloc(1, sizeof *t);

    if (t != NULL)
        pthread_mutex_init(&t->mu, NULL);
    return t;
}

void cbx_ips_destroy(struct cbx_ip_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < NBUCKETS; i++) {
        while (t->buckets[i] != NULL) {
            struct ip_entry *e = t->buckets[i];
            t->buckets[i] = e->next;
            free(e);
        }
    }
    pthread_mutex_destroy(&t->mu);
    free(t);
}

bool cbx_addr_key(const struct sockaddr *sa, uint8_t out[16])
{
    memset(out, 0, 16);
    if (sa != NULL && sa->sa_family == AF_INET) {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return true;
    }
    if (sa != NULL && sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        return true;
    }
    return false;
}

static bool address_of(struct MHD_Connection *c, uint8_t out[16])
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

    return cbx_addr_key(ci ? ci->client_addr : NULL, out);
}

static uint32_t hash_addr(const uint8_t addr[16])
{
    uint32_t h = 2166136261u;

    for (int i = 0; i < 16; i++)
        h = (h ^ addr[i]) * 16777619u;
    return h;
}

void *cbx_ips_acquire(struct cbx_ip_table *t, struct MHD_Connection *c)
{
    uint8_t addr[16];
    uint32_t h;
    struct ip_entry *e;

    if (!address_of(c, addr))
        return NULL;
    h = hash_addr(addr);
    pthread_mutex_lock(&t->mu);
    for (e = t->buckets[h % NBUCKETS]; e != NULL; e = e->next)
        if (memcmp(e->addr, addr, 16) == 0)
            break;
    if (e == NULL && (e = calloc(1, sizeof *e)) != NULL) {
        memcpy(e->addr, addr, 16);
        e->next = t->buckets[h % NBUCKETS];
        t->buckets[h % NBUCKETS] = e;
    }
    if (e != NULL)
        e->refs++;
    pthread_mutex_unlock(&t->mu);
    return e;
}

bool cbx_take_slot(_Atomic uint64_t *count, uint64_t max)
{
    uint64_t n = atomic_load(count);

    do {
        if (n >= max)
            return false;
    } while (!atomic_compare_exchange_weak(count, &n, n + 1));
    return true;
}

bool cbx_ips_admit(void *handle, uint64_t max)
{
    struct ip_entry *e = handle;

    return e == NULL || cbx_take_slot(&e->admitted, max);
}

void cbx_ips_release(struct cbx_ip_table *t, void *handle, bool admitted)
{
    struct ip_entry *e = handle, **pp;
    uint32_t h;

    if (e == NULL)
        return;
    h = hash_addr(e->addr);
    if (admitted)
        atomic_fetch_sub(&e->admitted, 1);
    pthread_mutex_lock(&t->mu);
    if (--e->refs == 0) {
        for (pp = &t->buckets[h % NBUCKETS]; *pp != NULL && *pp != e; pp = &(*pp)->next)
            ;
        if (*pp == e)
            *pp = e->next;
        free(e);
    }
    pthread_mutex_unlock(&t->mu);
}

void cbx_refuse(struct cbx_server *s, enum cbx_refusal why)
{
    atomic_fetch_add(&s->ctr.refused[why], 1);
    if (cbx_log_enabled(CBX_LOG_DEBUG))
        cbx_log(CBX_LOG_DEBUG, "refused: %s", cbx_refusal_names[why]);
}
