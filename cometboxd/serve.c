/* serve.c - starting and stopping the browser and publish listeners in the
 * configured threads mode, and libmicrohttpd's completion callback, which
 * hands each request back to its own context (struct cbx_req). Not for
 * answering (browser.c, publish.c, hold.c). */
#include "serve.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"
#include "conn.h"
#include "http.h"
#include "pool.h"
#include "server.h"
#include "settings.h"

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    struct cbx_req *r = *con_cls;

    cbx_conn_request_done(cls, c); /* the clock runs for the next request's headers */
    if (r != NULL && r->completed != NULL)
        r->completed(r, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    *con_cls = NULL;
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

/* One daemon of a port on listen_fd (which it then owns), with at most
 * limit connections. */
static struct MHD_Daemon *start_daemon(struct cbx_server *s, int listen_fd, unsigned limit, bool browser,
                                       MHD_AccessHandlerCallback handler)
{
    unsigned flags = MHD_USE_ERROR_LOG | (browser ? MHD_ALLOW_UPGRADE : 0); /* WebSockets (hold_ws.c) */
    struct MHD_OptionItem opts[14];
    int n = 0;

    opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_error, NULL };
    if (s->cfg.threads == CBX_THREADS_PER_CONNECTION) {
        flags |= MHD_USE_ITC | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
        opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_STACK_SIZE, (intptr_t)s->cfg.thread_stack, NULL };
    } else {
        /* no internal thread: a pool thread of ours runs it (pool.c) */
        flags |= MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO;
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
    return MHD_start_daemon(flags, 0, NULL, NULL, handler, s, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
}

static unsigned pool_threads(const struct cbx_server *s)
{
    long cores;

    if (s->cfg.pool_size > 0)
        return (unsigned)s->cfg.pool_size;
    cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 0 ? (unsigned)cores : 1;
}

/* Pool mode: thread i drives daemon i of each port, each on its own
 * duplicate of the port's listening socket (whichever thread's accept wins
 * takes the connection); connection limits are shared out. */
static int start_pool(struct cbx_server *s, MHD_AccessHandlerCallback browser, MHD_AccessHandlerCallback publish,
                      char *err, size_t errlen)
{
    unsigned n = pool_threads(s);
    /* libmicrohttpd's limit sits above ours, so the extra connections get a 503, not a reset; a
     * reload may lower ours (max-connections), never raise it above this */
    unsigned blimit = ((unsigned)cbx_settings_started(s)->max_connections + 64 + n - 1) / n;
    unsigned plimit = ((unsigned)s->cfg.publish_max_connections + n - 1) / n;

    s->pool = cbx_pool_create(n);
    if (s->pool == NULL) {
        snprintf(err, errlen, "cannot make the pool threads' epoll sets: %s", strerror(errno));
        return -1;
    }
    for (unsigned i = 0; i < n; i++) {
        int fds[2] = { dup(s->browser_fd), dup(s->publish_fd) };
        struct MHD_Daemon *d[2] = { NULL, NULL };
        for (unsigned k = 0; k < 2; k++) {
            if (fds[k] >= 0)
                d[k] = start_daemon(s, fds[k], k == 0 ? blimit : plimit, k == 0, k == 0 ? browser : publish);
            if (d[k] == NULL) {
                if (fds[k] >= 0)
                    close(fds[k]);
                snprintf(err, errlen, "libmicrohttpd would not start the %s listener", k == 0 ? "browser" : "publish");
                return -1;
            }
            if (cbx_pool_add_daemon(s->pool, i, k, d[k]) != 0) {
                snprintf(err, errlen, "cannot watch a listener's epoll set: %s", strerror(errno));
                return -1;
            }
        }
    }
    close(s->browser_fd); /* each daemon has its own duplicate */
    close(s->publish_fd);
    s->browser_fd = s->publish_fd = -1;
    if (cbx_pool_start(s->pool) != 0) {
        snprintf(err, errlen, "cannot start the pool threads: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int cbx_serve_start(struct cbx_server *s, MHD_AccessHandlerCallback browser, MHD_AccessHandlerCallback publish,
                    char *err, size_t errlen)
{
    if (s->cfg.threads == CBX_THREADS_POOL)
        return start_pool(s, browser, publish, err, errlen);
    s->browser = start_daemon(s, s->browser_fd, (unsigned)cbx_settings_started(s)->max_connections + 64, true, browser);
    if (s->browser == NULL) {
        snprintf(err, errlen, "libmicrohttpd would not start the browser listener");
        return -1;
    }
    s->browser_fd = -1; /* the daemon closes it */
    s->publisher = start_daemon(s, s->publish_fd, (unsigned)s->cfg.publish_max_connections, false, publish);
    if (s->publisher == NULL) {
        snprintf(err, errlen, "libmicrohttpd would not start the publish listener");
        return -1;
    }
    s->publish_fd = -1;
    return 0;
}

void cbx_serve_stop(struct cbx_server *s)
{
    cbx_pool_destroy(s->pool); /* joins the threads, then stops their daemons */
    s->pool = NULL;
    if (s->browser != NULL)
        MHD_stop_daemon(s->browser);
    if (s->publisher != NULL)
        MHD_stop_daemon(s->publisher);
    s->browser = s->publisher = NULL;
    if (s->browser_fd >= 0)
        close(s->browser_fd);
    if (s->publish_fd >= 0)
        close(s->publish_fd);
    s->browser_fd = s->publish_fd = -1;
}
