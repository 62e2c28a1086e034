/* browser.h - the browser port's request handler: routes, query checks,
 * CORS, admission, static files. Not for held requests once started (hold.c). */
#ifndef CBXD_BROWSER_H
#define CBXD_BROWSER_H

#include <microhttpd.h>

struct cbx_server;

/* libmicrohttpd's access handler for the browser port; cls is the server. */
enum MHD_Result cbx_browser_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                    const char *version, const char *upload_data, size_t *upload_data_size,
                                    void **con_cls);

/* The demo page with the publish URL and admin socket of this daemon in
 * place of its placeholders, in s->demo_page (data owned by s; nothing
 * when demo is off). Call once the listeners know their addresses.
 * -1 when out of memory. */
int cbx_browser_demo_prepare(struct cbx_server *s);

#endif
