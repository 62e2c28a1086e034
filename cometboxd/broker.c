/* broker.c - broker = redis (broker.h, docs/SCALING.md): the thread that
 * talks to Redis. It owns two hiredis async connections, driven by its own
 * poll() loop (hiredis calls our addRead/addWrite hooks; we call its
 * handlers when poll says so): "cmd" runs broker.lua and PUBLISH, "sub"
 * holds the subscriptions (P:ctl, and P:c:NAME for each queue this node
 * mirrors). This file connects (again, with backoff, after a loss), runs
 * the loop, and starts and stops the broker; broker_sub.c has the commands
 * and subscriptions, broker_ops.c the work other threads queue (under the
 * broker lock, waking the thread through an eventfd). Everything else
 * belongs to the thread. */
#include "broker.h"
#include "broker_int.h"

#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/log.h"
#include "../common/mirror.h"
#include "../common/msg.h"
#include "../common/qmap.h"
#include "embedded.h"

static void maybe_up(struct cbx_broker *b);

/* ---- the thread: connecting ---- */

static void ev_add_read(void *p) { ((struct rconn *)p)->r = true; }
static void ev_del_read(void *p) { ((struct rconn *)p)->r = false; }
static void ev_add_write(void *p) { ((struct rconn *)p)->w = true; }
static void ev_del_write(void *p) { ((struct rconn *)p)->w = false; }
static void ev_cleanup(void *p)
{
    struct rconn *c = p;
    c->ac = NULL;
    c->r = c->w = false;
    c->sent.n = 0;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct cbx_broker *b = ac->data;

    if (status != REDIS_OK) {
        cbx_broker_set_error(b, "cannot connect: %s", ac->errstr);
        snprintf(b->teardown, sizeof b->teardown, "cannot connect: %s", ac->errstr);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct cbx_broker *b = ac->data;

    (void)status;
    if (!b->teardown[0])
        snprintf(b->teardown, sizeof b->teardown, "connection lost%s%s", ac->errstr[0] ? ": " : "", ac->errstr);
}

static void on_setup(redisAsyncContext *ac, void *reply, void *priv)
{
    struct cbx_broker *b = ac->data;
    redisReply *r = reply;

    (void)priv;
    cbx_broker_ring_pop(&b->cmd.sent);
    if (r != NULL && r->type == REDIS_REPLY_ERROR) {
        cbx_broker_set_error(b, "Redis refused the setup: %s", r->str);
        snprintf(b->teardown, sizeof b->teardown, "Redis refused the setup: %.100s", r->str);
    }
}

static void on_ids(redisAsyncContext *ac, void *reply, void *priv)
{
    struct cbx_broker *b = ac->data;
    redisReply *r = reply;

    (void)priv;
    cbx_broker_ring_pop(&b->cmd.sent);
    if (r == NULL)
        return;
    if (r->type != REDIS_REPLY_STRING) {
        if (r->type == REDIS_REPLY_ERROR)
            cbx_broker_script_error(b, r);
        snprintf(b->teardown, sizeof b->teardown, "the script's first call failed");
        return;
    }
    cbx_broker_apply(b, r->str, r->len);
    b->cmd_ready = true;
    maybe_up(b);
}

static void on_script(redisAsyncContext *ac, void *reply, void *priv)
{
    struct cbx_broker *b = ac->data;
    redisReply *r = reply;
    const char *argv[6];
    size_t lens[6];

    (void)priv;
    cbx_broker_ring_pop(&b->cmd.sent);
    if (r == NULL)
        return;
    if (r->type != REDIS_REPLY_STRING || r->len != 40) {
        cbx_broker_set_error(b, "SCRIPT LOAD failed: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected answer");
        snprintf(b->teardown, sizeof b->teardown, "SCRIPT LOAD failed");
        return;
    }
    memcpy(b->sha, r->str, 40);
    b->sha[40] = '\0';
    /* the ids: a load of no queue */
    argv[0] = "EVALSHA"; argv[1] = b->sha; argv[2] = "0"; argv[3] = "load"; argv[4] = b->prefix; argv[5] = "0";
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    /* ttl and retain: only expiry of the queues named, of which there are none */
    {
        const char *a8[8] = { argv[0], argv[1], argv[2], argv[3], argv[4], "0", "0", "" };
        size_t l8[8] = { lens[0], lens[1], lens[2], lens[3], lens[4], 1, 1, 0 };
        cbx_broker_send_cmd(b, on_ids, NULL, 8, a8, l8);
    }
}

static redisAsyncContext *open_conn(struct cbx_broker *b, struct rconn *c)
{
    redisAsyncContext *ac = b->path[0] ? redisAsyncConnectUnix(b->path) : redisAsyncConnect(b->host, b->port);

    if (ac == NULL)
        return NULL;
    if (ac->err) {
        cbx_broker_set_error(b, "cannot connect: %s", ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = b;
    c->ac = ac;
    c->b = b;
    ac->ev.data = c;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect); /* (watches for the socket to be writable) */
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->r = true;
    return ac;
}

static void connect_redis(struct cbx_broker *b)
{
    char chan[80];

    b->cmd_ready = b->sub_ready = false;
    b->teardown[0] = '\0';
    b->connect_started = cbx_now_mono_us();
    if (open_conn(b, &b->cmd) == NULL || open_conn(b, &b->sub) == NULL) {
        snprintf(b->teardown, sizeof b->teardown, "cannot connect");
        return;
    }
    if (b->password[0]) {
        cbx_broker_send_cmd(b, on_setup, NULL, 2, (const char *[]){ "AUTH", b->password },
                 (const size_t[]){ 4, strlen(b->password) });
        redisAsyncCommand(b->sub.ac, cbx_broker_on_sub, b, "AUTH %s", b->password);
    }
    if (b->db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", b->db);
        cbx_broker_send_cmd(b, on_setup, NULL, 2, (const char *[]){ "SELECT", db }, (const size_t[]){ 6, strlen(db) });
    }
    cbx_broker_send_cmd(b, on_script, NULL, 3, (const char *[]){ "SCRIPT", "LOAD", cbx_embedded_lua.data },
             (const size_t[]){ 6, 4, cbx_embedded_lua.len });
    snprintf(chan, sizeof chan, "%s:ctl", b->prefix);
    if (redisAsyncCommand(b->sub.ac, cbx_broker_on_sub, b, "SUBSCRIBE %s", chan) == REDIS_OK)
        cbx_broker_ring_push(&b->sub.sent, cbx_now_mono_us());
}

/* Both connections ready: Redis is up; every queue mirrored before is
 * subscribed to and loaded again (changes were missed meanwhile). */
static void maybe_up(struct cbx_broker *b)
{
    struct op *o = NULL;
    size_t in_op = 0;

    if (!b->cmd_ready || !b->sub_ready || atomic_load(&b->state) == CBX_BROKER_UP)
        return;
    atomic_store(&b->state, CBX_BROKER_UP);
    b->backoff = BACKOFF_MIN_US;
    if (b->ever_up)
        atomic_fetch_add(&b->reconnects, 1);
    b->ever_up = true;
    cbx_log(CBX_LOG_INFO, "broker: connected to Redis at %s", b->url_shown);
    for (size_t i = 0; i < b->nqbuckets; i++)
        for (struct qent *e = b->qbuckets[i]; e != NULL; e = e->next) {
            if (o == NULL && (o = cbx_broker_load_new(b, NULL, false, 0)) == NULL)
                return;
            cbx_broker_op_arg(o, e->name, e->len);
            if (++in_op == RESYNC_CHUNK) {
                if (cbx_broker_op_finish(o))
                    cbx_broker_start_load(b, o);
                else
                    cbx_broker_op_free(o);
                o = NULL;
                in_op = 0;
            }
        }
    if (o != NULL) {
        if (cbx_broker_op_finish(o))
            cbx_broker_start_load(b, o);
        else
            cbx_broker_op_free(o);
    }
}

/* Lost Redis (or gave up on it): every command waiting fails (hiredis runs
 * their callbacks with no reply), every queue is to be subscribed to again. */
static void teardown(struct cbx_broker *b, const char *why)
{
    struct op *failed = NULL;
    bool stopping;

    pthread_mutex_lock(&b->mu);
    stopping = b->stop;
    pthread_mutex_unlock(&b->mu);
    if (stopping)
        cbx_log(CBX_LOG_DEBUG, "broker: closing the connections to Redis at %s", b->url_shown);
    else if (atomic_load(&b->state) == CBX_BROKER_UP)
        cbx_log(CBX_LOG_WARN, "broker: lost Redis at %s (%s); publishes get 503 until it is back", b->url_shown,
                why);
    else if (!b->ever_up)
        cbx_log(CBX_LOG_DEBUG, "broker: Redis at %s not reachable (%s)", b->url_shown, why);
    atomic_store(&b->state, CBX_BROKER_DOWN);
    if (!stopping) /* a stop is no error; set_error counts it once */
        cbx_broker_set_error(b, "%s", why);
    /* loads waiting for a subscription: fail each once */
    for (size_t i = 0; i < b->nqbuckets; i++)
        for (struct qent *e = b->qbuckets[i]; e != NULL; e = e->next) {
            for (size_t k = 0; k < e->nwaiting; k++) {
                struct op *o = e->waiting[k];
                if (!o->failed) {
                    o->failed = true;
                    cbx_broker_ticket_done(b, o->t, CBX_ERR_UNAVAILABLE, 0);
                    o->next = failed;
                    failed = o;
                }
            }
            e->nwaiting = 0;
            e->state = Q_NEW;
            e->loads = 0;
            cbx_broker_notes_free(e);
        }
    /* parts of a batch whose "E" did not come: the loads after the
     * reconnect bring the whole of it */
    cbx_mirror_update_free(&b->batch);
    b->batch_id = 0;
    while (failed != NULL) {
        struct op *next = failed->next;
        cbx_broker_op_free(failed);
        failed = next;
    }
    if (b->cmd.ac != NULL)
        redisAsyncFree(b->cmd.ac);
    if (b->sub.ac != NULL)
        redisAsyncFree(b->sub.ac);
    b->cmd_ready = b->sub_ready = false;
    b->teardown[0] = '\0';
    b->connect_at = cbx_now_mono_us() + b->backoff;
    b->backoff = b->backoff * 2 > BACKOFF_MAX_US ? BACKOFF_MAX_US : b->backoff * 2;
}

/* ---- the thread's loop ---- */

static void run_ops(struct cbx_broker *b)
{
    struct op *o, *riders = NULL;

    pthread_mutex_lock(&b->mu);
    o = b->ops;
    b->ops = b->ops_tail = NULL;
    pthread_mutex_unlock(&b->mu);
    while (o != NULL) {
        struct op *next = o->next;
        o->next = NULL;
        if (o->kind == OP_FORGET)
            cbx_broker_forget(b, o);
        else if (atomic_load(&b->state) != CBX_BROKER_UP)
            cbx_broker_op_fail(b, o, CBX_ERR_UNAVAILABLE);
        else if (o->kind == OP_LOAD)
            cbx_broker_start_load(b, o);
        else if (o->kind == OP_ACK) {
            o->next = riders; /* all of this turn's in one call */
            riders = o;
        } else
            cbx_broker_send_op(b, o);
        o = next;
    }
    cbx_broker_send_acks(b, riders);
}

static void check_timeouts(struct cbx_broker *b, int64_t now)
{
    bool connecting = b->cmd.ac != NULL && atomic_load(&b->state) != CBX_BROKER_UP;

    if (b->teardown[0])
        return;
    if ((b->cmd.sent.n > 0 && now - b->cmd.sent.t[b->cmd.sent.head] > b->timeout_us) ||
        (b->sub.sent.n > 0 && now - b->sub.sent.t[b->sub.sent.head] > b->timeout_us) ||
        (connecting && now - b->connect_started > b->timeout_us))
        snprintf(b->teardown, sizeof b->teardown, "no answer within redis-timeout (%llds)",
                 (long long)(b->timeout_us / 1000000));
    else if (atomic_load(&b->state) == CBX_BROKER_UP && b->cmd.sent.n == 0 && now - b->last_ping > b->timeout_us / 2) {
        /* an idle connection is asked now and then, so a Redis that went
         * silent is noticed */
        b->last_ping = now;
        cbx_broker_send_cmd(b, on_setup, NULL, 1, (const char *[]){ "PING" }, (const size_t[]){ 4 });
    }
}

static void handle(struct rconn *c, short revents)
{
    if (c->ac != NULL && (revents & (POLLIN | POLLHUP | POLLERR)))
        redisAsyncHandleRead(c->ac);
    if (c->ac != NULL && (revents & POLLOUT))
        redisAsyncHandleWrite(c->ac);
}

static void *broker_main(void *arg)
{
    struct cbx_broker *b = arg;

    for (;;) {
        struct pollfd p[3];
        int n = 1, ci = -1, si = -1;
        int64_t now = cbx_now_mono_us(), wait_ms = 100;
        bool stop;

        pthread_mutex_lock(&b->mu);
        stop = b->stop;
        pthread_mutex_unlock(&b->mu);
        if (stop)
            break;
        if (b->teardown[0])
            teardown(b, b->teardown);
        if (b->cmd.ac == NULL && b->sub.ac == NULL && now >= b->connect_at)
            connect_redis(b);
        else if ((b->cmd.ac == NULL) != (b->sub.ac == NULL) && !b->teardown[0])
            snprintf(b->teardown, sizeof b->teardown, "connection lost");
        check_timeouts(b, now);
        if (b->teardown[0])
            continue;
        p[0] = (struct pollfd){ b->efd, POLLIN, 0 };
        if (b->cmd.ac != NULL) {
            ci = n;
            p[n++] = (struct pollfd){ b->cmd.ac->c.fd, (short)((b->cmd.r ? POLLIN : 0) | (b->cmd.w ? POLLOUT : 0)), 0 };
        }
        if (b->sub.ac != NULL) {
            si = n;
            p[n++] = (struct pollfd){ b->sub.ac->c.fd, (short)((b->sub.r ? POLLIN : 0) | (b->sub.w ? POLLOUT : 0)), 0 };
        }
        if (b->cmd.ac == NULL && b->connect_at > now && (b->connect_at - now) / 1000 < wait_ms)
            wait_ms = (b->connect_at - now) / 1000 + 1;
        if (poll(p, (nfds_t)n, (int)wait_ms) < 0 && errno != EINTR)
            break;
        if (p[0].revents & POLLIN) {
            uint64_t v;
            ssize_t r = read(b->efd, &v, sizeof v);
            (void)r;
        }
        if (ci >= 0)
            handle(&b->cmd, p[ci].revents);
        if (si >= 0)
            handle(&b->sub, p[si].revents);
        maybe_up(b); /* the subscription of P:ctl may have been confirmed */
        run_ops(b);
        cbx_broker_send_sweep(b, cbx_now_mono_us());
        /* what this turn queued goes out now, not after one more poll()
         * (hiredis keeps what the socket does not take, and asks for POLLOUT;
         * a connection still connecting waits for poll) */
        if (b->cmd.ac != NULL && b->cmd.w && (b->cmd.ac->c.flags & REDIS_CONNECTED))
            redisAsyncHandleWrite(b->cmd.ac);
        if (b->sub.ac != NULL && b->sub.w && (b->sub.ac->c.flags & REDIS_CONNECTED))
            redisAsyncHandleWrite(b->sub.ac);
    }
    /* stopping: everything waiting fails */
    teardown(b, "the daemon is stopping");
    run_ops(b);
    return NULL;
}

/* ---- start, stop, stats ---- */

/* redis://[:PASSWORD@]HOST[:PORT][/DB] or unix:/PATH[?db=N&password=P] */
static int parse_url(struct cbx_broker *b, const char *url, char *err, size_t errlen)
{
    char tmp[256], *p, *q; /* as long as host, path and password: each part fits */

    b->port = 6379;
    b->db = 0;
    if (strlen(url) >= sizeof tmp)
        goto bad;
    snprintf(tmp, sizeof tmp, "%s", url);
    if (strncmp(tmp, "unix:", 5) == 0) {
        p = tmp + 5;
        while (p[0] == '/' && p[1] == '/')
            p++; /* unix:///path too */
        if ((q = strchr(p, '?')) != NULL) {
            *q++ = '\0';
            for (char *kv = strtok(q, "&"); kv != NULL; kv = strtok(NULL, "&")) {
                if (strncmp(kv, "db=", 3) == 0)
                    b->db = atoi(kv + 3);
                else if (strncmp(kv, "password=", 9) == 0)
                    snprintf(b->password, sizeof b->password, "%s", kv + 9);
                else
                    goto bad;
            }
        }
        if (p[0] != '/')
            goto bad;
        snprintf(b->path, sizeof b->path, "%s", p);
        snprintf(b->url_shown, sizeof b->url_shown, "unix:%s%s", b->path, b->db ? "?db=..." : "");
        if (b->db)
            snprintf(b->url_shown, sizeof b->url_shown, "unix:%s?db=%d", b->path, b->db);
        return 0;
    }
    if (strncmp(tmp, "redis://", 8) != 0)
        goto bad;
    p = tmp + 8;
    if ((q = strrchr(p, '@')) != NULL) {
        *q = '\0';
        if (p[0] != ':' && strchr(p, ':') == NULL)
            goto bad;
        snprintf(b->password, sizeof b->password, "%s", strchr(p, ':') + 1);
        p = q + 1;
    }
    if ((q = strchr(p, '/')) != NULL) {
        char *end;
        *q++ = '\0';
        if (*q) {
            b->db = (int)strtol(q, &end, 10);
            if (*end || b->db < 0)
                goto bad;
        }
    }
    if ((q = strrchr(p, ':')) != NULL && strchr(p, ']') < q) {
        char *end;
        *q++ = '\0';
        b->port = (int)strtol(q, &end, 10);
        if (*end || b->port <= 0 || b->port > 65535)
            goto bad;
    }
    if (p[0] == '[') { /* [::1] */
        p++;
        if ((q = strchr(p, ']')) == NULL)
            goto bad;
        *q = '\0';
    }
    if (!p[0])
        goto bad;
    snprintf(b->host, sizeof b->host, "%s", p);
    snprintf(b->url_shown, sizeof b->url_shown, "redis://%s:%d/%d", b->host, b->port, b->db);
    return 0;
bad:
    snprintf(err, errlen, "redis-url %s: not redis://[:PASSWORD@]HOST[:PORT][/DB] nor unix:/PATH[?db=N&password=P]",
             url);
    return -1;
}

int cbx_broker_start(struct cbx_server *s, char *err, size_t errlen)
{
    struct cbx_qmap_log hooks = cbx_broker_hooks;
    struct cbx_broker *b;
    uint64_t seed = 0;
    FILE *f;

    if (s->cfg.broker != CBX_BROKER_REDIS)
        return 0;
    if ((b = calloc(1, sizeof *b)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->broker = b;
    b->s = s;
    b->efd = -1;
    if (parse_url(b, s->cfg.redis_url, err, errlen) != 0)
        return -1;
    if (!cbx_qname_valid(s->cfg.redis_prefix, strlen(s->cfg.redis_prefix))) {
        snprintf(err, errlen, "redis-prefix %s: 1-63 letters, digits and ._:@-", s->cfg.redis_prefix);
        return -1;
    }
    snprintf(b->prefix, sizeof b->prefix, "%s", s->cfg.redis_prefix);
    b->prefix_len = strlen(b->prefix);
    b->timeout_us = (int64_t)s->cfg.redis_timeout * 1000000;
    b->backoff = BACKOFF_MIN_US;
    b->nqbuckets = 1024;
    if ((f = fopen("/dev/urandom", "rb")) != NULL) {
        if (fread(&seed, sizeof seed, 1, f) != 1)
            seed = 0;
        fclose(f);
    }
    b->node_id = seed ^ (uint64_t)cbx_now_real_us() ^ ((uint64_t)getpid() << 32);
    atomic_init(&b->state, CBX_BROKER_DOWN);
    if ((b->qbuckets = calloc(b->nqbuckets, sizeof *b->qbuckets)) == NULL ||
        (b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 || pthread_mutex_init(&b->mu, NULL) != 0 ||
        pthread_cond_init(&b->done, NULL) != 0) {
        snprintf(err, errlen, "cannot set up the broker: %s", strerror(errno));
        return -1;
    }
    hooks.ctx = b;
    cbx_qmap_set_log(s->qmap, &hooks);
    if (pthread_create(&b->thread, NULL, broker_main, b) != 0) {
        cbx_qmap_set_log(s->qmap, NULL);
        snprintf(err, errlen, "cannot start the broker thread");
        return -1;
    }
    b->started = true;
    cbx_log(CBX_LOG_INFO, "broker: redis at %s, prefix %s", b->url_shown, b->prefix);
    return 0;
}

void cbx_broker_stop(struct cbx_broker *b)
{
    if (b == NULL)
        return;
    if (b->started) {
        pthread_mutex_lock(&b->mu);
        b->stop = true;
        pthread_mutex_unlock(&b->mu);
        cbx_broker_wake_thread(b);
        pthread_join(b->thread, NULL);
        cbx_qmap_set_log(b->s->qmap, NULL); /* freeing the map's queues tells no one */
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->done);
    }
    for (size_t i = 0; b->qbuckets != NULL && i < b->nqbuckets; i++)
        while (b->qbuckets[i] != NULL)
            cbx_broker_qent_remove(b, b->qbuckets[i]);
    free(b->qbuckets);
    free(b->acks);
    free(b->cmd.sent.t);
    free(b->sub.sent.t);
    if (b->efd >= 0)
        close(b->efd);
    free(b);
}

void cbx_broker_stats(struct cbx_broker *b, struct cbx_broker_stats *out)
{
    memset(out, 0, sizeof *out);
    out->state = (enum cbx_broker_state)atomic_load(&b->state);
    snprintf(out->url, sizeof out->url, "%s", b->url_shown);
    out->reconnects = atomic_load(&b->reconnects);
    out->errors = atomic_load(&b->errors);
    out->mirrored = atomic_load(&b->mirrored);
    pthread_mutex_lock(&b->mu);
    snprintf(out->last_error, sizeof out->last_error, "%s", b->last_error);
    pthread_mutex_unlock(&b->mu);
}

bool cbx_broker_up(struct cbx_broker *b)
{
    return atomic_load(&b->state) == CBX_BROKER_UP;
}
