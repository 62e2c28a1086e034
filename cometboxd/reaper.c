/* reaper.c - one thread for time and for closed peers: it wakes held
 * requests whose hold, heartbeat or stream age is due, notices browsers
 * that went away (EPOLLRDHUP on their sockets, which libmicrohttpd does not
 * watch while a request is held), and sweeps expired messages. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "../common/log.h"
#include "conn.h"
#include "hold.h"
#include "reaper.h"
#include "server.h"

#define TICK_MS 200

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
