/* admin_cmd.c - the admin socket's commands (docs/ADMIN.md): one table of
 * ping, stats, queues, clients, kick, flush, publish, tail and reload, each
 * answering one parsed request into a JSON result, and the counter samples
 * behind the rates of `stats`. Not for the connections (admin.c), tails
 * themselves (admin_tail.c) nor the line format (common/admin_proto.c). */
#include "admin_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/admin_proto.h"
#include "../common/buf.h"
#include "../common/log.h"
#include "../common/msg.h"
#include "../common/pub.h"
#include "../common/qmap.h"
#include "../common/qname.h"
#include "admin_tail.h"
#include "broker.h"
#include "limits.h"
#include "hold.h"
#include "publish.h"
#include "server.h"
#include "settings.h"
#include "stats.h"
#include "transport.h"

#define LIST_LIMIT_DEFAULT 1000    /* rows of queues/clients unless the request says "limit" */
#define REASON_MAX 199             /* bytes of a kick reason (struct cbx_waiter.kick_reason) */
#define DEFAULT_REASON "kicked by an operator"

/* Copies user text into a log or error message: printable ASCII only. */
static void safe_copy(char *dst, size_t n, const char *src)
{
    size_t i = 0;

    for (; src[i] != '\0' && i + 1 < n; i++)
        dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
    dst[i] = '\0';
}

/* ---- JSON helpers: each sets *ok false when memory runs out ---- */

static cJSON *jobj(cJSON *o, const char *k, bool *ok)
{
    cJSON *v = cJSON_AddObjectToObject(o, k);
    if (v == NULL)
        *ok = false;
    return v;
}

static void jnum(cJSON *o, const char *k, double v, bool *ok)
{
    if (cJSON_AddNumberToObject(o, k, v) == NULL)
        *ok = false;
}

/* A wall-clock time in µs, or null for 0 ("never"). */
static void jtime(cJSON *o, const char *k, int64_t us, bool *ok)
{
    if ((us != 0 ? cJSON_AddNumberToObject(o, k, (double)us) : cJSON_AddNullToObject(o, k)) == NULL)
        *ok = false;
}

static void jstr(cJSON *o, const char *k, const char *v, bool *ok)
{
    if (cJSON_AddStringToObject(o, k, v) == NULL)
        *ok = false;
}

static enum cbx_err nomem(char *err, size_t errlen)
{
    snprintf(err, errlen, "out of memory");
    return CBX_ERR_NOMEM;
}

/* Reads an optional "limit" argument: a whole number >= 1. */
static enum cbx_err arg_limit(const struct cbx_admin_request *r, size_t *limit, char *err, size_t errlen)
{
    const cJSON *v = cbx_admin_arg(r, "limit");

    *limit = LIST_LIMIT_DEFAULT;
    if (v == NULL)
        return CBX_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 1e9 ||
        v->valuedouble != (double)(long long)v->valuedouble) {
        snprintf(err, errlen, "%s: \"limit\" must be a whole number from 1 to 1000000000", r->cmd);
        return CBX_ERR_INVALID;
    }
    *limit = (size_t)v->valuedouble;
    return CBX_OK;
}

/* Reads a queue-name argument: NULL when absent; an error when not a valid name. */
static enum cbx_err arg_queue(const struct cbx_admin_request *r, const char *name, const char **out, char *err,
                              size_t errlen)
{
    const cJSON *v = cbx_admin_arg(r, name);

    *out = NULL;
    if (v == NULL)
        return CBX_OK;
    if (!cJSON_IsString(v) || !cbx_qname_valid(v->valuestring, strlen(v->valuestring))) {
        char shown[80];
        safe_copy(shown, sizeof shown, cJSON_IsString(v) ? v->valuestring : "(not a string)");
        snprintf(err, errlen, "bad queue name \"%s\": 1 to %d letters, digits or ._:@-", shown, CBX_QNAME_MAX);
        return CBX_ERR_INVALID;
    }
    *out = v->valuestring;
    return CBX_OK;
}

static bool queue_exists(struct cbx_admin *a, const char *name)
{
    struct cbx_queue_info *rows = NULL;
    size_t n = 0;

    /* queue names hold no fnmatch metacharacters, so the pattern is the name */
    cbx_qmap_list(a->s->qmap, name, &rows, &n);
    free(rows);
    return n > 0;
}

/* ---- rates ---- */

static void sample_of(const struct cbx_stats *st, struct cbx_admin_sample *out)
{
    *out = (struct cbx_admin_sample){ cbx_now_mono_us(), st->q.published, st->q.delivered, st->q.acked,
                                      st->q.expired, st->q.dropped, st->q.flushed, st->publish_requests,
                                      st->publish_errors, st->rejected_connections };
}

void cbx_admin_rates_sample(struct cbx_admin *a)
{
    struct cbx_stats st;

    cbx_stats_collect(a->s, &st);
    sample_of(&st, &a->ring[a->ring_next]);
    a->ring_next = (a->ring_next + 1) % CBX_ADMIN_RATE_SAMPLES;
    if (a->ring_n < CBX_ADMIN_RATE_SAMPLES)
        a->ring_n++;
}

static double per_second(uint64_t now, uint64_t then, double secs)
{
    double r;

    if (secs <= 0 || now < then)
        return 0;
    r = (double)(now - then) / secs;
    return (double)(long long)(r * 1000 + 0.5) / 1000; /* three decimals are plenty */
}

/* ---- commands ---- */

typedef enum cbx_err (*cmd_fn)(struct cbx_admin *a, struct cbx_admin_client *c, const struct cbx_admin_request *r,
                               cJSON *result, char *err, size_t errlen);

static enum cbx_err cmd_ping(struct cbx_admin *a, struct cbx_admin_client *c, const struct cbx_admin_request *r, cJSON *res,
                             char *err, size_t errlen)
{
    bool ok = true;

    (void)a, (void)c, (void)r;
    if (cJSON_AddTrueToObject(res, "pong") == NULL)
        ok = false;
    jstr(res, "version", CBX_VERSION, &ok);
    jnum(res, "protocol", CBX_ADMIN_PROTOCOL, &ok);
    return ok ? CBX_OK : nomem(err, errlen);
}

/* stats' "journal" object (docs/ADMIN.md) */
static void add_journal(cJSON *res, const struct cbx_stats *st, bool *ok)
{
    const struct cbx_journal_stats *j = &st->j;
    cJSON *o = jobj(res, "journal", ok);

    if (o == NULL)
        return;
    jstr(o, "state", !st->journal_on ? "off" : j->failing ? "failing" : "ok", ok);
    if (!st->journal_on)
        return;
    if (j->failing)
        jstr(o, "error", j->error, ok);
    else if (cJSON_AddNullToObject(o, "error") == NULL)
        *ok = false;
    jstr(o, "sync", cbx_journal_sync_name(j->sync), ok);
    jnum(o, "generation", (double)j->generation, ok);
    jnum(o, "bytes", (double)j->bytes, ok);
    jnum(o, "snapshot_bytes", (double)j->snapshot_bytes, ok);
    jnum(o, "writes", (double)j->writes, ok);
    jnum(o, "syncs", (double)j->syncs, ok);
    jnum(o, "write_errors", (double)j->write_errors, ok);
    jnum(o, "refused_publishes", (double)j->refused_publishes, ok);
    jnum(o, "compactions", (double)j->compactions, ok);
    jnum(o, "replayed_records", (double)j->replayed_records, ok);
    jnum(o, "dropped_bytes", (double)j->dropped_bytes, ok);
}

/* stats' "broker" object (docs/ADMIN.md, docs/SCALING.md) */
static void add_broker(cJSON *res, const struct cbx_stats *st, bool *ok)
{
    cJSON *o = jobj(res, "broker", ok);

    if (o == NULL)
        return;
    jstr(o, "type", st->broker_on ? "redis" : "memory", ok);
    jstr(o, "state", !st->broker_on || st->b.state == CBX_BROKER_UP ? "up" : "down", ok);
    if (!st->broker_on)
        return;
    jstr(o, "url", st->b.url, ok);
    jnum(o, "reconnects", (double)st->b.reconnects, ok);
    jnum(o, "errors", (double)st->b.errors, ok);
    if (st->b.last_error[0])
        jstr(o, "last_error", st->b.last_error, ok);
    else if (cJSON_AddNullToObject(o, "last_error") == NULL)
        *ok = false;
    jnum(o, "mirrored", (double)st->b.mirrored, ok);
}

static enum cbx_err cmd_stats(struct cbx_admin *a, struct cbx_admin_client *c, const struct cbx_admin_request *r, cJSON *res,
                              char *err, size_t errlen)
{
    struct cbx_stats st;
    struct cbx_admin_sample now, *old;
    cJSON *o;
    double secs;
    bool ok = true;

    (void)c, (void)r;
    cbx_stats_collect(a->s, &st);
    sample_of(&st, &now);
    /* the oldest sample of the ring is about a minute old (less just after start) */
    old = &a->ring[a->ring_n < CBX_ADMIN_RATE_SAMPLES ? 0 : a->ring_next];
    secs = (double)(now.t - old->t) / 1e6;

    jstr(res, "version", CBX_VERSION, &ok);
    jnum(res, "protocol", CBX_ADMIN_PROTOCOL, &ok);
    jnum(res, "pid", (double)getpid(), &ok);
    jstr(res, "threads", a->s->cfg.threads == CBX_THREADS_POOL ? "pool" : "per-connection", &ok);
    jnum(res, "started_us", (double)st.started_real_us, &ok);
    jnum(res, "uptime_us", (double)(st.now_real_us - st.started_real_us), &ok);
    jnum(res, "memory_rss_bytes", (double)st.rss_bytes, &ok);
    o = jobj(res, "connections", &ok);
    jnum(o, "browser", (double)st.browser_connections, &ok);
    jnum(o, "publish", (double)st.publish_connections, &ok);
    jnum(o, "admin", (double)st.admin_clients, &ok);
    o = jobj(res, "held", &ok);
    for (int t = 0; t < CBX_T_COUNT; t++)
        jnum(o, cbx_transport_name(t), (double)st.held[t], &ok);
    jnum(o, "total", (double)st.held_total, &ok);
    jnum(res, "queues", (double)st.q.queues, &ok);
    jnum(res, "pending_messages", (double)st.q.pending_messages, &ok);
    jnum(res, "pending_bytes", (double)st.q.pending_bytes, &ok);
    jnum(res, "stored_messages", (double)st.q.stored_messages, &ok);
    jnum(res, "stored_bytes", (double)st.q.stored_bytes, &ok);
    jnum(res, "waiters", (double)st.q.waiters, &ok);
    o = jobj(res, "counters", &ok);
    jnum(o, "published", (double)now.published, &ok);
    jnum(o, "delivered", (double)now.delivered, &ok);
    jnum(o, "acknowledged", (double)now.acked, &ok);
    jnum(o, "expired", (double)now.expired, &ok);
    jnum(o, "dropped", (double)now.dropped, &ok);
    jnum(o, "flushed", (double)now.flushed, &ok);
    jnum(o, "publish_requests", (double)now.publish_requests, &ok);
    jnum(o, "publish_errors", (double)now.publish_errors, &ok);
    jnum(o, "rejected_connections", (double)now.rejected, &ok);
    jnum(o, "bad_requests", (double)st.bad_requests, &ok);
    o = jobj(res, "refused", &ok);
    for (int i = 0; i < CBX_REFUSE_COUNT; i++)
        jnum(o, cbx_refusal_names[i], (double)st.refused[i], &ok);
    o = jobj(res, "rates", &ok);
    jnum(o, "window_us", (double)(now.t - old->t), &ok);
    jnum(o, "published", per_second(now.published, old->published, secs), &ok);
    jnum(o, "delivered", per_second(now.delivered, old->delivered, secs), &ok);
    jnum(o, "acknowledged", per_second(now.acked, old->acked, secs), &ok);
    jnum(o, "expired", per_second(now.expired, old->expired, secs), &ok);
    jnum(o, "dropped", per_second(now.dropped, old->dropped, secs), &ok);
    jnum(o, "flushed", per_second(now.flushed, old->flushed, secs), &ok);
    jnum(o, "publish_requests", per_second(now.publish_requests, old->publish_requests, secs), &ok);
    jnum(o, "publish_errors", per_second(now.publish_errors, old->publish_errors, secs), &ok);
    jnum(o, "rejected_connections", per_second(now.rejected, old->rejected, secs), &ok);
    jnum(res, "first_id", (double)st.q.first_id, &ok);
    jnum(res, "last_id", (double)st.q.last_id, &ok);
    add_journal(res, &st, &ok);
    add_broker(res, &st, &ok);
    return ok ? CBX_OK : nomem(err, errlen);
}

static int by_queue_name(const void *x, const void *y)
{
    return strcmp(((const struct cbx_queue_info *)x)->name, ((const struct cbx_queue_info *)y)->name);
}

static int by_client_id(const void *x, const void *y)
{
    uint64_t i = ((const struct cbx_client_info *)x)->id, j = ((const struct cbx_client_info *)y)->id;
    return i < j ? -1 : i > j;
}

static enum cbx_err cmd_queues(struct cbx_admin *a, struct cbx_admin_client *c, const struct cbx_admin_request *r, cJSON *res,
                               char *err, size_t errlen)
{
    const cJSON *pat = cbx_admin_arg(r, "pattern");
    struct cbx_queue_info *rows = NULL;
    size_t n = 0, limit;
    cJSON *arr;
    enum cbx_err rc;
    bool ok = true;

    (void)c;
    if (pat != NULL && (!cJSON_IsString(pat) || strlen(pat->valuestring) > 256)) {
        snprintf(err, errlen, "queues: \"pattern\" must be a string of at most 256 bytes");
        return CBX_ERR_INVALID;
    }
    if ((rc = arg_limit(r, &limit, err, errlen)) != CBX_OK)
        return rc;
    if (cbx_qmap_list(a->s->qmap, pat ? pat->valuestring : NULL, &rows, &n) != CBX_OK)
        return nomem(err, errlen);
    if (n > 1)
        qsort(rows, n, sizeof *rows, by_queue_name);
    jnum(res, "now_us", (double)cbx_now_real_us(), &ok);
    jnum(res, "total", (double)n, &ok);
    if (cJSON_AddBoolToObject(res, "truncated", n > limit) == NULL)
        ok = false;
    arr = cJSON_AddArrayToObject(res, "queues");
    for (size_t i = 0; i < n && i < limit && ok; i++) {
        cJSON *q = cJSON_CreateObject();
        if (q == NULL || !cJSON_AddItemToArray(arr, q)) {
            cJSON_Delete(q);
            ok = false;
            break;
        }
        jstr(q, "name", rows[i].name, &ok);
        jnum(q, "pending", (double)rows[i].pending, &ok);
        jnum(q, "stored", (double)rows[i].stored, &ok);
        jnum(q, "bytes", (double)rows[i].bytes, &ok);
        jnum(q, "waiting", (double)rows[i].waiters, &ok); /* tails are observers: not in it */
        jtime(q, "oldest_us", rows[i].oldest_us, &ok);
        jtime(q, "last_publish_us", rows[i].last_publish_us, &ok);
    }
    free(rows);
    return ok ? CBX_OK : nomem(err, errlen);
}

static enum cbx_err cmd_clients(struct cbx_admin *a, struct cbx_admin_client *c, const struct cbx_admin_request *r, cJSON *res,
                                char *err, size_t errlen)
{
    struct cbx_client_info *rows = NULL;
    const char *queue;
    size_t n = 0, limit;
    cJSON *arr;
    enum cbx_err rc;
    bool ok = true;

    (void)c;
    if ((rc = arg_queue(r, "queue", &queue, err, errlen)) != CBX_OK ||
        (rc = arg_limit(r, &limit, err, errlen)) != CBX_OK)
        return rc;
    if (queue != NULL && !queue_exists(a, queue)) {
        snprintf(err, errlen, "no such queue: %s", queue);
        return CBX_ERR_NOT_FOUND;
    }
    if (cbx_hold_list(a->s, queue, &rows, &n) != CBX_OK)
        return nomem(err, errlen);
    if (n > 1)
        qsort(rows, n, sizeof *rows, by_client_id);
    jnum(res, "now_us", (double)cbx_now_real_us(), &ok);
    jnum(res, "total", (double)n, &ok);
    if (cJSON_AddBoolToObject(res, "truncated", n > limit) == NULL)
        ok = false;
    arr = cJSON_AddArrayToObject(res, "clients");
    for (size_t i = 0; i < n && i < limit && ok; i++) {
        cJSON *o = cJSON_CreateObject(), *qs;
        char *save = NULL, *name;
        if (o == NULL || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            ok = false;
            break;
        }
        jnum(o, "id", (double)rows[i].id, &ok);
        jstr(o, "addr", rows[i].addr, &ok);
        jstr(o, "transport", cbx_transport_name(rows[i].transport), &ok);
        qs = cJSON_AddArrayToObject(o, "queues");
        for (name = strtok_r(rows[i].queues, ",", &save); name != NULL && ok; name = strtok_r(NULL, ",", &save)) {
            cJSON *sv = cJSON_CreateString(name);
            if (sv == NULL || !cJSON_AddItemToArray(qs, sv)) {
                cJSON_Delete(sv);
                ok = false;
            }
        }
        jnum(o, "cursor", (double)rows[i].cursor, &ok);
        jtime(o, "since_us", rows[i].since_us, &ok);
    }
    free(rows);
    return ok ? CBX_OK : nomem(err, errlen);
}

static enum cbx_err cmd_kick(struct cbx_admin *a, struct cbx_admin_client *c, const struct cbx_admin_request *r, cJSON *res,
                             char *err, size_t errlen)
{
    const cJSON *client = cbx_admin_arg(r, "client"), *rv = cbx_admin_arg(r, "reason");
    const char *queue, *reason = DEFAULT_REASON;
    uint64_t count = 0;
    enum cbx_err rc;
    bool ok = true;

    if ((rc = arg_queue(r, "queue", &queue, err, errlen)) != CBX_OK)
        return rc;
    if ((queue == NULL) == (client == NULL)) {
        snprintf(err, errlen, "kick: give either \"queue\" or \"client\"");
        return CBX_ERR_INVALID;
    }
    if (rv != NULL) {
        if (!cJSON_IsString(rv) || strlen(rv->valuestring) > REASON_MAX ||
            !cbx_utf8_valid(rv->valuestring, strlen(rv->valuestring))) {
            snprintf(err, errlen, "kick: \"reason\" must be UTF-8 text of at most %d bytes", REASON_MAX);
            return CBX_ERR_INVALID;
        }
        reason = rv->valuestring;
    }
    if (queue != NULL && a->s->broker != NULL) {
        /* broker = redis: this node's requests now, every other node's
         * when it hears (a queue held nowhere here is no error) */
        if (cbx_broker_kick(a->s->broker, queue, reason) != CBX_OK) {
            snprintf(err, errlen, "%s; nothing was kicked", cbx_strerror(CBX_ERR_UNAVAILABLE));
            return CBX_ERR_UNAVAILABLE;
        }
        cbx_qmap_signal_queue(a->s->qmap, queue, CBX_W_KICK, reason, &count);
    } else if (queue != NULL) {
        rc = cbx_qmap_signal_queue(a->s->qmap, queue, CBX_W_KICK, reason, &count);
        if (rc == CBX_ERR_NOT_FOUND) {
            snprintf(err, errlen, "no such queue: %s", queue);
            return rc;
        }
    } else {
        if (!cJSON_IsNumber(client) || client->valuedouble < 0 || client->valuedouble > 9007199254740991.0 ||
            client->valuedouble != (double)(long long)client->valuedouble) {
            snprintf(err, errlen, "kick: \"client\" must be a client id (a whole number)");
            return CBX_ERR_INVALID;
        }
        if (cbx_hold_signal_client(a->s, (uint64_t)client->valuedouble, CBX_W_KICK, reason) != CBX_OK) {
            snprintf(err, errlen, "no such client: %.0f", client->valuedouble);
            return CBX_ERR_NOT_FOUND;
        }
        count = 1;
    }
    {
        char shown[REASON_MAX + 1];
        safe_copy(shown, sizeof shown, reason);
        if (queue != NULL)
            cbx_log(CBX_LOG_INFO, "admin (uid %ld pid %ld): kicked %llu client(s) on queue %s: %s", c->uid, c->pid,
                    (unsigned long long)count, queue, shown);
        else
            cbx_log(CBX_LOG_INFO, "admin (uid %ld pid %ld): kicked client %.0f: %s", c->uid, c->pid,
                    client->valuedouble, shown);
    }
    jnum(res, "kicked", (double)count, &ok);
    return ok ? CBX_OK : nomem(err, errlen);
}

static enum cbx_err cmd_flush(struct cbx_admin *a, struct cbx_admin_client *c, const struct cbx_admin_request *r, cJSON *res,
                              char *err, size_t errlen)
{
    const cJSON *all = cbx_admin_arg(r, "all");
    const char *queue;
    uint64_t count = 0;
    enum cbx_err rc;
    bool ok = true;

    if ((rc = arg_queue(r, "queue", &queue, err, errlen)) != CBX_OK)
        return rc;
    if (all != NULL && !cJSON_IsTrue(all)) {
        snprintf(err, errlen, "flush: \"all\" must be true");
        return CBX_ERR_INVALID;
    }
    if ((queue == NULL) == (all == NULL)) {
        snprintf(err, errlen, "flush: give either \"queue\" or \"all\":true");
        return CBX_ERR_INVALID;
    }
    if (a->s->broker != NULL) {
        /* broker = redis: dropped in Redis; every node hears of it */
        struct cbx_broker_ticket t = { 0 };
        rc = cbx_broker_flush(a->s->broker, queue, cbx_settings_get(a->s), &t);
        if (rc == CBX_OK) {
            cbx_broker_wait(a->s->broker, &t);
            rc = t.rc;
            count = t.value;
        }
        if (rc != CBX_OK && rc != CBX_ERR_NOT_FOUND) {
            snprintf(err, errlen, "%s; nothing was flushed", cbx_strerror(rc));
            return rc;
        }
    } else {
        rc = cbx_qmap_flush(a->s->qmap, queue, &count);
    }
    if (rc == CBX_ERR_NOT_FOUND) {
        snprintf(err, errlen, "no such queue: %s", queue);
        return rc;
    }
    cbx_log(CBX_LOG_INFO, "admin (uid %ld pid %ld): flushed %llu message(s) from %s", c->uid, c->pid,
            (unsigned long long)count, queue ? queue : "every queue");
    jnum(res, "flushed", (double)count, &ok);
    return ok ? CBX_OK : nomem(err, errlen);
}

static enum cbx_err cmd_publish(struct cbx_admin *a, struct cbx_admin_client *c, const struct cbx_admin_request *r, cJSON *res,
                                char *err, size_t errlen)
{
    struct cbx_pub_limits lim = { cbx_settings_get(a->s)->max_message_bytes };
    struct cbx_pub_batch batch = { 0 };
    const cJSON *data = cbx_admin_arg(r, "data");
    const char *queue;
    struct cbx_buf json = { NULL, 0, 0, true };
    uint64_t id = 0;
    enum cbx_err rc;
    bool ok = true;

    (void)c;
    if ((rc = arg_queue(r, "queue", &queue, err, errlen)) != CBX_OK)
        return rc;
    if (queue == NULL || data == NULL) {
        snprintf(err, errlen, "publish: needs \"queue\" and \"data\"");
        return CBX_ERR_INVALID;
    }
    /* as a JSON publish on the publish port: a string is a text message, anything else JSON
     * (written with every digit of an integer, where cJSON_PrintUnformatted would round 16 digits) */
    if (cJSON_IsString(data)) {
        rc = cbx_pub_batch_add(&batch, queue, strlen(queue), data->valuestring, strlen(data->valuestring), false,
                               &lim, err, errlen);
    } else {
        cbx_buf_init(&json);
        cbx_admin_json_write(&json, data);
        if (!json.ok) {
            rc = nomem(err, errlen);
            goto out;
        }
        rc = cbx_pub_batch_add(&batch, queue, strlen(queue), json.s, json.len, true, &lim, err, errlen);
    }
    if (rc != CBX_OK)
        goto out;
    rc = cbx_publish_batch(a->s, &batch, &id); /* the admin thread waits for the journal */
    if (rc == CBX_ERR_IO)
        snprintf(err, errlen, "the journal cannot be written; nothing was queued (see stats)");
    else if (rc == CBX_ERR_UNAVAILABLE)
        snprintf(err, errlen, "the broker (Redis) is unreachable; nothing was queued");
    else if (rc == CBX_ERR_FULL)
        snprintf(err, errlen, "too many queues (max-queues)");
    else if (rc == CBX_ERR_BUDGET)
        snprintf(err, errlen, "the memory budget for messages is full (max-total-bytes, max-total-messages)");
    else if (rc != CBX_OK)
        snprintf(err, errlen, "%s", cbx_strerror(rc));
    if (rc != CBX_OK)
        goto out;
    jnum(res, "id", (double)id, &ok);
    rc = ok ? CBX_OK : nomem(err, errlen);
out:
    cbx_buf_free(&json);
    cbx_pub_batch_free(&batch);
    return rc;
}

/* Reads the config files and options again (settings.c): the result says
 * which keys changed and which need a restart; a refusal is the error. */
static enum cbx_err cmd_reload(struct cbx_admin *a, struct cbx_admin_client *c, const struct cbx_admin_request *r,
                               cJSON *res, char *err, size_t errlen)
{
    struct cbx_reload_report rep;
    char who[64];
    cJSON *files, *changed, *restart;
    enum cbx_err rc;
    bool ok = true;

    (void)r;
    snprintf(who, sizeof who, "admin (uid %ld pid %ld)", c->uid, c->pid);
    if ((rc = cbx_settings_reload(a->s, who, &rep)) != CBX_OK) {
        snprintf(err, errlen, "%s", rep.error);
        return rc;
    }
    files = cJSON_AddArrayToObject(res, "files");
    changed = cJSON_AddArrayToObject(res, "changed");
    restart = cJSON_AddArrayToObject(res, "restart");
    ok = files != NULL && changed != NULL && restart != NULL;
    for (size_t i = 0; i < rep.nfiles && ok; i++) {
        cJSON *f = cJSON_CreateString(rep.files[i]);
        if (f == NULL || !cJSON_AddItemToArray(files, f)) {
            cJSON_Delete(f);
            ok = false;
        }
    }
    for (size_t i = 0; i < rep.nitems && ok; i++) {
        const struct cbx_reload_item *it = &rep.items[i];
        cJSON *o = cJSON_CreateObject();
        if (o == NULL || !cJSON_AddItemToArray(it->restart ? restart : changed, o)) {
            cJSON_Delete(o);
            ok = false;
            break;
        }
        jstr(o, "key", it->key, &ok);
        jstr(o, "old", it->old_text, &ok);
        jstr(o, "new", it->new_text, &ok);
        if (it->max_text != NULL)
            jstr(o, "max", it->max_text, &ok);
    }
    cbx_reload_report_free(&rep);
    return ok ? CBX_OK : nomem(err, errlen); /* reloaded all the same: the log says what changed */
}

static const char *const args_none[] = { NULL };
static const char *const args_queues[] = { "pattern", "limit", NULL };
static const char *const args_clients[] = { "queue", "limit", NULL };
static const char *const args_kick[] = { "queue", "client", "reason", NULL };
static const char *const args_flush[] = { "queue", "all", NULL };
static const char *const args_publish[] = { "queue", "data", NULL };
static const char *const args_tail[] = { "queues", NULL };

static const struct command {
    const char *name;
    const char *const *args;
    cmd_fn run;
} commands[] = {
    { "ping", args_none, cmd_ping },
    { "stats", args_none, cmd_stats },
    { "queues", args_queues, cmd_queues },
    { "clients", args_clients, cmd_clients },
    { "kick", args_kick, cmd_kick },
    { "flush", args_flush, cmd_flush },
    { "publish", args_publish, cmd_publish },
    { "tail", args_tail, cbx_admin_tail_cmd },
    { "reload", args_none, cmd_reload },
};

/* Answers one request line (without its newline) into c->out. */
void cbx_admin_cmd_line(struct cbx_admin *a, struct cbx_admin_client *c, const char *line, size_t len)
{
    struct cbx_admin_request req;
    const struct command *cmd = NULL;
    cJSON *result = NULL;
    char err[512];

    c->last_request_us = cbx_now_mono_us();
    if (cbx_admin_request_parse(line, len, &req, err, sizeof err) != CBX_OK) {
        cbx_log(CBX_LOG_DEBUG, "admin client %llu: %s", (unsigned long long)c->no, err);
        cbx_admin_reply_error(&c->out, req.id, err);
        goto out;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, req.cmd) == 0)
            cmd = &commands[i];
    if (cmd == NULL) {
        char shown[65];
        safe_copy(shown, sizeof shown, req.cmd);
        snprintf(err, sizeof err, "unknown command: %s", shown);
        cbx_admin_reply_error(&c->out, req.id, err);
        goto out;
    }
    if (cbx_admin_args_check(&req, cmd->args, err, sizeof err) != CBX_OK) {
        cbx_admin_reply_error(&c->out, req.id, err);
        goto out;
    }
    if ((result = cJSON_CreateObject()) == NULL) {
        cbx_admin_reply_error(&c->out, req.id, "out of memory");
        goto out;
    }
    if (cmd->run(a, c, &req, result, err, sizeof err) == CBX_OK)
        cbx_admin_reply_ok(&c->out, req.id, result);
    else
        cbx_admin_reply_error(&c->out, req.id, err);
out:
    cJSON_Delete(result);
    cbx_admin_request_free(&req);
}

