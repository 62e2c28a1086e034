/* metrics.h - the Prometheus text (exposition format 0.0.4) of the figures
 * `cometboxctl stats` shows. Formatting only: publish.c answers GET
 * /metrics with it. Not for the snapshot itself (stats.h). */
#ifndef CBXD_METRICS_H
#define CBXD_METRICS_H

#include "../common/buf.h"
#include "../common/err.h"

struct cbx_server;

/* The Content-Type of the text cbx_metrics_format() writes. */
#define CBX_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Appends the metrics of s (a fresh snapshot) to b; CBX_ERR_NOMEM when b
 * ran out of memory (b is the caller's to free either way). */
enum cbx_err cbx_metrics_format(struct cbx_server *s, struct cbx_buf *b);

#endif
