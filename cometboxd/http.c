/* http.c - the small answer helpers both ports share: JSON errors, CORS
 * and cache headers, the query check, the unescape callback. Below every
 * request handler; knows no handler. Starting the listeners: serve.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/qname.h"
#include "http.h"

void cbx_http_common_headers(struct MHD_Response *r)
{
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
}

enum MHD_Result cbx_http_send(struct MHD_Connection *c, unsigned status, const char *content_type, const char *body,
                              size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", content_type);
    cbx_http_common_headers(r); /* no cache may keep a publish answer or a health check either */
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

void cbx_http_cors_headers(struct MHD_Response *r, const char *origin)
{
    if (origin == NULL)
        return;
    MHD_add_response_header(r, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(r, "Access-Control-Expose-Headers", "Retry-After, Cometbox-Cursor");
    MHD_add_response_header(r, "Vary", "Origin");
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *code, const char *detail,
                                  const char *allow, bool close, const char *origin)
{
    struct cbx_buf b;
    struct MHD_Response *r;
    enum MHD_Result ret = MHD_NO;

    cbx_buf_init(&b);
    cbx_buf_adds(&b, "{\"error\":");
    cbx_buf_add_json_string(&b, code, strlen(code));
    cbx_buf_adds(&b, ",\"detail\":");
    cbx_buf_add_json_string(&b, detail, strlen(detail));
    cbx_buf_adds(&b, "}\n");
    if (!b.ok)
        goto out;
    r = MHD_create_response_from_buffer(b.len, b.s, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        goto out;
    MHD_add_response_header(r, "Content-Type", "application/json");
    cbx_http_common_headers(r);
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE || status == MHD_HTTP_TOO_MANY_REQUESTS)
        MHD_add_response_header(r, "Retry-After", "5");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"cometbox publish\"");
    if (allow != NULL)
        MHD_add_response_header(r, "Allow", allow);
    if (status == MHD_HTTP_UPGRADE_REQUIRED) /* only a WebSocket handshake gets it */
        MHD_add_response_header(r, "Sec-WebSocket-Version", "13");
    if (close)
        MHD_add_response_header(r, "Connection", "close");
    cbx_http_cors_headers(r, origin);
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
out:
    cbx_buf_free(&b);
    return ret;
}

enum MHD_Result cbx_http_json(struct MHD_Connection *c, unsigned status, const char *body, size_t len)
{
    return cbx_http_send(c, status, "application/json", body, len);
}

enum MHD_Result cbx_http_error(struct MHD_Connection *c, unsigned status, const char *code, const char *detail)
{
    return send_error(c, status, code, detail, NULL, false, NULL);
}

enum MHD_Result cbx_http_error_cors(struct MHD_Connection *c, const char *origin, unsigned status, const char *code,
                                    const char *detail)
{
    return send_error(c, status, code, detail, NULL, false, origin);
}

enum MHD_Result cbx_http_refuse(struct MHD_Connection *c, const char *origin, unsigned status, const char *code,
                                const char *detail)
{
    return send_error(c, status, code, detail, NULL, true, origin);
}

enum MHD_Result cbx_http_not_allowed(struct MHD_Connection *c, const char *origin, const char *method,
                                     const char *allow)
{
    char detail[160];

    snprintf(detail, sizeof detail, "method %.40s is not allowed here; use %s", method, allow);
    return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", detail, allow, false, origin);
}

struct arg_check {
    const char *const *known; /* NULL-terminated */
    unsigned seen;            /* bit i: known[i] was given */
    char *why;
    size_t whylen;
    bool bad;
};

/* A parameter name as it may appear in an error: a plain word, or nothing. */
static bool printable_name(const char *key)
{
    size_t n = strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-[]");

    return n > 0 && n <= 40 && key[n] == '\0';
}

static enum MHD_Result check_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct arg_check *a = cls;
    char list[160] = "";

    (void)kind, (void)value;
    for (size_t i = 0; a->known[i] != NULL; i++) {
        if (strcmp(key, a->known[i]) == 0) {
            if (a->seen & (1u << i)) {
                snprintf(a->why, a->whylen, "query parameter %s is given twice", key);
                a->bad = true;
                return MHD_NO;
            }
            a->seen |= 1u << i;
            return MHD_YES;
        }
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i > 0 ? ", " : "", a->known[i]);
    }
    if (list[0] == '\0')
        snprintf(list, sizeof list, "none");
    if (printable_name(key))
        snprintf(a->why, a->whylen, "unknown query parameter \"%s\" (known here: %s)", key, list);
    else
        snprintf(a->why, a->whylen, "unknown query parameter (known here: %s)", list);
    a->bad = true;
    return MHD_NO;
}

bool cbx_http_args_known(struct MHD_Connection *c, const char *const *known, char *why, size_t whylen)
{
    struct arg_check a = { known, 0, why, whylen, false };

    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, check_arg, &a);
    return !a.bad;
}

/* libmicrohttpd's unescape callback: cbx_url_unescape() (no %00). */
size_t cbx_http_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls, (void)c;
    return cbx_url_unescape(s);
}
