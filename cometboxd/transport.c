/* transport.c - the bytes of each transport (long-poll, stream, SSE, WebSocket), per
 * docs/PROTOCOL.md. Formatting only: no locks, no I/O, no threads mode. */
#include <stdbool.h>
#include <string.h>

#include "transport.h"

const char *cbx_transport_name(enum cbx_transport t)
{
    static const char *const names[CBX_T_COUNT] = { "long-poll", "stream", "sse", "ws" };

    return (unsigned)t < CBX_T_COUNT ? names[t] : "unknown";
}

static void add_gap_object(struct cbx_buf *b, const struct cbx_gap *g)
{
    cbx_buf_adds(b, "{\"type\":\"gap\",\"queue\":");
    cbx_buf_add_json_string(b, g->queue, strlen(g->queue));
    cbx_buf_adds(b, ",\"from\":");
    cbx_buf_add_u64(b, g->from);
    cbx_buf_adds(b, ",\"to\":");
    cbx_buf_add_u64(b, g->to);
    cbx_buf_adds(b, ",\"reason\":\"");
    cbx_buf_adds(b, cbx_drop_reason_name(g->reason));
    cbx_buf_adds(b, "\"}");
}

static void add_kick_object(struct cbx_buf *b, const char *reason)
{
    cbx_buf_adds(b, "{\"type\":\"kick\",\"reason\":");
    cbx_buf_add_json_string(b, reason, strlen(reason));
    cbx_buf_adds(b, "}");
}

/* The array of a batch: gaps, then messages, after what lead put there. */
static void add_items(struct cbx_buf *b, bool lead, const struct cbx_gap *gaps, size_t n_gaps,
                      struct cbx_msg *const *msgs, size_t n)
{
    for (size_t i = 0; i < n_gaps; i++) {
        if (i > 0 || lead)
            cbx_buf_add(b, ",", 1);
        add_gap_object(b, &gaps[i]);
    }
    for (size_t i = 0; i < n; i++) {
        if (i > 0 || n_gaps > 0 || lead)
            cbx_buf_add(b, ",", 1);
        cbx_buf_add(b, msgs[i]->json, msgs[i]->len);
    }
    cbx_buf_adds(b, "]\n"); /* a stream's line end; a long-poll's body ends with it too */
}

void cbx_tr_ws_first(struct cbx_buf *b, uint64_t cursor, const struct cbx_gap *gaps, size_t n_gaps,
                     struct cbx_msg *const *msgs, size_t n)
{
    cbx_buf_adds(b, "[{\"type\":\"cursor\",\"id\":");
    cbx_buf_add_u64(b, cursor);
    cbx_buf_add(b, "}", 1);
    add_items(b, true, gaps, n_gaps, msgs, n);
}

void cbx_tr_batch(struct cbx_buf *b, enum cbx_transport t, const struct cbx_gap *gaps, size_t n_gaps,
                  struct cbx_msg *const *msgs, size_t n)
{
    if (t == CBX_T_SSE) {
        for (size_t i = 0; i < n_gaps; i++) {
            cbx_buf_adds(b, "event: gap\ndata: ");
            add_gap_object(b, &gaps[i]);
            cbx_buf_adds(b, "\n\n");
        }
        for (size_t i = 0; i < n; i++) {
            cbx_buf_adds(b, "id: ");
            cbx_buf_add_u64(b, msgs[i]->id);
            cbx_buf_adds(b, "\ndata: ");
            cbx_buf_add(b, msgs[i]->json, msgs[i]->len);
            cbx_buf_adds(b, "\n\n");
        }
        return;
    }
    cbx_buf_add(b, "[", 1);
    add_items(b, false, gaps, n_gaps, msgs, n);
}

void cbx_tr_kick(struct cbx_buf *b, enum cbx_transport t, const char *reason)
{
    if (t == CBX_T_SSE) {
        cbx_buf_adds(b, "event: kick\ndata: ");
        add_kick_object(b, reason);
        cbx_buf_adds(b, "\n\n");
        return;
    }
    cbx_buf_add(b, "[", 1);
    add_kick_object(b, reason);
    cbx_buf_adds(b, "]\n");
}

void cbx_tr_heartbeat(struct cbx_buf *b, enum cbx_transport t)
{
    cbx_buf_adds(b, t == CBX_T_SSE ? ": heartbeat\n\n" : "[]\n");
}

void cbx_tr_retry(struct cbx_buf *b, unsigned retry_ms)
{
    cbx_buf_addf(b, "retry: %u\n\n", retry_ms);
}
