/* metrics.c - GET /metrics on the publish port: the counters and gauges of
 * `cometboxctl stats` in the Prometheus text exposition format (0.0.4). */
#include <stdio.h>
#include <unistd.h>

#include "server.h"

static void metric(struct cbx_buf *b, const char *name, const char *type, const char *help, uint64_t v)
{
    cbx_buf_addf(b, "# HELP cometbox_%s %s\n# TYPE cometbox_%s %s\ncometbox_%s %llu\n", name, help, name, type,
                 name, (unsigned long long)v);
}

enum MHD_Result cbx_metrics_answer(struct cbx_server *s, struct MHD_Connection *c)
{
    struct cbx_qmap_stats st;
    struct cbx_buf b;
    struct MHD_Response *r;
    enum MHD_Result ret = MHD_NO;

    cbx_qmap_stats(s->qmap, &st);
    cbx_buf_init(&b);
    metric(&b, "published_total", "counter", "Messages published.", st.published);
    metric(&b, "delivered_total", "counter", "Messages handed to held requests.", st.delivered);
    metric(&b, "acknowledged_total", "counter", "Messages acknowledged by a client's since.", st.acked);
    metric(&b, "expired_total", "counter", "Messages dropped by message-ttl or retain-acked.", st.expired);
    metric(&b, "dropped_total", "counter", "Messages dropped because a queue was full.", st.dropped);
    metric(&b, "flushed_total", "counter", "Messages dropped by an operator's flush.", st.flushed);
    metric(&b, "publish_requests_total", "counter", "Requests on the publish port.", atomic_load(&s->ctr.publish_requests));
    metric(&b, "publish_errors_total", "counter", "Publish requests refused.", atomic_load(&s->ctr.publish_errors));
    metric(&b, "rejected_connections_total", "counter", "Browser connections refused over max-connections.",
           atomic_load(&s->ctr.rejected_connections));
    metric(&b, "queues", "gauge", "Queues in memory.", st.queues);
    metric(&b, "pending_messages", "gauge", "Messages not yet acknowledged.", st.pending_messages);
    metric(&b, "pending_bytes", "gauge", "Bytes of messages not yet acknowledged.", st.pending_bytes);
    metric(&b, "stored_messages", "gauge", "Messages in memory, acknowledged or not.", st.stored_messages);
    metric(&b, "browser_connections", "gauge", "Open connections on the browser port.",
           atomic_load(&s->ctr.browser_connections));
    cbx_buf_adds(&b, "# HELP cometbox_held_requests Requests held open, by transport.\n"
                     "# TYPE cometbox_held_requests gauge\n");
    for (int t = 0; t < CBX_T_COUNT; t++)
        cbx_buf_addf(&b, "cometbox_held_requests{transport=\"%s\"} %llu\n", cbx_transport_names[t],
                     (unsigned long long)atomic_load(&s->ctr.held[t]));
    if (!b.ok)
        goto out;
    r = MHD_create_response_from_buffer(b.len, b.s, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        goto out;
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    cbx_http_common_headers(r);
    ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
out:
    cbx_buf_free(&b);
    return ret;
}
