/* config_reload.c - what a config reload changes: key-by-key comparison of
 * the config just read with the one in force, keeping the restart-only
 * keys. Not for reading files (config.c) nor for applying a config
 * (cometboxd/settings.c). */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "config_int.h"

#define TEXT_MAX sizeof((struct cbx_config *)0)->cors_origins /* the longest value */

/* A value as a reload report shows it: a secret only says whether it is set. */
static void shown(const struct cbx_config *cfg, const struct cbx_config_key *k, char *out, size_t len)
{
    cbx_config_key_format(cfg, k, out, len);
    if (k->type == KT_SECRET && out[0] != '\0')
        snprintf(out, len, "(hidden)");
}

static bool same(const struct cbx_config *a, const struct cbx_config *b, const struct cbx_config_key *k)
{
    char x[TEXT_MAX], y[TEXT_MAX];

    cbx_config_key_format(a, k, x, sizeof x);
    cbx_config_key_format(b, k, y, sizeof y);
    return strcmp(x, y) == 0;
}

/* The numeric value of a KT_INT, KT_SECS or KT_SIZE key. */
static long long number(const struct cbx_config *cfg, const struct cbx_config_key *k)
{
    const char *base = (const char *)cfg + k->offset;

    return k->type == KT_SIZE ? (long long)*(const size_t *)base : (long long)*(const long *)base;
}

/* The bytes of k's field in struct cbx_config. */
static size_t value_size(const struct cbx_config_key *k)
{
    switch (k->type) {
    case KT_STR:
    case KT_SECRET:
    case KT_ADDR:
        return k->size;
    case KT_SIZE:
        return sizeof(size_t);
    case KT_BOOL:
        return sizeof(bool);
    case KT_ENUM:
        return sizeof(int);
    case KT_INT:
    case KT_SECS:
    case KT_MODE:
        break;
    }
    return sizeof(long);
}

size_t cbx_config_merge(struct cbx_config *next, const struct cbx_config *cur, const struct cbx_config *start,
                        cbx_config_change_fn fn, void *arg)
{
    char old_text[TEXT_MAX], new_text[TEXT_MAX], max_text[TEXT_MAX];
    size_t applied = 0;

    for (size_t i = 0; i < cbx_config_nkeys; i++) {
        const struct cbx_config_key *k = &cbx_config_keys[i];
        struct cbx_config_change ch = { k->name, false, old_text, new_text, NULL };

        if (same(next, cur, k))
            continue;
        shown(cur, k, old_text, sizeof old_text);
        shown(next, k, new_text, sizeof new_text);
        if (k->reload == KR_RESTART) {
            ch.restart = true;
        } else if (k->reload == KR_LOWER && number(next, k) > number(start, k)) {
            ch.restart = true;
            shown(start, k, max_text, sizeof max_text);
            ch.max_text = max_text;
        }
        if (ch.restart) /* next keeps what runs */
            memcpy((char *)next + k->offset, (const char *)cur + k->offset, value_size(k));
        else
            applied++;
        if (fn != NULL)
            fn(arg, &ch);
    }
    return applied;
}

bool cbx_config_equal(const struct cbx_config *a, const struct cbx_config *b)
{
    for (size_t i = 0; i < cbx_config_nkeys; i++)
        if (!same(a, b, &cbx_config_keys[i]))
            return false;
    return true;
}
