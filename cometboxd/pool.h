/* pool.h - pool mode's threads: each drives libmicrohttpd daemons of its
 * own (no internal threads) with its own epoll loop, and resumes the
 * suspended connections other threads queue for it. Not for what a
 * connection does (hold.c), nor for per-connection mode. */
#ifndef CBXD_POOL_H
#define CBXD_POOL_H

#include <microhttpd.h>
#include <stdbool.h>

#define CBX_POOL_DAEMONS 2 /* daemons one thread drives: the browser port's and the publish port's */

struct cbx_pool;
struct cbx_pool_thread;

/* A suspended connection to resume, or (run set) work of ours to run on
 * the thread, embedded in what owns it. */
struct cbx_wake {
    struct MHD_Connection *conn; /* set before the first cbx_pool_wake(), then read-only */
    unsigned slot;               /* the daemon it belongs to (cbx_pool_add_daemon()'s k); likewise */
    /* When set, the thread calls run(w) instead of resuming conn: for an
     * upgraded connection (a WebSocket), which libmicrohttpd no longer runs.
     * Also what cbx_pool_watch() calls when w's socket is ready. */
    void (*run)(struct cbx_wake *w, unsigned events);
    struct cbx_wake *next;       /* guarded by the thread's lock */
    bool queued;                 /* guarded by the thread's lock */
};

/* Makes n threads (not started); NULL when out of resources. Owned; free
 * with cbx_pool_destroy(). */
struct cbx_pool *cbx_pool_create(unsigned n);
unsigned cbx_pool_size(const struct cbx_pool *p);
/* Gives thread i daemon d to drive, in slot k (0 .. CBX_POOL_DAEMONS-1).
 * d must run without internal threads, with MHD_USE_EPOLL; the pool stops
 * it in cbx_pool_destroy(). 0, or -1 when its epoll descriptor cannot be
 * watched. */
int cbx_pool_add_daemon(struct cbx_pool *p, unsigned i, unsigned k, struct MHD_Daemon *d);
/* Starts every thread; -1 when one could not be made (those made run). */
int cbx_pool_start(struct cbx_pool *p);
/* Ends every thread's loop after it resumed what is queued for it, and
 * joins them. Call once nothing is suspended any more (the stop waits for
 * that, docs/THREADS.md "Shutdown"). */
void cbx_pool_stop(struct cbx_pool *p);
/* Stops the daemons (after cbx_pool_stop) and frees everything. NULL is fine. */
void cbx_pool_destroy(struct cbx_pool *p);

/* The pool thread running the caller, or NULL (not a pool thread). */
struct cbx_pool_thread *cbx_pool_current(void);

/* Queues w->conn to be resumed by thread t, and wakes t (one eventfd write
 * per batch: none while a wake-up is already pending). Any thread; the
 * caller may hold the queue map's lock and a waiter's lock (order: those,
 * then the thread's lock). No effect when w is queued already. */
void cbx_pool_wake(struct cbx_pool_thread *t, struct cbx_wake *w);
/* Between these two calls on one thread (a publish), the eventfd writes
 * cbx_pool_wake() owes are made once, at the end: one write per pool
 * thread for a whole fan-out. They nest. */
void cbx_pool_defer_begin(void);
void cbx_pool_defer_end(void);
/* Takes w off t's queue if it is on it (what owned it is going away). */
void cbx_pool_forget(struct cbx_pool_thread *t, struct cbx_wake *w);

/* The calling pool thread watches fd for events (EPOLLIN, EPOLLOUT...)
 * and calls w->run(w, events) when some are ready; cbx_pool_watch() again
 * changes the events. 0, or -1 (errno). Its own thread only. */
int cbx_pool_watch(int fd, unsigned events, struct cbx_wake *w, bool again);
/* Stops watching fd (before it is closed). */
void cbx_pool_unwatch(int fd);
/* Daemon slot k of the calling pool thread is to run (MHD_run) before the
 * thread waits again: an upgraded connection was closed and libmicrohttpd
 * is to clean it up. */
void cbx_pool_due(unsigned k);

#endif
