/* admin.c - the admin socket server (docs/ADMIN.md): one thread runs an
 * epoll loop over the listening UNIX socket, every admin connection and an
 * eventfd that the tails' wake() rings. Every socket is non-blocking and
 * every buffer bounded, so a slow or hostile admin client costs at most its
 * own share of memory and never holds up publishing, polling or another
 * admin client. Not for the commands (admin_cmd.c), tails (admin_tail.c),
 * the line format (common/admin_proto.c) nor the stats snapshot (stats.c). */
#include "admin.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/admin_proto.h"
#include "../common/buf.h"
#include "../common/log.h"
#include "../common/qmap.h"
#include "admin_cmd.h"
#include "admin_int.h"
#include "admin_tail.h"
#include "server.h"

#define CLIENTS_MAX 64             /* admin connections at once; more get an error line */
#define READ_CHUNK 16384
#define IDLE_US (120 * 1000000LL)  /* no request (and no tail) for this long: closed */
#define STALL_US (30 * 1000000LL)  /* unsent output that makes no progress for this long: closed */
#define LINES_PER_TURN 32          /* requests of one client handled before the others get a turn */

static struct cbx_admin *the_admin; /* one daemon, one admin socket; set by start, cleared by stop */

/* ---- connections ---- */

static void client_set_events(struct cbx_admin *a, struct cbx_admin_client *c)
{
    uint32_t ev = 0;
    struct epoll_event e;

    /* read only while earlier requests are handled and answered: input stays bounded */
    if (!c->eof && !c->closing && !c->more && c->out.len - c->out_off <= CBX_ADMIN_OUT_SOFT_MAX)
        ev |= EPOLLIN;
    if (c->out_off < c->out.len)
        ev |= EPOLLOUT;
    if (ev == c->events)
        return;
    e = (struct epoll_event){ .events = ev, .data.ptr = c };
    epoll_ctl(a->ep, EPOLL_CTL_MOD, c->fd, &e);
    c->events = ev;
}

static void client_close(struct cbx_admin *a, struct cbx_admin_client *c, const char *why)
{
    while (c->tails != NULL)
        cbx_admin_tail_end(c, c->tails, NULL);
    for (struct cbx_admin_client **p = &a->clients; *p != NULL; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    cbx_log(CBX_LOG_DEBUG, "admin client %llu closed: %s", (unsigned long long)c->no, why);
    close(c->fd);
    cbx_buf_free(&c->in);
    cbx_buf_free(&c->out);
    free(c);
    a->nclients--;
    atomic_fetch_sub(&a->s->ctr.admin_clients, 1);
}

/* Handles the complete lines in c->in while the client reads its answers;
 * at the end of its input also the last line without a newline. */
static void client_handle_input(struct cbx_admin *a, struct cbx_admin_client *c)
{
    size_t start = 0, handled = 0;
    char *nl;

    c->more = false;
    while (start < c->in.len && !c->closing && c->out.len - c->out_off <= CBX_ADMIN_OUT_SOFT_MAX) {
        size_t end;

        nl = memchr(c->in.s + start, '\n', c->in.len - start);
        end = nl != NULL ? (size_t)(nl - c->in.s) : c->in.len;
        size_t len = end - start;

        if (nl == NULL && !c->eof)
            break;
        if (len > CBX_ADMIN_LINE_MAX)
            break; /* answered below */
        while (len > 0 && (c->in.s[start + len - 1] == '\r' || c->in.s[start + len - 1] == ' '))
            len--;
        if (handled == LINES_PER_TURN) {
            c->more = true; /* fairness: the other clients first */
            break;
        }
        if (len > 0) {
            cbx_admin_cmd_line(a, c, c->in.s + start, len);
            handled++;
        }
        start = nl != NULL ? end + 1 : c->in.len;
    }
    if (start > 0) {
        memmove(c->in.s, c->in.s + start, c->in.len - start);
        c->in.len -= start;
        c->in.s[c->in.len] = '\0';
    }
    if (!c->closing && c->in.len > CBX_ADMIN_LINE_MAX &&
        ((nl = memchr(c->in.s, '\n', c->in.len)) == NULL || (size_t)(nl - c->in.s) > CBX_ADMIN_LINE_MAX)) {
        char msg[96];
        snprintf(msg, sizeof msg, "request line over %d bytes", CBX_ADMIN_LINE_MAX);
        cbx_log(CBX_LOG_DEBUG, "admin client %llu: %s; closing", (unsigned long long)c->no, msg);
        cbx_admin_reply_error(&c->out, "null", msg);
        c->closing = true;
        cbx_buf_free(&c->in);
    }
    if (c->eof && c->in.len == 0 && !c->closing && !c->more) {
        /* nothing more will come: its tails end, and it closes once answered */
        while (c->tails != NULL)
            cbx_admin_tail_end(c, c->tails, NULL);
        c->closing = true;
    }
}

/* Sends what it can; false when the client was closed. */
static bool client_flush(struct cbx_admin *a, struct cbx_admin_client *c)
{
    bool had_backlog = c->out.len - c->out_off > CBX_ADMIN_OUT_SOFT_MAX, progress = false;

    if (!c->out.ok) {
        client_close(a, c, "out of memory");
        return false;
    }
    while (c->out_off < c->out.len) {
        ssize_t w = send(c->fd, c->out.s + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            c->out_off += (size_t)w;
            progress = true;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            client_close(a, c, w < 0 ? strerror(errno) : "write failed");
            return false;
        }
    }
    if (c->out_off < c->out.len && (progress || c->stalled_since_us == 0))
        c->stalled_since_us = cbx_now_mono_us();
    if (c->out_off == c->out.len) {
        c->stalled_since_us = 0;
        if (c->out.cap > 4 * CBX_ADMIN_OUT_SOFT_MAX)
            cbx_buf_free(&c->out); /* give a big answer's memory back */
        cbx_buf_reset(&c->out);
        c->out_off = 0;
        if (c->closing) {
            client_close(a, c, "done");
            return false;
        }
    } else if (c->out_off > CBX_ADMIN_OUT_SOFT_MAX) {
        memmove(c->out.s, c->out.s + c->out_off, c->out.len - c->out_off);
        c->out.len -= c->out_off;
        c->out.s[c->out.len] = '\0';
        c->out_off = 0;
    }
    if (had_backlog && c->out.len - c->out_off <= CBX_ADMIN_OUT_SOFT_MAX) {
        /* it caught up: the requests and tail messages that waited go on */
        client_handle_input(a, c);
        for (struct cbx_admin_tail *t = c->tails, *next; t != NULL; t = next) {
            next = t->next;
            cbx_admin_tail_drain(c, t);
        }
        if (c->out_off < c->out.len)
            return client_flush(a, c);
    }
    client_set_events(a, c);
    return true;
}

static void client_read(struct cbx_admin *a, struct cbx_admin_client *c)
{
    char buf[READ_CHUNK];
    ssize_t r;

    do
        r = read(c->fd, buf, sizeof buf);
    while (r < 0 && errno == EINTR);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (r < 0) {
        client_close(a, c, strerror(errno));
        return;
    }
    if (r == 0)
        c->eof = true;
    else if (!c->closing)
        cbx_buf_add(&c->in, buf, (size_t)r);
    if (!c->in.ok) {
        client_close(a, c, "out of memory");
        return;
    }
    client_handle_input(a, c);
    client_flush(a, c);
}

static void accept_clients(struct cbx_admin *a)
{
    for (;;) {
        int fd = accept4(a->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct cbx_admin_client *c;
        struct ucred cred;
        socklen_t clen = sizeof cred;
        struct epoll_event e;

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* out of descriptors: stop listening until the next tick instead of spinning */
                cbx_log(CBX_LOG_WARN, "admin socket: cannot accept: %s", strerror(errno));
                epoll_ctl(a->ep, EPOLL_CTL_DEL, a->listen_fd, NULL);
                a->listening = false;
            }
            return;
        }
        if (a->nclients >= CLIENTS_MAX) {
            static const char busy[] = "{\"id\":null,\"ok\":false,\"error\":\"too many admin clients\"}\n";
            ssize_t w = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)w;
            close(fd);
            cbx_log(CBX_LOG_WARN, "admin socket: refused a client: %d are connected", CLIENTS_MAX);
            continue;
        }
        c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->no = ++a->next_no;
        c->pid = c->uid = -1;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) {
            c->pid = cred.pid;
            c->uid = cred.uid;
        }
        cbx_buf_init(&c->in);
        cbx_buf_init(&c->out);
        c->last_request_us = cbx_now_mono_us();
        c->events = EPOLLIN;
        e = (struct epoll_event){ .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(a->ep, EPOLL_CTL_ADD, fd, &e) != 0) {
            close(fd);
            free(c);
            continue;
        }
        c->next = a->clients;
        a->clients = c;
        a->nclients++;
        atomic_fetch_add(&a->s->ctr.admin_clients, 1);
        cbx_log(CBX_LOG_DEBUG, "admin client %llu connected (uid %ld pid %ld)", (unsigned long long)c->no, c->uid,
                c->pid);
    }
}

/* Once a second: a rate sample, and the clients that stalled or idle too long. */
static void tick(struct cbx_admin *a, int64_t now)
{
    cbx_admin_rates_sample(a);
    if (!a->listening) {
        struct epoll_event e = { .events = EPOLLIN, .data.ptr = NULL };
        if (epoll_ctl(a->ep, EPOLL_CTL_ADD, a->listen_fd, &e) == 0)
            a->listening = true;
    }
    for (struct cbx_admin_client *c = a->clients, *next; c != NULL; c = next) {
        next = c->next;
        if (c->stalled_since_us != 0 && now - c->stalled_since_us > STALL_US)
            client_close(a, c, "it did not read its answers");
        else if (c->tails == NULL && c->out_off == c->out.len && now - c->last_request_us > IDLE_US)
            client_close(a, c, "idle");
    }
}

static void drain_tails(struct cbx_admin *a)
{
    uint64_t v;
    ssize_t r = read(a->evfd, &v, sizeof v);

    (void)r;
    atomic_store(&a->rung, false); /* before looking: a wake from now on rings again */
    for (struct cbx_admin_client *c = a->clients, *next; c != NULL; c = next) {
        next = c->next;
        if (c->tails == NULL)
            continue;
        for (struct cbx_admin_tail *t = c->tails, *tnext; t != NULL; t = tnext) {
            tnext = t->next;
            cbx_admin_tail_drain(c, t);
        }
        client_flush(a, c);
    }
}

static void *admin_main(void *arg)
{
    struct cbx_admin *a = arg;
    struct epoll_event evs[32];

    while (!atomic_load(&a->stop)) {
        int64_t now = cbx_now_mono_us();
        int n, timeout;

        if (now >= a->next_tick_us) {
            tick(a, now);
            a->next_tick_us = now + 1000000;
        }
        timeout = (int)((a->next_tick_us - now + 999) / 1000);
        for (struct cbx_admin_client *c = a->clients; c != NULL; c = c->next)
            if (c->more)
                timeout = 0; /* requests wait: only look for events */
        n = epoll_wait(a->ep, evs, 32, timeout < 0 ? 0 : timeout);
        for (int i = 0; i < n; i++) {
            struct cbx_admin_client *c = evs[i].data.ptr;
            if (c == NULL) {
                accept_clients(a);
            } else if (c == (void *)a) {
                drain_tails(a);
            } else {
                /* a client closed by an earlier event of this batch is not in the set any more;
                 * look it up so a freed one is never touched */
                struct cbx_admin_client *k = a->clients;
                while (k != NULL && k != c)
                    k = k->next;
                if (k == NULL)
                    continue;
                if (evs[i].events & (EPOLLERR | EPOLLHUP) && !(evs[i].events & EPOLLIN))
                    client_close(a, c, "connection reset");
                else if (evs[i].events & EPOLLIN)
                    client_read(a, c);
                else if (evs[i].events & EPOLLOUT)
                    client_flush(a, c);
            }
        }
        /* another turn for the clients whose requests wait (a client with a backlog of unsent
         * answers gets it when it reads them: client_flush) */
        for (struct cbx_admin_client *c = a->clients, *next; c != NULL; c = next) {
            next = c->next;
            if (c->more && c->out.len - c->out_off <= CBX_ADMIN_OUT_SOFT_MAX) {
                client_handle_input(a, c);
                client_flush(a, c);
            }
        }
    }
    /* stopping: every tail gets its end line, then each client what can be sent at once */
    while (a->clients != NULL) {
        struct cbx_admin_client *c = a->clients;
        while (c->tails != NULL)
            cbx_admin_tail_end(c, c->tails, "stopping");
        if (c->out_off < c->out.len) {
            ssize_t w = send(c->fd, c->out.s + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)w;
        }
        client_close(a, c, "the daemon is stopping");
    }
    return NULL;
}

/* ---- start and stop ---- */

static void admin_free(struct cbx_admin *a)
{
    struct stat st;

    if (a->listen_fd >= 0)
        close(a->listen_fd);
    if (a->ep >= 0)
        close(a->ep);
    if (a->evfd >= 0)
        close(a->evfd);
    /* remove the socket only while it is still the one we made */
    if (a->made && lstat(a->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == a->dev && st.st_ino == a->ino)
        unlink(a->path);
    free(a);
}

/* Decides what to do with an existing path: 0 when it is free now. */
static int claim_path(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    int fd, rc;

    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "admin-socket %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "admin-socket %s exists and is not a socket; not removing it (remove it yourself, "
                              "or set admin-socket to another path)", path);
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "admin-socket %s: socket: %s", path, strerror(errno));
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    if (rc == 0 || errno == EAGAIN || errno == EINPROGRESS) {
        close(fd);
        snprintf(err, errlen, "another cometboxd is listening on %s", path);
        return -1;
    }
    if (errno != ECONNREFUSED) {
        snprintf(err, errlen, "admin-socket %s: cannot tell whether a daemon listens there: %s", path,
                 strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    /* a socket nobody listens on: left by a daemon that did not stop cleanly */
    if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot remove the stale admin socket %s: %s", path, strerror(errno));
        return -1;
    }
    cbx_log(CBX_LOG_INFO, "removed the stale admin socket %s", path);
    return 0;
}

int cbx_admin_start(struct cbx_server *s, char *err, size_t errlen)
{
    const char *path = s->cfg.admin_socket;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct epoll_event e;
    struct cbx_admin *a;
    struct stat st;
    mode_t old;
    int rc;

    if (path[0] == '\0') {
        cbx_log(CBX_LOG_INFO, "no admin socket (admin-socket is empty)");
        return 0;
    }
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "admin-socket %s: path too long (at most %zu bytes)", path, sizeof sa.sun_path - 1);
        return -1;
    }
    if ((a = calloc(1, sizeof *a)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    a->s = s;
    a->listen_fd = a->ep = a->evfd = -1;
    memcpy(a->path, path, strlen(path) + 1);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (claim_path(path, err, errlen) != 0)
        goto fail;
    a->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (a->listen_fd < 0) {
        snprintf(err, errlen, "admin-socket %s: socket: %s", path, strerror(errno));
        goto fail;
    }
    /* bind() creates the file with 0777 & ~umask: the umask gives it admin-socket-mode from the
     * start, with no moment of wider access. No other thread creates files at this point. */
    old = umask(~(mode_t)s->cfg.admin_socket_mode & 0777);
    rc = bind(a->listen_fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc != 0) {
        snprintf(err, errlen, "cannot create the admin socket %s: %s", path,
                 errno == EADDRINUSE ? "another process created it meanwhile" : strerror(errno));
        goto fail;
    }
    if (lstat(path, &st) == 0) {
        a->made = true;
        a->dev = st.st_dev;
        a->ino = st.st_ino;
    }
    if (listen(a->listen_fd, 64) != 0 || (a->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (a->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        snprintf(err, errlen, "admin socket %s: %s", path, strerror(errno));
        goto fail;
    }
    e = (struct epoll_event){ .events = EPOLLIN, .data.ptr = NULL };
    if (epoll_ctl(a->ep, EPOLL_CTL_ADD, a->listen_fd, &e) != 0)
        goto fail_errno;
    e = (struct epoll_event){ .events = EPOLLIN, .data.ptr = a };
    if (epoll_ctl(a->ep, EPOLL_CTL_ADD, a->evfd, &e) != 0)
        goto fail_errno;
    a->listening = true;
    the_admin = a;
    cbx_admin_rates_sample(a); /* rates count from the start */
    a->next_tick_us = cbx_now_mono_us() + 1000000;
    if ((rc = pthread_create(&a->thread, NULL, admin_main, a)) != 0) {
        errno = rc;
        goto fail_errno;
    }
    pthread_setname_np(a->thread, "cbx-admin");
    a->thread_started = true;
    cbx_log(CBX_LOG_DEBUG, "admin socket %s (mode %04lo)", path, s->cfg.admin_socket_mode);
    return 0;
fail_errno:
    snprintf(err, errlen, "admin socket %s: %s", path, strerror(errno));
fail:
    the_admin = NULL;
    admin_free(a);
    return -1;
}

void cbx_admin_stop(struct cbx_server *s)
{
    struct cbx_admin *a = the_admin;
    uint64_t one = 1;

    (void)s;
    if (a == NULL)
        return;
    if (a->thread_started) {
        atomic_store(&a->stop, true);
        if (write(a->evfd, &one, sizeof one) < 0)
            cbx_log(CBX_LOG_WARN, "admin: cannot wake its thread: %s", strerror(errno));
        pthread_join(a->thread, NULL);
    }
    the_admin = NULL;
    admin_free(a);
}
