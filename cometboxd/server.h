/* server.h - the daemon's shared state: struct cbx_server, its counters
 * and the reasons for refusals. Data only: each module's functions are
 * declared in that module's own header (hold.h, limits.h, publish.h, ...).
 * Not for the queue map (common/qmap.h). */
#ifndef CBXD_SERVER_H
#define CBXD_SERVER_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../common/buf.h"
#include "../common/config.h"
#include "../common/qmap.h"
#include "embedded.h"
#include "transport.h"

#define CBX_VERSION "0.1.0"

struct cbx_hold;
struct cbx_pool;
struct cbx_ip_table;
struct cbx_journal;
struct cbx_broker;
struct cbx_settings;

/* Every reason cometboxd refuses a request; counted in stats and /metrics. */
enum cbx_refusal {
    CBX_REFUSE_CONNECTIONS,     /* max-connections (503) */
    CBX_REFUSE_PER_IP,          /* max-connections-per-ip (429) */
    CBX_REFUSE_QUEUE_WAITERS,   /* max-waiters-per-queue (429) */
    CBX_REFUSE_QUEUES,          /* max-queues (503) */
    CBX_REFUSE_MEMORY,          /* max-total-bytes, max-total-messages (503): "memory-budget" */
    CBX_REFUSE_PUBLISH_AUTH,    /* publish-secret missing or wrong (401/403) */
    CBX_REFUSE_SUBSCRIBE_AUTH,  /* subscriber token missing, wrong or expired (403) */
    CBX_REFUSE_BAD_REQUEST,     /* malformed request (400, 404, 405, 415) */
    CBX_REFUSE_TOO_LARGE,       /* max-publish-bytes, max-message-bytes (413) */
    CBX_REFUSE_STOPPING,        /* the daemon is stopping (503) */
    CBX_REFUSE_REQUEST_TIMEOUT, /* request headers not in within request-timeout (connection closed) */
    CBX_REFUSE_JOURNAL,         /* the journal cannot be written (503) */
    CBX_REFUSE_BROKER,          /* broker = redis: Redis is unreachable (503) */
    CBX_REFUSE_COUNT
};

/* Counters read by `stats`; _Atomic so readers never see torn values. */
struct cbx_counters {
    _Atomic uint64_t refused[CBX_REFUSE_COUNT];
    _Atomic uint64_t publish_requests, publish_errors;
    _Atomic uint64_t browser_connections; /* open TCP connections on the browser port */
    _Atomic uint64_t publish_connections;
    _Atomic uint64_t admin_clients;       /* open connections on the admin socket (admin.c) */
    _Atomic uint64_t held[CBX_T_COUNT];   /* held requests by transport */
    _Atomic uint64_t bad_requests;
};

struct cbx_server {
    /* The config read at start: read-only after start. Read only its
     * restart-only keys here; the reloadable ones come from the config in
     * force, cbx_settings_get() (settings.h; docs/THREADS.md, "The config
     * in force"). scripts/check-layout.py checks it. */
    struct cbx_config cfg;
    /* The config in force: &cfg, or an immutable copy a reload made (kept
     * until exit). Written by settings.c only, with release; read with
     * acquire through cbx_settings_get(). */
    _Atomic(const struct cbx_config *) live;
    struct cbx_settings *settings; /* owned; where the config comes from, and the copies (settings.c) */
    struct cbx_qmap *qmap;        /* owned */
    struct cbx_journal *journal;  /* owned; NULL without a state-dir */
    struct cbx_broker *broker;    /* owned; NULL with broker = memory (broker.h) */
    struct MHD_Daemon *browser;   /* threads = per-connection: owned; pool mode: NULL (see pool) */
    struct MHD_Daemon *publisher; /* likewise */
    int browser_fd, publish_fd;   /* listening sockets, owned until handed to MHD */
    char browser_url[128], publish_url[128];
    struct cbx_embedded demo_page; /* demo = on: the demo page with our addresses in it (data owned), else empty */
    int64_t started_real_us;
    _Atomic bool stopping;
    struct cbx_counters ctr;

    /* held requests (the registry); reg_mu guards reg_* and each hold's
     * reg links. Order: reg_mu before a waiter's mu; never with the map lock. */
    pthread_mutex_t reg_mu;
    pthread_cond_t reg_empty;     /* signalled when reg_count drops to 0; CLOCK_MONOTONIC */
    /* Held requests (and publishes waiting for the journal) parked until a wake-up: suspended in libmicrohttpd (pool
     * mode: from MHD_suspend_connection until our callback runs again) or
     * waiting on their condition variable (per-connection mode). The stop
     * waits, with no time bound, until none is: libmicrohttpd must not stop
     * with a connection suspended. park_mu guards nothing but the wait on
     * park_zero, signalled when parked drops to 0. */
    _Atomic uint64_t parked;
    pthread_mutex_t park_mu;
    pthread_cond_t park_zero;     /* CLOCK_MONOTONIC */
    struct cbx_hold **reg_buckets;
    size_t reg_nbuckets, reg_count;
    _Atomic uint64_t next_conn_id; /* browser connections are numbered from 1 */
    _Atomic uint64_t admitted;     /* browser connections let in (max-connections) */

    struct cbx_ip_table *ips;     /* owned; connections per client address (limits.h) */

    int watch_fd;                 /* epoll set of held sockets, for closed peers */
    pthread_t reaper;
    bool reaper_started;
    int reaper_pipe[2];           /* written to stop the reaper */
    struct cbx_pool *pool;        /* threads = pool: our threads, driving the daemons (serve.c); owned */
};

#endif
