/* cors.h - which page origins may read the browser port's answers
 * (cors-origins), and the log line a refused origin gets once. */
#ifndef CBXD_CORS_H
#define CBXD_CORS_H

/* The value for Access-Control-Allow-Origin when origin (the request's
 * Origin header, may be NULL) is allowed by list (cors-origins: origins
 * separated by spaces or commas, or "*"); NULL when it is not. Borrowed:
 * points into origin or is the literal "*". */
const char *cbx_cors_allowed(const char *list, const char *origin);

/* Logs, once per origin for the life of the process, that origin is not
 * in cors-origins, so browsers keep its pages from reading our answers.
 * host is the request's Host header: a page the daemon serves itself
 * (origin http://HOST) is not cross-site and is never logged. Thread-safe;
 * remembers at most a bounded number of origins, then says it stops. */
void cbx_cors_note_refused(const char *origin, const char *host);

#endif
