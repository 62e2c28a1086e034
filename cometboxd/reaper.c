/* reaper.c - one thread for time and for closed peers: it wakes held
 * requests whose hold, heartbeat or stream age is due, notices browsers
 * that went away (EPOLLRDHUP on their sockets, which libmicrohttpd does not
 * watch while a request is held), and sweeps expired messages. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "../common/log.h"
#include "conn.h"
#include "server.h"

#define TICK_MS 200

/* ---- waking libmicrohttpd's pool threads --------------------------------- */

/* libmicrohttpd 0.9.75 (and later) reads up to 128 epoll events per call
 * and, when it got exactly 128, waits again with the full timeout before it
 * serves the connections it already found ready: after a burst (a fan-out)
 * up to 127 of them can sit unserved, a browser's next request unread, until
 * another event reaches that thread; if the thread holds no suspended
 * request, nothing of ours can resume one to make that event. Every pool
 * thread has the listening socket in its epoll set, so one connection
 * attempt on the browser port wakes them all. So at each tick, while
 * browsers are connected, the reaper connects to the browser port and
 * closes at once; libmicrohttpd accepts, reads the end and closes, and that
 * connection is not counted as a browser. docs/THREADS.md. */

void cbx_reaper_target(struct cbx_server *s, int listen_fd)
{
    struct sockaddr_storage a;
    socklen_t len = sizeof a;

    if (s->cfg.threads != CBX_THREADS_POOL || getsockname(listen_fd, (struct sockaddr *)&a, &len) != 0)
        return;
    if (a.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&a;
        if (in->sin_addr.s_addr == htonl(INADDR_ANY))
            in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (a.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a;
        if (memcmp(&in6->sin6_addr, &in6addr_any, sizeof in6addr_any) == 0)
            in6->sin6_addr = in6addr_loopback;
    } else {
        return;
    }
    s->wake_addr = a;
    s->wake_len = len;
    atomic_store(&s->wake_ready, true);
}

/* The port of an AF_INET or AF_INET6 address. */
static unsigned port_of(const struct sockaddr *a)
{
    return ntohs(a->sa_family == AF_INET ? ((const struct sockaddr_in *)(const void *)a)->sin_port
                                         : ((const struct sockaddr_in6 *)(const void *)a)->sin6_port);
}

bool cbx_reaper_is_wake(struct cbx_server *s, const struct sockaddr *addr)
{
    unsigned port = atomic_load(&s->wake_port);
    uint8_t from[16], wake[16];

    if (port == 0 || addr == NULL || !atomic_load(&s->wake_ready) || addr->sa_family != s->wake_addr.ss_family ||
        port_of(addr) != port)
        return false;
    return cbx_addr_key(addr, from) && cbx_addr_key((const struct sockaddr *)&s->wake_addr, wake) &&
           memcmp(from, wake, sizeof from) == 0;
}

static void wake_pool_threads(struct cbx_server *s)
{
    struct sockaddr_storage local;
    socklen_t len;
    int fd;

    if (!atomic_load(&s->wake_ready) || atomic_load(&s->stopping) || atomic_load(&s->ctr.browser_connections) == 0)
        return;
    fd = socket(s->wake_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    /* the source port is known before the connection exists, so the
     * connection callback can tell it from a browser */
    memset(&local, 0, sizeof local);
    local.ss_family = s->wake_addr.ss_family;
    len = s->wake_len;
    if (bind(fd, (struct sockaddr *)&local, len) == 0 && getsockname(fd, (struct sockaddr *)&local, &len) == 0) {
        atomic_store(&s->wake_port, port_of((struct sockaddr *)&local));
        if (connect(fd, (struct sockaddr *)&s->wake_addr, s->wake_len) != 0 && errno != EINPROGRESS)
            cbx_log(CBX_LOG_DEBUG, "reaper: cannot reach the browser port: %s", strerror(errno));
    }
    close(fd);
}

/* ---- the thread ------------------------------------------------------------ */

static void *reaper_main(void *arg)
{
    struct cbx_server *s = arg;
    struct epoll_event evs[256];
    int64_t next_tick = cbx_now_mono_us(), next_sweep = next_tick;

    for (;;) {
        int64_t now = cbx_now_mono_us();
        /* rounded up: a wait cut short by the rounding would spin through
         * the last fraction of a millisecond in calls that return at once */
        int wait_ms = next_tick > now ? (int)((next_tick - now + 999) / 1000) : 0;
        int n = epoll_wait(s->watch_fd, evs, 256, wait_ms);

        if (n < 0 && errno != EINTR) {
            cbx_log(CBX_LOG_ERROR, "reaper: epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == 0)
                return NULL; /* the stop pipe */
            /* A FIN alone (EPOLLRDHUP) may be a half-close, which HTTP
             * allows: the client still reads its answer. Only a reset
             * (EPOLLERR, EPOLLHUP) means it is gone. */
            if (evs[i].events & (EPOLLERR | EPOLLHUP))
                cbx_hold_peer_closed(s, evs[i].data.u64);
            else if (evs[i].events & EPOLLRDHUP)
                cbx_hold_peer_half_closed(s, evs[i].data.u64);
        }
        now = cbx_now_mono_us();
        if (now >= next_tick) {
            cbx_hold_tick(s, now);
            cbx_conn_expire(s, now);
            wake_pool_threads(s);
            next_tick = now + TICK_MS * 1000;
        }
        if (now >= next_sweep) {
            cbx_qmap_sweep(s->qmap, now);
            next_sweep = now + 1000000;
        }
    }
    return NULL;
}

int cbx_reaper_start(struct cbx_server *s)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0 };

    s->watch_fd = epoll_create1(EPOLL_CLOEXEC);
    if (s->watch_fd < 0 || pipe2(s->reaper_pipe, O_CLOEXEC) != 0 ||
        epoll_ctl(s->watch_fd, EPOLL_CTL_ADD, s->reaper_pipe[0], &ev) != 0)
        return -1;
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0)
        return -1;
    s->reaper_started = true;
    return 0;
}

void cbx_reaper_stop(struct cbx_server *s)
{
    if (!s->reaper_started)
        return;
    if (write(s->reaper_pipe[1], "x", 1) < 0)
        cbx_log(CBX_LOG_WARN, "reaper: cannot signal stop: %s", strerror(errno));
    pthread_join(s->reaper, NULL);
    s->reaper_started = false;
    close(s->reaper_pipe[0]);
    close(s->reaper_pipe[1]);
    close(s->watch_fd);
}
