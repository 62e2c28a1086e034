/* browser.c - the browser port: routes, query parsing, CORS, static files.
 * Held requests themselves live in hold.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/token.h"
#include "embedded.h"
#include "server.h"

static int done_marker = CBX_CTX_DONE;
static int seen_marker = CBX_CTX_DONE;

/* Returns the value for Access-Control-Allow-Origin, or NULL. */
static const char *cors_origin(struct cbx_server *s, struct MHD_Connection *c)
{
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    const char *list = s->cfg.cors_origins;
    size_t olen;

    if (origin == NULL || list[0] == '\0')
        return NULL;
    if (strcmp(list, "*") == 0)
        return "*";
    olen = strlen(origin);
    for (const char *p = list; *p;) {
        size_t len;
        while (*p == ' ' || *p == ',')
            p++;
        len = strcspn(p, " ,");
        if (len == olen && len > 0 && memcmp(p, origin, len) == 0)
            return origin;
        p += len;
    }
    return NULL;
}

static enum MHD_Result answer_preflight(struct MHD_Connection *c, const char *origin)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret;

    if (r == NULL)
        return MHD_NO;
    cbx_http_common_headers(r);
    MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, OPTIONS");
    MHD_add_response_header(r, "Access-Control-Allow-Headers", "Last-Event-ID, Content-Type");
    MHD_add_response_header(r, "Access-Control-Max-Age", "600");
    cbx_http_cors_headers(r, origin);
    ret = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result answer_static(struct MHD_Connection *c, const struct cbx_embedded *f)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(f->len, (void *)f->data, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret;

    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", f->content_type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result bad_request(struct cbx_server *s, struct MHD_Connection *c, const char *origin,
                                   const char *detail)
{
    atomic_fetch_add(&s->ctr.bad_requests, 1);
    cbx_refuse(s, CBX_REFUSE_BAD_REQUEST);
    return cbx_http_error_cors(c, origin, MHD_HTTP_BAD_REQUEST, "bad_request", detail);
}

static enum MHD_Result start_hold(struct cbx_server *s, struct MHD_Connection *c, enum cbx_transport t,
                                  const char *queues, const char *origin, void **con_cls)
{
    struct cbx_hold_params p;
    char why[256];
    const char *since = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
    const char *timeout = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "timeout");

    memset(&p, 0, sizeof p);
    p.transport = t;
    p.origin = origin;
    p.timeout = s->cfg.hold_timeout;
    if (t == CBX_T_SSE) {
        const char *last = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
        if (last != NULL && last[0] != '\0') {
            if (!cbx_id_parse(last, &p.since))
                return bad_request(s, c, origin, "Last-Event-ID must be a message id (0 to 2^53-1)");
            p.has_since = true;
        }
    }
    if (!p.has_since && since != NULL) {
        if (!cbx_id_parse(since, &p.since))
            return bad_request(s, c, origin, "since must be a message id (0 to 2^53-1)");
        p.has_since = true;
    }
    if (timeout != NULL) {
        uint64_t v;
        if (t != CBX_T_POLL)
            return bad_request(s, c, origin, "timeout applies to /poll only");
        if (!cbx_id_parse(timeout, &v) || v > (uint64_t)s->cfg.hold_timeout_max) {
            snprintf(why, sizeof why, "timeout must be 0 to %ld seconds", s->cfg.hold_timeout_max);
            return bad_request(s, c, origin, why);
        }
        p.timeout = (long)v;
    }
    /* last, so no error path above has names to free; the hold takes them */
    if (cbx_qlist_parse(queues, &p.queues, why, sizeof why) != CBX_OK)
        return bad_request(s, c, origin, why);
    if (p.queues.n > (size_t)s->cfg.max_queues_per_request) {
        cbx_qlist_free(&p.queues);
        snprintf(why, sizeof why, "more than %ld queues (max-queues-per-request)", s->cfg.max_queues_per_request);
        return bad_request(s, c, origin, why);
    }
    if (s->cfg.subscribe_auth == CBX_AUTH_TOKEN &&
        cbx_token_check(s->cfg.subscribe_secret, MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token"),
                        &p.queues, cbx_now_real_us() / 1000000, why, sizeof why) != CBX_OK) {
        cbx_qlist_free(&p.queues);
        cbx_refuse(s, CBX_REFUSE_SUBSCRIBE_AUTH);
        return cbx_http_error_cors(c, origin, MHD_HTTP_FORBIDDEN, "forbidden", why);
    }
    return cbx_hold_start(s, c, &p, con_cls);
}

/* Lets a connection in at its first request, against max-connections and
 * max-connections-per-ip. Returns true to go on; false when it answered the
 * request with a refusal (in *answer), which also closes the connection. */
static bool admit(struct cbx_server *s, struct MHD_Connection *c, const char *origin, enum MHD_Result *answer)
{
    struct cbx_conn *conn = cbx_conn_of(c);

    if (conn == NULL) {
        *answer = cbx_http_refuse(c, origin, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", "out of memory");
        return false;
    }
    if (conn->admitted)
        return true;
    if (!cbx_take_slot(&s->admitted, (uint64_t)s->cfg.max_connections)) {
        cbx_refuse(s, CBX_REFUSE_CONNECTIONS);
        *answer = cbx_http_refuse(c, origin, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                                  "too many connections (max-connections)");
        return false;
    }
    if (!cbx_ips_admit(conn->ip, (uint64_t)s->cfg.max_connections_per_ip)) {
        atomic_fetch_sub(&s->admitted, 1);
        cbx_refuse(s, CBX_REFUSE_PER_IP);
        *answer = cbx_http_refuse(c, origin, MHD_HTTP_TOO_MANY_REQUESTS, "too_many_requests",
                                  "too many connections from your address (max-connections-per-ip)");
        return false;
    }
    conn->admitted = true;
    return true;
}

enum MHD_Result cbx_browser_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                    const char *version, const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    static const struct { const char *prefix; enum cbx_transport t; } routes[] = {
        { "/poll/", CBX_T_POLL }, { "/stream/", CBX_T_STREAM }, { "/events/", CBX_T_SSE },
    };
    struct cbx_server *s = cls;
    enum MHD_Result ret;
    const char *origin;

    (void)version, (void)upload_data;
    /* Answer on the second call, once the whole request is in: libmicrohttpd
     * closes a connection whose answer was queued before that. */
    if (*con_cls == NULL) {
        *con_cls = &seen_marker;
        return MHD_YES;
    }
    if (*(int *)*con_cls == CBX_CTX_HOLD && *upload_data_size == 0)
        return cbx_hold_continue(c, *con_cls); /* a long-poll resumed */
    if (*con_cls != &seen_marker || *upload_data_size != 0) {
        *upload_data_size = 0; /* a body on a GET is ignored */
        return MHD_YES;
    }
    *con_cls = &done_marker;
    origin = cors_origin(s, c);
    if (!admit(s, c, origin, &ret))
        return ret;
    if (strcmp(method, "OPTIONS") == 0)
        return answer_preflight(c, origin);
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        size_t plen = strlen(routes[i].prefix);
        if (strncmp(url, routes[i].prefix, plen) == 0) {
            if (strcmp(method, "GET") != 0)
                return cbx_http_not_allowed(c, origin, method, "GET, OPTIONS");
            *con_cls = NULL;
            ret = start_hold(s, c, routes[i].t, url + plen, origin, con_cls);
            if (*con_cls == NULL)
                *con_cls = &done_marker;
            return ret;
        }
    }
    {
        static const struct { const char *path; const struct cbx_embedded *file; } files[] = {
            { "/cometbox.js", &cbx_embedded_js },
            { "/cometbox.min.js", &cbx_embedded_js_min },
            { "/cometbox.min.js.map", &cbx_embedded_js_map },
        };
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            if (strcmp(url, files[i].path) == 0 && files[i].file->len > 0) {
                if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
                    return cbx_http_not_allowed(c, origin, method, "GET, OPTIONS");
                return answer_static(c, files[i].file);
            }
        }
    }
    if (strcmp(url, "/demo") == 0 && s->cfg.demo && cbx_embedded_demo.len > 0) {
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
            return cbx_http_not_allowed(c, origin, method, "GET, OPTIONS");
        return answer_static(c, &cbx_embedded_demo);
    }
    cbx_refuse(s, CBX_REFUSE_BAD_REQUEST);
    return cbx_http_error_cors(c, origin, MHD_HTTP_NOT_FOUND, "not_found", "no such path; see /poll/, /stream/, /events/");
}
