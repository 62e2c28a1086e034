/* conn.c - connection contexts: made and freed by libmicrohttpd's
 * connection callbacks, on both ports. They carry what outlives a request:
 * the id, per-address admission (limits.c), the closed-peer watch (the
 * reaper's epoll set) and the header clock that request-timeout enforces.
 * Not for what a request does (browser.c, publish.c, hold.c). */
#include "conn.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "../common/log.h"
#include "../common/qmap.h"
#include "limits.h"
#include "server.h"
#include "settings.h"

/* The header clock: connections waiting for a request's headers, on two
 * lists, each in deadline order. Each adds one span to the time a
 * connection joins it, fixed until a reload changes request-timeout: a
 * connection joins at the tail, or, when a reload shortened the span,
 * before the ones that joined earlier with the longer span (a walk back
 * from the tail that ends at once unless a reload shortened it in the last
 * span). */
enum { CLOCK_NONE, CLOCK_FRESH, CLOCK_KEPT };
struct clock_list {
    struct cbx_conn *head, *tail;
};
static pthread_mutex_t clock_mu = PTHREAD_MUTEX_INITIALIZER; /* guards both lists and every cprev, cnext, clist, deadline_us */
static struct clock_list clock_lists[3];                     /* [CLOCK_FRESH]: new connections, [CLOCK_KEPT]: kept alive */

static void clock_unlink(struct cbx_conn *conn)
{
    struct clock_list *l = &clock_lists[conn->clist];

    if (conn->clist == CLOCK_NONE)
        return;
    if (conn->cprev != NULL)
        conn->cprev->cnext = conn->cnext;
    else
        l->head = conn->cnext;
    if (conn->cnext != NULL)
        conn->cnext->cprev = conn->cprev;
    else
        l->tail = conn->cprev;
    conn->cprev = conn->cnext = NULL;
    conn->clist = CLOCK_NONE;
}

static void clock_start(struct cbx_conn *conn, int list, int64_t span_us)
{
    struct clock_list *l = &clock_lists[list];
    struct cbx_conn *after;

    pthread_mutex_lock(&clock_mu);
    clock_unlink(conn);
    conn->deadline_us = cbx_now_mono_us() + span_us;
    conn->clist = list;
    for (after = l->tail; after != NULL && after->deadline_us > conn->deadline_us; after = after->cprev)
        ;
    conn->cprev = after;
    conn->cnext = after != NULL ? after->cnext : l->head;
    if (conn->cprev != NULL)
        conn->cprev->cnext = conn;
    else
        l->head = conn;
    if (conn->cnext != NULL)
        conn->cnext->cprev = conn;
    else
        l->tail = conn;
    pthread_mutex_unlock(&clock_mu);
}

static void clock_stop(struct cbx_conn *conn)
{
    pthread_mutex_lock(&clock_mu);
    clock_unlink(conn);
    pthread_mutex_unlock(&clock_mu);
}

static struct cbx_conn *context_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return ci != NULL ? ci->socket_context : NULL;
}

struct cbx_conn *cbx_conn_of(struct MHD_Connection *c)
{
    return context_of(c);
}

void cbx_conn_request_in(struct MHD_Connection *c)
{
    struct cbx_conn *conn = context_of(c);

    if (conn != NULL)
        clock_stop(conn);
}

void cbx_conn_request_done(struct cbx_server *s, struct MHD_Connection *c)
{
    struct cbx_conn *conn = context_of(c);
    long request_timeout = cbx_settings_get(s)->request_timeout, idle_timeout = s->cfg.idle_timeout; /* restart-only */
    long span = request_timeout > idle_timeout ? request_timeout : idle_timeout;

    if (conn != NULL)
        clock_start(conn, CLOCK_KEPT, (int64_t)span * 1000000);
}

unsigned cbx_conn_expire(struct cbx_server *s, int64_t now)
{
    unsigned n = 0;

    pthread_mutex_lock(&clock_mu);
    for (int list = CLOCK_FRESH; list <= CLOCK_KEPT; list++) {
        struct cbx_conn *conn;
        while ((conn = clock_lists[list].head) != NULL && conn->deadline_us <= now) {
            clock_unlink(conn);
            /* The socket is still open: libmicrohttpd calls the close
             * callback (which takes clock_mu) before it closes it. It
             * sees the end of the stream and closes the connection. */
            if (conn->fd >= 0 && shutdown(conn->fd, SHUT_RDWR) != 0 && errno != ENOTCONN)
                cbx_log(CBX_LOG_DEBUG, "request-timeout: shutdown: %s", strerror(errno));
            n++;
        }
    }
    pthread_mutex_unlock(&clock_mu);
    for (unsigned i = 0; i < n; i++)
        cbx_refuse(s, CBX_REFUSE_REQUEST_TIMEOUT);
    if (n > 0)
        cbx_log(CBX_LOG_DEBUG, "request-timeout: closed %u connections whose request headers did not arrive in time", n);
    return n;
}

/* A browser connection's context also has a place in the reaper's epoll
 * set, made the first time one of its requests is about to wait, watched
 * for a closed peer (edge-triggered, data = the id) for the rest of its
 * life: one epoll_ctl per connection that ever waits, none per request and
 * none for a connection answered at once. A peer that closed before the
 * registration is reported at once by epoll. The registration goes away by
 * itself when libmicrohttpd closes the socket. */
void cbx_conn_watch(struct cbx_server *s, struct cbx_conn *conn)
{
    struct epoll_event ev = { .events = EPOLLRDHUP | EPOLLET };

    if (conn == NULL || conn->watched || conn->fd < 0)
        return;
    conn->watched = true;
    ev.data.u64 = conn->id;
    if (epoll_ctl(s->watch_fd, EPOLL_CTL_ADD, conn->fd, &ev) != 0)
        cbx_log(CBX_LOG_WARN, "connection %llu: cannot watch its socket: %s", (unsigned long long)conn->id,
                strerror(errno));
}

/* A new context with its socket and the header clock running. */
static struct cbx_conn *conn_open(struct cbx_server *s, struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct cbx_conn *conn = calloc(1, sizeof *conn);

    if (conn == NULL)
        return NULL;
    conn->fd = ci != NULL ? ci->connect_fd : -1;
    clock_start(conn, CLOCK_FRESH, (int64_t)cbx_settings_get(s)->request_timeout * 1000000);
    return conn;
}

static void conn_close(struct cbx_conn *conn)
{
    clock_stop(conn);
    free(conn);
}

void cbx_conn_notify_browser(void *cls, struct MHD_Connection *c, void **socket_context,
                             enum MHD_ConnectionNotificationCode toe)
{
    struct cbx_server *s = cls;
    struct cbx_conn *conn = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        atomic_fetch_add(&s->ctr.browser_connections, 1);
        conn = conn_open(s, c);
        if (conn == NULL)
            return; /* the handler refuses requests of a connection without one */
        conn->id = atomic_fetch_add(&s->next_conn_id, 1) + 1;
        conn->ip = cbx_ips_acquire(s->ips, c);
        *socket_context = conn;
    } else {
        atomic_fetch_sub(&s->ctr.browser_connections, 1);
        if (conn != NULL) {
            if (conn->admitted)
                atomic_fetch_sub(&s->admitted, 1);
            cbx_ips_release(s->ips, conn->ip, conn->admitted);
            conn_close(conn);
        }
        *socket_context = NULL;
    }
}

void cbx_conn_notify_publish(void *cls, struct MHD_Connection *c, void **socket_context,
                             enum MHD_ConnectionNotificationCode toe)
{
    struct cbx_server *s = cls;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        atomic_fetch_add(&s->ctr.publish_connections, 1);
        *socket_context = conn_open(s, c); /* without one, no header clock: the idle timeout still applies */
    } else {
        atomic_fetch_sub(&s->ctr.publish_connections, 1);
        if (*socket_context != NULL)
            conn_close(*socket_context);
        *socket_context = NULL;
    }
}
