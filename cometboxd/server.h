/* server.h - the daemon's shared state: struct cbx_server, its counters
 * and the reasons for refusals. Each module's functions are declared in
 * that module's own header (limits.h, publish.h, ...), not here; the
 * declarations still below belong to hold.c, http.c and reaper.c until
 * those get their headers (issue 17). Not for the queue map (common/qmap.h). */
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
    struct cbx_config cfg;        /* read-only after start */
    struct cbx_qmap *qmap;        /* owned */
    struct MHD_Daemon *browser;   /* owned */
    struct MHD_Daemon *publisher; /* owned */
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

    struct cbx_ip_table *ips;     /* owned; connections per client address (limits.h) */

    int watch_fd;                 /* epoll set of held sockets, for closed peers */
    pthread_t reaper;
    bool reaper_started;
    int reaper_pipe[2];           /* written to stop the reaper */
    /* pool mode: the reaper's wake-up connection to the browser port
     * (docs/THREADS.md, "A stalled epoll loop"); wake_addr is written
     * before wake_ready is set, then read-only */
    struct sockaddr_storage wake_addr;
    socklen_t wake_len;
    _Atomic bool wake_ready;
    _Atomic unsigned wake_port;   /* local port of the current one, not counted as a browser */
};

/* http.c: shared answer helpers. */
struct MHD_Daemon *cbx_http_start(struct cbx_server *s, int listen_fd, unsigned limit,
                                  MHD_AccessHandlerCallback handler, bool browser, char *err, size_t errlen);
/* A whole answer with this body (copied) and Content-Type, for the publish port. */
enum MHD_Result cbx_http_send(struct MHD_Connection *c, unsigned status, const char *content_type, const char *body,
                              size_t len);
enum MHD_Result cbx_http_json(struct MHD_Connection *c, unsigned status, const char *body, size_t len);
enum MHD_Result cbx_http_error(struct MHD_Connection *c, unsigned status, const char *code, const char *detail);
/* The browser port's errors carry the CORS headers of an allowed origin
 * (NULL: none), so a page on another site can read them. */
enum MHD_Result cbx_http_error_cors(struct MHD_Connection *c, const char *origin, unsigned status, const char *code,
                                    const char *detail);
/* An error answer after which the connection is closed (a refused connection). */
enum MHD_Result cbx_http_refuse(struct MHD_Connection *c, const char *origin, unsigned status, const char *code,
                                const char *detail);
enum MHD_Result cbx_http_not_allowed(struct MHD_Connection *c, const char *origin, const char *method,
                                     const char *allow);
/* Access-Control-Allow-Origin and friends for an allowed origin (NULL: nothing). */
void cbx_http_cors_headers(struct MHD_Response *r, const char *origin);
void cbx_http_common_headers(struct MHD_Response *r);
/* False, with the reason in why, when the request's query has a parameter
 * not in known (NULL-terminated, at most 32 names) or one of them twice: a
 * misspelt parameter (sinse=5) must not be ignored silently. */
bool cbx_http_args_known(struct MHD_Connection *c, const char *const *known, char *why, size_t whylen);
/* libmicrohttpd's unescape callback: %HH except %00. */
size_t cbx_http_unescape(void *cls, struct MHD_Connection *c, char *s);

/* hold.c: held requests, and the only code that knows the threads mode. */
struct cbx_hold_params {
    enum cbx_transport transport;
    struct cbx_qlist queues;
    bool has_since;
    uint64_t since;
    long timeout;       /* long-poll hold, seconds */
    const char *origin; /* allowed CORS origin to echo, or NULL */
};
/* Subscribes and queues the answer on c; takes ownership of p->queues.
 * On failure answers an error itself. */
enum MHD_Result cbx_hold_start(struct cbx_server *s, struct MHD_Connection *c, struct cbx_hold_params *p,
                               void **con_cls);
/* Called by the browser handler when libmicrohttpd calls it again for a
 * suspended long-poll (pool mode, after the resume). */
enum MHD_Result cbx_hold_continue(struct MHD_Connection *c, struct cbx_hold *h);
void cbx_hold_completed(struct cbx_server *s, struct cbx_hold *h, bool clean);
/* Signals every held request (stop, kick --client). */
void cbx_hold_signal_all(struct cbx_server *s, unsigned flag);
/* Waits until no request is held or the deadline (monotonic µs) passes. */
bool cbx_hold_wait_empty(struct cbx_server *s, int64_t deadline_us);
/* Waits until no held request is parked (see cbx_server.parked), with no
 * deadline; logs every few seconds while some are. Call after
 * cbx_hold_signal_all(s, CBX_W_STOP), which wakes every one. */
void cbx_hold_wait_unparked(struct cbx_server *s);
/* Initializes the registry's and the park's locks and conditions, their
 * timed waits on CLOCK_MONOTONIC. 0, or -1 when out of resources. */
int cbx_hold_registry_init(struct cbx_server *s);
/* Called by the reaper: timeouts, heartbeats, stream ages. */
void cbx_hold_tick(struct cbx_server *s, int64_t now_us);
/* Called by the reaper when the socket of client id closed. */
void cbx_hold_peer_closed(struct cbx_server *s, uint64_t client_id);
/* Called by the reaper when the peer of client id shut down its sending
 * side only (a FIN): the hold goes on; a stream is probed with a heartbeat. */
void cbx_hold_peer_half_closed(struct cbx_server *s, uint64_t client_id);

/* One row per held request, for the admin `clients` command. */
struct cbx_client_info {
    uint64_t id;
    char addr[64];
    enum cbx_transport transport;
    char queues[CBX_QLIST_MAX * (CBX_QNAME_MAX + 1)];
    uint64_t cursor;   /* last id handed to it (or its since) */
    int64_t since_us;  /* connected since, wall clock */
};
/* Rows for every held request, or those on queue (owned array; free()). */
enum cbx_err cbx_hold_list(struct cbx_server *s, const char *queue, struct cbx_client_info **rows, size_t *n);
/* Sets flag (with reason, for a kick) on one held request; CBX_ERR_NOT_FOUND when none has that id. */
enum cbx_err cbx_hold_signal_client(struct cbx_server *s, uint64_t client_id, unsigned flag, const char *reason);

/* reaper.c */
int cbx_reaper_start(struct cbx_server *s);
/* Records where the reaper's wake-up connections go: the browser port's
 * address, with the loopback address for a wildcard. Call once the
 * browser socket listens. */
void cbx_reaper_target(struct cbx_server *s, int listen_fd);
/* True when a new browser connection from addr is the reaper's own. */
bool cbx_reaper_is_wake(struct cbx_server *s, const struct sockaddr *addr);
void cbx_reaper_stop(struct cbx_server *s);

/* Request context kinds, so the completion callback knows what it got. */
enum cbx_ctx_kind { CBX_CTX_HOLD = 1, CBX_CTX_PUBLISH, CBX_CTX_DONE };

/* TRANSITIONAL (issue 17): the functions of limits.c, listen.c, browser.c,
 * publish.c and transport's names that hold.c, http.c, reaper.c and main.c
 * call, declared again here only because those files include nothing but
 * server.h for them. Each is declared in its module's header too; the
 * compiler checks that the two agree in limits.c, browser.c and publish.c,
 * which see both (listen.c does not include server.h). Delete this
 * block once those files include limits.h, listen.h, browser.h and
 * publish.h, and use cbx_transport_name() (transport.h). */
struct cbx_ip_table *cbx_ips_create(void);                            /* limits.h: main.c */
void cbx_ips_destroy(struct cbx_ip_table *t);                         /* limits.h: main.c */
bool cbx_addr_key(const struct sockaddr *sa, uint8_t out[16]);        /* limits.h: reaper.c */
void cbx_refuse(struct cbx_server *s, enum cbx_refusal why);          /* limits.h: hold.c */
int cbx_listen_tcp(const char *spec, char *url, size_t url_len, char *err, size_t errlen); /* listen.h: main.c */
enum MHD_Result cbx_browser_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                    const char *version, const char *upload_data, size_t *upload_data_size,
                                    void **con_cls);                  /* browser.h: main.c */
int cbx_browser_demo_prepare(struct cbx_server *s);                   /* browser.h: main.c */
enum MHD_Result cbx_publish_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                    const char *version, const char *upload_data, size_t *upload_data_size,
                                    void **con_cls);                  /* publish.h: main.c */
void cbx_publish_completed(void *con_cls);                            /* publish.h: http.c */
/* Defined in http.c, used by hold.c; transport.c's cbx_transport_name()
 * replaces it (then the definition in http.c goes too). */
extern const char *const cbx_transport_names[CBX_T_COUNT];

#endif
