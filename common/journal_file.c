/* journal_file.c - the journal's files: the record format, reading a state
 * dir back into the queue map (snapshot, then journals), and writing a
 * snapshot. Runs on the caller's thread; the writer thread and the hooks
 * are journal.c. Format: journal_int.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "journal_int.h"
#include "log.h"
#include "msg.h"

size_t cbx_j_rec_begin(struct cbx_buf *b, enum cbx_rec_type type)
{
    size_t off = b->len;
    uint32_t hdr[4] = { 0, (uint32_t)type, 0, 0 };

    cbx_buf_add(b, hdr, sizeof hdr);
    return off;
}

void cbx_j_rec_end(struct cbx_buf *b, size_t off)
{
    uint32_t len;

    if (!b->ok)
        return;
    len = (uint32_t)(b->len - off - CBX_REC_HDR);
    memcpy(b->s + off, &len, sizeof len);
}

void cbx_j_put(struct cbx_buf *b, const void *p, size_t n) { cbx_buf_add(b, p, n); }

static uint64_t rec_check(uint32_t type, const char *payload, uint32_t len)
{
    return XXH3_64bits_withSeed(payload, len, type);
}

void cbx_j_seal(char *data, size_t len)
{
    size_t off = 0;

    while (off + CBX_REC_HDR <= len) {
        uint32_t n, type;
        uint64_t check;
        memcpy(&n, data + off, 4);
        memcpy(&type, data + off + 4, 4);
        if (n > len - off - CBX_REC_HDR)
            return; /* not a whole record (only a fuzzer hands us that) */
        check = rec_check(type, data + off + CBX_REC_HDR, n);
        memcpy(data + off + 8, &check, 8);
        off += CBX_REC_HDR + n;
    }
}

int cbx_j_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int write_header(int fd, const char *magic, uint64_t gen)
{
    char hdr[CBX_J_HDR];

    memcpy(hdr, magic, 8);
    memcpy(hdr + 8, &gen, 8);
    return cbx_j_write_all(fd, hdr, sizeof hdr);
}

int cbx_j_create(int dirfd, uint64_t gen)
{
    char name[64];
    int fd;

    snprintf(name, sizeof name, "journal.%" PRIu64, gen);
    /* O_APPEND: after a failed write is cut back, the next one follows the cut */
    fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (write_header(fd, CBX_J_MAGIC, gen) != 0 || fdatasync(fd) != 0 || fsync(dirfd) != 0) {
        int e = errno;
        close(fd);
        unlinkat(dirfd, name, 0);
        errno = e;
        return -1;
    }
    return fd;
}

/* ---- reading ---------------------------------------------------------- */

/* A cursor over one record's payload; ok turns false when it runs short. */
struct rd {
    const char *p;
    size_t left;
    bool ok;
};

static void rd_get(struct rd *r, void *out, size_t n)
{
    if (!r->ok || r->left < n) {
        r->ok = false;
        memset(out, 0, n);
        return;
    }
    memcpy(out, r->p, n);
    r->p += n;
    r->left -= n;
}

static const char *rd_bytes(struct rd *r, size_t n)
{
    const char *p = r->p;

    if (!r->ok || r->left < n) {
        r->ok = false;
        return NULL;
    }
    r->p += n;
    r->left -= n;
    return p;
}

/* Where replay keeps the snapshot's current queue between its records. */
struct replay {
    struct cbx_qmap *m;
    const char *qname;
    size_t qlen;
    uint64_t q_acked;
    int64_t q_acked_age;
    uint64_t msgs;
    bool ended;
};

static enum cbx_err apply(struct replay *rp, uint32_t type, struct rd *r)
{
    uint64_t u, v, w;
    uint32_t n32, reason, reason2, tlen;
    uint16_t qlen;
    int64_t pub, age;
    const char *name, *tail;
    struct cbx_msg *msg;

    switch (type) {
    case REC_BATCH:
        rd_get(r, &u, 8);
        rd_get(r, &n32, 4);
        for (uint32_t i = 0; i < n32 && r->ok; i++) {
            rd_get(r, &pub, 8);
            rd_get(r, &qlen, 2);
            rd_get(r, &tlen, 4);
            name = rd_bytes(r, qlen);
            tail = rd_bytes(r, tlen);
            if (!r->ok)
                break;
            if ((msg = cbx_msg_from_tail(tail, tlen, u + i, pub)) == NULL ||
                cbx_qmap_restore_msg(rp->m, name, qlen, msg) != CBX_OK)
                return CBX_ERR_NOMEM;
        }
        break;
    case REC_TRIM:
        rd_get(r, &u, 8);
        rd_get(r, &reason, 4);
        rd_get(r, &qlen, 2);
        if ((name = rd_bytes(r, qlen)) != NULL)
            cbx_qmap_restore_trim(rp->m, name, qlen, u, (enum cbx_drop_reason)reason);
        break;
    case REC_ACK:
        rd_get(r, &u, 8);
        rd_get(r, &qlen, 2);
        if ((name = rd_bytes(r, qlen)) != NULL)
            cbx_qmap_restore_ack(rp->m, name, qlen, u, 0);
        break;
    case REC_IDS:
        rd_get(r, &u, 8);
        rd_get(r, &v, 8);
        if (r->ok)
            cbx_qmap_restore_ids(rp->m, u, v);
        break;
    case REC_QUEUE:
        if (rp->qname != NULL && rp->q_acked != 0)
            cbx_qmap_restore_ack(rp->m, rp->qname, rp->qlen, rp->q_acked, rp->q_acked_age);
        rd_get(r, &u, 8);
        rd_get(r, &v, 8);
        rd_get(r, &w, 8);
        rd_get(r, &reason, 4);
        rd_get(r, &reason2, 4);
        rd_get(r, &qlen, 2);
        if ((name = rd_bytes(r, qlen)) == NULL)
            break;
        if (cbx_qmap_restore_queue(rp->m, name, qlen, 0, v, (enum cbx_drop_reason)reason, w,
                                   (enum cbx_drop_reason)reason2) != CBX_OK)
            return CBX_ERR_NOMEM;
        rp->qname = name;
        rp->qlen = qlen;
        rp->q_acked = u;
        rp->q_acked_age = 0;
        break;
    case REC_MSG:
        rd_get(r, &u, 8);
        rd_get(r, &pub, 8);
        rd_get(r, &age, 8);
        rd_get(r, &tlen, 4);
        if ((tail = rd_bytes(r, tlen)) == NULL || rp->qname == NULL)
            break;
        if (age >= 0)
            rp->q_acked_age = age;
        if ((msg = cbx_msg_from_tail(tail, tlen, u, pub)) == NULL ||
            cbx_qmap_restore_msg(rp->m, rp->qname, rp->qlen, msg) != CBX_OK)
            return CBX_ERR_NOMEM;
        rp->msgs++;
        break;
    case REC_END:
        if (rp->qname != NULL && rp->q_acked != 0)
            cbx_qmap_restore_ack(rp->m, rp->qname, rp->qlen, rp->q_acked, rp->q_acked_age);
        rp->qname = NULL;
        rp->ended = true;
        break;
    default:
        r->ok = false;
    }
    return CBX_OK;
}

/* Reads a whole file into memory (owned; free()). */
static char *slurp(int dirfd, const char *name, size_t *len)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *data = NULL;
    size_t got = 0;

    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) == 0 && (data = malloc((size_t)st.st_size + 1)) != NULL) {
        while (got < (size_t)st.st_size) {
            ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
    }
    close(fd);
    *len = got;
    return data;
}

/* Checks the record at data[off..len): its length, or 0 with why set. */
static size_t rec_valid(const char *data, size_t off, size_t len, const char **why)
{
    uint32_t n, type;
    uint64_t check;

    if (len - off < CBX_REC_HDR) {
        *why = "record cut short";
        return 0;
    }
    memcpy(&n, data + off, 4);
    memcpy(&type, data + off + 4, 4);
    memcpy(&check, data + off + 8, 8);
    if (n > CBX_REC_MAX || type < REC_BATCH || type > REC_END) {
        *why = "bad record header";
        return 0;
    }
    if (len - off - CBX_REC_HDR < n) {
        *why = "record cut short";
        return 0;
    }
    if (rec_check(type, data + off + CBX_REC_HDR, n) != check) {
        *why = "checksum mismatch";
        return 0;
    }
    return CBX_REC_HDR + n;
}

/* Replays one file. A journal's bad tail is cut off (truncated, logged);
 * a snapshot must be whole (an END record) or it is refused. */
static enum cbx_err replay_file(int dirfd, const char *path, const char *name, const char *magic, uint64_t gen,
                                struct replay *rp, struct cbx_journal_stats *st, char *err, size_t errlen)
{
    size_t len, off = CBX_J_HDR, n;
    char *data = slurp(dirfd, name, &len);
    const char *why = NULL;
    enum cbx_err rc = CBX_OK;
    uint64_t file_gen;
    bool snapshot = strcmp(magic, CBX_S_MAGIC) == 0;

    if (data == NULL) {
        snprintf(err, errlen, "cannot read %s/%s: %s", path, name, strerror(errno));
        return CBX_ERR_IO;
    }
    if (len < CBX_J_HDR || memcmp(data, magic, 8) != 0 || (memcpy(&file_gen, data + 8, 8), file_gen != gen)) {
        if (!snapshot && len < CBX_J_HDR) { /* created, then the machine stopped before its header was written */
            cbx_log(CBX_LOG_WARN, "journal %s/%s: dropped a torn or corrupt tail at byte 0: %zu bytes (no header)",
                    path, name, len);
            st->dropped_bytes += len;
            free(data);
            return CBX_OK;
        }
        snprintf(err, errlen, "%s/%s is not a cometboxd %s of generation %" PRIu64 "; move it away", path, name,
                 snapshot ? "snapshot" : "journal", gen);
        free(data);
        return CBX_ERR_INVALID;
    }
    while (off < len && (n = rec_valid(data, off, len, &why)) != 0) {
        uint32_t type;
        struct rd r = { data + off + CBX_REC_HDR, n - CBX_REC_HDR, true };
        memcpy(&type, data + off + 4, 4);
        if ((rc = apply(rp, type, &r)) != CBX_OK) {
            snprintf(err, errlen, "out of memory replaying %s/%s", path, name);
            break;
        }
        if (!r.ok) {
            why = "bad record contents";
            break;
        }
        st->replayed_records++;
        off += n;
    }
    if (rc == CBX_OK && snapshot && !rp->ended) {
        snprintf(err, errlen, "%s/%s is not whole (%s at byte %zu); move it away to start from the journals alone",
                 path, name, why ? why : "no end record", off);
        rc = CBX_ERR_INVALID;
    } else if (rc == CBX_OK && off < len) {
        cbx_log(CBX_LOG_WARN, "journal %s/%s: dropped a torn or corrupt tail at byte %zu: %zu bytes (%s)", path, name,
                off, len - off, why);
        st->dropped_bytes += len - off;
        int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || ftruncate(fd, (off_t)off) != 0 || fdatasync(fd) != 0) {
            snprintf(err, errlen, "cannot truncate %s/%s: %s", path, name, strerror(errno));
            rc = CBX_ERR_IO;
        }
        if (fd >= 0)
            close(fd);
    }
    free(data);
    return rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The generations of the journal.N files in dir, ascending (owned). */
static uint64_t *list_journals(int dirfd, size_t *n)
{
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    uint64_t *gens = NULL;
    size_t cap = 0;
    struct dirent *e;

    *n = 0;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    rewinddir(d);
    while ((e = readdir(d)) != NULL) {
        char *end;
        unsigned long long g;
        if (strncmp(e->d_name, "journal.", 8) != 0 || e->d_name[8] < '0' || e->d_name[8] > '9')
            continue;
        g = strtoull(e->d_name + 8, &end, 10);
        if (*end != '\0')
            continue;
        if (*n == cap) {
            uint64_t *more = realloc(gens, (cap = cap ? cap * 2 : 8) * sizeof *gens);
            if (more == NULL)
                break;
            gens = more;
        }
        gens[(*n)++] = g;
    }
    closedir(d);
    if (*n > 0)
        qsort(gens, *n, sizeof *gens, cmp_u64);
    return gens;
}

enum cbx_err cbx_j_replay(int dirfd, const char *path, struct cbx_qmap *m, uint64_t *gen,
                          struct cbx_journal_stats *st, char *err, size_t errlen)
{
    struct replay rp = { .m = m };
    uint64_t snap_gen = 0, *gens;
    size_t n, len;
    enum cbx_err rc = CBX_OK;
    char *head;

    /* the snapshot's generation is in its header */
    head = slurp(dirfd, "snapshot", &len);
    if (head != NULL) {
        if (len >= CBX_J_HDR && memcmp(head, CBX_S_MAGIC, 8) == 0)
            memcpy(&snap_gen, head + 8, 8);
        free(head);
        if ((rc = replay_file(dirfd, path, "snapshot", CBX_S_MAGIC, snap_gen, &rp, st, err, errlen)) != CBX_OK)
            return rc;
        st->snapshot_bytes = len;
    } else if (errno != ENOENT) {
        snprintf(err, errlen, "cannot read %s/snapshot: %s", path, strerror(errno));
        return CBX_ERR_IO;
    }
    *gen = snap_gen;
    gens = list_journals(dirfd, &n);
    for (size_t i = 0; i < n && rc == CBX_OK; i++) {
        char name[64];
        if (gens[i] < snap_gen)
            continue; /* in the snapshot already; a compaction stopped before removing it */
        snprintf(name, sizeof name, "journal.%" PRIu64, gens[i]);
        rc = replay_file(dirfd, path, name, CBX_J_MAGIC, gens[i], &rp, st, err, errlen);
        *gen = gens[i];
    }
    free(gens);
    return rc;
}

/* ---- writing a snapshot ----------------------------------------------- */

/* Messages copied under one hold of the map lock: about 1 ms at ~100 ns a
 * message (the refs' cache misses). */
#define SNAP_PART_MSGS 8192

static void put_queue(struct cbx_buf *b, const struct cbx_qsnap *s, const struct cbx_qsnap_queue *q)
{
    size_t off = cbx_j_rec_begin(b, REC_QUEUE);
    uint32_t r1 = q->lost_reason, r2 = q->purged_reason;
    uint16_t qlen = (uint16_t)q->name_len;

    cbx_j_put(b, &q->acked, 8);
    cbx_j_put(b, &q->lost_to, 8);
    cbx_j_put(b, &q->purged_to, 8);
    cbx_j_put(b, &r1, 4);
    cbx_j_put(b, &r2, 4);
    cbx_j_put(b, &qlen, 2);
    cbx_j_put(b, s->names + q->name_off, q->name_len);
    cbx_j_rec_end(b, off);
}

static void put_msg(struct cbx_buf *b, const struct cbx_qsnap *s, size_t i)
{
    const struct cbx_msg *msg = s->msgs[i];
    size_t off = cbx_j_rec_begin(b, REC_MSG);
    int64_t age = s->acked_age_us[i];
    uint32_t tlen = (uint32_t)msg->tail_len;

    cbx_j_put(b, &msg->id, 8);
    cbx_j_put(b, &msg->published_us, 8);
    cbx_j_put(b, &age, 8);
    cbx_j_put(b, &tlen, 4);
    cbx_j_put(b, msg->json + msg->len - msg->tail_len, msg->tail_len);
    cbx_j_rec_end(b, off);
}

/* Writes b's records (sealed) and empties b; -1 on error. */
static int flush_buf(int fd, struct cbx_buf *b)
{
    int rc;

    if (!b->ok) {
        errno = ENOMEM;
        return -1;
    }
    cbx_j_seal(b->s, b->len);
    rc = cbx_j_write_all(fd, b->s, b->len);
    cbx_buf_reset(b);
    return rc;
}

static void remove_journals_before(int dirfd, uint64_t gen)
{
    size_t n;
    uint64_t *gens = list_journals(dirfd, &n);

    for (size_t i = 0; i < n; i++) {
        char name[64];
        if (gens[i] >= gen)
            continue;
        snprintf(name, sizeof name, "journal.%" PRIu64, gens[i]);
        if (unlinkat(dirfd, name, 0) != 0)
            cbx_log(CBX_LOG_WARN, "journal: cannot remove %s after a snapshot: %s", name, strerror(errno));
    }
    free(gens);
}

long long cbx_j_snapshot_write(int dirfd, uint64_t gen, struct cbx_qmap *m)
{
    int fd = openat(dirfd, "snapshot.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    struct cbx_qsnap_iter it;
    struct cbx_qsnap part = { 0 };
    uint64_t first_id, last_id, nmsgs = 0;
    struct cbx_buf b;
    long long size = CBX_J_HDR;
    size_t off;
    int rc;

    if (fd < 0)
        return -1;
    cbx_buf_init(&b);
    rc = write_header(fd, CBX_S_MAGIC, gen);
    cbx_qmap_snapshot_begin(m, &it, &first_id, &last_id);
    off = cbx_j_rec_begin(&b, REC_IDS);
    cbx_j_put(&b, &first_id, 8);
    cbx_j_put(&b, &last_id, 8);
    cbx_j_rec_end(&b, off);
    /* a part at a time: the map lock is held for one part's copy (refs) only */
    while (rc == 0) {
        if (cbx_qmap_snapshot_next(m, &it, &part, SNAP_PART_MSGS) != CBX_OK) {
            errno = ENOMEM;
            rc = -1;
            break;
        }
        if (part.nq == 0)
            break;
        for (size_t q = 0; q < part.nq; q++) {
            put_queue(&b, &part, &part.qs[q]);
            for (size_t i = part.qs[q].first; i < part.qs[q].first + part.qs[q].n; i++)
                put_msg(&b, &part, i);
        }
        nmsgs += part.nmsgs;
        size += (long long)b.len;
        rc = flush_buf(fd, &b);
    }
    cbx_qsnap_free(&part);
    off = cbx_j_rec_begin(&b, REC_END);
    cbx_j_put(&b, &nmsgs, 8);
    cbx_j_rec_end(&b, off);
    size += (long long)b.len;
    if (rc == 0)
        rc = flush_buf(fd, &b);
    cbx_buf_free(&b);
    if (rc == 0)
        rc = fdatasync(fd);
    if (close(fd) != 0 && rc == 0)
        rc = -1;
    if (rc == 0)
        rc = renameat(dirfd, "snapshot.tmp", dirfd, "snapshot");
    if (rc == 0)
        rc = fsync(dirfd);
    if (rc != 0) {
        int e = errno;
        unlinkat(dirfd, "snapshot.tmp", 0);
        errno = e;
        return -1;
    }
    remove_journals_before(dirfd, gen);
    return size;
}
