/* http.h - answer helpers both ports share (http.c), and the request
 * context every handler hands libmicrohttpd. */
#ifndef CBXD_HTTP_H
#define CBXD_HTTP_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

/* The first member of every request context (libmicrohttpd's con_cls):
 * what to do when the request ends, and when a suspended one is resumed.
 * serve.c calls them; it knows no handler. Constant contexts (markers)
 * have both NULL. */
struct cbx_req {
    /* The request is over (clean: its answer went out whole); frees the context. */
    void (*completed)(struct cbx_req *r, bool clean);
    /* libmicrohttpd calls the handler again after a resume (a long-poll). */
    enum MHD_Result (*resumed)(struct cbx_req *r, struct MHD_Connection *c, void **con_cls);
};

/* A whole answer with this body (copied) and Content-Type, with the cache headers. */
enum MHD_Result cbx_http_send(struct MHD_Connection *c, unsigned status, const char *content_type, const char *body,
                              size_t len);
enum MHD_Result cbx_http_json(struct MHD_Connection *c, unsigned status, const char *body, size_t len);
enum MHD_Result cbx_http_error(struct MHD_Connection *c, unsigned status, const char *code, const char *detail);
/* The browser port's errors carry the CORS headers of an allowed origin
 * (NULL: none), so a page on another site can read them. */
enum MHD_Result cbx_http_error_cors(struct MHD_Connection *c, const char *origin, unsigned status, const char *code,
                                    const char *detail);
/* An error answer after which the connection is closed (a refused connection). */
enum MHD_Result cbx_http_refuse(struct MHD_Connection *c, const char *origin, unsigned status, const char *code,
                                const char *detail);
enum MHD_Result cbx_http_not_allowed(struct MHD_Connection *c, const char *origin, const char *method,
                                     const char *allow);
/* Access-Control-Allow-Origin and friends for an allowed origin (NULL: nothing). */
void cbx_http_cors_headers(struct MHD_Response *r, const char *origin);
void cbx_http_common_headers(struct MHD_Response *r);
/* False, with the reason in why, when the request's query has a parameter
 * not in known (NULL-terminated, at most 32 names) or one of them twice: a
 * misspelt parameter (sinse=5) must not be ignored silently. */
bool cbx_http_args_known(struct MHD_Connection *c, const char *const *known, char *why, size_t whylen);
/* libmicrohttpd's unescape callback: %HH except %00. */
size_t cbx_http_unescape(void *cls, struct MHD_Connection *c, char *s);

#endif
