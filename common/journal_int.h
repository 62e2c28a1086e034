/* journal_int.h - the journal's files, shared by journal.c (the writer
 * thread, the map's hooks, compaction) and journal_file.c (the record
 * format, replay and snapshots). No other file includes it. */
#ifndef CBX_JOURNAL_INT_H
#define CBX_JOURNAL_INT_H

#include <stdint.h>

#include "buf.h"
#include "journal.h"

/* A file: a 16-byte header (8 bytes of magic, the generation as a u64),
 * then records: a u32 payload length, a u32 type, a u64 XXH3 checksum of
 * the payload seeded with the type, the payload. Integers are in the
 * machine's byte order. */
#define CBX_J_MAGIC "CBXJRNL1"
#define CBX_S_MAGIC "CBXSNAP1"
#define CBX_J_HDR 16
#define CBX_REC_HDR 16
#define CBX_REC_MAX (1u << 30)

enum cbx_rec_type {
    REC_BATCH = 1, /* u64 first id, u32 n, n x (i64 published_us, u16 name len, u32 tail len, name, tail) */
    REC_TRIM = 2,  /* u64 upto, u32 reason, u16 name len, name */
    REC_ACK = 3,   /* u64 upto, u16 name len, name */
    REC_IDS = 4,   /* u64 first id, u64 last id (snapshots) */
    REC_QUEUE = 5, /* u64 acked, lost_to, purged_to, u32 lost reason, purged reason, u16 name len, name */
    REC_MSG = 6,   /* u64 id, i64 published_us, i64 acknowledged this long ago (-1: pending), u32 tail len, tail */
    REC_END = 7,   /* u64 messages: a snapshot is whole */
};

/* Appends a record with its checksum still 0 (cbx_j_seal() fills it);
 * returns the record's offset in b. */
size_t cbx_j_rec_begin(struct cbx_buf *b, enum cbx_rec_type type);
void cbx_j_rec_end(struct cbx_buf *b, size_t off);
void cbx_j_put(struct cbx_buf *b, const void *p, size_t n);
/* Fills the checksum of every record in data[0..len). */
void cbx_j_seal(char *data, size_t len);

/* The replay of state dir path into m (snapshot, then every journal from
 * its generation on). *gen gets the highest generation seen; torn tails
 * are truncated and logged. CBX_ERR_IO or CBX_ERR_INVALID with err. */
enum cbx_err cbx_j_replay(int dirfd, const char *path, struct cbx_qmap *m, uint64_t *gen,
                          struct cbx_journal_stats *st, char *err, size_t errlen);

/* Writes m as snapshot generation gen (snapshot.tmp, synced, renamed),
 * copying it a part at a time while it is in use (qmap.h), and removes the
 * journals before gen. Returns its size, or -1 (errno). */
long long cbx_j_snapshot_write(int dirfd, uint64_t gen, struct cbx_qmap *m);

/* Creates journal.GEN with its header; the descriptor, or -1 (errno). */
int cbx_j_create(int dirfd, uint64_t gen);

/* write() all of it; 0 or -1 (errno). */
int cbx_j_write_all(int fd, const char *p, size_t n);

#endif
