/* stats.c - the snapshot of counters and gauges that `stats` and /metrics
 * both read. It only reads: each counter belongs to the module that counts
 * it. Not for formatting (admin_cmd.c, metrics.c). */
#include "stats.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/* VmRSS of this process in bytes, 0 when /proc cannot tell. */
static uint64_t read_rss(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    unsigned long long kb = 0;

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
            break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

void cbx_stats_collect(struct cbx_server *s, struct cbx_stats *out)
{
    memset(out, 0, sizeof *out);
    cbx_qmap_stats(s->qmap, &out->q);
    if ((out->journal_on = s->journal != NULL))
        cbx_journal_stats(s->journal, &out->j);
    if ((out->broker_on = s->broker != NULL))
        cbx_broker_stats(s->broker, &out->b);
    out->publish_requests = atomic_load(&s->ctr.publish_requests);
    out->publish_errors = atomic_load(&s->ctr.publish_errors);
    out->rejected_connections = atomic_load(&s->ctr.refused[CBX_REFUSE_CONNECTIONS]);
    out->bad_requests = atomic_load(&s->ctr.bad_requests);
    out->browser_connections = atomic_load(&s->ctr.browser_connections);
    out->publish_connections = atomic_load(&s->ctr.publish_connections);
    out->admin_clients = atomic_load(&s->ctr.admin_clients);
    for (int t = 0; t < CBX_T_COUNT; t++) {
        out->held[t] = atomic_load(&s->ctr.held[t]);
        out->held_total += out->held[t];
    }
    for (int r = 0; r < CBX_REFUSE_COUNT; r++)
        out->refused[r] = atomic_load(&s->ctr.refused[r]);
    out->now_real_us = cbx_now_real_us();
    out->started_real_us = s->started_real_us;
    out->rss_bytes = read_rss();
}
