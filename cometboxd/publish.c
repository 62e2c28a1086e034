/* publish.c - the publish port: POST /publish (XML or JSON), GET /healthz
 * and GET /metrics. Reads the body into memory (bounded by
 * max-publish-bytes), parses it into a batch, and queues the batch
 * atomically. Not for parsing (common/pub.c) nor the metrics text (metrics.c). */
#include "publish.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/buf.h"
#include "../common/journal.h"
#include "../common/log.h"
#include "../common/pub.h"
#include "../common/qmap.h"
#include "../common/token.h"
#include "broker.h"
#include "conn.h"
#include "hold.h"
#include "http.h"
#include "limits.h"
#include "metrics.h"
#include "pool.h"
#include "server.h"
#include "settings.h"

enum body_type { BODY_XML, BODY_JSON };

struct publish_ctx {
    struct cbx_req req;    /* first: libmicrohttpd's con_cls points here */
    enum body_type type;
    bool too_large;
    struct cbx_buf body;
    /* pool mode with a journal: suspended until its batch is written */
    struct cbx_server *srv;
    bool waiting;
    struct cbx_journal_ticket ticket;
    struct cbx_broker_ticket bticket; /* broker = redis: suspended until Redis answers */
    struct cbx_wake wake;
    struct cbx_pool_thread *home;
    uint64_t *ids;         /* owned while waiting */
    size_t n;
};

static struct cbx_req done_marker;    /* answered (or refused): the rest of a body is dropped */
static struct cbx_req healthz_marker; /* answered at the next call, keeping the connection */
static struct cbx_req metrics_marker;

static void publish_completed(struct cbx_req *r, bool clean)
{
    struct publish_ctx *p = (struct publish_ctx *)r;

    (void)clean;
    cbx_buf_free(&p->body);
    free(p->ids);
    free(p);
}

/* Matches a media type, ignoring case and any ;parameters. */
static bool media_is(const char *ct, const char *type)
{
    size_t n = strlen(type);

    while (*ct == ' ')
        ct++;
    return strncasecmp(ct, type, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* Counts a refused publish-port request, for stats. */
static void count_refusal(struct cbx_server *s, enum cbx_refusal why)
{
    atomic_fetch_add(&s->ctr.publish_errors, 1);
    cbx_refuse(s, why);
}

static enum MHD_Result fail(struct cbx_server *s, struct MHD_Connection *c, enum cbx_refusal why, unsigned status,
                            const char *code, const char *detail)
{
    count_refusal(s, why);
    cbx_log(CBX_LOG_DEBUG, "publish refused (%u): %s", status, detail);
    return cbx_http_error(c, status, code, detail);
}

/* The journal wrote (or could not write) a suspended publish's batch:
 * its pool thread resumes it. Writer thread, journal lock held. */
static void journal_written(struct cbx_journal_ticket *t)
{
    struct publish_ctx *p = (struct publish_ctx *)((char *)t - offsetof(struct publish_ctx, ticket));

    cbx_pool_wake(p->home, &p->wake);
}

/* Redis answered a suspended publish: its pool thread resumes it. Broker
 * thread, broker lock held. */
static void broker_answered(struct cbx_broker_ticket *t)
{
    struct publish_ctx *p = (struct publish_ctx *)((char *)t - offsetof(struct publish_ctx, bticket));

    cbx_pool_wake(p->home, &p->wake);
}

static void ids_from(uint64_t first, uint64_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ids[i] = first + i; /* broker.lua hands out a batch's ids in a row */
}

enum cbx_err cbx_publish_batch(struct cbx_server *s, const struct cbx_pub_batch *b, uint64_t *ids)
{
    struct cbx_journal_ticket t = { 0 };
    enum cbx_err rc;

    if (s->broker != NULL) {
        uint64_t first = 0;
        rc = cbx_broker_publish_wait(s->broker, b, cbx_settings_get(s), &first);
        if (rc == CBX_OK)
            ids_from(first, ids, b->n);
        return rc;
    }
    cbx_pool_defer_begin(); /* one wake-up write per pool thread for the whole batch */
    rc = cbx_qmap_publish(s->qmap, b, ids, &t);
    cbx_pool_defer_end();
    if (rc == CBX_OK && s->journal != NULL) {
        cbx_journal_wait(s->journal, &t);
        rc = t.rc;
    }
    return rc;
}

/* The answer to a publish: its ids, or why it was refused. */
static enum MHD_Result answer_ids(struct cbx_server *s, struct MHD_Connection *c, enum cbx_err rc,
                                  const uint64_t *ids, size_t n)
{
    struct cbx_buf out;
    enum MHD_Result ret;
    char detail[256];

    if (rc == CBX_ERR_UNAVAILABLE)
        return fail(s, c, CBX_REFUSE_BROKER, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                    "the broker (Redis) is unreachable; nothing was queued");
    if (rc == CBX_ERR_IO) {
        struct cbx_journal_stats js;
        cbx_journal_stats(s->journal, &js);
        snprintf(detail, sizeof detail, "the journal cannot be written (%s); nothing was queued",
                 js.error[0] ? js.error : "write error");
        return fail(s, c, CBX_REFUSE_JOURNAL, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", detail);
    }
    if (rc != CBX_OK)
        return fail(s, c, rc == CBX_ERR_FULL ? CBX_REFUSE_QUEUES : rc == CBX_ERR_STOPPING ? CBX_REFUSE_STOPPING : CBX_REFUSE_MEMORY,
                    MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                    rc == CBX_ERR_FULL ? "too many queues (max-queues)"
                    : rc == CBX_ERR_BUDGET ? "the memory budget for messages is full (max-total-bytes, max-total-messages)"
                    : rc == CBX_ERR_STOPPING ? "the server is stopping"
                    : cbx_strerror(rc));
    cbx_buf_init(&out);
    cbx_buf_reserve(&out, 16 + n * 18);
    cbx_buf_adds(&out, "{\"ids\":[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            cbx_buf_add(&out, ",", 1);
        cbx_buf_add_u64(&out, ids[i]);
    }
    cbx_buf_adds(&out, "]}\n");
    ret = out.ok ? cbx_http_json(c, MHD_HTTP_OK, out.s, out.len) : MHD_NO;
    cbx_buf_free(&out);
    return ret;
}

static enum MHD_Result do_publish(struct cbx_server *s, struct MHD_Connection *c, struct publish_ctx *p)
{
    const struct cbx_config *cfg = cbx_settings_get(s);
    struct cbx_pub_limits lim = { cfg->max_message_bytes };
    struct cbx_pub_batch batch = { 0 };
    char detail[512];
    uint64_t *ids = NULL;
    enum cbx_err rc;
    enum MHD_Result ret;

    if (p->too_large) {
        snprintf(detail, sizeof detail, "body over max-publish-bytes (%zu)", cfg->max_publish_bytes);
        return fail(s, c, CBX_REFUSE_TOO_LARGE, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", detail);
    }
    detail[0] = '\0';
    if (p->type == BODY_XML)
        rc = cbx_pub_parse_xml(p->body.s ? p->body.s : "", p->body.len, &lim, &batch, detail, sizeof detail);
    else
        rc = cbx_pub_parse_json(p->body.s ? p->body.s : "", p->body.len, &lim, &batch, detail, sizeof detail);
    if (rc == CBX_ERR_TOO_LARGE)
        return fail(s, c, CBX_REFUSE_TOO_LARGE, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", detail);
    if (rc == CBX_ERR_NOMEM)
        return fail(s, c, CBX_REFUSE_MEMORY, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", "out of memory");
    if (rc != CBX_OK)
        return fail(s, c, CBX_REFUSE_BAD_REQUEST, MHD_HTTP_BAD_REQUEST, "malformed", detail);

    ids = malloc(batch.n * sizeof *ids);
    if (ids != NULL && s->broker != NULL && s->cfg.threads == CBX_THREADS_POOL) {
        /* answered when Redis has it: suspended till then */
        p->srv = s;
        p->bticket.notify = broker_answered;
        p->wake.conn = c;
        p->wake.slot = 1; /* the publish port's daemon (serve.c) */
        p->home = cbx_pool_current();
        p->ids = ids;
        p->n = batch.n;
        p->waiting = true;
        cbx_park(s);
        MHD_suspend_connection(c);
        rc = cbx_broker_publish(s->broker, &batch, cfg, &p->bticket);
        cbx_pub_batch_free(&batch);
        if (rc != CBX_OK) { /* not sent: answered at once */
            p->bticket.rc = rc;
            p->bticket.done = true;
            cbx_pool_wake(p->home, &p->wake);
        }
        return MHD_YES;
    } else if (ids != NULL && s->journal != NULL && s->cfg.threads == CBX_THREADS_POOL) {
        /* answered when the journal has written it: suspended till then */
        p->srv = s;
        p->ticket.notify = journal_written;
        p->wake.conn = c;
        p->wake.slot = 1; /* the publish port's daemon (serve.c) */
        p->home = cbx_pool_current();
        rc = cbx_qmap_publish(s->qmap, &batch, ids, &p->ticket);
        if (rc == CBX_OK) {
            p->ids = ids;
            p->n = batch.n;
            p->waiting = true;
            cbx_park(s);
            MHD_suspend_connection(c);
            cbx_pub_batch_free(&batch);
            return MHD_YES;
        }
    } else {
        rc = ids ? cbx_publish_batch(s, &batch, ids) : CBX_ERR_NOMEM;
    }
    ret = answer_ids(s, c, rc, ids, batch.n);
    free(ids);
    cbx_pub_batch_free(&batch);
    return ret;
}

enum MHD_Result cbx_publish_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                    const char *version, const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    struct cbx_server *s = cls;
    const struct cbx_config *cfg = cbx_settings_get(s); /* this call's config (docs/THREADS.md) */
    struct publish_ctx *p = *con_cls;
    const char *ct, *cl;

    (void)version;
    if (p == NULL) {
        static const char *const no_args[] = { NULL };
        char why[256];

        atomic_fetch_add(&s->ctr.publish_requests, 1);
        *con_cls = &done_marker;
        if (!cbx_http_args_known(c, no_args, why, sizeof why))
            return fail(s, c, CBX_REFUSE_BAD_REQUEST, MHD_HTTP_BAD_REQUEST, "malformed", why);
        if (strcmp(url, "/healthz") == 0 || strcmp(url, "/metrics") == 0) {
            if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
                return cbx_http_not_allowed(c, NULL, method, "GET");
            /* answered on the next call, keeping the connection */
            *con_cls = strcmp(url, "/healthz") == 0 ? &healthz_marker : &metrics_marker;
            return MHD_YES;
        }
        if (strcmp(url, "/publish") != 0)
            return fail(s, c, CBX_REFUSE_BAD_REQUEST, MHD_HTTP_NOT_FOUND, "not_found", "no such path; publish with POST /publish");
        if (strcmp(method, "POST") != 0) {
            count_refusal(s, CBX_REFUSE_BAD_REQUEST);
            return cbx_http_not_allowed(c, NULL, method, "POST");
        }
        if (cfg->publish_secret[0] != '\0') {
            const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
            if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
                return fail(s, c, CBX_REFUSE_PUBLISH_AUTH, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                            "this publish port needs the header Authorization: Bearer <publish-secret>");
            if (!cbx_secret_equal(auth + 7, cfg->publish_secret))
                return fail(s, c, CBX_REFUSE_PUBLISH_AUTH, MHD_HTTP_FORBIDDEN, "forbidden", "wrong publish secret");
        }
        ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (ct == NULL || !(media_is(ct, "application/xml") || media_is(ct, "text/xml") ||
                            media_is(ct, "application/json")))
            return fail(s, c, CBX_REFUSE_BAD_REQUEST, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                        "Content-Type must be application/xml, text/xml or application/json");
        cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL && strtoull(cl, NULL, 10) > cfg->max_publish_bytes) {
            char detail[128];
            snprintf(detail, sizeof detail, "body over max-publish-bytes (%zu)", cfg->max_publish_bytes);
            return fail(s, c, CBX_REFUSE_TOO_LARGE, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", detail);
        }
        p = calloc(1, sizeof *p);
        if (p == NULL)
            return fail(s, c, CBX_REFUSE_MEMORY, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", "out of memory");
        p->req.completed = publish_completed;
        p->type = media_is(ct, "application/json") ? BODY_JSON : BODY_XML;
        cbx_buf_init(&p->body);
        *con_cls = p;
        return MHD_YES;
    }
    if (*upload_data_size == 0)
        cbx_conn_request_in(c); /* the whole request, body too, is in */
    if (p == (void *)&metrics_marker && *upload_data_size == 0) {
        struct cbx_buf b;
        enum MHD_Result ret = MHD_NO;

        *con_cls = &done_marker;
        cbx_buf_init(&b);
        if (cbx_metrics_format(s, &b) == CBX_OK)
            ret = cbx_http_send(c, MHD_HTTP_OK, CBX_METRICS_CONTENT_TYPE, b.s, b.len);
        cbx_buf_free(&b);
        return ret;
    }
    if (p == (void *)&healthz_marker && *upload_data_size == 0) {
        *con_cls = &done_marker;
        if (s->broker != NULL) /* a node whose Redis is away cannot take publishes */
            return cbx_broker_up(s->broker)
                   ? cbx_http_json(c, MHD_HTTP_OK, "{\"status\":\"ok\",\"broker\":\"up\"}\n", 30)
                   : cbx_http_json(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                                   "{\"status\":\"unavailable\",\"broker\":\"down\"}\n", 41);
        return cbx_http_json(c, MHD_HTTP_OK, "{\"status\":\"ok\"}\n", 16);
    }
    if (p->waiting) { /* resumed: the journal (or Redis) is done with it */
        p->waiting = false;
        cbx_unpark(s);
        if (s->broker != NULL) {
            if (p->bticket.rc == CBX_OK)
                ids_from(p->bticket.value, p->ids, p->n);
            return answer_ids(s, c, p->bticket.rc, p->ids, p->n);
        }
        return answer_ids(s, c, p->ticket.rc, p->ids, p->n);
    }
    if (p->req.completed == NULL) { /* an answer was queued already; drop the rest of the body */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!p->too_large) {
            if (p->body.len + *upload_data_size > cfg->max_publish_bytes) {
                p->too_large = true;
                cbx_buf_free(&p->body);
            } else {
                cbx_buf_add(&p->body, upload_data, *upload_data_size);
                if (!p->body.ok)
                    p->too_large = true;
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    return do_publish(s, c, p);
}
