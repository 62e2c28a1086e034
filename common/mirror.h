/* mirror.h - with broker = redis, what Redis tells a node about queues:
 * the text cometboxd/broker.lua writes for a load (every message of some
 * queues) and for a change (a publish, an acknowledgement, a drop), parsed
 * into messages this node can hand to its browsers. The format is
 * broker.lua's opening comment; docs/SCALING.md. Not for applying it to the
 * queue map (qmap.h: cbx_qmap_mirror_apply()) nor for talking to Redis
 * (cometboxd/broker.c). */
#ifndef CBX_MIRROR_H
#define CBX_MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "msg.h"
#include "qname.h"

/* One queue as Redis has it after the change (a load: whole). */
struct cbx_mirror_queue {
    char name[CBX_QNAME_MAX + 1];
    size_t name_len;
    uint64_t acked, lost_to, purged_to;
    int lost_reason, purged_reason; /* enum cbx_drop_reason */
    struct cbx_msg **msgs;          /* owned refs, ascending ids; its new messages (a load: all) */
    size_t n;
};

struct cbx_mirror_update {
    bool load;          /* 'L': the queues whole; 'N': one change */
    uint64_t last_id;   /* the last id Redis handed out */
    uint64_t first_id;  /* a load: the first id of Redis's sequence; a change:
                         * 0, or the batch (a publish to several queues) it
                         * is part of, seen whole once "E BATCH" comes */
    struct cbx_mirror_queue *qs; /* owned */
    size_t nq;
};

/* Parses text[0..len) into out (zeroed first). CBX_ERR_INVALID (with the
 * reason in err) for text that is not broker.lua's: a name that is no
 * queue name, ids out of order, a number out of range, trailing bytes;
 * CBX_ERR_NOMEM. On error out holds nothing. */
enum cbx_err cbx_mirror_parse(const char *text, size_t len, struct cbx_mirror_update *out, char *err,
                              size_t errlen);
void cbx_mirror_update_free(struct cbx_mirror_update *u);

#endif
