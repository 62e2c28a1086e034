/* journal.h - the journal: every change to the queue map, written to files
 * in state-dir before a publish is answered, replayed at start, compacted
 * into a snapshot as it grows. Contract: docs/DURABILITY.md. Not for the
 * map itself (qmap.h), which tells the journal what changes through
 * struct cbx_qmap_log. */
#ifndef CBX_JOURNAL_H
#define CBX_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "qmap.h"

struct cbx_journal;

/* A publish waiting for its batch to be written: passed to
 * cbx_qmap_publish(), told the outcome once. */
struct cbx_journal_ticket {
    uint64_t id;        /* the batch's first id; set when it is queued */
    enum cbx_err rc;    /* CBX_OK once written (and synced, as journal-sync says), else CBX_ERR_IO */
    bool done;          /* guarded by the journal's lock */
    /* Called once from the writer thread, with the journal's lock held,
     * right after done is set; must not block or call the journal. NULL:
     * the publisher waits in cbx_journal_wait(). */
    void (*notify)(struct cbx_journal_ticket *t);
    struct cbx_journal_ticket *next; /* the journal's */
};

struct cbx_journal_opts {
    const char *dir;
    enum cbx_journal_sync sync;
    size_t compact_size;
    /* Around each release of written messages to the map's readers, on the
     * writer thread (the daemon batches its wake-ups there); may be NULL. */
    void (*release_begin)(void);
    void (*release_end)(void);
};

struct cbx_journal_stats {
    bool failing;
    char error[160];          /* the last write error, "" when none */
    enum cbx_journal_sync sync;
    uint64_t generation;      /* the number of the journal file written now */
    uint64_t bytes;           /* its size */
    uint64_t snapshot_bytes;  /* the last snapshot's size */
    uint64_t records, writes, syncs, write_errors, refused_publishes, compactions;
    uint64_t replayed_records, dropped_bytes; /* at start: read, and cut off as torn or corrupt */
};

/* Takes dir (made if missing, 0700; a second daemon on it is refused),
 * replays its snapshot and journals into m (which must be empty and not in
 * use yet), writes a fresh snapshot, starts the writer thread and becomes
 * m's log. On error writes the reason to err and returns CBX_ERR_IO,
 * CBX_ERR_INVALID (files that are not ours) or CBX_ERR_NOMEM. Owned; end
 * with cbx_journal_close(). */
enum cbx_err cbx_journal_open(const struct cbx_journal_opts *o, struct cbx_qmap *m, struct cbx_journal **out,
                              char *err, size_t errlen);

/* Waits until t (with notify NULL, passed to a publish that succeeded) is done. */
void cbx_journal_wait(struct cbx_journal *j, struct cbx_journal_ticket *t);

/* Writes and syncs what is queued, stops the threads, stops being m's log
 * and frees j. Call once nothing publishes any more. NULL is fine. */
void cbx_journal_close(struct cbx_journal *j);

void cbx_journal_stats(struct cbx_journal *j, struct cbx_journal_stats *out);

const char *cbx_journal_sync_name(enum cbx_journal_sync s);

#endif
