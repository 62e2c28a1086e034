/* embedded.h - files compiled into cometboxd (the JavaScript client and the
 * demo page), generated at build time by cmake/embed.cmake. */
#ifndef CBXD_EMBEDDED_H
#define CBXD_EMBEDDED_H

#include <stddef.h>

struct cbx_embedded {
    const char *data;
    size_t len;          /* 0 when the file was missing at build time */
    const char *content_type;
};

extern const struct cbx_embedded cbx_embedded_js;
extern const struct cbx_embedded cbx_embedded_demo;
extern const struct cbx_embedded cbx_embedded_js_min;  /* cometbox.min.js (terser) */
extern const struct cbx_embedded cbx_embedded_js_map;  /* its source map */
extern const struct cbx_embedded cbx_embedded_lua;     /* broker.lua: the queues in Redis (broker = redis) */

#endif
