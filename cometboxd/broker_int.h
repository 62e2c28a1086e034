/* broker_int.h - what the broker's files share (broker.h, docs/SCALING.md):
 * the broker itself, the work other threads queue for its thread (struct
 * op), the queues it subscribes to (struct qent), and the functions one
 * file gives the others. Three layers, each using only those below it:
 * broker_ops.c (work from any thread: operations, tickets, the map's
 * hooks, broker.h's requests), broker_sub.c (the thread's commands,
 * replies and subscriptions: loads and changes into the queue map),
 * broker.c (the thread: connecting, its loop, start, stop, stats).
 * Include it after broker.h (it is broker.h's inside, not a module above
 * it). Not for other files. */
#ifndef CBXD_BROKER_INT_H
#define CBXD_BROKER_INT_H

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/mirror.h"
#include "../common/qmap.h"

#define BACKOFF_MIN_US 100000
#define BACKOFF_MAX_US 5000000
#define RESYNC_CHUNK 256
#define ARG_SHA 1   /* argv[1] of a script call: the sha, set when sent */
#define LOAD_NAMES 8 /* EVALSHA sha 0 load P ttl retain SINCE NAME... */

enum op_kind {
    OP_PUBLISH, /* broker.lua publish: the reply is the first id */
    OP_FLUSH,   /* broker.lua flush: the reply is a count */
    OP_LOAD,    /* broker.lua load of argv[LOAD_NAMES..]: a sync */
    OP_PLAIN,   /* a command of Redis's own (PUBLISH of a kick) */
    OP_FORGET,  /* argv[0] is a queue nobody here waits on any more */
    OP_ACK,     /* acknowledgements a request waits for: argv NAME UPTO pairs; rides on the turn's ack call */
};

/* Work for the thread: one command (and its reply), or a forget. */
struct op {
    struct op *next;
    enum op_kind kind;
    struct cbx_broker_ticket *t; /* NULL: nobody waits */
    int argc;
    const char **argv;
    size_t *argvlen;
    size_t unconfirmed; /* OP_LOAD: its queues' subscriptions not confirmed yet */
    struct op *riders;  /* the turn's ack call: the OP_ACKs it carries, told with its reply */
    bool failed;        /* already told (a teardown) */
    struct cbx_buf mem; /* the arguments' bytes */
    size_t *offs;       /* while building: offsets into mem */
    int cap;
};

/* A kept change of a queue whose load is under way. */
struct note {
    struct note *next;
    size_t len;
    char text[];
};

enum qstate { Q_NEW, Q_SUBSCRIBING, Q_LOADING, Q_READY };

/* A queue this node subscribes to (thread only). */
struct qent {
    struct qent *next;
    uint32_t hash;
    enum qstate state;
    unsigned loads;       /* loads sent, not answered */
    struct op **waiting;  /* loads waiting for the subscription */
    size_t nwaiting, capwaiting;
    struct note *notes, *notes_tail;
    size_t len;
    char name[];
};

/* Send times of a connection's commands not answered yet, oldest first. */
struct ring {
    int64_t *t;
    size_t head, n, cap;
};

struct rconn {
    struct cbx_broker *b;
    redisAsyncContext *ac; /* NULL when not connected */
    bool r, w;             /* what hiredis wants polled */
    struct ring sent;
};

struct cbx_broker {
    struct cbx_server *s;
    pthread_t thread;
    bool started;
    int efd;
    pthread_mutex_t mu;     /* guards ops, acks, stop, tickets' done, last_error */
    pthread_cond_t done;
    struct op *ops, *ops_tail;
    struct ack { char name[CBX_QNAME_MAX + 1]; uint64_t upto; } *acks;
    size_t nacks, capacks;
    bool stop;
    char last_error[160];

    /* redis-url, parsed */
    char host[256], path[256], password[256];
    int port, db;
    char url_shown[512];
    char prefix[64];
    size_t prefix_len;
    int64_t timeout_us;
    uint64_t node_id;

    /* the thread's */
    struct rconn cmd, sub;
    char sha[41];
    bool cmd_ready, sub_ready, ever_up;
    int64_t connect_at, connect_started, backoff, last_ping, last_sweep;
    char teardown[160];     /* set in a callback: tear down in the loop */
    struct qent **qbuckets;
    size_t nqbuckets, nq;

    struct cbx_mirror_update batch; /* the parts of a publish to several queues, till its "E" */
    uint64_t batch_id;

    _Atomic int state;      /* enum cbx_broker_state */
    _Atomic uint64_t reconnects, errors, mirrored;
};


/* broker_ops.c */
void cbx_broker_ring_push(struct ring *r, int64_t t);
void cbx_broker_ring_pop(struct ring *r);
__attribute__((format(printf, 2, 3))) void cbx_broker_set_error(struct cbx_broker *b, const char *fmt, ...);
uint32_t cbx_broker_hash_name(const char *s, size_t len);
/* an operation's arguments, appended one by one; finish before sending */
struct op *cbx_broker_op_new(enum op_kind kind, struct cbx_broker_ticket *t);
void cbx_broker_op_arg(struct op *o, const char *s, size_t len);
void cbx_broker_op_args(struct op *o, const char *s);
void cbx_broker_op_arg_u64(struct op *o, uint64_t v);
void cbx_broker_op_script(struct op *o, struct cbx_broker *b, const char *what);
void cbx_broker_op_limits(struct op *o, const struct cbx_config *cfg);
bool cbx_broker_op_finish(struct op *o);
/* A load with its first LOAD_NAMES arguments (since, or "" for none);
 * its queue names follow. NULL: out of memory. */
struct op *cbx_broker_load_new(struct cbx_broker *b, struct cbx_broker_ticket *t, bool has_since, uint64_t since);
void cbx_broker_op_free(struct op *o);
void cbx_broker_wake_thread(struct cbx_broker *b);
/* tells t (NULL: nobody waits) under the broker lock */
void cbx_broker_ticket_done(struct cbx_broker *b, struct cbx_broker_ticket *t, enum cbx_err rc, uint64_t value);
/* the map's log while broker = redis: ack, kick and forget */
extern const struct cbx_qmap_log cbx_broker_hooks;

/* broker_sub.c: the thread only */
bool cbx_broker_send_cmd(struct cbx_broker *b, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                         const size_t *lens);
void cbx_broker_send_op(struct cbx_broker *b, struct op *o);
void cbx_broker_op_fail(struct cbx_broker *b, struct op *o, enum cbx_err rc);
void cbx_broker_start_load(struct cbx_broker *b, struct op *o);
void cbx_broker_forget(struct cbx_broker *b, struct op *o);
/* One ack call with the hooks' acknowledgements and riders (OP_ACKs,
 * linked by next; told when Redis answers). */
void cbx_broker_send_acks(struct cbx_broker *b, struct op *riders);
void cbx_broker_send_sweep(struct cbx_broker *b, int64_t now);
/* the error Redis answered, counted and kept as last_error, as a cbx_err */
enum cbx_err cbx_broker_script_error(struct cbx_broker *b, const redisReply *r);
/* applies a change or load text of broker.lua to the queue map */
void cbx_broker_apply(struct cbx_broker *b, const char *text, size_t len);
/* the subscription connection's callback: confirmations, changes, kicks */
void cbx_broker_on_sub(redisAsyncContext *ac, void *reply, void *priv);
void cbx_broker_notes_free(struct qent *e);
void cbx_broker_qent_remove(struct cbx_broker *b, struct qent *e);

#endif
