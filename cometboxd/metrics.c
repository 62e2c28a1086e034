/* metrics.c - GET /metrics on the publish port: the counters and gauges of
 * `cometboxctl stats` in the Prometheus text exposition format (0.0.4), and
 * the snapshot both of them read (cbx_stats_collect). Rates are not
 * exported: Prometheus computes them from the counters. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "http.h"
#include "server.h"

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
    struct cbx_admin_counts ac;

    memset(out, 0, sizeof *out);
    /* the admin figures first: a tail that takes messages meanwhile makes
     * delivered at most a little high, never lower than it was */
    cbx_admin_counts(&ac);
    cbx_qmap_stats(s->qmap, &out->q);
    out->q.delivered = out->q.delivered >= ac.tail_delivered ? out->q.delivered - ac.tail_delivered : 0;
    out->q.waiters = out->q.waiters >= ac.tails ? out->q.waiters - ac.tails : 0;
    out->publish_requests = atomic_load(&s->ctr.publish_requests);
    out->publish_errors = atomic_load(&s->ctr.publish_errors);
    out->rejected_connections = atomic_load(&s->ctr.refused[CBX_REFUSE_CONNECTIONS]);
    out->bad_requests = atomic_load(&s->ctr.bad_requests);
    out->browser_connections = atomic_load(&s->ctr.browser_connections);
    out->publish_connections = atomic_load(&s->ctr.publish_connections);
    out->admin_clients = ac.clients;
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

static void metric(struct cbx_buf *b, const char *name, const char *type, const char *help, uint64_t v)
{
    cbx_buf_addf(b, "# HELP cometbox_%s %s\n# TYPE cometbox_%s %s\ncometbox_%s %llu\n", name, help, name, type,
                 name, (unsigned long long)v);
}

enum MHD_Result cbx_metrics_answer(struct cbx_server *s, struct MHD_Connection *c)
{
    struct cbx_stats st;
    struct cbx_buf b;
    enum MHD_Result ret = MHD_NO;

    cbx_stats_collect(s, &st);
    cbx_buf_init(&b);
    cbx_buf_addf(&b, "# HELP cometbox_info The running cometboxd, as labels.\n# TYPE cometbox_info gauge\n"
                     "cometbox_info{version=\"%s\",threads=\"%s\"} 1\n",
                 CBX_VERSION, s->cfg.threads == CBX_THREADS_POOL ? "pool" : "per-connection");
    cbx_buf_addf(&b, "# HELP process_start_time_seconds Start time of the process since the Unix epoch.\n"
                     "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.3f\n",
                 (double)st.started_real_us / 1e6);
    cbx_buf_addf(&b, "# HELP cometbox_uptime_seconds Seconds since cometboxd started.\n"
                     "# TYPE cometbox_uptime_seconds gauge\ncometbox_uptime_seconds %.3f\n",
                 (double)(st.now_real_us - st.started_real_us) / 1e6);
    if (st.rss_bytes != 0)
        cbx_buf_addf(&b, "# HELP process_resident_memory_bytes Resident memory size in bytes (VmRSS).\n"
                         "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %llu\n",
                     (unsigned long long)st.rss_bytes);
    metric(&b, "published_total", "counter", "Messages published.", st.q.published);
    metric(&b, "delivered_total", "counter", "Messages handed to held requests.", st.q.delivered);
    metric(&b, "acknowledged_total", "counter", "Messages acknowledged by a client's since.", st.q.acked);
    metric(&b, "expired_total", "counter", "Messages dropped by message-ttl or retain-acked.", st.q.expired);
    metric(&b, "dropped_total", "counter", "Messages dropped because a queue was full.", st.q.dropped);
    metric(&b, "flushed_total", "counter", "Messages dropped by an operator's flush.", st.q.flushed);
    metric(&b, "publish_requests_total", "counter", "Requests on the publish port.", st.publish_requests);
    metric(&b, "publish_errors_total", "counter", "Publish requests refused.", st.publish_errors);
    metric(&b, "rejected_connections_total", "counter", "Browser connections refused over max-connections.",
           st.rejected_connections);
    metric(&b, "bad_requests_total", "counter", "Browser requests answered with an error.", st.bad_requests);
    metric(&b, "queues", "gauge", "Queues in memory.", st.q.queues);
    metric(&b, "pending_messages", "gauge", "Messages not yet acknowledged.", st.q.pending_messages);
    metric(&b, "pending_bytes", "gauge", "Bytes of messages not yet acknowledged.", st.q.pending_bytes);
    metric(&b, "stored_messages", "gauge", "Messages in memory, acknowledged or not.", st.q.stored_messages);
    metric(&b, "stored_bytes", "gauge", "Bytes of messages in memory, acknowledged or not.", st.q.stored_bytes);
    metric(&b, "waiters", "gauge", "Held requests waiting on queues for a message.", st.q.waiters);
    metric(&b, "browser_connections", "gauge", "Open connections on the browser port.", st.browser_connections);
    metric(&b, "publish_connections", "gauge", "Open connections on the publish port.", st.publish_connections);
    metric(&b, "admin_clients", "gauge", "Open connections on the admin socket.", st.admin_clients);
    cbx_buf_adds(&b, "# HELP cometbox_held_requests Requests held open, by transport.\n"
                     "# TYPE cometbox_held_requests gauge\n");
    for (int t = 0; t < CBX_T_COUNT; t++)
        cbx_buf_addf(&b, "cometbox_held_requests{transport=\"%s\"} %llu\n", cbx_transport_names[t],
                     (unsigned long long)st.held[t]);
    cbx_buf_adds(&b, "# HELP cometbox_refused_total Requests refused, by reason (the limit or check that refused).\n"
                     "# TYPE cometbox_refused_total counter\n");
    for (int i = 0; i < CBX_REFUSE_COUNT; i++)
        cbx_buf_addf(&b, "cometbox_refused_total{reason=\"%s\"} %llu\n", cbx_refusal_names[i],
                     (unsigned long long)st.refused[i]);
    if (b.ok)
        ret = cbx_http_send(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.s, b.len);
    cbx_buf_free(&b);
    return ret;
}
