/* One HTTP/1.1 POST over a plain TCP socket, bounded in time by one
 * deadline for connecting, sending and reading, on a kept-alive connection
 * when there is one. Not for interpreting the answer (cometbox.c does that)
 * and not for TLS: http:// only. */

#ifndef COMETBOX_HTTP_H
#define COMETBOX_HTTP_H

#include "php_cometbox.h"

struct cbx_url {
	char *base;     /* the URL without trailing '/'; emalloc'd */
	char *host;     /* host, without [] for IPv6; emalloc'd */
	char *port;     /* decimal port; emalloc'd */
	char *hostport; /* the authority as written, for Host:; emalloc'd */
	char *path;     /* path prefix without trailing '/', may be ""; emalloc'd */
};

/* Parses an http:// base URL. SUCCESS fills u (free with cbx_url_free());
 * FAILURE throws invalid_argument and leaves u empty. */
zend_result cbx_url_parse(struct cbx_url *u, const char *url, size_t len);
void cbx_url_free(struct cbx_url *u);

/* Closes the kept-alive connection, if any. */
void cbx_conn_drop(void);

/* POSTs body to u->path + "/publish" and fills *status and *answer (the
 * decoded body, owned by the caller: smart_str_free()). Waits at most
 * timeout seconds in all, name resolution excepted. FAILURE throws
 * connection_failed, timeout or bad_response. secret may be NULL.
 * Keeps the connection for the next call to the same host and port when
 * the answer allows it (HTTP/1.1 keep-alive); a kept connection that the
 * daemon closed meanwhile is replaced once, before any answer byte came. */
zend_result cbx_http_post(const struct cbx_url *u, const char *secret,
	double timeout, const char *body, size_t len,
	int *status, smart_str *answer);

#endif
