/* browser.c - the browser port: routes, query parsing, CORS, admission,
 * static files and the demo page. Not for held requests once started
 * (hold.c) nor for the CORS rules (cors.c). */
#include "browser.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/buf.h"
#include "../common/qmap.h"
#include "../common/qname.h"
#include "../common/token.h"
#include "../common/wsconn.h"
#include "conn.h"
#include "cors.h"
#include "embedded.h"
#include "hold.h"
#include "http.h"
#include "limits.h"
#include "server.h"
#include "settings.h"
#include "transport.h"

static struct cbx_req done_marker; /* answered; nothing to do at completion */
static struct cbx_req seen_marker; /* headers in, answered at the next call */

/* The value for Access-Control-Allow-Origin, or NULL. */
static const char *cors_allowed(const struct cbx_config *cfg, struct MHD_Connection *c)
{
    return cbx_cors_allowed(cfg->cors_origins, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"));
}

/* For a request whose origin is not allowed: whether it comes from another
 * site's page (logged once per origin, cors.c). */
static bool cross_site(struct MHD_Connection *c)
{
    return cbx_cors_refused(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"),
                            MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host"));
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

/* True when header name's comma-separated tokens include token (any case). */
static bool header_has_token(struct MHD_Connection *c, const char *name, const char *token)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    size_t n = strlen(token);

    while (v != NULL && *v != '\0') {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        if (strncasecmp(v, token, n) == 0 && (v[n] == '\0' || v[n] == ',' || v[n] == ' ' || v[n] == '\t'))
            return true;
        v = strchr(v, ',');
    }
    return false;
}

/* A WebSocket handshake (RFC 6455 4.2.1); fills accept, or says why not. */
static bool ws_handshake(struct MHD_Connection *c, char accept[29], char *why, size_t whylen)
{
    const char *version = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-WebSocket-Version");
    const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-WebSocket-Key");

    if (!header_has_token(c, MHD_HTTP_HEADER_UPGRADE, "websocket") ||
        !header_has_token(c, MHD_HTTP_HEADER_CONNECTION, "upgrade"))
        snprintf(why, whylen, "/ws/ is a WebSocket: it needs Upgrade: websocket and Connection: Upgrade");
    else if (version == NULL || strcmp(version, "13") != 0)
        snprintf(why, whylen, "only WebSocket version 13 is spoken (Sec-WebSocket-Version: 13)");
    else if (key == NULL || !cbx_ws_accept_key(key, accept))
        snprintf(why, whylen, "Sec-WebSocket-Key must be 16 bytes in base64");
    else
        return true;
    return false;
}

static enum MHD_Result start_hold(struct cbx_server *s, const struct cbx_config *cfg, struct MHD_Connection *c,
                                  enum cbx_transport t, const char *queues, const char *origin, void **con_cls)
{
    struct cbx_hold_params p;
    char why[256];
    const char *since = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
    const char *timeout = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "timeout");

    static const char *const known_poll[] = { "since", "timeout", "token", NULL };
    static const char *const known_held[] = { "since", "token", NULL };

    /* timeout is a long-poll's alone */
    if (!cbx_http_args_known(c, t == CBX_T_POLL ? known_poll : known_held, why, sizeof why))
        return bad_request(s, c, origin, why);
    memset(&p, 0, sizeof p);
    if (t == CBX_T_WS && !ws_handshake(c, p.ws_accept, why, sizeof why)) {
        atomic_fetch_add(&s->ctr.bad_requests, 1);
        cbx_refuse(s, CBX_REFUSE_BAD_REQUEST);
        return cbx_http_error_cors(c, origin, MHD_HTTP_UPGRADE_REQUIRED, "upgrade_required", why);
    }
    p.transport = t;
    p.origin = origin;
    p.cfg = cfg;
    p.timeout = cfg->hold_timeout;
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
        if (!cbx_id_parse(timeout, &v) || v > (uint64_t)cfg->hold_timeout_max) {
            snprintf(why, sizeof why, "timeout must be 0 to %ld seconds", cfg->hold_timeout_max);
            return bad_request(s, c, origin, why);
        }
        p.timeout = (long)v;
    }
    /* last, so no error path above has names to free; the hold takes them */
    if (cbx_qlist_parse(queues, &p.queues, why, sizeof why) != CBX_OK)
        return bad_request(s, c, origin, why);
    if (p.queues.n > (size_t)cfg->max_queues_per_request) {
        cbx_qlist_free(&p.queues);
        snprintf(why, sizeof why, "more than %ld queues (max-queues-per-request)", cfg->max_queues_per_request);
        return bad_request(s, c, origin, why);
    }
    if (cfg->subscribe_auth == CBX_AUTH_TOKEN &&
        cbx_token_check(cfg->subscribe_secret, MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token"),
                        &p.queues, cbx_now_real_us() / 1000000, why, sizeof why) != CBX_OK) {
        cbx_qlist_free(&p.queues);
        cbx_refuse(s, CBX_REFUSE_SUBSCRIBE_AUTH);
        return cbx_http_error_cors(c, origin, MHD_HTTP_FORBIDDEN, "forbidden", why);
    }
    return cbx_hold_start(s, c, &p, con_cls);
}

/* Points whoever reached the wrong place to the right one: a publish sent
 * to the browser port, the bare address of a daemon that serves the demo. */
static enum MHD_Result not_found(struct cbx_server *s, const struct cbx_config *cfg, struct MHD_Connection *c,
                                 const char *url, const char *method, const char *origin)
{
    static const char demo_path[] = "/demo";
    bool demo = cfg->demo && s->demo_page.len > 0;

    if (strcmp(url, "/") == 0 && demo &&
        (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)) {
        struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        enum MHD_Result ret;
        if (r == NULL)
            return MHD_NO;
        cbx_http_common_headers(r);
        MHD_add_response_header(r, "Location", demo_path);
        ret = MHD_queue_response(c, MHD_HTTP_FOUND, r);
        MHD_destroy_response(r);
        return ret;
    }
    cbx_refuse(s, CBX_REFUSE_BAD_REQUEST);
    if (strcmp(url, "/publish") == 0)
        return cbx_http_error_cors(c, origin, MHD_HTTP_NOT_FOUND, "not_found",
                                   "this is the browser port; publish with POST /publish on the publish port "
                                   "(publish-listen, 127.0.0.1:1802 by default)");
    return cbx_http_error_cors(c, origin, MHD_HTTP_NOT_FOUND, "not_found",
                               demo ? "no such path; see /poll/, /stream/, /events/ and /demo"
                                    : "no such path; see /poll/, /stream/, /events/");
}

/* Appends text to b with &, <, >, " and ' escaped for HTML. */
static void add_html(struct cbx_buf *b, const char *text)
{
    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '&': cbx_buf_adds(b, "&amp;"); break;
        case '<': cbx_buf_adds(b, "&lt;"); break;
        case '>': cbx_buf_adds(b, "&gt;"); break;
        case '"': cbx_buf_adds(b, "&quot;"); break;
        case '\'': cbx_buf_adds(b, "&#39;"); break;
        default: cbx_buf_add(b, p, 1);
        }
    }
}

int cbx_browser_demo_prepare(struct cbx_server *s)
{
    static const char pub_mark[] = "@COMETBOX_PUBLISH_URL@", admin_mark[] = "@COMETBOX_ADMIN_SOCKET@";
    const char *p = cbx_embedded_demo.data, *end = p + cbx_embedded_demo.len;
    struct cbx_buf b;

    if (cbx_embedded_demo.len == 0)
        return 0; /* made whether demo is on or not: a reload may turn it on */
    cbx_buf_init(&b);
    while (p < end) {
        const char *at = memchr(p, '@', (size_t)(end - p));
        if (at == NULL) {
            cbx_buf_add(&b, p, (size_t)(end - p));
            break;
        }
        cbx_buf_add(&b, p, (size_t)(at - p));
        if ((size_t)(end - at) >= sizeof pub_mark - 1 && memcmp(at, pub_mark, sizeof pub_mark - 1) == 0) {
            add_html(&b, s->publish_url);
            p = at + sizeof pub_mark - 1;
        } else if ((size_t)(end - at) >= sizeof admin_mark - 1 &&
                   memcmp(at, admin_mark, sizeof admin_mark - 1) == 0) {
            add_html(&b, s->cfg.admin_socket);
            p = at + sizeof admin_mark - 1;
        } else {
            cbx_buf_add(&b, at, 1);
            p = at + 1;
        }
    }
    if (!b.ok) {
        cbx_buf_free(&b);
        return -1;
    }
    s->demo_page = (struct cbx_embedded){ b.s, b.len, cbx_embedded_demo.content_type };
    return 0;
}

/* Lets a connection in at its first request, against max-connections and
 * max-connections-per-ip. Returns true to go on; false when it answered the
 * request with a refusal (in *answer), which also closes the connection. */
static bool admit(struct cbx_server *s, const struct cbx_config *cfg, struct MHD_Connection *c, const char *origin,
                  enum MHD_Result *answer)
{
    struct cbx_conn *conn = cbx_conn_of(c);

    if (conn == NULL) {
        *answer = cbx_http_refuse(c, origin, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", "out of memory");
        return false;
    }
    if (conn->admitted)
        return true;
    if (!cbx_take_slot(&s->admitted, (uint64_t)cfg->max_connections)) {
        cbx_refuse(s, CBX_REFUSE_CONNECTIONS);
        *answer = cbx_http_refuse(c, origin, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                                  "too many connections (max-connections)");
        return false;
    }
    if (!cbx_ips_admit(conn->ip, (uint64_t)cfg->max_connections_per_ip)) {
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
        { "/poll/", CBX_T_POLL }, { "/stream/", CBX_T_STREAM }, { "/events/", CBX_T_SSE }, { "/ws/", CBX_T_WS },
    };
    struct cbx_server *s = cls;
    const struct cbx_config *cfg = cbx_settings_get(s); /* this call's config (docs/THREADS.md) */
    enum MHD_Result ret;
    const char *origin;

    (void)version, (void)upload_data;
    /* Admit the connection as soon as the headers are in, so one that then
     * sends a body slowly counts against max-connections(-per-ip); answer
     * on the second call, once the whole request is in: libmicrohttpd
     * closes a connection whose answer was queued before that (which a
     * refusal wants). */
    if (*con_cls == NULL) {
        *con_cls = &done_marker;
        if (!admit(s, cfg, c, cors_allowed(cfg, c), &ret))
            return ret;
        *con_cls = &seen_marker;
        return MHD_YES;
    }
    if (((struct cbx_req *)*con_cls)->resumed != NULL && *upload_data_size == 0)
        return ((struct cbx_req *)*con_cls)->resumed(*con_cls, c, con_cls); /* a long-poll (or a wait for Redis) resumed */
    if (*con_cls != &seen_marker || *upload_data_size != 0) {
        *upload_data_size = 0; /* a body on a GET is ignored */
        return MHD_YES;
    }
    *con_cls = &done_marker;
    cbx_conn_request_in(c);
    origin = cors_allowed(cfg, c);
    if (strcmp(method, "OPTIONS") == 0)
        return answer_preflight(c, origin);
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        size_t plen = strlen(routes[i].prefix);
        if (strncmp(url, routes[i].prefix, plen) == 0) {
            if (strcmp(method, "GET") != 0)
                return cbx_http_not_allowed(c, origin, method, "GET, OPTIONS");
            if (origin == NULL && cross_site(c)) {
                /* The page could not read the answer, but a stream would
                 * acknowledge what it hands over: refuse before anything. */
                cbx_refuse(s, CBX_REFUSE_SUBSCRIBE_AUTH);
                return cbx_http_error(c, MHD_HTTP_FORBIDDEN, "forbidden", "this page's origin is not in cors-origins");
            }
            *con_cls = NULL;
            ret = start_hold(s, cfg, c, routes[i].t, url + plen, origin, con_cls);
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
    if (strcmp(url, "/demo") == 0 && cfg->demo && s->demo_page.len > 0) {
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
            return cbx_http_not_allowed(c, origin, method, "GET, OPTIONS");
        return answer_static(c, &s->demo_page);
    }
    return not_found(s, cfg, c, url, method, origin);
}
