/* config.c - the table of cometboxd's keys and the parsers for their values.
 * Every limit is here with its default; docs and the sample config repeat
 * these defaults and a unit test checks that they agree. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "log.h"

static const char *const threads_names[] = { "pool", "per-connection", NULL };
static const char *const level_names[] = { "error", "warn", "info", "debug", NULL };
static const char *const auth_names[] = { "none", "token", NULL };
static const char *const sync_names[] = { "always", "batch", "none", NULL };
static const char *const broker_names[] = { "memory", "redis", NULL };

#define OFF(f) offsetof(struct cbx_config, f)
#define STR(f) OFF(f), sizeof(((struct cbx_config *)0)->f)

const struct cbx_config_key cbx_config_keys[] = {
    { "listen", KT_ADDR, STR(listen), 0, 0, NULL, "*:1800",
      "browser port: PORT (on *), HOST:PORT, *:PORT or [IPv6]:PORT; port 0 picks a free one", KR_RESTART },
    { "publish-listen", KT_ADDR, STR(publish_listen), 0, 0, NULL, "127.0.0.1:1802",
      "publish port, for the web application only: PORT (on 127.0.0.1) or HOST:PORT", KR_RESTART },
    { "admin-socket", KT_STR, STR(admin_socket), 0, 0, NULL, "/run/cometboxd.sock",
      "path of the admin UNIX socket", KR_RESTART },
    { "admin-socket-mode", KT_MODE, OFF(admin_socket_mode), 0, 0, 0777, NULL, "0600",
      "permissions of the admin socket (octal)", KR_RESTART },
    { "threads", KT_ENUM, OFF(threads), 0, 0, 0, threads_names, "pool",
      "pool (pool-size threads, each with its own epoll loop; suspended responses) or per-connection (a thread per connection)", KR_RESTART },
    { "pool-size", KT_INT, OFF(pool_size), 0, 0, 64, NULL, "0",
      "threads in pool mode; 0 = one per core", KR_RESTART },
    { "thread-stack", KT_SIZE, OFF(thread_stack), 0, 32768, 64LL << 20, NULL, "64k",
      "stack size of each connection thread in per-connection mode", KR_RESTART },
    { "max-connections", KT_INT, OFF(max_connections), 0, 1, 1000000, NULL, "18000",
      "browser connections at once; more get 503", KR_LOWER },
    { "publish-max-connections", KT_INT, OFF(publish_max_connections), 0, 1, 100000, NULL, "512",
      "publish connections at once", KR_RESTART },
    { "connection-memory", KT_SIZE, OFF(connection_memory), 0, 4096, 1LL << 20, NULL, "8k",
      "memory pool of each connection (holds its request headers)", KR_RESTART },
    { "hold-timeout", KT_SECS, OFF(hold_timeout), 0, 0, 3600, NULL, "25",
      "seconds a long-poll is held when it names no timeout", KR_RELOAD },
    { "hold-timeout-max", KT_SECS, OFF(hold_timeout_max), 0, 0, 3600, NULL, "120",
      "largest timeout= a long-poll may ask for", KR_RELOAD },
    { "heartbeat", KT_SECS, OFF(heartbeat), 0, 1, 3600, NULL, "15",
      "seconds of silence after which a stream gets a heartbeat line", KR_RELOAD },
    { "stream-max-bytes", KT_SIZE, OFF(stream_max_bytes), 0, 1024, 1LL << 30, NULL, "128k",
      "a stream ends after writing this many bytes; the client resumes by id", KR_RELOAD },
    { "stream-max-age", KT_SECS, OFF(stream_max_age), 0, 1, 86400, NULL, "300",
      "a stream ends after this many seconds", KR_RELOAD },
    { "retain-acked", KT_SECS, OFF(retain_acked), 0, 0, 86400, NULL, "60",
      "seconds an acknowledged message is kept for resuming clients", KR_RELOAD },
    { "message-ttl", KT_SECS, OFF(message_ttl), 0, 1, 30 * 86400, NULL, "3600",
      "seconds after which any message expires", KR_RELOAD },
    { "queue-max-messages", KT_INT, OFF(queue_max_messages), 0, 1, 10000000, NULL, "1000",
      "messages a queue keeps; more drop the oldest", KR_RELOAD },
    { "queue-max-bytes", KT_SIZE, OFF(queue_max_bytes), 0, 1024, 1LL << 34, NULL, "1m",
      "bytes of messages a queue keeps; more drop the oldest", KR_RELOAD },
    { "max-queues", KT_INT, OFF(max_queues), 0, 1, 100000000, NULL, "1000000",
      "queues at once; a publish that needs more gets 503", KR_RELOAD },
    { "max-batch", KT_INT, OFF(max_batch), 0, 1, 100000, NULL, "100",
      "messages in one answer at most", KR_RELOAD },
    { "max-publish-bytes", KT_SIZE, OFF(max_publish_bytes), 0, 64, 1LL << 30, NULL, "1m",
      "largest publish request body", KR_RELOAD },
    { "max-message-bytes", KT_SIZE, OFF(max_message_bytes), 0, 1, 1LL << 30, NULL, "64k",
      "largest message data", KR_RELOAD },
    { "max-ws-frame", KT_SIZE, OFF(max_ws_frame), 0, 64, 1LL << 24, NULL, "4k",
      "largest message a WebSocket client may send (its {\"ack\":ID} frames); more is closed with 1009", KR_RELOAD },
    { "cors-origins", KT_STR, STR(cors_origins), 0, 0, NULL, "",
      "origins allowed to subscribe from other sites, space-separated, or *", KR_RELOAD },
    { "publish-secret", KT_SECRET, STR(publish_secret), 0, 0, NULL, "",
      "when set, a publish needs the header Authorization: Bearer SECRET", KR_RELOAD },
    { "subscribe-auth", KT_ENUM, OFF(subscribe_auth), 0, 0, 0, auth_names, "none",
      "none, or token: a subscribe needs ?token= signed with subscribe-secret", KR_RELOAD },
    { "subscribe-secret", KT_SECRET, STR(subscribe_secret), 0, 0, NULL, "",
      "key of the subscriber tokens (at least 16 bytes)", KR_RELOAD },
    { "max-connections-per-ip", KT_INT, OFF(max_connections_per_ip), 0, 1, 1000000, NULL, "1000",
      "browser connections from one address; more get 429", KR_RELOAD },
    { "max-waiters-per-queue", KT_INT, OFF(max_waiters_per_queue), 0, 1, 1000000, NULL, "20000",
      "requests held on one queue at once; more get 429", KR_RELOAD },
    { "max-queues-per-request", KT_INT, OFF(max_queues_per_request), 0, 1, 16, NULL, "16",
      "queues one poll or stream may name", KR_RELOAD },
    { "max-total-bytes", KT_SIZE, OFF(max_total_bytes), 0, 1024, 1LL << 40, NULL, "512m",
      "memory budget for all stored messages; a publish beyond it gets 503", KR_RELOAD },
    { "max-total-messages", KT_INT, OFF(max_total_messages), 0, 1, 1000000000, NULL, "10000000",
      "messages stored in all queues together; a publish beyond it gets 503", KR_RELOAD },
    { "idle-timeout", KT_SECS, OFF(idle_timeout), 0, 1, 3600, NULL, "30",
      "a connection that sends or takes nothing this long (a slow or stuck client) is closed", KR_RESTART },
    { "request-timeout", KT_SECS, OFF(request_timeout), 0, 1, 3600, NULL, "10",
      "a connection must send a whole request (headers and body) this soon after it opens (a kept-alive "
      "one: after its last answer, or idle-timeout when longer), else it is closed", KR_RELOAD },
    { "state-dir", KT_STR, STR(state_dir), 0, 0, NULL, "",
      "directory of the journal and snapshot; empty = messages live in memory only and die with the process", KR_RESTART },
    { "journal-sync", KT_ENUM, OFF(journal_sync), 0, 0, 0, sync_names, "batch",
      "always (fdatasync each publish before answering), batch (publishes arriving together share one "
      "fdatasync before answering) or none (written before answering, synced by the kernel)", KR_RESTART },
    { "journal-compact-size", KT_SIZE, OFF(journal_compact_size), 0, 4096, 1LL << 40, NULL, "64m",
      "the journal is compacted into a snapshot once it is this big and twice the bytes stored", KR_RESTART },
    { "broker", KT_ENUM, OFF(broker), 0, 0, 0, broker_names, "memory",
      "memory (this node alone; with state-dir, its journal) or redis (nodes share queues in Redis: docs/SCALING.md)", KR_RESTART },
    { "redis-url", KT_STR, STR(redis_url), 0, 0, NULL, "redis://127.0.0.1:6379/0",
      "with broker = redis: redis://[:PASSWORD@]HOST[:PORT][/DB] or unix:/PATH[?db=N&password=P]", KR_RESTART },
    { "redis-prefix", KT_STR, STR(redis_prefix), 0, 0, NULL, "cometbox",
      "with broker = redis: the start of every key and channel (nodes that share queues share it)", KR_RESTART },
    { "redis-timeout", KT_SECS, OFF(redis_timeout), 0, 1, 3600, NULL, "2",
      "with broker = redis: a command unanswered this long counts as Redis unreachable", KR_RESTART },
    { "log-level", KT_ENUM, OFF(log_level), 0, 0, 0, level_names, "info",
      "error, warn, info or debug", KR_RELOAD },
    { "demo", KT_BOOL, OFF(demo), 0, 0, 1, NULL, "off", "serve the demo page at /demo", KR_RELOAD },
};

#define NKEYS (sizeof cbx_config_keys / sizeof cbx_config_keys[0])
const size_t cbx_config_nkeys = NKEYS;

static const struct cbx_config_key *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(cbx_config_keys[i].name, name) == 0)
            return &cbx_config_keys[i];
    return NULL;
}

bool cbx_config_has_key(const char *name) { return find_key(name) != NULL; }

#define NEAREST_LEN_MAX 64

/* Edit distance (optimal string alignment: insertions, deletions,
 * substitutions and swaps of neighbours each count 1); both at most
 * NEAREST_LEN_MAX bytes. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t d[NEAREST_LEN_MAX + 1][NEAREST_LEN_MAX + 1];

    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1], best = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

const char *cbx_config_nearest_key(const char *name)
{
    size_t len = strlen(name), best_d = SIZE_MAX;
    const char *best = NULL;

    if (len > NEAREST_LEN_MAX)
        return NULL;
    for (size_t i = 0; i < NKEYS; i++) {
        size_t klen = strlen(cbx_config_keys[i].name), d;
        if (klen > len + 2 || len > klen + 2)
            continue; /* the lengths alone are more than 2 edits apart */
        d = edit_distance(name, cbx_config_keys[i].name);
        if (d < best_d) {
            best_d = d;
            best = cbx_config_keys[i].name;
        }
    }
    /* a typo, not a different word: at most 2 edits, and at most one per 3 characters */
    return best_d <= 2 && best_d * 3 <= len ? best : NULL;
}

/* Parses a decimal integer with an optional unit suffix; mult_* give the
 * multipliers for each suffix letter (0 = suffix not allowed). */
static bool parse_number(const char *s, long long *out, const char *suffixes,
                         const long long *mults)
{
    char *end;
    long long v;

    if (!isdigit((unsigned char)*s))
        return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0)
        return false;
    if (*end != '\0') {
        const char *p = strchr(suffixes, tolower((unsigned char)*end));
        if (p == NULL || end[1] != '\0')
            return false;
        long long m = mults[p - suffixes];
        if (v > LLONG_MAX / m)
            return false;
        v *= m;
    }
    *out = v;
    return true;
}

/* ---- listen addresses ---------------------------------------------------
 * Checked when the config is read, so a bad one is an error naming the line
 * or option (exit 2), not a bind failure later; getaddrinfo() would also
 * take a port above 65535 and wrap it. */

static bool all_digits(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* A numeric IPv6 address, with an optional %scope (an interface name). */
static bool ipv6_host(const char *host, size_t len)
{
    char buf[INET6_ADDRSTRLEN];
    struct in6_addr a;
    const char *pct = memchr(host, '%', len);
    size_t alen = pct ? (size_t)(pct - host) : len;

    if (alen >= sizeof buf || (pct != NULL && (len - alen < 2 || len - alen > 16)))
        return false;
    for (size_t i = alen + 1; pct != NULL && i < len; i++)
        if (!isalnum((unsigned char)host[i]) && strchr("._-", host[i]) == NULL)
            return false;
    memcpy(buf, host, alen);
    buf[alen] = '\0';
    return inet_pton(AF_INET6, buf, &a) == 1;
}

static bool ipv4_host(const char *host, size_t len)
{
    char buf[INET_ADDRSTRLEN];
    struct in_addr a;

    if (len >= sizeof buf)
        return false;
    memcpy(buf, host, len);
    buf[len] = '\0';
    return inet_pton(AF_INET, buf, &a) == 1;
}

enum cbx_err cbx_config_addr_parse(const char *spec, struct cbx_listen_addr *out, char *err, size_t errlen)
{
    const char *host = spec, *port;
    size_t host_len;

    memset(out, 0, sizeof *out);
    if (spec[0] != '\0' && all_digits(spec, strlen(spec))) {
        out->bare = true;
        port = spec;
        host_len = 0;
    } else if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (close == NULL || close[1] != ':')
            goto form;
        host = spec + 1;
        host_len = (size_t)(close - host);
        port = close + 2;
        if (!ipv6_host(host, host_len)) {
            snprintf(err, errlen, "host must be a numeric IPv4 address, [IPv6], * or localhost, not \"%.*s\"",
                     (int)(host_len > 100 ? 100 : host_len + 2), host - 1);
            return CBX_ERR_INVALID;
        }
    } else {
        const char *colon = strrchr(spec, ':');
        if (colon == NULL)
            goto form;
        host_len = (size_t)(colon - spec);
        port = colon + 1;
        if (memchr(spec, ':', host_len) != NULL) {
            snprintf(err, errlen, "wants an IPv6 address in brackets, such as [::1]:1800, not \"%.100s\"", spec);
            return CBX_ERR_INVALID;
        }
        if (host_len == 0 || (host_len == 1 && spec[0] == '*')) {
            out->wildcard = true;
            host_len = 0;
        } else if (!(host_len == 9 && memcmp(spec, "localhost", 9) == 0) && !ipv4_host(spec, host_len)) {
            snprintf(err, errlen, "host must be a numeric IPv4 address, [IPv6], * or localhost, not \"%.*s\"",
                     (int)(host_len > 100 ? 100 : host_len), spec);
            return CBX_ERR_INVALID;
        }
    }
    if (port[0] == '\0' || strlen(port) > 5 || !all_digits(port, strlen(port)) || atol(port) > 65535) {
        snprintf(err, errlen, "port must be a number from 0 to 65535, not \"%.100s\"", port);
        return CBX_ERR_INVALID;
    }
    if (host_len >= sizeof out->host)
        goto form;
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    out->port = (unsigned)atol(port);
    return CBX_OK;
form:
    snprintf(err, errlen, "wants PORT, HOST:PORT or [IPV6]:PORT, not \"%.100s\"", spec);
    return CBX_ERR_INVALID;
}

/* Stores a checked address in its normal form: a bare PORT gets the key's
 * default host (so a bare port never widens the publish port), ":PORT"
 * becomes "*:PORT". */
static enum cbx_err set_addr(const struct cbx_config_key *k, char *base, const char *value, char *err, size_t errlen)
{
    struct cbx_listen_addr a;
    char why[256], out[128];
    int n;

    if (cbx_config_addr_parse(value, &a, why, sizeof why) != CBX_OK) {
        snprintf(err, errlen, "\"%s\" %s", k->name, why);
        return CBX_ERR_INVALID;
    }
    if (a.bare)
        n = snprintf(out, sizeof out, "%.*s:%s", (int)(strrchr(k->def, ':') - k->def), k->def, value);
    else
        n = snprintf(out, sizeof out, "%s%s", value[0] == ':' ? "*" : "", value);
    if (n < 0 || (size_t)n >= sizeof out || (size_t)n >= k->size) { /* a checked address is far shorter */
        snprintf(err, errlen, "value of \"%s\" is too long", k->name);
        return CBX_ERR_INVALID;
    }
    memcpy(base, out, (size_t)n + 1);
    return CBX_OK;
}

/* `"threads" must be pool or per-connection, not "x"`: the choices, so
 * nobody has to look them up. */
static void enum_error(const struct cbx_config_key *k, const char *value, char *err, size_t errlen)
{
    int n = snprintf(err, errlen, "\"%s\" must be ", k->name);

    for (int i = 0; k->names[i] != NULL && n >= 0 && (size_t)n < errlen; i++) {
        const char *sep = i == 0 ? "" : k->names[i + 1] == NULL ? " or " : ", ";
        n += snprintf(err + n, errlen - (size_t)n, "%s%s", sep, k->names[i]);
    }
    if (n >= 0 && (size_t)n < errlen)
        snprintf(err + n, errlen - (size_t)n, ", not \"%.100s\"", value);
}

static enum cbx_err set_key(struct cbx_config *cfg, const struct cbx_config_key *k, const char *value,
                            char *err, size_t errlen)
{
    static const long long size_mults[] = { 1024LL, 1024LL << 10, 1024LL << 20 };
    static const long long secs_mults[] = { 1, 60, 3600 };
    char *base = (char *)cfg + k->offset;
    long long v;

    switch (k->type) {
    case KT_STR:
    case KT_SECRET:
        if (strlen(value) >= k->size) {
            snprintf(err, errlen, "value of \"%s\" is longer than %zu bytes", k->name, k->size - 1);
            return CBX_ERR_INVALID;
        }
        strcpy(base, value);
        return CBX_OK;
    case KT_ADDR:
        return set_addr(k, base, value, err, errlen);
    case KT_BOOL:
        if (!strcmp(value, "on") || !strcmp(value, "yes") || !strcmp(value, "true") || !strcmp(value, "1"))
            *(bool *)base = true;
        else if (!strcmp(value, "off") || !strcmp(value, "no") || !strcmp(value, "false") || !strcmp(value, "0"))
            *(bool *)base = false;
        else {
            snprintf(err, errlen, "\"%s\" wants on or off, not \"%s\"", k->name, value);
            return CBX_ERR_INVALID;
        }
        return CBX_OK;
    case KT_ENUM:
        for (int i = 0; k->names[i] != NULL; i++) {
            if (strcmp(k->names[i], value) == 0) {
                *(int *)base = i;
                return CBX_OK;
            }
        }
        enum_error(k, value, err, errlen);
        return CBX_ERR_INVALID;
    case KT_MODE: {
        char *end;
        errno = 0;
        long m = strtol(value, &end, 8);
        if (*value == '\0' || *end != '\0' || errno != 0 || m < k->min || m > k->max) {
            snprintf(err, errlen, "\"%s\" wants an octal mode such as 0660, not \"%s\"", k->name, value);
            return CBX_ERR_INVALID;
        }
        *(long *)base = m;
        return CBX_OK;
    }
    case KT_INT:
    case KT_SIZE:
    case KT_SECS: {
        bool ok;
        if (k->type == KT_SIZE)
            ok = parse_number(value, &v, "kmg", size_mults);
        else if (k->type == KT_SECS)
            ok = parse_number(value, &v, "smh", secs_mults);
        else
            ok = parse_number(value, &v, "", NULL);
        if (!ok) {
            snprintf(err, errlen, "\"%s\" wants %s, not \"%s\"", k->name,
                     k->type == KT_SIZE ? "a size such as 64k or 1m"
                     : k->type == KT_SECS ? "seconds such as 25, 5m or 1h" : "a whole number",
                     value);
            return CBX_ERR_INVALID;
        }
        if (v < k->min || v > k->max) {
            snprintf(err, errlen, "\"%s\" must be from %lld to %lld, not %s", k->name, k->min, k->max, value);
            return CBX_ERR_INVALID;
        }
        if (k->type == KT_SIZE)
            *(size_t *)base = (size_t)v;
        else
            *(long *)base = (long)v;
        return CBX_OK;
    }
    }
    return CBX_ERR_INVALID;
}

void cbx_config_defaults(struct cbx_config *cfg)
{
    char err[256];

    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NKEYS; i++)
        if (set_key(cfg, &cbx_config_keys[i], cbx_config_keys[i].def, err, sizeof err) != CBX_OK)
            abort(); /* a default that does not parse is a bug in this table */
}

enum cbx_err cbx_config_set(struct cbx_config *cfg, const char *key, const char *value,
                            char *err, size_t errlen)
{
    const struct cbx_config_key *k = find_key(key);

    if (k == NULL) {
        const char *near = cbx_config_nearest_key(key);
        if (near != NULL)
            snprintf(err, errlen, "unknown key \"%.100s\" (did you mean \"%s\"?)", key, near);
        else
            snprintf(err, errlen, "unknown key \"%.100s\"", key);
        return CBX_ERR_NOT_FOUND;
    }
    return set_key(cfg, k, value, err, errlen);
}

static char *trim(char *s)
{
    char *e;

    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

enum cbx_err cbx_config_parse_line(struct cbx_config *cfg, const char *line, int line_no,
                                   char *err, size_t errlen)
{
    char buf[2048], why[512];
    char *s, *eq, *key, *value;
    enum cbx_err rc;

    if (strlen(line) >= sizeof buf) {
        snprintf(err, errlen, "line %d: line too long", line_no);
        return CBX_ERR_INVALID;
    }
    strcpy(buf, line);
    s = trim(buf);
    if (*s == '\0' || *s == '#')
        return CBX_OK;
    eq = strchr(s, '=');
    if (eq == NULL) {
        snprintf(err, errlen, "line %d: expected \"key = value\"", line_no);
        return CBX_ERR_INVALID;
    }
    *eq = '\0';
    key = trim(s);
    value = trim(eq + 1);
    /* a value may be quoted to keep spaces at its ends or to be empty */
    size_t vlen = strlen(value);
    if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
        value[vlen - 1] = '\0';
        value++;
    }
    rc = cbx_config_set(cfg, key, value, why, sizeof why);
    if (rc != CBX_OK)
        snprintf(err, errlen, "line %d: %s", line_no, why);
    return rc;
}

enum cbx_err cbx_config_load(struct cbx_config *cfg, const char *path, char *err, size_t errlen)
{
    char line[2048], why[600];
    int line_no = 0;
    enum cbx_err rc = CBX_OK;
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return CBX_ERR_IO;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        line_no++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            snprintf(err, errlen, "%s line %d: line too long", path, line_no);
            rc = CBX_ERR_INVALID;
            break;
        }
        rc = cbx_config_parse_line(cfg, line, line_no, why, sizeof why);
        if (rc != CBX_OK) {
            snprintf(err, errlen, "%s %s", path, why);
            break;
        }
    }
    fclose(f);
    return rc;
}

enum cbx_err cbx_config_check(const struct cbx_config *cfg, char *err, size_t errlen)
{
    /* a stream must hear a heartbeat before idle-timeout closes it */
    if (cfg->idle_timeout <= cfg->heartbeat) {
        snprintf(err, errlen, "idle-timeout (%ld) must be longer than heartbeat (%ld)", cfg->idle_timeout,
                 cfg->heartbeat);
        return CBX_ERR_INVALID;
    }
    /* the default hold must be one a client could ask for */
    if (cfg->hold_timeout > cfg->hold_timeout_max) {
        snprintf(err, errlen, "hold-timeout (%ld) must not be more than hold-timeout-max (%ld)", cfg->hold_timeout,
                 cfg->hold_timeout_max);
        return CBX_ERR_INVALID;
    }
    if (cfg->subscribe_auth == CBX_AUTH_TOKEN && strlen(cfg->subscribe_secret) < 16) {
        snprintf(err, errlen, "subscribe-auth = token needs a subscribe-secret of at least 16 bytes");
        return CBX_ERR_INVALID;
    }
    /* one store of messages: Redis, or this node's journal */
    if (cfg->broker == CBX_BROKER_REDIS && cfg->state_dir[0] != '\0') {
        snprintf(err, errlen, "state-dir is for broker = memory; with broker = redis the messages live in Redis "
                              "(unset state-dir)");
        return CBX_ERR_INVALID;
    }
    return CBX_OK;
}

void cbx_config_print_help(FILE *out)
{
    static const char *const marks[] = { [KR_RESTART] = "; needs a restart", [KR_RELOAD] = "",
                                         [KR_LOWER] = "; above its value at start needs a restart" };

    for (size_t i = 0; i < NKEYS; i++)
        fprintf(out, "  --%-24s %s (default: %s%s)\n", cbx_config_keys[i].name, cbx_config_keys[i].help,
                cbx_config_keys[i].def[0] ? cbx_config_keys[i].def : "\"\"", marks[cbx_config_keys[i].reload]);
}

void cbx_config_key_format(const struct cbx_config *cfg, const struct cbx_config_key *k, char *out, size_t len)
{
    const char *base = (const char *)cfg + k->offset;

    switch (k->type) {
    case KT_STR:
    case KT_SECRET:
    case KT_ADDR:
        snprintf(out, len, "%s", base);
        break;
    case KT_BOOL:
        snprintf(out, len, "%s", *(const bool *)base ? "on" : "off");
        break;
    case KT_ENUM:
        snprintf(out, len, "%s", k->names[*(const int *)base]);
        break;
    case KT_MODE:
        snprintf(out, len, "%04lo", (unsigned long)*(const long *)base);
        break;
    case KT_SIZE: {
        size_t v = *(const size_t *)base;
        if (v != 0 && v % (1024 * 1024) == 0)
            snprintf(out, len, "%zum", v / (1024 * 1024));
        else if (v != 0 && v % 1024 == 0)
            snprintf(out, len, "%zuk", v / 1024);
        else
            snprintf(out, len, "%zu", v);
        break;
    }
    case KT_INT:
    case KT_SECS:
        snprintf(out, len, "%ld", *(const long *)base);
        break;
    }
}

void cbx_config_write(const struct cbx_config *cfg, FILE *out)
{
    char value[sizeof cfg->cors_origins]; /* the longest value */

    for (size_t i = 0; i < NKEYS; i++) {
        const struct cbx_config_key *k = &cbx_config_keys[i];

        cbx_config_key_format(cfg, k, value, sizeof value);
        fprintf(out, value[0] ? "# %s\n%s = %s\n\n" : "# %s\n%s = \"%s\"\n\n", k->help, k->name, value);
    }
}
