/* transport.h - formatting the answers of the three browser transports. */
#ifndef CBXD_TRANSPORT_H
#define CBXD_TRANSPORT_H

#include "server.h"

/* One batch: a JSON array (long-poll), an array line (stream), or events (SSE). */
void cbx_tr_batch(struct cbx_buf *b, enum cbx_transport t, const struct cbx_gap *gaps, size_t n_gaps,
                  struct cbx_msg *const *msgs, size_t n);
void cbx_tr_kick(struct cbx_buf *b, enum cbx_transport t, const char *reason);
/* An empty answer (long-poll), `[]` line (stream) or comment (SSE). */
void cbx_tr_heartbeat(struct cbx_buf *b, enum cbx_transport t);
void cbx_tr_retry(struct cbx_buf *b, unsigned retry_ms);

#endif
