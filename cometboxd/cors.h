/* cors.h - which page origins may read the browser port's answers
 * (cors-origins), and the log line a refused origin gets once. */
#ifndef CBXD_CORS_H
#define CBXD_CORS_H

#include <stdbool.h>

/* The value for Access-Control-Allow-Origin when origin (the request's
 * Origin header, may be NULL) is allowed by list (cors-origins: origins
 * separated by spaces or commas, or "*"); NULL when it is not. Borrowed:
 * points into origin or is the literal "*". */
const char *cbx_cors_allowed(const char *list, const char *origin);

/* For a request whose Origin (may be NULL) is not allowed: true when it
 * comes from another site's page, which is then logged once per origin for
 * the life of the process. host is the request's Host header: a page the
 * daemon serves itself (origin http://HOST) is not cross-site. Thread-safe;
 * remembers at most a bounded number of origins, then says it stops. */
bool cbx_cors_refused(const char *origin, const char *host);

#endif
