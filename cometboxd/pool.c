/* pool.c - the pool threads (threads = pool). Each drives its own
 * libmicrohttpd daemons, started without internal threads: it waits in
 * epoll_wait on the daemons' epoll descriptors and its own eventfd, with the
 * daemons' own timeout, then runs each daemon that has work. libmicrohttpd's
 * internal pool could not be woken without a write per resumed connection,
 * and stalled after exactly 128 epoll events (it then waited with its full
 * timeout); driven from outside, MHD_run() never blocks, so neither happens.
 * docs/THREADS.md ("Pool threads"). */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../common/log.h"

#define WAKE_MARK 0xffu /* epoll data of the eventfd; a daemon's is its slot; a watch's, its cbx_wake */
#define MARK_MAX 0x100u /* epoll data below this is a mark or a slot, not a pointer */

struct cbx_pool_thread {
    struct MHD_Daemon *d[CBX_POOL_DAEMONS]; /* owned; NULL slots are unused */
    int ep;                  /* our epoll set: the daemons' epoll descriptors and efd */
    int efd;                 /* eventfd: written when wake-ups are queued */
    pthread_t tid;
    bool started;

    pthread_mutex_t mu;      /* guards: queue, signalled, quit */
    struct cbx_wake *queue;  /* connections to resume, newest first */
    bool signalled;          /* efd written since the thread last took the queue */
    bool quit;
    bool due[CBX_POOL_DAEMONS]; /* the thread's own: daemons to run before it waits */
};

struct cbx_pool {
    unsigned n;
    struct cbx_pool_thread *t; /* owned, n of them */
};

static _Thread_local struct cbx_pool_thread *current;

/* Threads owed a wake-up write by this thread's deferring publish. */
#define DEFER_MAX 64
static _Thread_local struct cbx_pool_thread *deferred[DEFER_MAX];
static _Thread_local unsigned n_deferred, defer_depth;

struct cbx_pool_thread *cbx_pool_current(void)
{
    return current;
}

static void signal_thread(struct cbx_pool_thread *t)
{
    uint64_t one = 1;

    /* never blocks: the counter cannot get near its limit */
    if (write(t->efd, &one, sizeof one) != sizeof one && errno != EAGAIN)
        cbx_log(CBX_LOG_ERROR, "pool: cannot wake a thread: %s", strerror(errno));
}

void cbx_pool_wake(struct cbx_pool_thread *t, struct cbx_wake *w)
{
    bool write_now = false;

    pthread_mutex_lock(&t->mu);
    if (!w->queued) {
        w->queued = true;
        w->next = t->queue;
        t->queue = w;
        write_now = !t->signalled;
        t->signalled = true;
    }
    pthread_mutex_unlock(&t->mu);
    if (!write_now)
        return;
    if (defer_depth > 0 && n_deferred < DEFER_MAX)
        deferred[n_deferred++] = t; /* t->signalled stays set until then: no one else writes */
    else
        signal_thread(t);
}

void cbx_pool_defer_begin(void)
{
    defer_depth++;
}

void cbx_pool_defer_end(void)
{
    if (--defer_depth > 0)
        return;
    for (unsigned i = 0; i < n_deferred; i++)
        signal_thread(deferred[i]);
    n_deferred = 0;
}

void cbx_pool_forget(struct cbx_pool_thread *t, struct cbx_wake *w)
{
    pthread_mutex_lock(&t->mu);
    if (w->queued) {
        struct cbx_wake **pp = &t->queue;
        while (*pp != w)
            pp = &(*pp)->next;
        *pp = w->next;
        w->queued = false;
    }
    pthread_mutex_unlock(&t->mu);
}

/* Resumes what other threads queued, marking their daemons due; *quit
 * gets whether the thread is to end. The eventfd was read before, so a
 * wake-up queued after this takes the queue writes it again. */
static void resume_queued(struct cbx_pool_thread *t, bool *due, bool *quit)
{
    struct cbx_wake *list;

    pthread_mutex_lock(&t->mu);
    list = t->queue;
    t->queue = NULL;
    t->signalled = false;
    for (struct cbx_wake *w = list; w != NULL; w = w->next)
        w->queued = false;
    *quit = t->quit;
    pthread_mutex_unlock(&t->mu);
    /* still suspended (or, with run, still owned), so nothing frees them;
     * MHD_run() resumes them */
    for (struct cbx_wake *w = list, *next; w != NULL; w = next) {
        next = w->next;
        if (w->run != NULL) {
            w->run(w, 0); /* may free w: next was read before */
            continue;
        }
        due[w->slot] = true;
        MHD_resume_connection(w->conn);
    }
}

int cbx_pool_watch(int fd, unsigned events, struct cbx_wake *w, bool again)
{
    struct epoll_event ev = { .events = events, .data.ptr = w };

    return epoll_ctl(current->ep, again ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
}

void cbx_pool_unwatch(int fd)
{
    epoll_ctl(current->ep, EPOLL_CTL_DEL, fd, NULL);
}

void cbx_pool_due(unsigned k)
{
    current->due[k] = true;
}

/* The shortest wait any daemon allows, in ms, or -1. */
static int wait_ms(struct cbx_pool_thread *t)
{
    MHD_UNSIGNED_LONG_LONG ms, best = ~0ULL;

    for (int k = 0; k < CBX_POOL_DAEMONS; k++)
        if (t->d[k] != NULL && MHD_get_timeout(t->d[k], &ms) == MHD_YES && ms < best)
            best = ms;
    return best == ~0ULL ? -1 : best > 60000 ? 60000 : (int)best;
}

static void *thread_main(void *arg)
{
    struct cbx_pool_thread *t = arg;
    struct epoll_event evs[64];
    bool *due = t->due;
    bool quit = false;

    current = t;
    for (int k = 0; k < CBX_POOL_DAEMONS; k++)
        due[k] = true;
    for (;;) {
        int n;

        resume_queued(t, due, &quit);
        for (int k = 0; k < CBX_POOL_DAEMONS; k++) {
            if (due[k] && t->d[k] != NULL)
                MHD_run(t->d[k]);
            due[k] = false;
        }
        if (quit)
            break;
        n = epoll_wait(t->ep, evs, (int)(sizeof evs / sizeof evs[0]), wait_ms(t));
        if (n < 0 && errno != EINTR) {
            cbx_log(CBX_LOG_ERROR, "pool: epoll_wait: %s", strerror(errno));
            break;
        }
        if (n == 0) { /* a daemon's timeout: connections to expire */
            for (int k = 0; k < CBX_POOL_DAEMONS; k++)
                due[k] = true;
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 >= MARK_MAX) { /* a watched socket (an upgraded connection) */
                struct cbx_wake *w = evs[i].data.ptr;
                w->run(w, evs[i].events);
            } else if (evs[i].data.u64 == WAKE_MARK) {
                uint64_t v;
                if (read(t->efd, &v, sizeof v) < 0 && errno != EAGAIN)
                    cbx_log(CBX_LOG_ERROR, "pool: reading the eventfd: %s", strerror(errno));
            } else {
                due[evs[i].data.u64] = true;
            }
        }
    }
    return NULL;
}

struct cbx_pool *cbx_pool_create(unsigned n)
{
    struct cbx_pool *p = calloc(1, sizeof *p);

    if (p == NULL || (p->t = calloc(n, sizeof *p->t)) == NULL) {
        free(p);
        return NULL;
    }
    p->n = n;
    for (unsigned i = 0; i < n; i++) {
        struct cbx_pool_thread *t = &p->t[i];
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = WAKE_MARK };
        pthread_mutex_init(&t->mu, NULL);
        t->ep = epoll_create1(EPOLL_CLOEXEC);
        t->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (t->ep < 0 || t->efd < 0 || epoll_ctl(t->ep, EPOLL_CTL_ADD, t->efd, &ev) != 0) {
            p->n = i + 1; /* what destroy must undo */
            cbx_pool_destroy(p);
            return NULL;
        }
    }
    return p;
}

unsigned cbx_pool_size(const struct cbx_pool *p)
{
    return p->n;
}

int cbx_pool_add_daemon(struct cbx_pool *p, unsigned i, unsigned k, struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = k };

    p->t[i].d[k] = d; /* stopped by cbx_pool_destroy() from now on */
    if (di == NULL || epoll_ctl(p->t[i].ep, EPOLL_CTL_ADD, di->epoll_fd, &ev) != 0)
        return -1;
    return 0;
}

int cbx_pool_start(struct cbx_pool *p)
{
    for (unsigned i = 0; i < p->n; i++) {
        if (pthread_create(&p->t[i].tid, NULL, thread_main, &p->t[i]) != 0)
            return -1;
        p->t[i].started = true;
        pthread_setname_np(p->t[i].tid, "cbx-pool");
    }
    return 0;
}

void cbx_pool_stop(struct cbx_pool *p)
{
    if (p == NULL)
        return;
    for (unsigned i = 0; i < p->n; i++) {
        struct cbx_pool_thread *t = &p->t[i];
        pthread_mutex_lock(&t->mu);
        t->quit = true;
        pthread_mutex_unlock(&t->mu);
        signal_thread(t);
    }
    for (unsigned i = 0; i < p->n; i++) {
        if (p->t[i].started)
            pthread_join(p->t[i].tid, NULL);
        p->t[i].started = false;
    }
}

void cbx_pool_destroy(struct cbx_pool *p)
{
    if (p == NULL)
        return;
    cbx_pool_stop(p);
    for (unsigned i = 0; i < p->n; i++) {
        struct cbx_pool_thread *t = &p->t[i];
        for (int k = 0; k < CBX_POOL_DAEMONS; k++)
            if (t->d[k] != NULL)
                MHD_stop_daemon(t->d[k]); /* closes what is left; nothing is suspended */
        if (t->ep >= 0)
            close(t->ep);
        if (t->efd >= 0)
            close(t->efd);
        pthread_mutex_destroy(&t->mu);
    }
    free(p->t);
    free(p);
}
