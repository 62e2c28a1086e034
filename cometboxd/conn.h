/* conn.h - a connection's context on both ports: its id, its address's
 * entry for per-address admission, the watch for a closed peer, and the
 * header clock (request-timeout). Not for requests (hold.h, publish). */
#ifndef CBXD_CONN_H
#define CBXD_CONN_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

struct cbx_server;

/* A connection (libmicrohttpd's socket context), made when it opens and
 * freed when it closes. On the browser port its id is the client id of the
 * requests it holds, one at a time. */
struct cbx_conn {
    uint64_t id;    /* browser connections are numbered from 1; 0 on the publish port */
    void *ip;       /* its address's entry (limits.c); browser port only */
    bool admitted;  /* counted against max-connections and max-connections-per-ip */
    int fd;         /* the socket, or -1 */
    bool watched;   /* in the reaper's epoll set (only the connection's own thread touches it) */

    /* the header clock, guarded by conn.c's clock lock */
    int64_t deadline_us;        /* monotonic: the next request's headers must be in by then */
    struct cbx_conn *cprev, *cnext;
    int clist;                  /* which list of the clock it is on (0: none) */
};

/* libmicrohttpd's connection callbacks (MHD_OPTION_NOTIFY_CONNECTION) for
 * the browser port and the publish port; cls is the server. */
void cbx_conn_notify_browser(void *cls, struct MHD_Connection *c, void **socket_context,
                             enum MHD_ConnectionNotificationCode toe);
void cbx_conn_notify_publish(void *cls, struct MHD_Connection *c, void **socket_context,
                             enum MHD_ConnectionNotificationCode toe);

/* The context of a connection, or NULL when it has none (out of memory). */
struct cbx_conn *cbx_conn_of(struct MHD_Connection *c);

/* Puts the connection in the reaper's epoll set, once: called by a request
 * about to wait, so a browser that goes away while held is noticed. */
void cbx_conn_watch(struct cbx_server *s, struct cbx_conn *conn);

/* The request clock. A connection must deliver a whole request (headers
 * and body) within request-timeout of its start, and, kept alive, its next
 * request within max(request-timeout, idle-timeout) of the previous
 * answer; else it is closed (libmicrohttpd's own timeout restarts at every
 * byte, so a client sending one byte a second would never be). */
/* Called by a port's handler once the whole request is in. */
void cbx_conn_request_in(struct MHD_Connection *c);
/* Called when a request is complete: the clock runs for the next one. */
void cbx_conn_request_done(struct cbx_server *s, struct MHD_Connection *c);
/* Called by the reaper: closes (shutdown) every connection whose
 * deadline passed; returns how many. now is CLOCK_MONOTONIC µs. */
unsigned cbx_conn_expire(struct cbx_server *s, int64_t now);

#endif
