/* metrics.c - the counters and gauges of `cometboxctl stats` as Prometheus
 * text (exposition format 0.0.4), formatted into a buffer. Not for the HTTP
 * answer (publish.c sends it) nor for the snapshot (stats.c). Rates are not
 * exported: Prometheus computes them from the counters. */
#include "metrics.h"

#include "limits.h"
#include "server.h"
#include "stats.h"
#include "transport.h"

static void metric(struct cbx_buf *b, const char *name, const char *type, const char *help, uint64_t v)
{
    cbx_buf_addf(b, "# HELP cometbox_%s %s\n# TYPE cometbox_%s %s\ncometbox_%s %llu\n", name, help, name, type,
                 name, (unsigned long long)v);
}

enum cbx_err cbx_metrics_format(struct cbx_server *s, struct cbx_buf *b)
{
    struct cbx_stats st;

    cbx_stats_collect(s, &st);
    cbx_buf_addf(b, "# HELP cometbox_info The running cometboxd, as labels.\n# TYPE cometbox_info gauge\n"
                     "cometbox_info{version=\"%s\",threads=\"%s\"} 1\n",
                 CBX_VERSION, s->cfg.threads == CBX_THREADS_POOL ? "pool" : "per-connection");
    cbx_buf_addf(b, "# HELP process_start_time_seconds Start time of the process since the Unix epoch.\n"
                     "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.3f\n",
                 (double)st.started_real_us / 1e6);
    cbx_buf_addf(b, "# HELP cometbox_uptime_seconds Seconds since cometboxd started.\n"
                     "# TYPE cometbox_uptime_seconds gauge\ncometbox_uptime_seconds %.3f\n",
                 (double)(st.now_real_us - st.started_real_us) / 1e6);
    if (st.rss_bytes != 0)
        cbx_buf_addf(b, "# HELP process_resident_memory_bytes Resident memory size in bytes (VmRSS).\n"
                         "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %llu\n",
                     (unsigned long long)st.rss_bytes);
    metric(b, "published_total", "counter", "Messages published.", st.q.published);
    metric(b, "delivered_total", "counter", "Messages handed to held requests.", st.q.delivered);
    metric(b, "acknowledged_total", "counter", "Messages acknowledged by a client's since.", st.q.acked);
    metric(b, "expired_total", "counter", "Messages dropped by message-ttl or retain-acked.", st.q.expired);
    metric(b, "dropped_total", "counter", "Messages dropped because a queue was full.", st.q.dropped);
    metric(b, "flushed_total", "counter", "Messages dropped by an operator's flush.", st.q.flushed);
    metric(b, "publish_requests_total", "counter", "Requests on the publish port.", st.publish_requests);
    metric(b, "publish_errors_total", "counter", "Publish requests refused.", st.publish_errors);
    metric(b, "rejected_connections_total", "counter", "Browser connections refused over max-connections.",
           st.rejected_connections);
    metric(b, "bad_requests_total", "counter", "Browser requests answered with an error.", st.bad_requests);
    metric(b, "queues", "gauge", "Queues in memory.", st.q.queues);
    metric(b, "pending_messages", "gauge", "Messages not yet acknowledged.", st.q.pending_messages);
    metric(b, "pending_bytes", "gauge", "Bytes of messages not yet acknowledged.", st.q.pending_bytes);
    metric(b, "stored_messages", "gauge", "Messages in memory, acknowledged or not.", st.q.stored_messages);
    metric(b, "stored_bytes", "gauge", "Bytes of messages in memory, acknowledged or not.", st.q.stored_bytes);
    metric(b, "waiters", "gauge", "Held requests waiting on queues for a message.", st.q.waiters);
    metric(b, "browser_connections", "gauge", "Open connections on the browser port.", st.browser_connections);
    metric(b, "publish_connections", "gauge", "Open connections on the publish port.", st.publish_connections);
    metric(b, "admin_clients", "gauge", "Open connections on the admin socket.", st.admin_clients);
    if (st.journal_on) {
        metric(b, "journal_up", "gauge", "1 while the journal writes, 0 while its writes fail (publishes get 503).",
               st.j.failing ? 0 : 1);
        metric(b, "journal_bytes", "gauge", "Size of the journal file written now.", st.j.bytes);
        metric(b, "journal_syncs_total", "counter", "fdatasync calls on the journal.", st.j.syncs);
        metric(b, "journal_write_errors_total", "counter", "Journal writes or syncs that failed.", st.j.write_errors);
        metric(b, "journal_refused_publishes_total", "counter", "Publishes refused because the journal failed.",
               st.j.refused_publishes);
        metric(b, "journal_compactions_total", "counter", "Snapshots written to compact the journal.",
               st.j.compactions);
    }
    if (st.broker_on) {
        metric(b, "broker_up", "gauge", "1 while Redis answers (broker = redis), 0 while it does not (publishes get 503).",
               st.b.state == CBX_BROKER_UP ? 1 : 0);
        metric(b, "broker_reconnects_total", "counter", "Connections to Redis made again after one was lost.",
               st.b.reconnects);
        metric(b, "broker_errors_total", "counter", "Lost Redis connections, timeouts and errors Redis answered.",
               st.b.errors);
        metric(b, "broker_mirrored_queues", "gauge", "Queues this node subscribes to in Redis.", st.b.mirrored);
    }
    cbx_buf_adds(b, "# HELP cometbox_held_requests Requests held open, by transport.\n"
                     "# TYPE cometbox_held_requests gauge\n");
    for (int t = 0; t < CBX_T_COUNT; t++)
        cbx_buf_addf(b, "cometbox_held_requests{transport=\"%s\"} %llu\n", cbx_transport_name(t),
                     (unsigned long long)st.held[t]);
    cbx_buf_adds(b, "# HELP cometbox_refused_total Requests refused, by reason (the limit or check that refused).\n"
                     "# TYPE cometbox_refused_total counter\n");
    for (int i = 0; i < CBX_REFUSE_COUNT; i++)
        cbx_buf_addf(b, "cometbox_refused_total{reason=\"%s\"} %llu\n", cbx_refusal_names[i],
                     (unsigned long long)st.refused[i]);
    return b->ok ? CBX_OK : CBX_ERR_NOMEM;
}
