/* mirror.c - parsing what Redis tells a node (mirror.h). Every length and
 * number is checked: the text comes over the network. */
#include "mirror.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rd {
    const char *p, *end;
    const char *why; /* what was wrong, for the error */
};

/* A decimal number up to max, then the separator sep. */
static bool rd_num(struct rd *r, uint64_t max, char sep, uint64_t *out)
{
    uint64_t v = 0;
    const char *start = r->p;

    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
        unsigned d = (unsigned)(*r->p - '0');
        if (d > max || v > (max - d) / 10) { /* d > max: max - d would wrap */
            r->why = "a number out of range";
            return false;
        }
        v = v * 10 + d;
        r->p++;
    }
    if (r->p == start) {
        r->why = "a number expected";
        return false;
    }
    if (r->p == r->end || *r->p != sep) {
        r->why = sep == '\n' ? "a line end expected after a number" : "a space expected after a number";
        return false;
    }
    r->p++;
    *out = v;
    return true;
}

/* len bytes, then sep. */
static const char *rd_bytes(struct rd *r, size_t len, char sep)
{
    const char *s = r->p;

    if ((size_t)(r->end - r->p) < len + 1) {
        r->why = "a length past the end of the text";
        return NULL;
    }
    if (r->p[len] != sep) {
        r->why = sep == '\n' ? "a line end expected after a member" : "a space expected after a name";
        return NULL;
    }
    r->p += len + 1;
    return s;
}

#define ID_MAX ((UINT64_C(1) << 53) - 1) /* ids stay below 2^53 (PROTOCOL.md): broker.lua's numbers are doubles */

/* "LEN ID PUBLISHED_US TAIL\n": one message. */
static bool rd_msg(struct rd *r, uint64_t after, struct cbx_msg **out)
{
    uint64_t len, id, pub;
    const char *m;
    struct rd in;

    if (!rd_num(r, 1u << 30, ' ', &len) || (m = rd_bytes(r, len, '\n')) == NULL)
        return false;
    in = (struct rd){ m, m + len, NULL };
    if (!rd_num(&in, ID_MAX, ' ', &id) || !rd_num(&in, INT64_MAX, ' ', &pub)) {
        r->why = in.why; /* (the position stays at the member's end) */
        return false;
    }
    if (id <= after) {
        r->why = "message ids not rising";
        return false;
    }
    /* the tail is what msg.c wrote: ,"queue":...} */
    if (in.end - in.p < 2 || in.p[0] != ',' || in.end[-1] != '}') {
        r->why = "a message that is not cometbox's JSON";
        return false;
    }
    *out = cbx_msg_from_tail(in.p, (size_t)(in.end - in.p), id, (int64_t)pub);
    return true;
}

static bool rd_queue(struct rd *r, struct cbx_mirror_queue *q, bool *nomem)
{
    uint64_t nlen, lr, pr, n;
    const char *name;

    if (r->end - r->p < 2 || memcmp(r->p, "Q ", 2) != 0) {
        r->why = "a queue line (Q) expected";
        return false;
    }
    r->p += 2;
    if (!rd_num(r, CBX_QNAME_MAX, ' ', &nlen) || (name = rd_bytes(r, nlen, ' ')) == NULL)
        return false;
    memcpy(q->name, name, nlen);
    q->name[nlen] = '\0';
    q->name_len = nlen;
    if (!cbx_qname_valid(q->name, q->name_len)) {
        r->why = "not a queue name";
        return false;
    }
    if (!rd_num(r, ID_MAX, ' ', &q->acked) || !rd_num(r, ID_MAX, ' ', &q->lost_to) ||
        !rd_num(r, 4, ' ', &lr) || !rd_num(r, ID_MAX, ' ', &q->purged_to) || !rd_num(r, 4, ' ', &pr) ||
        !rd_num(r, 1u << 24, '\n', &n))
        return false;
    q->lost_reason = (int)lr;
    q->purged_reason = (int)pr;
    if (n > (size_t)(r->end - r->p) / 8) { /* each message takes more than 8 bytes */
        r->why = "more messages than the text can hold";
        return false;
    }
    if (n > 0 && (q->msgs = calloc(n, sizeof *q->msgs)) == NULL) {
        *nomem = true;
        return false;
    }
    for (; q->n < n; q->n++) {
        if (!rd_msg(r, q->n ? q->msgs[q->n - 1]->id : 0, &q->msgs[q->n]))
            return false;
        if (q->msgs[q->n] == NULL) {
            *nomem = true;
            return false;
        }
    }
    return true;
}

enum cbx_err cbx_mirror_parse(const char *text, size_t len, struct cbx_mirror_update *out, char *err,
                              size_t errlen)
{
    struct rd r = { text, text + len, NULL };
    uint64_t nq;
    bool nomem = false;

    memset(out, 0, sizeof *out);
    if (len < 2 || (text[0] != 'L' && text[0] != 'N') || text[1] != ' ') {
        r.why = "no L or N header";
        goto bad;
    }
    out->load = text[0] == 'L';
    r.p += 2;
    if (!rd_num(&r, ID_MAX, ' ', &out->last_id) || !rd_num(&r, ID_MAX, ' ', &out->first_id) ||
        !rd_num(&r, 1u << 20, '\n', &nq))
        goto bad;
    if (nq > len / 16) {
        r.why = "more queues than the text can hold";
        goto bad;
    }
    if (nq > 0 && (out->qs = calloc(nq, sizeof *out->qs)) == NULL) {
        nomem = true;
        goto bad;
    }
    for (; out->nq < nq; out->nq++)
        if (!rd_queue(&r, &out->qs[out->nq], &nomem)) {
            out->nq++; /* freed below with what it holds */
            goto bad;
        }
    if (r.p != r.end) {
        r.why = "bytes after the last queue";
        goto bad;
    }
    return CBX_OK;
bad:
    if (nomem)
        snprintf(err, errlen, "out of memory at byte %zu of %zu", (size_t)(r.p - text), len);
    else
        snprintf(err, errlen, "not broker.lua's text at byte %zu of %zu: %s", (size_t)(r.p - text), len,
                 r.why != NULL ? r.why : "?");
    cbx_mirror_update_free(out);
    return nomem ? CBX_ERR_NOMEM : CBX_ERR_INVALID;
}

void cbx_mirror_update_free(struct cbx_mirror_update *u)
{
    for (size_t i = 0; i < u->nq; i++) {
        for (size_t k = 0; k < u->qs[i].n; k++)
            cbx_msg_unref(u->qs[i].msgs[k]);
        free(u->qs[i].msgs);
    }
    free(u->qs);
    memset(u, 0, sizeof *u);
}
