/* stats.h - one snapshot of the daemon's counters and gauges, the figures
 * that both the admin `stats` command and GET /metrics report. Not for
 * showing them (admin_cmd.c, metrics.c) nor for rates (admin_cmd.c). */
#ifndef CBXD_STATS_H
#define CBXD_STATS_H

#include <stdint.h>

#include "../common/journal.h"
#include "broker.h"
#include "../common/qmap.h"
#include "server.h"
#include "transport.h"

/* Each value is read atomically, the queue map's part copied under its
 * lock: consistent enough, never torn. Admin tails are observers of the
 * map, so q.waiters and q.delivered count browsers' requests only. */
struct cbx_stats {
    struct cbx_qmap_stats q;
    uint64_t publish_requests, publish_errors, rejected_connections, bad_requests;
    uint64_t browser_connections, publish_connections, admin_clients;
    uint64_t held[CBX_T_COUNT], held_total;
    uint64_t refused[CBX_REFUSE_COUNT];  /* requests refused, by reason (cbx_refusal_names) */
    int64_t now_real_us, started_real_us;
    uint64_t rss_bytes;               /* VmRSS of /proc/self/status; 0 when unknown */
    bool journal_on;                  /* a state-dir is set: j is filled in */
    struct cbx_journal_stats j;
    bool broker_on;                   /* broker = redis: b is filled in */
    struct cbx_broker_stats b;
};

void cbx_stats_collect(struct cbx_server *s, struct cbx_stats *out);

#endif
