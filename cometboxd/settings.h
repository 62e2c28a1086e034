/* settings.h - the config in force: the one read at start, and each
 * reload of it (SIGHUP, the admin command `reload`). Who may read what,
 * and when a new value is seen: docs/THREADS.md, "The config in force".
 * Not for the keys and their parsing (common/config.h) nor for the
 * command line itself (main.c). */
#ifndef CBXD_SETTINGS_H
#define CBXD_SETTINGS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "../common/config.h"
#include "../common/err.h"
#include "../common/qmap.h"
#include "server.h"

/* One --KEY VALUE option as the command line gave it: arg is "--KEY" or
 * "--KEY=VALUE", value its value. Both borrowed from argv. */
struct cbx_settings_opt {
    const char *arg;
    const char *value;
};

/* Where the config comes from: the -c files, then the options (which
 * override them), each in command-line order. The arrays are owned
 * (free()), their strings borrowed from argv. */
struct cbx_settings_source {
    const char **files;
    size_t nfiles;
    struct cbx_settings_opt *opts;
    size_t nopts;
};

/* Reads defaults, then every file, then every option into cfg; does not
 * check the rules between keys (cbx_config_check). On error writes
 * "config PATH line N: ..." (or "config PATH: No such file ...") or
 * "option ..." to err and returns the error. */
enum cbx_err cbx_settings_read(const struct cbx_settings_source *src, struct cbx_config *cfg, char *err,
                               size_t errlen);

/* Makes s->cfg (already read and checked) the config in force, applies its
 * log-level, and keeps src (taken over) for reloads. 0, or -1 when out of
 * memory. Call before any thread reads the config. */
int cbx_settings_init(struct cbx_server *s, struct cbx_settings_source *src);

/* Frees the copies reloads made and the source; at exit, once no other
 * thread runs. */
void cbx_settings_destroy(struct cbx_server *s);

/* The config in force: immutable, valid until exit. Load it once per
 * request (a held request keeps the one it started with) and read the
 * reloadable keys from it. Any thread, no lock. */
static inline const struct cbx_config *cbx_settings_get(struct cbx_server *s)
{
    return atomic_load_explicit(&s->live, memory_order_acquire);
}

/* The config at start: what libmicrohttpd, the sockets and the threads
 * were made with. */
static inline const struct cbx_config *cbx_settings_started(const struct cbx_server *s)
{
    return &s->cfg;
}

/* The queue map's limits under cfg. */
void cbx_settings_qmap_limits(const struct cbx_config *cfg, struct cbx_qmap_limits *out);

/* One key a reload found changed (struct cbx_config_change, with owned copies). */
struct cbx_reload_item {
    const char *key;  /* static */
    bool restart;     /* needs a restart: kept its running value */
    char *old_text, *new_text; /* owned */
    char *max_text;   /* owned, or NULL: see struct cbx_config_change */
};

/* What a reload did. */
struct cbx_reload_report {
    const char *const *files;     /* the -c files read, borrowed (valid until exit) */
    size_t nfiles;
    struct cbx_reload_item *items; /* owned: every changed key, in table order */
    size_t nitems;
    size_t applied;               /* items applied (the others need a restart) */
    char error[900];              /* why it was refused, when it was */
};

/* Reads the config again from where it came at start (cbx_settings_read),
 * checks it (cbx_config_check, on the files as read and on what would run
 * once the restart-only keys keep their values) and, when it is good,
 * makes it the config in force: new requests see it; the queue map's
 * limits and the log level follow at once. A bad config changes nothing
 * (CBX_ERR_INVALID or CBX_ERR_IO, r->error says why). Logs what it did,
 * each line starting with who ("SIGHUP", "admin (uid 0 pid 42)"). Any
 * thread; reloads are serialized. Free r with cbx_reload_report_free(). */
enum cbx_err cbx_settings_reload(struct cbx_server *s, const char *who, struct cbx_reload_report *r);
void cbx_reload_report_free(struct cbx_reload_report *r);

#endif
