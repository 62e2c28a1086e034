/* admin.h - the admin UNIX socket server (docs/ADMIN.md), and the snapshot
 * of counters and gauges that both `cometboxctl stats` and GET /metrics
 * report. Not for the line format (common/admin_proto.h). */
#ifndef CBXD_ADMIN_H
#define CBXD_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "../common/qmap.h"
#include "server.h"

/* Creates the socket and starts serving it; -1 with a reason in err.
 * Refuses a path where another daemon answers, and a path that exists and
 * is not a socket; removes a stale socket. An empty admin-socket disables it. */
int cbx_admin_start(struct cbx_server *s, char *err, size_t errlen);
/* Stops serving, ends every admin client (tails get their end line) and
 * removes the socket when it is still the one this daemon made. Safe to call
 * when cbx_admin_start() failed or never ran. */
void cbx_admin_stop(struct cbx_server *s);

/* What admin tails add to the queue map's own figures: a tail is a waiter
 * of the map, so the map counts it in `waiters` and counts the messages it
 * gets in `delivered`; stats and /metrics take them out again. */
struct cbx_admin_counts {
    uint64_t clients;         /* admin connections open */
    uint64_t tails;           /* tails subscribed (waiters in the map) */
    uint64_t tail_delivered;  /* messages the tails took (counted in the map's delivered) */
};
void cbx_admin_counts(struct cbx_admin_counts *out);

/* One consistent-enough snapshot for stats and /metrics (metrics.c). Each
 * value is read atomically; the queue map's part is copied under its lock. */
struct cbx_stats {
    struct cbx_qmap_stats q;          /* delivered and waiters without admin tails */
    uint64_t publish_requests, publish_errors, rejected_connections, bad_requests;
    uint64_t browser_connections, publish_connections, admin_clients;
    uint64_t held[CBX_T_COUNT], held_total;
    uint64_t refused[CBX_REFUSE_COUNT];  /* requests refused, by reason (cbx_refusal_names) */
    int64_t now_real_us, started_real_us;
    uint64_t rss_bytes;               /* VmRSS of /proc/self/status; 0 when unknown */
};
void cbx_stats_collect(struct cbx_server *s, struct cbx_stats *out);

#endif
