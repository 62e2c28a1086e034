/* hold_int.h - the held request as hold.c, hold_share.c and
 * hold_registry.c see it. Private to those files: the rest of the daemon
 * uses hold.h. */
#ifndef CBXD_HOLD_INT_H
#define CBXD_HOLD_INT_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "../common/buf.h"
#include "../common/qmap.h"
#include "conn.h"
#include "http.h"
#include "pool.h"
#include "transport.h"

struct shared_answer;
struct cbx_ws;

struct cbx_hold {
    struct cbx_req req;        /* first: libmicrohttpd's con_cls points here */
    struct cbx_waiter w;       /* what the queue map sees */
    struct cbx_server *srv;
    const struct cbx_config *cfg; /* the config in force when it started (immutable, valid until exit): a
                                     reload does not change a held request */
    enum cbx_transport transport;
    struct MHD_Connection *conn;
    const char *origin;        /* Access-Control-Allow-Origin to send, or NULL; valid for the request */
    struct cbx_conn *cconn;    /* the connection's context, or NULL; lives longer than the hold */
    int64_t since_real_us;     /* connected since (wall clock) */
    int64_t deadline_us;       /* monotonic: long-poll timeout, or stream-max-age */
    _Atomic int64_t last_write_us; /* monotonic; the reaper's heartbeat clock */
    _Atomic uint64_t cursor;   /* last id handed to this client */
    bool deadline_signalled;   /* guarded by reg_mu */

    /* guarded by w.mu */
    bool suspended;            /* pool mode: suspended in the reader */
    bool parked;               /* counted in srv->parked; only the connection's own thread touches it */
    pthread_cond_t cond;       /* per-connection mode: the reader waits here */

    /* pool mode: the pool thread that serves this connection (set once, in
     * that thread), what it resumes, and that thread's shared answer */
    struct cbx_pool_thread *home;
    struct cbx_wake wake;
    struct shared_answer *share;

    /* owned by the reader (one thread at a time, per libmicrohttpd) */
    struct cbx_buf out;
    size_t out_off;
    size_t written;
    bool started, finished, failed;
    bool counted;              /* in ctr.held[transport] */
    struct MHD_Response *shared; /* long-poll: a thread's shared answer to queue, not owned */

    struct cbx_hold *reg_next; /* guarded by reg_mu */

    struct cbx_ws *ws;         /* a WebSocket once upgraded (hold_ws.c), owned; else NULL */
};

/* The id of the hold's connection (0 without a context): what the reaper
 * watches, and what `clients` and `kick` call the client. */
static inline uint64_t hold_client_id(const struct cbx_hold *h)
{
    return h->cconn != NULL ? h->cconn->id : 0;
}

static inline struct cbx_hold *hold_of(struct cbx_waiter *w)
{
    return (struct cbx_hold *)((char *)w - offsetof(struct cbx_hold, w));
}

/* hold_registry.c: a hold's bookkeeping, for hold.c and hold_ws.c. */
/* The cursor (`clients`) moves past msgs, whose refs are dropped. */
void cbx_hold_note_sent(struct cbx_hold *h, struct cbx_msg **msgs, size_t n);
/* It stops counting as held (ctr.held). */
void cbx_hold_uncount(struct cbx_hold *h);
/* Parks and unparks it (cbx_server.parked) from its own thread. */
void cbx_hold_park(struct cbx_hold *h);
void cbx_hold_unpark(struct cbx_hold *h);

/* hold_ws.c: a WebSocket's answer to its handshake (101, then the socket
 * is ours), and what its end leaves to free. */
enum MHD_Result cbx_hold_ws_answer(struct MHD_Connection *c, struct cbx_hold *h, const char *accept);
void cbx_hold_ws_free(struct cbx_ws *ws);

/* hold_registry.c: every held request, by client id (reg_mu). */
void cbx_hold_reg_add(struct cbx_server *s, struct cbx_hold *h);
void cbx_hold_reg_remove(struct cbx_server *s, struct cbx_hold *h);
/* "a.b.c.d:port" or "[v6]:port" of c's peer, "?" when unknown. */
void cbx_hold_peer_address(struct MHD_Connection *c, char *out, size_t len);

/* hold_share.c: a pool thread's last long-poll answer, shared by every
 * long-poll of the thread that answers with the same messages. */
#define CBX_SHARE_MAX 4
/* This thread's shared answer (made on first use), or NULL. */
struct shared_answer *cbx_share_mine(void);
/* Whether h's answer of n messages may be shared. */
bool cbx_share_fits(const struct cbx_hold *h, size_t n);
/* The shared response for these messages and h's origin, or NULL. */
struct MHD_Response *cbx_share_find(const struct shared_answer *a, const struct cbx_hold *h,
                                    struct cbx_msg *const *msgs, size_t n);
/* Keeps r as the thread's answer for msgs; the caller's reference passes to it. */
void cbx_share_keep(struct shared_answer *a, const struct cbx_hold *h, struct MHD_Response *r,
                    struct cbx_msg *const *msgs, size_t n);

#endif
