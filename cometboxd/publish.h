/* publish.h - the publish port's request handler: POST /publish (XML or
 * JSON), GET /healthz and GET /metrics. Not for parsing a body
 * (common/pub.h) nor for the metrics text (metrics.h). */
#ifndef CBXD_PUBLISH_H
#define CBXD_PUBLISH_H

#include <microhttpd.h>
#include <stdint.h>

#include "../common/pub.h"

struct cbx_server;

/* libmicrohttpd's access handler for the publish port; cls is the server. */
enum MHD_Result cbx_publish_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                    const char *version, const char *upload_data, size_t *upload_data_size,
                                    void **con_cls);

/* Queues batch b and, with a journal, waits (blocking the caller) until it
 * is written: CBX_OK with ids filled in (room for b->n), CBX_ERR_IO when the
 * journal could not write it, or cbx_qmap_publish()'s errors. */
enum cbx_err cbx_publish_batch(struct cbx_server *s, const struct cbx_pub_batch *b, uint64_t *ids);


#endif
