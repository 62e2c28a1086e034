/* transport.h - the browser transports (long-poll, stream, SSE, WebSocket): their
 * names and the bytes of their answers (docs/PROTOCOL.md). Formatting only:
 * no locks, no I/O, nothing about the threads mode or the server. */
#ifndef CBXD_TRANSPORT_H
#define CBXD_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/qmap.h"

enum cbx_transport { CBX_T_POLL, CBX_T_STREAM, CBX_T_SSE, CBX_T_WS, CBX_T_COUNT };

/* "long-poll", "stream", "sse" or "ws", as `clients`, stats and /metrics name it.
 * A string literal. */
const char *cbx_transport_name(enum cbx_transport t);

/* One batch: a JSON array (long-poll), an array line (stream, and a
 * WebSocket's text frame), or events (SSE). A WebSocket's first frame
 * starts with {"type":"cursor","id":cursor}: where a since resumes it. */
void cbx_tr_batch(struct cbx_buf *b, enum cbx_transport t, const struct cbx_gap *gaps, size_t n_gaps,
                  struct cbx_msg *const *msgs, size_t n);
void cbx_tr_ws_first(struct cbx_buf *b, uint64_t cursor, const struct cbx_gap *gaps, size_t n_gaps,
                     struct cbx_msg *const *msgs, size_t n);
void cbx_tr_kick(struct cbx_buf *b, enum cbx_transport t, const char *reason);
/* An empty answer (long-poll), `[]` line (stream) or comment (SSE). */
void cbx_tr_heartbeat(struct cbx_buf *b, enum cbx_transport t);
void cbx_tr_retry(struct cbx_buf *b, unsigned retry_ms);

#endif
