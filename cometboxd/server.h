/* server.h - the daemon's shared state and the entry points between its
 * files: listeners, held requests, the publish endpoint, the reaper.
 * Not for the queue map itself (common/qmap.h). */
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

#define CBX_VERSION "0.1.0"

enum cbx_transport { CBX_T_POLL, CBX_T_STREAM, CBX_T_SSE, CBX_T_COUNT };
extern const char *const cbx_transport_names[CBX_T_COUNT];

struct cbx_hold;
struct cbx_pool;
struct cbx_ip_table;

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
    CBX_REFUSE_COUNT
};
extern const char *const cbx_refusal_names[CBX_REFUSE_COUNT];

/* Counters read by `stats`; _Atomic so readers never see torn values. */
struct cbx_counters {
    _Atomic uint64_t refused[CBX_REFUSE_COUNT];
    _Atomic uint64_t publish_requests, publish_errors;
    _Atomic uint64_t browser_connections; /* open TCP connections on the browser port */
    _Atomic uint64_t publish_connections;
    _Atomic uint64_t held[CBX_T_COUNT];   /* held requests by transport */
    _Atomic uint64_t bad_requests;
};

struct cbx_server {
    struct cbx_config cfg;        /* read-only after start */
    struct cbx_qmap *qmap;        /* owned */
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
    /* Held requests parked until a wake-up: suspended in libmicrohttpd (pool
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

    struct cbx_ip_table *ips;     /* connections per client address (limits.c) */

    int watch_fd;                 /* epoll set of held sockets, for closed peers */
    pthread_t reaper;
    bool reaper_started;
    int reaper_pipe[2];           /* written to stop the reaper */
    struct cbx_pool *pool;        /* threads = pool: our threads, driving the daemons (serve.c); owned */
};

/* listen.c: makes a listening TCP socket for "HOST:PORT", "*:PORT" or
 * "[V6]:PORT"; writes http://ADDR:PORT into url. -1 with a message in err. */
int cbx_listen_tcp(const char *spec, char *url, size_t url_len, char *err, size_t errlen);

/* browser.c: the browser port. */
enum MHD_Result cbx_browser_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                    const char *version, const char *upload_data, size_t *upload_data_size,
                                    void **con_cls);

/* The demo page with the publish URL and admin socket of this daemon in
 * place of its placeholders, in s->demo_page (nothing when demo is off).
 * Call once the listeners know their addresses. -1 when out of memory. */
int cbx_browser_demo_prepare(struct cbx_server *s);

/* publish.c: the publish port. */
enum MHD_Result cbx_publish_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                    const char *version, const char *upload_data, size_t *upload_data_size,
                                    void **con_cls);

/* metrics.c: answers GET /metrics on the publish port (Prometheus text). */
enum MHD_Result cbx_metrics_answer(struct cbx_server *s, struct MHD_Connection *c);

/* limits.c: connections per client address. Connections are counted when
 * they are admitted (at their first request), not when accepted, so a burst
 * of new connections is judged in arrival order. */
struct cbx_ip_table *cbx_ips_create(void);
void cbx_ips_destroy(struct cbx_ip_table *t);
/* Finds or makes the entry of c's address; returns a handle for release. */
void *cbx_ips_acquire(struct cbx_ip_table *t, struct MHD_Connection *c);
/* Counts one more admitted connection of handle's address unless max are. */
bool cbx_ips_admit(void *handle, uint64_t max);
/* Adds one to *count unless it is max already; true when it did. */
bool cbx_take_slot(_Atomic uint64_t *count, uint64_t max);
/* Forgets a connection (admitted or not). */
void cbx_ips_release(struct cbx_ip_table *t, void *handle, bool admitted);
/* The 16 bytes that name sa's IP address (IPv4 as ::ffff:a.b.c.d); false,
 * and zeros, for NULL or another family. */
bool cbx_addr_key(const struct sockaddr *sa, uint8_t out[16]);
/* Counts a refusal and logs it at debug level. */
void cbx_refuse(struct cbx_server *s, enum cbx_refusal why);

/* reaper.c */
int cbx_reaper_start(struct cbx_server *s);
void cbx_reaper_stop(struct cbx_server *s);

#endif
