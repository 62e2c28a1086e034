/* settings.c - the config in force and its reloads. A reload reads the
 * files and options again, keeps the restart-only keys, and publishes an
 * immutable copy through one atomic pointer (release; readers acquire).
 * Copies are never freed before exit, so a reader needs no lock and no
 * reference count: a held request may keep its copy for its whole life.
 * Identical configs share one copy, so the memory kept is one copy per
 * distinct config ever in force. Not for the keys (common/config.c). */
#include "settings.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"

struct cbx_settings {
    pthread_mutex_t mu;               /* serializes reloads (and their log lines); guards copies, ncopies;
                                         taken alone, except the map lock under it (cbx_qmap_set_limits) */
    struct cbx_settings_source src;   /* owned arrays; strings borrowed from argv */
    const struct cbx_config **copies; /* owned: each config a reload put in force, until exit */
    size_t ncopies;
};

enum cbx_err cbx_settings_read(const struct cbx_settings_source *src, struct cbx_config *cfg, char *err,
                               size_t errlen)
{
    char why[700];
    enum cbx_err rc;

    cbx_config_defaults(cfg);
    for (size_t i = 0; i < src->nfiles; i++) {
        if ((rc = cbx_config_load(cfg, src->files[i], why, sizeof why)) != CBX_OK) {
            snprintf(err, errlen, "config %s", why);
            return rc;
        }
    }
    for (size_t i = 0; i < src->nopts; i++) {
        const char *arg = src->opts[i].arg + 2, *eq = strchr(arg, '=');
        char key[64];
        size_t klen = eq != NULL ? (size_t)(eq - arg) : strlen(arg);

        if (klen >= sizeof key) {
            snprintf(err, errlen, "option \"%.100s\" is too long", arg);
            return CBX_ERR_INVALID;
        }
        memcpy(key, arg, klen);
        key[klen] = '\0';
        if ((rc = cbx_config_set(cfg, key, src->opts[i].value, why, sizeof why)) != CBX_OK) {
            snprintf(err, errlen, "option %s", why);
            return rc;
        }
    }
    return CBX_OK;
}

int cbx_settings_init(struct cbx_server *s, struct cbx_settings_source *src)
{
    struct cbx_settings *st = calloc(1, sizeof *st);

    if (st == NULL)
        return -1;
    pthread_mutex_init(&st->mu, NULL);
    st->src = *src;
    memset(src, 0, sizeof *src);
    s->settings = st;
    atomic_init(&s->live, &s->cfg);
    cbx_log_set_level((enum cbx_log_level)s->cfg.log_level);
    return 0;
}

void cbx_settings_destroy(struct cbx_server *s)
{
    struct cbx_settings *st = s->settings;

    if (st == NULL)
        return;
    for (size_t i = 0; i < st->ncopies; i++)
        free((void *)st->copies[i]);
    free(st->copies);
    free(st->src.files);
    free(st->src.opts);
    pthread_mutex_destroy(&st->mu);
    free(st);
    s->settings = NULL;
}

void cbx_settings_qmap_limits(const struct cbx_config *cfg, struct cbx_qmap_limits *out)
{
    *out = (struct cbx_qmap_limits){
        .queue_max_messages = (size_t)cfg->queue_max_messages,
        .queue_max_bytes = cfg->queue_max_bytes,
        .max_queues = (size_t)cfg->max_queues,
        .max_waiters_per_queue = (size_t)cfg->max_waiters_per_queue,
        .max_total_bytes = cfg->max_total_bytes,
        .max_total_messages = (size_t)cfg->max_total_messages,
        .retain_acked_us = (int64_t)cfg->retain_acked * 1000000,
        .message_ttl_us = (int64_t)cfg->message_ttl * 1000000,
    };
}

void cbx_reload_report_free(struct cbx_reload_report *r)
{
    for (size_t i = 0; i < r->nitems; i++) {
        free(r->items[i].old_text);
        free(r->items[i].new_text);
        free(r->items[i].max_text);
    }
    free(r->items);
    r->items = NULL;
    r->nitems = 0;
}

/* cbx_config_merge's callback: keeps a copy of each change in the report. */
static void note_change(void *arg, const struct cbx_config_change *ch)
{
    struct cbx_reload_report *r = arg;
    struct cbx_reload_item *items = realloc(r->items, (r->nitems + 1) * sizeof *items), *it;

    if (items == NULL)
        goto nomem;
    r->items = items;
    it = &items[r->nitems];
    *it = (struct cbx_reload_item){ ch->key, ch->restart, strdup(ch->old_text), strdup(ch->new_text),
                                    ch->max_text ? strdup(ch->max_text) : NULL };
    r->nitems++;
    if (it->old_text == NULL || it->new_text == NULL || (ch->max_text != NULL && it->max_text == NULL))
        goto nomem;
    if (!ch->restart)
        r->applied++;
    return;
nomem:
    if (r->error[0] == '\0')
        snprintf(r->error, sizeof r->error, "out of memory");
}

/* The copy to put in force for next: the config at start or one made
 * before when identical, else a new one. NULL when out of memory. Under st->mu. */
static const struct cbx_config *keep_copy(struct cbx_server *s, struct cbx_settings *st,
                                          const struct cbx_config *next)
{
    const struct cbx_config **copies;
    struct cbx_config *c;

    if (cbx_config_equal(&s->cfg, next))
        return &s->cfg;
    for (size_t i = 0; i < st->ncopies; i++)
        if (cbx_config_equal(st->copies[i], next))
            return st->copies[i];
    copies = realloc(st->copies, (st->ncopies + 1) * sizeof *copies);
    if (copies == NULL)
        return NULL;
    st->copies = copies;
    if ((c = malloc(sizeof *c)) == NULL)
        return NULL;
    *c = *next;
    st->copies[st->ncopies++] = c;
    return c;
}

/* "a.conf, b.conf" into out. */
static void file_list(const struct cbx_reload_report *r, char *out, size_t len)
{
    size_t n = 0;

    out[0] = '\0';
    for (size_t i = 0; i < r->nfiles && n < len; i++)
        n += (size_t)snprintf(out + n, len - n, "%s%s", i > 0 ? ", " : "", r->files[i]);
}

static const char *shown(const char *text)
{
    return text[0] != '\0' ? text : "\"\"";
}

static void log_report(const char *who, const struct cbx_reload_report *r)
{
    char files[512];
    size_t restart = r->nitems - r->applied;

    for (size_t i = 0; i < r->nitems; i++) {
        const struct cbx_reload_item *it = &r->items[i];
        if (!it->restart)
            cbx_log(CBX_LOG_INFO, "%s: reload: %s: %s -> %s", who, it->key, shown(it->old_text), shown(it->new_text));
    }
    for (size_t i = 0; i < r->nitems; i++) {
        const struct cbx_reload_item *it = &r->items[i];
        if (!it->restart)
            continue;
        if (it->max_text == NULL)
            cbx_log(CBX_LOG_WARN, "%s: reload: %s changed in the file but needs a restart; keeping %s", who, it->key,
                    shown(it->old_text));
        else
            cbx_log(CBX_LOG_WARN,
                    "%s: reload: %s changed in the file, but above %s (its value at start) it needs a restart; "
                    "keeping %s", who, it->key, it->max_text, shown(it->old_text));
    }
    if (r->nfiles == 0) {
        cbx_log(CBX_LOG_INFO, "%s: reloaded: no config file (cometboxd was started without -c): nothing changed", who);
        return;
    }
    file_list(r, files, sizeof files);
    if (r->nitems == 0)
        cbx_log(CBX_LOG_INFO, "%s: reloaded %s: nothing changed", who, files);
    else
        cbx_log(CBX_LOG_INFO, "%s: reloaded %s: %zu key%s changed, %zu need%s a restart", who, files, r->applied,
                r->applied == 1 ? "" : "s", restart, restart == 1 ? "s" : "");
}

enum cbx_err cbx_settings_reload(struct cbx_server *s, const char *who, struct cbx_reload_report *r)
{
    struct cbx_settings *st = s->settings;
    struct cbx_config *next = malloc(sizeof *next);
    const struct cbx_config *cur, *put = NULL;
    struct cbx_qmap_limits lim;
    char why[sizeof r->error - 64], rule[300];
    enum cbx_err rc = CBX_OK;

    memset(r, 0, sizeof *r);
    r->files = st->src.files;
    r->nfiles = st->src.nfiles;
    if (next == NULL) {
        snprintf(r->error, sizeof r->error, "out of memory; the running config is unchanged");
        cbx_log(CBX_LOG_ERROR, "%s: reload refused: %s", who, r->error);
        return CBX_ERR_NOMEM;
    }
    pthread_mutex_lock(&st->mu);
    cur = atomic_load_explicit(&s->live, memory_order_relaxed); /* only reloads write it, under mu */
    if ((rc = cbx_settings_read(&st->src, next, why, sizeof why)) != CBX_OK ||
        (rc = cbx_config_check(next, why, sizeof why)) != CBX_OK)
        goto refused;
    cbx_config_merge(next, cur, &s->cfg, note_change, r);
    if (r->error[0] != '\0') { /* note_change ran out of memory */
        rc = CBX_ERR_NOMEM;
        snprintf(why, sizeof why, "out of memory");
        goto refused;
    }
    /* the files passed alone; with the restart-only keys at their running values they must too */
    if ((rc = cbx_config_check(next, rule, sizeof rule)) != CBX_OK) {
        snprintf(why, sizeof why, "with the keys that need a restart at their running values: %s", rule);
        goto refused;
    }
    if (r->applied > 0) {
        if ((put = keep_copy(s, st, next)) == NULL) {
            rc = CBX_ERR_NOMEM;
            snprintf(why, sizeof why, "out of memory");
            goto refused;
        }
        atomic_store_explicit(&s->live, put, memory_order_release);
        cbx_settings_qmap_limits(put, &lim);
        cbx_qmap_set_limits(s->qmap, &lim);
        cbx_log_set_level((enum cbx_log_level)put->log_level);
    }
    log_report(who, r); /* under mu, so two reloads' reports never mix */
    pthread_mutex_unlock(&st->mu);
    free(next);
    return CBX_OK;
refused:
    cbx_reload_report_free(r);
    r->applied = 0;
    snprintf(r->error, sizeof r->error, "%s; the running config is unchanged", why);
    cbx_log(CBX_LOG_ERROR, "%s: reload refused: %s", who, r->error);
    pthread_mutex_unlock(&st->mu);
    free(next);
    return rc == CBX_ERR_NOMEM || rc == CBX_ERR_IO ? rc : CBX_ERR_INVALID;
}
