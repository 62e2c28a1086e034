/* qmap_int.h - the queue map's insides, shared by qmap.c (publish,
 * subscribe), qmap_ring.c (a queue's ring of messages), qmap_admin.c
 * (sweep, flush, stats, listing) and waiter.c. No other file includes it:
 * the API is qmap.h. Locking: qmap.c's opening comment. */
#ifndef CBX_QMAP_INT_H
#define CBX_QMAP_INT_H

#include "qmap.h"

struct entry {
    struct cbx_msg *m;  /* owned ref */
    int64_t added_us;   /* monotonic */
    int64_t acked_us;   /* monotonic; 0 while pending */
};

/* A queue. Every field is guarded by the map lock. */
struct cbx_queue {
    struct cbx_queue *hnext;
    uint32_t hash;
    bool mirrored;      /* broker = redis: kept as Redis has it (cbx_qmap_mirror_apply()) */
    bool placeholder;   /* made by a subscribe: no messages, not counted in
                         * max-queues, freed when its last waiter leaves; a
                         * publish makes it a queue */
    struct entry *ring; /* cap is a power of two */
    size_t head, count, cap;
    size_t nacked;      /* the first nacked entries are acknowledged */
    size_t bytes;       /* encoded bytes of all stored messages */
    size_t acked_bytes;
    uint64_t acked;     /* everything <= acked is acknowledged */
    uint64_t lost_to;   /* highest id dropped while still pending */
    enum cbx_drop_reason lost_reason;
    uint64_t purged_to; /* highest id dropped for any reason */
    enum cbx_drop_reason purged_reason;
    struct cbx_waitlink *waiters; /* every linked waiter, observers too: NULL when nobody watches */
    size_t n_waiters;   /* linked subscribers, observers not counted: what max-waiters-per-queue limits */
    int64_t active_us;  /* monotonic: last publish, subscribe or unsubscribe */
    int64_t last_publish_real_us;
    uint64_t snap_epoch; /* the snapshot copy that has copied it (cbx_qmap_snapshot_next()) */
    size_t unreleased;  /* messages stored but not yet written by the journal: keeps it from being freed */
    size_t batch_n;     /* during a publish: items of the batch for this queue */
    struct cbx_queue *batch_made; /* during a publish: the queues it created */
    size_t name_len;
    char name[];
};

/* A message stored but not yet released (written by the journal). */
struct cbx_unreleased {
    struct cbx_queue *q;
    struct cbx_msg *msg; /* owned ref */
};

struct cbx_qmap {
    pthread_mutex_t mu; /* guards everything below, all queues, waiter links */
    struct cbx_queue **buckets;
    size_t nbuckets;
    size_t nqueues;       /* counted queues: what max-queues limits */
    size_t nplaceholders; /* uncounted, each with at least one waiter */
    uint64_t last_id, first_id;
    /* Readers see ids up to visible_id: with a journal, what it has written
     * (cbx_qmap_release()); without one, last_id. */
    uint64_t visible_id;
    bool logged;          /* a journal is set: publishes wait for their release */
    bool hooked;          /* a log is set (a journal, or broker = redis): tell it of drops and acks */
    bool mirroring;       /* broker = redis (a log with forget): browsers wait on mirrored queues only */
    uint64_t snap_epoch;  /* the last snapshot copy begun */
    struct cbx_qmap_log log;
    struct cbx_unreleased *unrel; /* oldest first */
    size_t n_unrel, cap_unrel;
    bool stopping;
    struct cbx_qmap_limits lim;
    struct cbx_qmap_stats st; /* counters; gauges are filled in on read */
    uint64_t stored, stored_bytes, pending, pending_bytes;
    uint64_t waiters;     /* linked subscribers (observers not counted) */
};

/* Allocations made under the map lock; the test build can fail them. */
void *cbx_qmap_malloc(size_t n);
void *cbx_qmap_calloc(size_t k, size_t n);

/* qmap.c: the hash table. */
uint32_t cbx_qmap_hash(const char *s, size_t len);
struct cbx_queue *cbx_queue_find(struct cbx_qmap *m, const char *name, size_t len, uint32_t hash);
void cbx_queue_free(struct cbx_qmap *m, struct cbx_queue *q);
/* The queue called name, made (counted, empty) when there is none and make
 * is true; NULL when there is none or memory runs out. */
struct cbx_queue *cbx_queue_get(struct cbx_qmap *m, const char *name, size_t len, bool make);

/* Hands msg (just stored in q, or just released) to every waiter of q;
 * a long-poll it fills goes on *filled. w->mu taken inside m->mu. */
void cbx_qmap_deliver(struct cbx_qmap *m, struct cbx_queue *q, struct cbx_msg *msg, int64_t now,
                      struct cbx_waiter **filled);
/* Long-polls answer once: unlinks and wakes the ones on filled. */
void cbx_qmap_wake_filled(struct cbx_qmap *m, struct cbx_waiter *filled, int64_t now);

/* qmap_ring.c: a queue's messages, oldest first. */
static inline struct entry *cbx_queue_entry(struct cbx_queue *q, size_t i)
{
    return &q->ring[(q->head + i) & (q->cap - 1)];
}
/* Drops the oldest entry, remembering what a gap report needs; tells the
 * journal. */
void cbx_queue_drop(struct cbx_qmap *m, struct cbx_queue *q, enum cbx_drop_reason reason);
/* Grows the ring to hold at least n entries; false (nothing changed) when
 * memory runs out. */
bool cbx_queue_reserve(struct cbx_queue *q, size_t n);
/* Appends msg (the ref passes to the queue); the ring must have room. */
void cbx_queue_push(struct cbx_qmap *m, struct cbx_queue *q, struct cbx_msg *msg, int64_t now);
/* Acknowledges everything up to id upto (never beyond the last id handed out). */
void cbx_queue_ack(struct cbx_qmap *m, struct cbx_queue *q, uint64_t upto, int64_t now);
/* The same; the log hears of it only when tell (a mirror follows Redis's
 * acknowledgements without sending them back). */
void cbx_queue_ack_quietly(struct cbx_qmap *m, struct cbx_queue *q, uint64_t upto, int64_t now, bool tell);
/* Lets go of every message without dropping any (no gap, no counter, no
 * log): a mirrored queue's messages stay in Redis. */
void cbx_queue_forget(struct cbx_qmap *m, struct cbx_queue *q);
/* Takes the newest entry away as if it had never been published (a batch
 * the journal could not write). */
void cbx_queue_unpush(struct cbx_qmap *m, struct cbx_queue *q);
/* Index of the first entry with an id above id. */
size_t cbx_queue_after(struct cbx_queue *q, uint64_t id);

/* waiter.c: appends a ref to w's inbox; w->mu held. False when memory runs out. */
bool cbx_waiter_add(struct cbx_waiter *w, struct cbx_msg *msg);

#endif
