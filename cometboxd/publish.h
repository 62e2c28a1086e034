/* publish.h - the publish port's request handler: POST /publish (XML or
 * JSON), GET /healthz and GET /metrics. Not for parsing a body
 * (common/pub.h) nor for the metrics text (metrics.h). */
#ifndef CBXD_PUBLISH_H
#define CBXD_PUBLISH_H

#include <microhttpd.h>

/* libmicrohttpd's access handler for the publish port; cls is the server. */
enum MHD_Result cbx_publish_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                    const char *version, const char *upload_data, size_t *upload_data_size,
                                    void **con_cls);


#endif
