/* http.c - starting a libmicrohttpd daemon in the configured threads mode,
 * and the small answer helpers both ports share. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/qname.h"
#include "conn.h"
#include "server.h"

const char *const cbx_transport_names[CBX_T_COUNT] = { "long-poll", "stream", "sse" };

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

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    struct cbx_server *s = cls;
    int *kind = *con_cls;

    cbx_conn_request_done(s, c); /* the clock runs for the next request's headers */
    if (kind == NULL)
        return;
    if (*kind == CBX_CTX_HOLD)
        cbx_hold_completed(s, *con_cls, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    else if (*kind == CBX_CTX_PUBLISH)
        cbx_publish_completed(*con_cls);
    *con_cls = NULL;
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

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    char msg[512];

    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    /* per-connection noise (a browser that went away); start-up errors are ours */
    cbx_log(CBX_LOG_DEBUG, "libmicrohttpd: %s", msg);
}

struct MHD_Daemon *cbx_http_start(struct cbx_server *s, int listen_fd, unsigned limit,
                                  MHD_AccessHandlerCallback handler, bool browser, char *err, size_t errlen)
{
    unsigned flags = MHD_USE_ITC | MHD_USE_ERROR_LOG;
    unsigned pool = (unsigned)s->cfg.pool_size;
    struct MHD_Daemon *d;
    struct MHD_OptionItem opts[14];
    int n = 0;

    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_error, NULL };
    if (pool == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        pool = cores > 0 ? (unsigned)cores : 1;
    }
    if (!browser && pool > 2)
        pool = 2; /* publishes are short; two threads keep up with many holders */
    if (s->cfg.threads == CBX_THREADS_PER_CONNECTION) {
        flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
        opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_STACK_SIZE, (intptr_t)s->cfg.thread_stack, NULL };
    } else {
        flags |= MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO;
        opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE, pool, NULL };
    }
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_SOCKET, listen_fd, NULL };
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)cbx_http_unescape, NULL };
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT, limit, NULL };
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)s->cfg.connection_memory, NULL };
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)s->cfg.idle_timeout, NULL };
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s };
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_CONNECTION,
                                         browser ? (intptr_t)cbx_conn_notify_browser : (intptr_t)cbx_conn_notify_publish, s };
    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
    d = MHD_start_daemon(flags, 0, NULL, NULL, handler, s, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (d == NULL)
        snprintf(err, errlen, "libmicrohttpd would not start the %s listener", browser ? "browser" : "publish");
    return d;
}
