/* config.h - cometboxd's settings: one table of keys with types, ranges,
 * defaults and help, read from `key = value` files and `--key value` options.
 * Not for parsing the command line itself (cometboxd/main.c does that). */
#ifndef CBX_CONFIG_H
#define CBX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "err.h"

enum cbx_threads_mode { CBX_THREADS_POOL, CBX_THREADS_PER_CONNECTION };
enum cbx_subscribe_auth { CBX_AUTH_NONE, CBX_AUTH_TOKEN };
enum cbx_journal_sync { CBX_SYNC_ALWAYS, CBX_SYNC_BATCH, CBX_SYNC_NONE };
enum cbx_broker_kind { CBX_BROKER_MEMORY, CBX_BROKER_REDIS };

struct cbx_config {
    char listen[256];
    char publish_listen[256];
    char admin_socket[256];
    long admin_socket_mode;
    int threads;               /* enum cbx_threads_mode */
    long pool_size;            /* 0 = number of cores */
    size_t thread_stack;
    long max_connections;
    long publish_max_connections;
    size_t connection_memory;
    long hold_timeout;
    long hold_timeout_max;
    long heartbeat;
    size_t stream_max_bytes;
    long stream_max_age;
    long retain_acked;
    long message_ttl;
    long queue_max_messages;
    size_t queue_max_bytes;
    long max_queues;
    long max_batch;
    size_t max_publish_bytes;
    size_t max_message_bytes;
    size_t max_ws_frame;
    char cors_origins[1024];
    char publish_secret[256];
    int subscribe_auth;        /* enum cbx_subscribe_auth */
    char subscribe_secret[256];
    long max_connections_per_ip;
    long max_waiters_per_queue;
    long max_queues_per_request;
    size_t max_total_bytes;
    long max_total_messages;
    long idle_timeout;
    long request_timeout;
    char state_dir[256];       /* "" = memory only */
    int journal_sync;          /* enum cbx_journal_sync */
    size_t journal_compact_size;
    int broker;                /* enum cbx_broker_kind */
    char redis_url[512];
    char redis_prefix[64];
    long redis_timeout;        /* seconds */
    int log_level;             /* enum cbx_log_level */
    bool demo;
};

/* Fills cfg with every key's default. */
void cbx_config_defaults(struct cbx_config *cfg);

/* Sets one key from its text form. On error returns CBX_ERR_NOT_FOUND (unknown
 * key) or CBX_ERR_INVALID and writes the reason to err (size errlen). */
enum cbx_err cbx_config_set(struct cbx_config *cfg, const char *key, const char *value,
                            char *err, size_t errlen);

/* Reads a `key = value` file (`#` comments, blank lines). On error writes
 * `PATH line N: ...` to err and returns the error; keys before it stay set. */
enum cbx_err cbx_config_load(struct cbx_config *cfg, const char *path, char *err, size_t errlen);

/* Parses one line of a config file; line_no only labels errors. */
enum cbx_err cbx_config_parse_line(struct cbx_config *cfg, const char *line, int line_no,
                                   char *err, size_t errlen);

/* Writes `--key VALUE  help (default: X)` for every key. */
void cbx_config_print_help(FILE *out);

/* Writes the value of every key as `key = value` lines (a sample config). */
void cbx_config_write(const struct cbx_config *cfg, FILE *out);

/* True when name is a known key. */
bool cbx_config_has_key(const char *name);

/* The known key nearest to name, for "did you mean": a close typo (at most
 * 2 edits, at most one per 3 characters; a swap of neighbours is one), or
 * NULL. Points into the key table: static, never freed. */
const char *cbx_config_nearest_key(const char *name);

/* The rules between keys, checked once every key is set (file, then
 * options): idle-timeout longer than heartbeat, hold-timeout at most
 * hold-timeout-max, a subscribe-secret of 16 bytes for subscribe-auth =
 * token. CBX_OK, or CBX_ERR_INVALID with the broken rule in err. */
enum cbx_err cbx_config_check(const struct cbx_config *cfg, char *err, size_t errlen);

/* ---- reloads (config_reload.c) ----
 * Each key is reloadable (a reload applies the file's value), restart-only
 * (a reload keeps the value at start) or, for max-connections, reloadable
 * up to its value at start; --help says which. */

/* One key whose value a reload finds changed. Texts are as in a config
 * file ("" for an empty string); a secret's non-empty value is "(hidden)". */
struct cbx_config_change {
    const char *key;      /* the key table's name: static */
    bool restart;         /* needs a restart: the running value is kept */
    const char *old_text; /* the value in force (kept when restart) */
    const char *new_text; /* the value the file (and options) ask for */
    const char *max_text; /* restart because a key that may only be lowered went above its value at start:
                             that value; else NULL */
};
/* Called once per changed key, in table order; the texts are valid during the call only. */
typedef void (*cbx_config_change_fn)(void *arg, const struct cbx_config_change *ch);

/* For a reload: compares next (just read: defaults, files, options) with
 * cur (in force), key by key. A key that needs a restart takes cur's value
 * back into next, so next becomes the config to apply; start is the
 * config at start, for the keys that may only be lowered. Calls fn (may be
 * NULL) for each key that differs, and returns how many of them next
 * applies (restart-only ones not counted). */
size_t cbx_config_merge(struct cbx_config *next, const struct cbx_config *cur, const struct cbx_config *start,
                        cbx_config_change_fn fn, void *arg);

/* True when every key has the same value in a and b. */
bool cbx_config_equal(const struct cbx_config *a, const struct cbx_config *b);

/* A listen address (listen, publish-listen): PORT, HOST:PORT, *:PORT or
 * [IPV6]:PORT, HOST a numeric IPv4 address or localhost, IPV6 numeric with
 * an optional %scope, PORT 0-65535. */
struct cbx_listen_addr {
    char host[80];  /* without brackets; "" for every address (* or a bare PORT's default) */
    unsigned port;
    bool wildcard;  /* written * or empty */
    bool bare;      /* written as PORT alone (the config stores it with the key's default host) */
};

/* Splits and checks spec. On error writes what is wrong (without the key's
 * name, e.g. `port must be a number from 0 to 65535, not "70000"`). */
enum cbx_err cbx_config_addr_parse(const char *spec, struct cbx_listen_addr *out, char *err, size_t errlen);

#endif
