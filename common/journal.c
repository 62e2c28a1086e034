/* journal.c - the journal's running part: the queue map's hooks, which
 * append records to a buffer in memory under the map lock; the writer
 * thread, which writes that buffer (and syncs it, as journal-sync says),
 * then releases the written messages to readers and tells the waiting
 * publishes; and compaction. Files and replay: journal_file.c.
 * Locking: j->mu guards every field below it in struct cbx_journal. Order:
 * the map lock, then j->mu (the hooks run under the map lock); the writer
 * never holds j->mu while it writes, syncs or takes the map lock. */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "journal_int.h"
#include "log.h"


struct cbx_journal {
    char dir[256];
    int dirfd, lockfd;
    struct cbx_journal_opts o;
    struct cbx_qmap *m;
    pthread_t writer, compactor;
    bool compactor_started;

    pthread_mutex_t mu;
    pthread_cond_t work;         /* the writer waits for records or stop */
    pthread_cond_t done;         /* cbx_journal_wait() waits for its ticket */
    struct cbx_buf buf;          /* records not yet handed to the writer */
    size_t last_off;             /* offset of the last record in buf, for merging acks and trims */
    bool has_last;
    bool has_batch;              /* buf holds a publish's batch: its write is synced */
    bool waiting;                /* the writer waits on work: a publish's kick must signal */
    struct cbx_journal_ticket *tickets, **tickets_tail; /* in buf's order */
    int fd;                      /* the journal written now */
    uint64_t gen;
    uint64_t size;               /* bytes written to it */
    bool stop;
    bool compacting;
    uint64_t snap_gen;
    struct cbx_journal_stats st;
};

const char *cbx_journal_sync_name(enum cbx_journal_sync s)
{
    return s == CBX_SYNC_ALWAYS ? "always" : s == CBX_SYNC_NONE ? "none" : "batch";
}

/* ---- the map's hooks (journal_int.h's formats) ------------------------- */

static void *hook_prepare(void *ctx, struct cbx_msg *const *msgs, const struct cbx_pub_batch *b, enum cbx_err *rc)
{
    struct cbx_buf *rec = malloc(sizeof *rec);
    uint64_t first = 0;
    uint32_t n = (uint32_t)b->n;
    size_t off, need = CBX_REC_HDR + 12;

    (void)ctx;
    if (rec == NULL) {
        *rc = CBX_ERR_NOMEM;
        return NULL;
    }
    for (size_t i = 0; i < b->n; i++)
        need += 14 + b->items[i].queue_len + msgs[i]->tail_len;
    cbx_buf_init(rec);
    cbx_buf_reserve(rec, need);
    off = cbx_j_rec_begin(rec, REC_BATCH);
    cbx_j_put(rec, &first, 8); /* filled in by hook_append() */
    cbx_j_put(rec, &n, 4);
    for (size_t i = 0; i < b->n; i++) {
        uint16_t qlen = (uint16_t)b->items[i].queue_len;
        uint32_t tlen = (uint32_t)msgs[i]->tail_len;
        cbx_j_put(rec, &msgs[i]->published_us, 8);
        cbx_j_put(rec, &qlen, 2);
        cbx_j_put(rec, &tlen, 4);
        cbx_j_put(rec, b->items[i].queue, qlen);
        cbx_j_put(rec, msgs[i]->json + msgs[i]->len - msgs[i]->tail_len, tlen);
    }
    cbx_j_rec_end(rec, off);
    if (!rec->ok) {
        cbx_buf_free(rec);
        free(rec);
        *rc = CBX_ERR_NOMEM;
        return NULL;
    }
    return rec;
}

static void hook_discard(void *ctx, void *rec)
{
    (void)ctx;
    cbx_buf_free(rec);
    free(rec);
}

static void hook_append(void *ctx, void *rec_, uint64_t first_id, void *ticket)
{
    struct cbx_journal *j = ctx;
    struct cbx_buf *rec = rec_;
    struct cbx_journal_ticket *t = ticket;

    memcpy(rec->s + CBX_REC_HDR, &first_id, 8);
    pthread_mutex_lock(&j->mu);
    cbx_buf_add(&j->buf, rec->s, rec->len);
    j->has_last = false;
    if (t != NULL) {
        t->id = first_id;
        t->done = false;
        t->next = NULL;
        *j->tickets_tail = t;
        j->tickets_tail = &t->next;
    }
    j->has_batch = true; /* the publish kicks the writer once it holds no lock (hook_kick) */
    pthread_mutex_unlock(&j->mu);
    hook_discard(NULL, rec);
}

/* After the map appended records (a publish, an acknowledgement, a drop),
 * with no lock held: wakes the writer when it waits, so that it does not
 * wake only to wait for the locks its waker holds. */
static void hook_kick(void *ctx)
{
    struct cbx_journal *j = ctx;
    bool wake;

    pthread_mutex_lock(&j->mu);
    wake = j->waiting;
    pthread_mutex_unlock(&j->mu);
    if (wake) /* it waits in pthread_cond_wait now, or the signal is spare */
        pthread_cond_signal(&j->work);
}

/* An ack or trim record; one that follows the same kind for the same queue
 * only moves its upto. j->mu held. */
static void add_mark(struct cbx_journal *j, enum cbx_rec_type type, const char *name, size_t len, uint64_t upto,
                     uint32_t reason)
{
    size_t name_at = CBX_REC_HDR + 8 + (type == REC_TRIM ? 4 : 0) + 2;
    uint16_t qlen = (uint16_t)len;
    size_t off;

    if (j->has_last && j->buf.ok) {
        const char *last = j->buf.s + j->last_off;
        uint32_t ltype, lreason = 0;
        uint16_t llen = 0;
        memcpy(&ltype, last + 4, 4);
        if (ltype == (uint32_t)type) { /* then it has the same layout */
            memcpy(&llen, last + name_at - 2, 2);
            if (type == REC_TRIM)
                memcpy(&lreason, last + CBX_REC_HDR + 8, 4);
        }
        if (ltype == (uint32_t)type && llen == qlen && lreason == reason && memcmp(last + name_at, name, len) == 0) {
            memcpy(j->buf.s + j->last_off + CBX_REC_HDR, &upto, 8);
            return;
        }
    }
    off = cbx_j_rec_begin(&j->buf, type);
    cbx_j_put(&j->buf, &upto, 8);
    if (type == REC_TRIM)
        cbx_j_put(&j->buf, &reason, 4);
    cbx_j_put(&j->buf, &qlen, 2);
    cbx_j_put(&j->buf, name, len);
    cbx_j_rec_end(&j->buf, off);
    j->last_off = off;
    j->has_last = true; /* the map kicks the writer once it releases its lock */
}

static void hook_trim(void *ctx, const char *name, size_t len, uint64_t upto, enum cbx_drop_reason reason)
{
    struct cbx_journal *j = ctx;

    pthread_mutex_lock(&j->mu);
    add_mark(j, REC_TRIM, name, len, upto, (uint32_t)reason);
    pthread_mutex_unlock(&j->mu);
}

static void hook_ack(void *ctx, const char *name, size_t len, uint64_t upto)
{
    struct cbx_journal *j = ctx;

    pthread_mutex_lock(&j->mu);
    add_mark(j, REC_ACK, name, len, upto, 0);
    pthread_mutex_unlock(&j->mu);
}

/* ---- the writer ------------------------------------------------------- */

/* Tells every ticket of list its outcome. j->mu held. */
static void complete(struct cbx_journal *j, struct cbx_journal_ticket *list, enum cbx_err rc)
{
    while (list != NULL) {
        struct cbx_journal_ticket *t = list;
        list = t->next;
        t->rc = rc;
        t->done = true;
        if (rc != CBX_OK)
            j->st.refused_publishes++;
        if (t->notify != NULL)
            t->notify(t); /* last touch: its owner may free it now */
    }
    pthread_cond_broadcast(&j->done);
}

/* Copies the records of src that are not batches to the end of dst. */
static void keep_marks(struct cbx_buf *dst, const char *src, size_t len)
{
    size_t off = 0;

    while (off + CBX_REC_HDR <= len) {
        uint32_t n, type;
        memcpy(&n, src + off, 4);
        memcpy(&type, src + off + 4, 4);
        if (type != REC_BATCH)
            cbx_buf_add(dst, src + off, CBX_REC_HDR + n);
        off += CBX_REC_HDR + n;
    }
}

struct retract_ctx {
    struct cbx_journal *j;
    const struct cbx_buf *failed;
    struct cbx_journal_ticket *failed_tickets;
};

/* Under the map lock, once the unreleased messages are gone: the batches
 * queued meanwhile go too, with their tickets; acks and trims stay. */
static void retract_queued(void *ctx)
{
    struct retract_ctx *rc = ctx;
    struct cbx_journal *j = rc->j;
    struct cbx_buf keep;

    cbx_buf_init(&keep);
    pthread_mutex_lock(&j->mu);
    keep_marks(&keep, rc->failed->s, rc->failed->len);
    keep_marks(&keep, j->buf.s, j->buf.len);
    cbx_buf_free(&j->buf);
    j->buf = keep;
    j->has_last = false;
    j->has_batch = false; /* only acknowledgements and drops are left */
    complete(j, rc->failed_tickets, CBX_ERR_IO);
    complete(j, j->tickets, CBX_ERR_IO);
    j->tickets = NULL;
    j->tickets_tail = &j->tickets;
    pthread_mutex_unlock(&j->mu);
}

/* The highest id in w's batches: the writer releases up to it. */
static uint64_t last_id_in(const struct cbx_buf *w)
{
    uint64_t hi = 0, first;
    uint32_t n, type, count;
    size_t off = 0;

    while (off + CBX_REC_HDR <= w->len) {
        memcpy(&n, w->s + off, 4);
        memcpy(&type, w->s + off + 4, 4);
        if (type == REC_BATCH) {
            memcpy(&first, w->s + off + CBX_REC_HDR, 8);
            memcpy(&count, w->s + off + CBX_REC_HDR + 8, 4);
            if (count > 0)
                hi = first + count - 1;
        }
        off += CBX_REC_HDR + n;
    }
    return hi;
}

/* Writes w (sealed) to the journal; with `always` a sync after each batch,
 * with `batch` one at the end. 0, or -1 with errno. */
static int write_out(struct cbx_journal *j, const struct cbx_buf *w, bool batches, uint64_t *syncs)
{
    size_t off = 0, from = 0;

    if (j->o.sync != CBX_SYNC_ALWAYS) {
        if (cbx_j_write_all(j->fd, w->s, w->len) != 0)
            return -1;
        /* acknowledgements and drops alone get no sync (docs/DURABILITY.md) */
        if (j->o.sync == CBX_SYNC_BATCH && batches) {
            if (fdatasync(j->fd) != 0)
                return -1;
            (*syncs)++;
        }
        return 0;
    }
    while (off < w->len) {
        uint32_t n, type;
        memcpy(&n, w->s + off, 4);
        memcpy(&type, w->s + off + 4, 4);
        off += CBX_REC_HDR + n;
        if (type == REC_BATCH) { /* a sync for each publish */
            if (cbx_j_write_all(j->fd, w->s + from, off - from) != 0 || fdatasync(j->fd) != 0)
                return -1;
            (*syncs)++;
            from = off;
        }
    }
    return from < w->len ? cbx_j_write_all(j->fd, w->s + from, w->len - from) : 0;
}

static void *compactor_main(void *arg);

/* Starts a compaction when the journal is over journal-compact-size and
 * twice what the map stores: a new journal from here on, and the compactor
 * thread copies the map into a snapshot meanwhile. Writer thread only,
 * between two writes, so the records queued now go to the new journal. */
static void maybe_compact(struct cbx_journal *j)
{
    struct cbx_qmap_stats qs;
    int fd;

    if (j->compacting || j->size < j->o.compact_size)
        return;
    cbx_qmap_stats(j->m, &qs);
    if (j->size < 2 * qs.stored_bytes)
        return;
    if (j->compactor_started) {
        pthread_join(j->compactor, NULL);
        j->compactor_started = false;
    }
    if ((fd = cbx_j_create(j->dirfd, j->gen + 1)) < 0) {
        cbx_log(CBX_LOG_WARN, "journal: cannot start journal.%llu for a compaction: %s", (unsigned long long)j->gen + 1,
                strerror(errno));
        return;
    }
    pthread_mutex_lock(&j->mu);
    close(j->fd);
    j->fd = fd;
    j->gen++;
    j->size = CBX_J_HDR;
    j->snap_gen = j->gen;
    j->compacting = true;
    pthread_mutex_unlock(&j->mu);
    if (pthread_create(&j->compactor, NULL, compactor_main, j) != 0) {
        compactor_main(j); /* no thread: write it here */
        return;
    }
    j->compactor_started = true;
}

static void *compactor_main(void *arg)
{
    struct cbx_journal *j = arg;
    long long size = cbx_j_snapshot_write(j->dirfd, j->snap_gen, j->m);
    int e = errno;

    pthread_mutex_lock(&j->mu);
    j->compacting = false;
    if (size >= 0) {
        j->st.compactions++;
        j->st.snapshot_bytes = (uint64_t)size;
    }
    pthread_mutex_unlock(&j->mu);
    if (size < 0)
        cbx_log(CBX_LOG_WARN, "journal: cannot write a snapshot (%s); the journals stay until the next try", strerror(e));
    else
        cbx_log(CBX_LOG_DEBUG, "journal: compacted into a snapshot of %lld bytes (generation %llu)", size,
                (unsigned long long)j->snap_gen);
    return NULL;
}

static void *writer_main(void *arg)
{
    struct cbx_journal *j = arg;
    struct cbx_buf w;

    cbx_buf_init(&w);
    pthread_mutex_lock(&j->mu);
    for (;;) {
        struct cbx_journal_ticket *tickets;
        struct cbx_buf tmp;
        uint64_t syncs = 0, hi = 0;
        int rc, err = 0;
        bool again = false, had_batch;

        while (j->buf.len == 0 && !j->stop) {
            j->waiting = true; /* the map's kick (hook_kick) signals it */
            pthread_cond_wait(&j->work, &j->mu);
        }
        j->waiting = false;
        if (j->buf.len == 0)
            break; /* stopping, and everything is written */
        had_batch = j->has_batch;
        j->has_batch = false;
        tmp = w;
        w = j->buf;
        j->buf = tmp;
        cbx_buf_reset(&j->buf);
        j->has_last = false;
        tickets = j->tickets;
        j->tickets = NULL;
        j->tickets_tail = &j->tickets;
        pthread_mutex_unlock(&j->mu);

        if (!w.ok) {
            errno = ENOMEM;
            rc = -1;
        } else {
            cbx_j_seal(w.s, w.len);
            rc = write_out(j, &w, had_batch, &syncs);
        }
        if (rc != 0)
            err = errno;
        if (rc == 0 && (hi = last_id_in(&w)) != 0) {
            if (j->o.release_begin != NULL)
                j->o.release_begin();
            cbx_qmap_release(j->m, hi); /* later ones are in j->buf, not written yet */
            if (j->o.release_end != NULL)
                j->o.release_end();
        } else if (rc != 0) {
            struct retract_ctx rctx = { j, &w, tickets };
            /* the reason first: a refused publish's answer reads it */
            bool first;
            pthread_mutex_lock(&j->mu);
            j->st.write_errors++;
            first = !j->st.failing;
            j->st.failing = true;
            snprintf(j->st.error, sizeof j->st.error, "%s", strerror(err));
            pthread_mutex_unlock(&j->mu);
            if (first) /* not under the lock: the map's hooks wait for it */
                cbx_log(CBX_LOG_ERROR, "journal: write failed: %s; publishes are refused until it succeeds",
                        strerror(err));
            /* leave the file as it was before this write */
            if (ftruncate(j->fd, (off_t)j->size) != 0)
                cbx_log(CBX_LOG_ERROR, "journal: cannot cut back a failed write: %s", strerror(errno));
            cbx_qmap_retract(j->m, retract_queued, &rctx);
            tickets = NULL;
        }
        pthread_mutex_lock(&j->mu);
        j->st.syncs += syncs;
        if (rc == 0) {
            j->size += w.len;
            j->st.writes++;
            again = j->st.failing;
            j->st.failing = false;
            complete(j, tickets, CBX_OK);
        }
        cbx_buf_reset(&w);
        if (again) {
            pthread_mutex_unlock(&j->mu);
            cbx_log(CBX_LOG_INFO, "journal: writing again");
            pthread_mutex_lock(&j->mu);
        }
        if (rc == 0 && !j->stop) {
            pthread_mutex_unlock(&j->mu);
            maybe_compact(j);
            pthread_mutex_lock(&j->mu);
        } else if (rc != 0 && !j->stop) {
            /* pace the retries of what stayed (acks, trims): a publish
             * retries at once, since it wakes the writer */
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts); /* work waits on the monotonic clock */
            ts.tv_nsec += 100000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&j->work, &j->mu, &ts);
        }
    }
    pthread_mutex_unlock(&j->mu);
    cbx_buf_free(&w);
    return NULL;
}

/* ---- opening and closing ---------------------------------------------- */

static enum cbx_err take_dir(struct cbx_journal *j, char *err, size_t errlen)
{
    char pid[32];

    if (mkdir(j->dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "state-dir %s: cannot make it: %s", j->dir, strerror(errno));
        return CBX_ERR_IO;
    }
    if ((j->dirfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        snprintf(err, errlen, "state-dir %s: %s", j->dir, strerror(errno));
        return CBX_ERR_IO;
    }
    if ((j->lockfd = openat(j->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        snprintf(err, errlen, "state-dir %s: cannot open its lock file: %s", j->dir, strerror(errno));
        return CBX_ERR_IO;
    }
    if (flock(j->lockfd, LOCK_EX | LOCK_NB) != 0) {
        ssize_t n = pread(j->lockfd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        snprintf(err, errlen, "state-dir %s is in use by another cometboxd (pid %s)", j->dir, pid[0] ? pid : "?");
        return CBX_ERR_IO;
    }
    snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(j->lockfd, 0) != 0 || pwrite(j->lockfd, pid, strlen(pid), 0) < 0)
        cbx_log(CBX_LOG_WARN, "state-dir %s: cannot write the pid to its lock file: %s", j->dir, strerror(errno));
    return CBX_OK;
}

static void journal_free(struct cbx_journal *j)
{
    if (j->fd >= 0)
        close(j->fd);
    if (j->lockfd >= 0)
        close(j->lockfd); /* releases the lock */
    if (j->dirfd >= 0)
        close(j->dirfd);
    cbx_buf_free(&j->buf);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->work);
    pthread_cond_destroy(&j->done);
    free(j);
}

enum cbx_err cbx_journal_open(const struct cbx_journal_opts *o, struct cbx_qmap *m, struct cbx_journal **out,
                              char *err, size_t errlen)
{
    static const struct cbx_qmap_log hooks_tmpl = { NULL,     hook_prepare, hook_append, hook_kick,
                                                    hook_discard, hook_trim,  hook_ack,   NULL };
    struct cbx_journal *j = calloc(1, sizeof *j);
    struct cbx_qmap_log hooks = hooks_tmpl;
    struct cbx_qmap_stats qs;
    enum cbx_err rc;
    int64_t t0 = cbx_now_mono_us();
    long long size;

    *out = NULL;
    if (j == NULL) {
        snprintf(err, errlen, "out of memory");
        return CBX_ERR_NOMEM;
    }
    j->dirfd = j->lockfd = j->fd = -1;
    j->o = *o;
    j->m = m;
    snprintf(j->dir, sizeof j->dir, "%s", o->dir);
    j->o.dir = j->dir;
    j->st.sync = o->sync;
    j->tickets_tail = &j->tickets;
    cbx_buf_init(&j->buf);
    pthread_mutex_init(&j->mu, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&j->work, &ca);
        pthread_condattr_destroy(&ca);
    }
    pthread_cond_init(&j->done, NULL);
    if ((rc = take_dir(j, err, errlen)) != CBX_OK ||
        (rc = cbx_j_replay(j->dirfd, j->dir, m, &j->gen, &j->st, err, errlen)) != CBX_OK) {
        journal_free(j);
        return rc;
    }
    /* Ids go on above the journal's, and above the clock too: a tail lost
     * with `journal-sync = none` (or a damaged disk) may have held ids that
     * browsers saw; the clock in microseconds is above them unless more
     * ids than microseconds were handed out (docs/DURABILITY.md). */
    cbx_qmap_stats(m, &qs);
    if ((uint64_t)cbx_now_real_us() - 1 > qs.last_id)
        cbx_qmap_restore_ids(m, qs.first_id, (uint64_t)cbx_now_real_us() - 1);
    /* a fresh start: everything replayed goes into one snapshot, and the
     * journal begins again next to it */
    j->gen++;
    if ((j->fd = cbx_j_create(j->dirfd, j->gen)) < 0 || (size = cbx_j_snapshot_write(j->dirfd, j->gen, m)) < 0) {
        snprintf(err, errlen, "state-dir %s: cannot write the journal: %s", j->dir, strerror(errno));
        journal_free(j);
        return CBX_ERR_IO;
    }
    j->st.snapshot_bytes = (uint64_t)size;
    j->size = CBX_J_HDR;
    cbx_qmap_stats(m, &qs);
    cbx_log(CBX_LOG_INFO,
            "journal: replayed %llu records from %s in %lld ms: %llu messages stored in %llu queues, last id %llu",
            (unsigned long long)j->st.replayed_records, j->dir, (long long)(cbx_now_mono_us() - t0) / 1000,
            (unsigned long long)qs.stored_messages, (unsigned long long)qs.queues, (unsigned long long)qs.last_id);
    if (pthread_create(&j->writer, NULL, writer_main, j) != 0) {
        snprintf(err, errlen, "cannot start the journal's writer thread: %s", strerror(errno));
        journal_free(j);
        return CBX_ERR_IO;
    }
    hooks.ctx = j;
    cbx_qmap_set_log(m, &hooks);
    *out = j;
    return CBX_OK;
}

void cbx_journal_wait(struct cbx_journal *j, struct cbx_journal_ticket *t)
{
    pthread_mutex_lock(&j->mu);
    while (!t->done)
        pthread_cond_wait(&j->done, &j->mu);
    pthread_mutex_unlock(&j->mu);
}

void cbx_journal_close(struct cbx_journal *j)
{
    if (j == NULL)
        return;
    pthread_mutex_lock(&j->mu);
    j->stop = true;
    pthread_cond_signal(&j->work);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->writer, NULL); /* it writes what is queued first */
    if (j->compactor_started)
        pthread_join(j->compactor, NULL);
    cbx_qmap_set_log(j->m, NULL);
    if (j->fd >= 0 && fdatasync(j->fd) != 0)
        cbx_log(CBX_LOG_ERROR, "journal: the last sync failed: %s", strerror(errno));
    journal_free(j);
}

void cbx_journal_stats(struct cbx_journal *j, struct cbx_journal_stats *out)
{
    pthread_mutex_lock(&j->mu);
    *out = j->st;
    out->generation = j->gen;
    out->bytes = j->size;
    pthread_mutex_unlock(&j->mu);
}
