/* broker.h - broker = redis: the queues live in Redis, shared by every node
 * pointed at it (docs/SCALING.md). One thread per node talks to Redis over
 * two connections (commands, and the subscriptions that bring changes) with
 * hiredis's async API on a poll() loop of its own; the queue map mirrors
 * the queues this node's browsers wait on. Other threads hand it work and
 * are told the outcome through a ticket. With broker = memory there is no
 * broker (cbx_server.broker is NULL) and none of this runs. */
#ifndef CBXD_BROKER_H
#define CBXD_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"
#include "../common/pub.h"
#include "../common/qname.h"
#include "server.h"

struct cbx_broker;

/* A request waiting for Redis; the caller owns it and must keep it until
 * it is done. */
struct cbx_broker_ticket {
    enum cbx_err rc; /* CBX_OK, or CBX_ERR_UNAVAILABLE, CBX_ERR_FULL, CBX_ERR_BUDGET, CBX_ERR_NOT_FOUND, CBX_ERR_NOMEM */
    uint64_t value;  /* a publish: its first id (the others follow, one each); a flush: messages dropped */
    bool done;       /* guarded by the broker's lock */
    /* Called once on the broker's thread with its lock held, right after
     * done is set; must not block or call the broker. NULL: the caller
     * waits in cbx_broker_wait(). */
    void (*notify)(struct cbx_broker_ticket *t);
};

enum cbx_broker_state { CBX_BROKER_DOWN, CBX_BROKER_UP };

struct cbx_broker_stats {
    enum cbx_broker_state state;
    char url[512];         /* redis-url without its password */
    uint64_t reconnects;   /* connections made after the first */
    uint64_t errors;       /* lost connections, timeouts, errors Redis answered */
    uint64_t mirrored;     /* queues this node subscribes to */
    char last_error[160];  /* "" when none */
};

/* With broker = redis: parses redis-url, starts the thread (which connects
 * in the background, and again with backoff whenever it loses Redis) and
 * becomes the map's log. 0, or -1 with the reason in err. */
int cbx_broker_start(struct cbx_server *s, char *err, size_t errlen);
/* Fails what waits, closes the connections, joins the thread. NULL is fine. */
void cbx_broker_stop(struct cbx_broker *b);

/* Stores batch b in Redis as one atomic step (ids, limits and drops as one
 * node makes them, with cfg's limits). CBX_OK: t is told once it is done;
 * else nothing was sent (Redis is unreachable now, or memory ran out). */
enum cbx_err cbx_broker_publish(struct cbx_broker *b, const struct cbx_pub_batch *batch, const struct cbx_config *cfg,
                                struct cbx_broker_ticket *t);
/* Brings queues into the map (subscribed to and loaded) and the last id up
 * to Redis's; with has_since, first acknowledges each queue up to since in
 * Redis (every node hears of it). t is told when a subscribe may go on.
 * Same returns. */
enum cbx_err cbx_broker_sync(struct cbx_broker *b, const struct cbx_qlist *queues, bool has_since, uint64_t since,
                             struct cbx_broker_ticket *t);
/* Acknowledges each of queues up to upto in Redis (every node hears of
 * it) and in this node's mirror: for queues mirrored here already
 * (cbx_qmap_mirror_need() says ACK). Requests of one turn of the broker
 * thread share one call. Same returns. */
enum cbx_err cbx_broker_ack(struct cbx_broker *b, const struct cbx_qlist *queues, uint64_t upto,
                            struct cbx_broker_ticket *t);
/* Drops every message of queue name (NULL: of every queue) in Redis; every
 * node hears of it. t->value gets the count. */
enum cbx_err cbx_broker_flush(struct cbx_broker *b, const char *name, const struct cbx_config *cfg,
                              struct cbx_broker_ticket *t);
/* Tells every other node to kick what is held on queue name (this node
 * kicks its own). */
enum cbx_err cbx_broker_kick(struct cbx_broker *b, const char *name, const char *reason);
/* Waits until t (notify NULL) is done. */
void cbx_broker_wait(struct cbx_broker *b, struct cbx_broker_ticket *t);
/* A publish's or sync's whole round: sends it and waits. */
enum cbx_err cbx_broker_publish_wait(struct cbx_broker *b, const struct cbx_pub_batch *batch,
                                     const struct cbx_config *cfg, uint64_t *first_id);

void cbx_broker_stats(struct cbx_broker *b, struct cbx_broker_stats *out);
bool cbx_broker_up(struct cbx_broker *b);

#endif
