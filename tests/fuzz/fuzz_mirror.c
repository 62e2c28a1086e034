/* fuzz_mirror.c - libFuzzer target: Redis's change and load text (what
 * cometboxd/broker.lua writes, common/mirror.c parses) from the network.
 * A parse must never crash or leak; a refusal leaves out empty and says
 * where; what it accepts holds what mirror.h promises (valid names, drop
 * reasons that exist, ids rising within a queue, messages that are
 * {"id":ID plus their tail) and, written back in broker.lua's format,
 * reads the same again. Any broken promise aborts. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/mirror.h"
#include "../../common/qmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NEED(cond)                                                                                       \
    do {                                                                                                 \
        if (!(cond)) {                                                                                   \
            fprintf(stderr, "fuzz_mirror: broken: %s (line %d)\n", #cond, __LINE__);                     \
            abort();                                                                                     \
        }                                                                                                \
    } while (0)

static void check_update(const struct cbx_mirror_update *u, char kind)
{
    NEED(u->load == (kind == 'L'));
    NEED((u->nq == 0) == (u->qs == NULL));
    for (size_t i = 0; i < u->nq; i++) {
        const struct cbx_mirror_queue *q = &u->qs[i];
        uint64_t prev = 0;

        NEED(q->name_len == strlen(q->name));
        NEED(cbx_qname_valid(q->name, q->name_len));
        NEED(q->lost_reason >= CBX_DROP_NONE && q->lost_reason <= CBX_DROP_RESTART);
        NEED(q->purged_reason >= CBX_DROP_NONE && q->purged_reason <= CBX_DROP_RESTART);
        NEED((q->n == 0) == (q->msgs == NULL));
        for (size_t k = 0; k < q->n; k++) {
            const struct cbx_msg *m = q->msgs[k];
            char head[32];
            size_t tail_len;
            const char *tail;
            int n;

            NEED(m != NULL);
            NEED(m->id > prev); /* rising, and never 0 */
            prev = m->id;
            NEED(m->refs == 1);
            NEED(m->published_us >= 0);
            n = snprintf(head, sizeof head, "{\"id\":%" PRIu64, m->id);
            tail = cbx_msg_tail(m, &tail_len);
            NEED(m->len == (size_t)n + tail_len);
            NEED(memcmp(m->json, head, (size_t)n) == 0);
            NEED(tail == m->json + n);
            NEED(tail_len >= 2 && tail[0] == ',' && tail[tail_len - 1] == '}');
        }
    }
}

/* Writes u back as broker.lua would; NULL when memory runs out. */
static char *write_back(const struct cbx_mirror_update *u, size_t *len)
{
    size_t need = 96, at = 0;
    char *out;

    for (size_t i = 0; i < u->nq; i++) {
        need += 2 + 8 * 21 + u->qs[i].name_len;
        for (size_t k = 0; k < u->qs[i].n; k++)
            need += 4 * 21 + u->qs[i].msgs[k]->tail_len;
    }
    if ((out = malloc(need)) == NULL)
        return NULL;
    at += (size_t)snprintf(out + at, need - at, "%c %" PRIu64 " %" PRIu64 " %zu\n", u->load ? 'L' : 'N', u->last_id,
                           u->first_id, u->nq);
    for (size_t i = 0; i < u->nq; i++) {
        const struct cbx_mirror_queue *q = &u->qs[i];

        at += (size_t)snprintf(out + at, need - at, "Q %zu %s %" PRIu64 " %" PRIu64 " %d %" PRIu64 " %d %zu\n",
                               q->name_len, q->name, q->acked, q->lost_to, q->lost_reason, q->purged_to,
                               q->purged_reason, q->n);
        for (size_t k = 0; k < q->n; k++) {
            const struct cbx_msg *m = q->msgs[k];
            char head[64];
            size_t tail_len;
            const char *tail = cbx_msg_tail(m, &tail_len);
            int n = snprintf(head, sizeof head, "%" PRIu64 " %" PRId64 " ", m->id, m->published_us);

            at += (size_t)snprintf(out + at, need - at, "%zu %s", (size_t)n + tail_len, head);
            NEED(at + tail_len + 1 <= need);
            memcpy(out + at, tail, tail_len);
            at += tail_len;
            out[at++] = '\n';
        }
    }
    NEED(at < need);
    *len = at;
    return out;
}

static bool same(const struct cbx_mirror_update *a, const struct cbx_mirror_update *b)
{
    if (a->load != b->load || a->last_id != b->last_id || a->first_id != b->first_id || a->nq != b->nq)
        return false;
    for (size_t i = 0; i < a->nq; i++) {
        const struct cbx_mirror_queue *p = &a->qs[i], *q = &b->qs[i];

        if (strcmp(p->name, q->name) != 0 || p->name_len != q->name_len || p->acked != q->acked ||
            p->lost_to != q->lost_to || p->lost_reason != q->lost_reason || p->purged_to != q->purged_to ||
            p->purged_reason != q->purged_reason || p->n != q->n)
            return false;
        for (size_t k = 0; k < p->n; k++)
            if (p->msgs[k]->id != q->msgs[k]->id || p->msgs[k]->published_us != q->msgs[k]->published_us ||
                p->msgs[k]->len != q->msgs[k]->len || memcmp(p->msgs[k]->json, q->msgs[k]->json, p->msgs[k]->len) != 0)
                return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct cbx_mirror_update empty;
    struct cbx_mirror_update u, again;
    const char *text = (const char *)data;
    char err[128], *back;
    size_t at, of, back_len;
    enum cbx_err rc;

    memset(&u, 0x5a, sizeof u);
    err[0] = '\0';
    rc = cbx_mirror_parse(text, size, &u, err, sizeof err);
    if (rc != CBX_OK) {
        NEED(rc == CBX_ERR_INVALID || rc == CBX_ERR_NOMEM);
        NEED(memcmp(&u, &empty, sizeof u) == 0);
        NEED(sscanf(err, rc == CBX_ERR_INVALID ? "not broker.lua's text at byte %zu of %zu"
                                               : "out of memory at byte %zu of %zu",
                    &at, &of) == 2);
        NEED(at <= of && of == size);
        /* and says what was wrong */
        NEED(rc != CBX_ERR_INVALID || (strstr(err, ": ") != NULL && strstr(err, ": ?") == NULL));
        return 0;
    }
    check_update(&u, text[0]);
    /* broker.lua's format again: it reads the same, and is no longer than
     * the input (which may only add leading zeros) */
    back = write_back(&u, &back_len);
    if (back != NULL) {
        NEED(back_len <= size);
        rc = cbx_mirror_parse(back, back_len, &again, err, sizeof err);
        NEED(rc == CBX_OK || rc == CBX_ERR_NOMEM);
        if (rc == CBX_OK) {
            NEED(same(&u, &again));
            cbx_mirror_update_free(&again);
        }
        free(back);
    }
    cbx_mirror_update_free(&u);
    NEED(memcmp(&u, &empty, sizeof u) == 0);
    return 0;
}
