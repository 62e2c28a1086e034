/* qmap.h - the queue map: every queue's messages, the id counter, and the
 * held requests (waiters) of each queue. One mutex guards it all and serves
 * both the publish side and the browser side. Nothing here does I/O or
 * knows which threading mode runs the daemon: a waiter is woken through its
 * own wake() entry point. Mailbox rules: docs/PROTOCOL.md. */
#ifndef CBX_QMAP_H
#define CBX_QMAP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "msg.h"
#include "pub.h"
#include "qname.h"

struct cbx_queue;
struct cbx_waiter;

enum cbx_drop_reason { CBX_DROP_NONE, CBX_DROP_OVERFLOW, CBX_DROP_EXPIRED, CBX_DROP_FLUSHED, CBX_DROP_RESTART };
const char *cbx_drop_reason_name(enum cbx_drop_reason r);

/* Why a waiter was woken, besides new messages. Set under the waiter's mu. */
enum cbx_wflag {
    CBX_W_TIMEOUT = 1u << 0,   /* the long-poll's hold time is over */
    CBX_W_GONE = 1u << 1,      /* the browser closed its connection */
    CBX_W_KICK = 1u << 2,      /* an operator kicked it; kick_reason says why */
    CBX_W_STOP = 1u << 3,      /* the daemon is stopping */
    CBX_W_HEARTBEAT = 1u << 4, /* a stream has been silent for `heartbeat` seconds */
    CBX_W_MAXAGE = 1u << 5,    /* a stream reached stream-max-age */
    CBX_W_OVERFLOW = 1u << 6,  /* a stream's inbox outgrew its bound; end it, the client resumes */
};

struct cbx_gap {
    uint64_t from, to;
    enum cbx_drop_reason reason;
    const char *queue; /* borrowed from the waiter's queue list */
};

struct cbx_waitlink {
    struct cbx_waiter *w;
    struct cbx_queue *q; /* NULL when not linked; guarded by the map lock */
    struct cbx_waitlink *prev, *next;
    /* The highest id of q the waiter was handed or resumed past: a
     * delivery at or below it is skipped (with broker = redis a change may
     * reach this node after a browser resumed past it elsewhere). */
    uint64_t seen;
};

struct cbx_waiter {
    pthread_mutex_t mu;         /* guards: inbox, n_inbox, cap_inbox, flags, kick_reason, linked */
    struct cbx_msg **inbox;     /* owned refs, ascending ids; inbox_small or the heap */
    size_t n_inbox, cap_inbox;
    struct cbx_msg *inbox_small[2]; /* most deliveries fit here: no allocation */
    unsigned flags;             /* enum cbx_wflag */
    char *kick_reason;          /* owned, or NULL */
    bool linked;                /* still on some queue's waiter list */

    /* Called with mu held after inbox or flags changed; must not block. */
    void (*wake)(struct cbx_waiter *w);

    /* Set before cbx_qmap_subscribe(), then read-only. */
    bool one_shot;              /* long-poll: unlinked by the publish that fills it */
    bool ack_on_deliver;        /* stream/SSE: a message is acknowledged when handed over */
    /* An observer (an admin tail) watches without being a subscriber: it
     * gets every message as any waiter does, but the map does not count it
     * (not in waiters, delivered, a queue's waiters nor max-waiters-per-
     * queue), never lets it acknowledge anything (ack_on_deliver and a
     * since are refused), and cbx_qmap_signal_queue() passes it by. It
     * keeps a placeholder alive as a waiter does, so it sees a queue's
     * first message. */
    bool observer;
    size_t inbox_max;           /* stream/SSE: past this, CBX_W_OVERFLOW */
    struct cbx_qlist queues;    /* owned; freed by cbx_waiter_cleanup() */

    /* Written by cbx_qmap_subscribe() before the waiter is linked. */
    struct cbx_gap *gaps;       /* owned, queues.n of room, or NULL when there is no gap */
    size_t n_gaps;
    uint64_t start;             /* resuming with since=start gets all this waiter is handed */

    /* Guarded by the map lock; allocated by the first subscribe. */
    struct cbx_waitlink *links; /* owned, one per queue */
    struct cbx_waiter *filled_next;
};

struct cbx_qmap_limits {
    size_t queue_max_messages;
    size_t queue_max_bytes;
    size_t max_queues;
    size_t max_waiters_per_queue;
    size_t max_total_bytes;   /* all stored messages */
    size_t max_total_messages;
    int64_t retain_acked_us;
    int64_t message_ttl_us;
};

/* Counters and gauges; copied out under the lock by cbx_qmap_stats().
 * Observers are in none of them: waiters and delivered count subscribers. */
struct cbx_qmap_stats {
    uint64_t published, delivered, acked, expired, dropped, flushed, refused_budget;
    uint64_t queues;       /* counted queues, what max-queues limits */
    uint64_t placeholders; /* queues only subscribed to, not counted */
    uint64_t pending_messages, pending_bytes, stored_messages, stored_bytes, waiters;
    uint64_t first_id, last_id;
};

struct cbx_qmap;

/* The map's journal (common/journal.h, docs/DURABILITY.md). With one set,
 * a publish stores its messages but nobody sees them until the journal has
 * written them and calls cbx_qmap_release(). The calls come in the order
 * the changes happen; all but prepare() and discard() come with the map
 * lock held and must only append to memory, never block on I/O. */
struct cbx_qmap_log {
    void *ctx;
    /* Before the lock: makes the record of a batch of n messages (ids not
     * set yet) and b's queue names. NULL (and *rc) refuses the publish. */
    void *(*prepare)(void *ctx, struct cbx_msg *const *msgs, const struct cbx_pub_batch *b, enum cbx_err *rc);
    /* The batch got ids first_id..: takes rec; ticket (may be NULL) is
     * told when it is written (journal.h). */
    void (*append)(void *ctx, void *rec, uint64_t first_id, void *ticket);
    /* Once the map lock is released after any of the others: the records
     * are in, the journal may write them. */
    void (*kick)(void *ctx);
    /* The publish failed after prepare(): frees rec. No lock held. */
    void (*discard)(void *ctx, void *rec);
    /* Messages of queue name up to id upto were dropped (reason). */
    void (*trim)(void *ctx, const char *name, size_t len, uint64_t upto, enum cbx_drop_reason reason);
    /* Queue name's acknowledgement point moved to upto. */
    void (*ack)(void *ctx, const char *name, size_t len, uint64_t upto);
    /* A mirrored queue (cbx_qmap_mirror_apply()) is no longer kept here:
     * nobody waited on it for retain-acked seconds. May be NULL. */
    void (*forget)(void *ctx, const char *name, size_t len);
};
/* A log whose prepare is NULL only listens (trim, ack, kick, forget):
 * publishes are seen at once, as without a log. broker = redis sets one. */

/* Creates an empty map whose first id is the wall clock in microseconds;
 * each later id is the last one + 1.
 * Owned; free with cbx_qmap_destroy() once no waiter is linked. */
struct cbx_qmap *cbx_qmap_create(const struct cbx_qmap_limits *lim);
void cbx_qmap_destroy(struct cbx_qmap *m);

void cbx_waiter_init(struct cbx_waiter *w);
/* Drops the inbox refs, the queue list, gaps, links and the mutex; the
 * waiter must be unlinked. */
void cbx_waiter_cleanup(struct cbx_waiter *w);

/* Queues a batch atomically: encodes each message (outside the lock), then
 * under the lock makes every allocation the batch needs (new queues, bigger
 * rings), and only then drops old messages for overflow, hands out ids
 * (each the last id + 1), stores the messages and wakes the waiters of the
 * queues that changed. ids (room for b->n) receives the ids. Every failure
 * leaves the map as it was (nothing queued, nothing dropped, no id used):
 * CBX_ERR_FULL when max-queues would be exceeded (a placeholder made by a
 * subscribe becomes a counted queue here), CBX_ERR_BUDGET when
 * max-total-bytes or max-total-messages would be, CBX_ERR_NOMEM when memory
 * runs out, and CBX_ERR_STOPPING after cbx_qmap_stop(). */
enum cbx_err cbx_qmap_publish(struct cbx_qmap *m, const struct cbx_pub_batch *b, uint64_t *ids, void *ticket);
/* With a journal (cbx_qmap_set_log()) the stored batch waits to be seen
 * until it is released; ticket goes to the journal's append(), which
 * reports the outcome. Without one ticket is unused and readers see the
 * batch at once. Errors from the journal's prepare() pass through. */

/* Sets (or with NULL removes) the journal; before any thread but the
 * caller's uses the map, or once none does. */
void cbx_qmap_set_log(struct cbx_qmap *m, const struct cbx_qmap_log *log);

/* The journal wrote every message up to id upto: readers may see them and
 * held requests get them. */
void cbx_qmap_release(struct cbx_qmap *m, uint64_t upto);

/* The journal could not write what is not released yet: every unreleased
 * message goes as if never published (a drop it made to make room stays).
 * done(ctx) runs before the map lock is released. */
void cbx_qmap_retract(struct cbx_qmap *m, void (*done)(void *ctx), void *ctx);

/* A snapshot is copied a few queues at a time, the map lock taken for each
 * part only, while publishing goes on: a fuzzy copy. Each queue is copied
 * once, whole, as it is when its turn comes, with its messages written so
 * far; the journal records everything from the start of the copy on, and
 * replaying those records onto the copy gives the map as it is (replay
 * skips what the copy has already: docs/DURABILITY.md). */
struct cbx_qsnap_queue {
    size_t name_off, name_len; /* in names */
    uint64_t acked, lost_to, purged_to;
    enum cbx_drop_reason lost_reason, purged_reason;
    size_t first, n;           /* its messages: msgs[first .. first+n) */
};
struct cbx_qsnap {
    struct cbx_qsnap_queue *qs;
    size_t nq, cap_q;
    char *names;
    size_t names_len, cap_names;
    struct cbx_msg **msgs;     /* owned refs */
    int64_t *acked_age_us;     /* per message: how long ago it was acknowledged, -1 while pending */
    size_t nmsgs, cap_msgs;
};
struct cbx_qsnap_iter {
    uint64_t epoch;
    size_t bucket, nbuckets;
};
/* Starts a copy; first_id and last_id get the ids as they are now. */
void cbx_qmap_snapshot_begin(struct cbx_qmap *m, struct cbx_qsnap_iter *it, uint64_t *first_id, uint64_t *last_id);
/* Copies the next queues (whole, at least one when any is left, up to
 * about max_msgs messages) into out, emptied first. out->nq is 0 once
 * every queue was copied. CBX_ERR_NOMEM: out is empty, it unchanged. */
enum cbx_err cbx_qmap_snapshot_next(struct cbx_qmap *m, struct cbx_qsnap_iter *it, struct cbx_qsnap *out,
                                    size_t max_msgs);
/* Drops out's refs and arrays. */
void cbx_qsnap_free(struct cbx_qsnap *s);

/* Replay (common/qmap_restore.c), before the map is in use: the journal
 * rebuilds what was stored. Ids: the first id ever handed out in this state
 * and the highest one. */
void cbx_qmap_restore_ids(struct cbx_qmap *m, uint64_t first_id, uint64_t last_id);
/* Appends msg (its id set; the ref passes) to queue name unless that queue
 * has it or a later one already. published_us is msg's. */
enum cbx_err cbx_qmap_restore_msg(struct cbx_qmap *m, const char *name, size_t len, struct cbx_msg *msg);
enum cbx_err cbx_qmap_restore_queue(struct cbx_qmap *m, const char *name, size_t len, uint64_t acked,
                                    uint64_t lost_to, enum cbx_drop_reason lost_reason, uint64_t purged_to,
                                    enum cbx_drop_reason purged_reason);
void cbx_qmap_restore_trim(struct cbx_qmap *m, const char *name, size_t len, uint64_t upto,
                           enum cbx_drop_reason reason);
void cbx_qmap_restore_ack(struct cbx_qmap *m, const char *name, size_t len, uint64_t upto, int64_t age_us);

/* Registers waiter w (its queues, one_shot, ack_on_deliver, observer set) and fills
 * its inbox and gaps with what the cursor has not seen: has_since false means
 * "every pending message". A since above the last id of this run
 * acknowledges nothing and reports a restart gap per queue (from the first
 * id of the run to since) before everything the run still holds. w->start
 * gets the id to resume from so as to see all that w is handed: since (the
 * first id - 1 for such a restart gap), or else the lowest acknowledgement
 * point of its queues. At most limit messages go to the inbox. A waiter is
 * linked (so later publishes reach it) when link_always, or when the inbox
 * and gaps are empty. A queue that does not exist gets a placeholder, which
 * max-queues does not count and which goes when its last waiter does, so
 * subscribing never fails for max-queues. Returns CBX_ERR_BUSY when w would
 * be linked to a queue that has max-waiters-per-queue already (never for an
 * observer), CBX_ERR_INVALID for an observer with ack_on_deliver or
 * has_since (it must acknowledge nothing), CBX_ERR_NOMEM,
 * CBX_ERR_STOPPING after cbx_qmap_stop(), or with broker = redis (a log
 * with forget) CBX_ERR_AGAIN, nothing done, when a queue is not mirrored
 * (for a waiter that is not an observer): load it and call again. */
enum cbx_err cbx_qmap_subscribe(struct cbx_qmap *m, struct cbx_waiter *w, bool has_since, uint64_t since,
                                size_t limit, bool link_always);

/* Acknowledges everything up to upto (never past what readers may see) on
 * each queue linked waiter w is on: a WebSocket's {"ack":ID}. Nothing when
 * w is not linked or is an observer. */
void cbx_qmap_ack(struct cbx_qmap *m, struct cbx_waiter *w, uint64_t upto);

/* Unlinks w from its queues (no-op when it is not linked). */
void cbx_qmap_unsubscribe(struct cbx_qmap *m, struct cbx_waiter *w);

/* Takes up to max messages from w's inbox (the lowest ids) into out, which
 * receives the refs; the rest stay. Returns the count. Also returns and
 * clears w's flags in *flags. Locks w->mu. */
size_t cbx_waiter_take(struct cbx_waiter *w, struct cbx_msg **out, size_t max, unsigned *flags);

/* Copies the reason of the last kick into out (empty when none). Locks w->mu. */
void cbx_waiter_kick_reason(struct cbx_waiter *w, char *out, size_t len);

/* Sets flag on w and wakes it; reason (copied) goes with a kick. Locks w->mu. */
void cbx_waiter_signal(struct cbx_waiter *w, unsigned flag, const char *reason);

/* Expires old and long-acknowledged messages and frees idle empty queues.
 * now_us is CLOCK_MONOTONIC. Meant to run about once a second. */
void cbx_qmap_sweep(struct cbx_qmap *m, int64_t now_us);

/* Drops every message of queue name (or of all queues when name is NULL);
 * returns how many through *count. CBX_ERR_NOT_FOUND for an unknown queue
 * (a placeholder is known: it has nothing to flush). */
enum cbx_err cbx_qmap_flush(struct cbx_qmap *m, const char *name, uint64_t *count);

/* Signals every waiter linked to queue name, observers excepted (a kick is
 * for subscribers; an observer only watches); CBX_ERR_NOT_FOUND for an
 * unknown queue. *count gets how many were signalled. */
enum cbx_err cbx_qmap_signal_queue(struct cbx_qmap *m, const char *name, unsigned flag, const char *reason,
                                   uint64_t *count);

/* Refuses new subscriptions and publishes from now on (CBX_ERR_STOPPING). */
void cbx_qmap_stop(struct cbx_qmap *m);

void cbx_qmap_stats(struct cbx_qmap *m, struct cbx_qmap_stats *out);

/* Replaces the limits (a config reload). They apply from the next publish,
 * subscribe or sweep on; nothing stored is dropped or refused now. */
void cbx_qmap_set_limits(struct cbx_qmap *m, const struct cbx_qmap_limits *lim);

/* broker = redis (common/qmap_mirror.c): the map mirrors the queues this
 * node's browsers wait on, as Redis has them (mirror.h); cbx_qmap_publish()
 * is not used. Applies u under the lock: a load makes its queues mirrored
 * (made when missing) and brings them to Redis's state; a change reaches
 * only queues mirrored already. New messages go to the waiters as a
 * publish's do; drops and acknowledgements follow Redis's (without telling
 * the log: Redis made them). Ids: last_id and visible_id follow u's, a
 * load's first_id becomes the map's. CBX_ERR_NOMEM: part of u is applied;
 * the next load of those queues completes it. */
struct cbx_mirror_update;
enum cbx_err cbx_qmap_mirror_apply(struct cbx_qmap *m, const struct cbx_mirror_update *u);
/* What Redis must do before a subscribe to queues with since (has_since)
 * can be served from the mirror. READY: nothing (a since not above the last
 * id this node has heard of nor above any queue's acknowledgement point,
 * every queue mirrored). ACK: every queue is mirrored, but since
 * acknowledges more: Redis takes that acknowledgement first, so every node
 * knows it before this browser is answered (cbx_broker_ack()). LOAD: a
 * queue is not mirrored, there is no since (where the pending messages
 * start, Redis knows now), or since is above the last id heard of: Redis
 * acknowledges and loads them (cbx_broker_sync()). */
enum cbx_mirror_need { CBX_MIRROR_READY, CBX_MIRROR_ACK, CBX_MIRROR_LOAD };
enum cbx_mirror_need cbx_qmap_mirror_need(struct cbx_qmap *m, const struct cbx_qlist *queues, bool has_since,
                                          uint64_t since);
/* Whether queue name is mirrored here now. */
bool cbx_qmap_mirrored(struct cbx_qmap *m, const char *name, size_t len);
/* Redis took an acknowledgement of name up to upto (never past the last id
 * heard of): the mirror follows at once, without telling the log, before
 * the change that says so comes. Nothing for a queue not mirrored. */
void cbx_qmap_mirror_acked(struct cbx_qmap *m, const char *name, size_t len, uint64_t upto);

/* One row per queue for the admin `queues` command. */
struct cbx_queue_info {
    char name[CBX_QNAME_MAX + 1];
    bool placeholder;        /* only subscribed to: not counted in max-queues */
    uint64_t pending, stored, bytes;
    uint64_t waiters;        /* linked subscribers, observers not counted */
    int64_t oldest_us;       /* CLOCK_REALTIME publish time of the oldest message, 0 if none */
    int64_t last_publish_us; /* CLOCK_REALTIME, 0 if never */
};

/* Copies rows for queues matching the fnmatch(3) pattern (NULL = all),
 * placeholders included, into a new array (owned; free()). */
enum cbx_err cbx_qmap_list(struct cbx_qmap *m, const char *pattern, struct cbx_queue_info **rows, size_t *n);

#ifdef CBX_QMAP_TESTING
/* Test builds only: the allocation the map makes under its lock after this
 * many more fails (0: the next one); -1 (the default): none fails. */
extern long cbx_qmap_test_allocs_left;
#endif

/* The monotonic clock in microseconds. */
int64_t cbx_now_mono_us(void);
int64_t cbx_now_real_us(void);

#endif
