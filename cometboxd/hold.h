/* hold.h - held requests (long-poll, stream, SSE): starting one on a
 * request, and what the stop, the reaper and the admin socket do to all of
 * them (hold.c, hold_registry.c). The only module that knows the threads
 * mode besides serve.c. */
#ifndef CBXD_HOLD_H
#define CBXD_HOLD_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/err.h"
#include "../common/qname.h"
#include "server.h"

struct cbx_hold_params {
    enum cbx_transport transport;
    struct cbx_qlist queues;
    bool has_since;
    uint64_t since;
    long timeout;       /* long-poll hold, seconds */
    const char *origin; /* allowed CORS origin to echo, or NULL */
    char ws_accept[29]; /* WebSocket: the handshake's Sec-WebSocket-Accept */
    const struct cbx_config *cfg; /* the request's config (settings.h), kept by the hold for its life */
};
/* Subscribes and queues the answer on c; takes ownership of p->queues.
 * On failure answers an error itself. */
enum MHD_Result cbx_hold_start(struct cbx_server *s, struct MHD_Connection *c, struct cbx_hold_params *p,
                               void **con_cls);
/* Signals every held request (stop, kick --client). */
void cbx_hold_signal_all(struct cbx_server *s, unsigned flag);
/* Waits until no request is held or the deadline (monotonic µs) passes. */
bool cbx_hold_wait_empty(struct cbx_server *s, int64_t deadline_us);
/* Counts a request parked until a wake-up (cbx_server.parked), and uncounts
 * it; the last one out wakes cbx_hold_wait_unparked(). */
void cbx_park(struct cbx_server *s);
void cbx_unpark(struct cbx_server *s);

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

#endif
