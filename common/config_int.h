/* config_int.h - the key table as config.c and config_reload.c see it.
 * Private to those two files: everything else uses config.h. */
#ifndef CBX_CONFIG_INT_H
#define CBX_CONFIG_INT_H

#include <stddef.h>

#include "config.h"

enum key_type { KT_STR, KT_SECRET, KT_ADDR, KT_INT, KT_SIZE, KT_SECS, KT_BOOL, KT_ENUM, KT_MODE };

/* What a reload does with a key (docs/THREADS.md, "The config in force"). */
enum key_reload {
    KR_RESTART, /* keeps its value at start: libmicrohttpd, the sockets or the threads were made with it */
    KR_RELOAD,  /* takes the file's value */
    KR_LOWER,   /* takes the file's value up to its value at start (libmicrohttpd's own cap); above, needs a restart */
};

struct cbx_config_key {
    const char *name;
    enum key_type type;       /* KT_SECRET: a KT_STR never shown in a reload's report */
    size_t offset;
    size_t size;              /* KT_STR, KT_SECRET, KT_ADDR: buffer size */
    long long min, max;       /* numeric range */
    const char *const *names; /* KT_ENUM: value names, index = value */
    const char *def;
    const char *help;
    enum key_reload reload;
};

/* Every key, in the order of --help and the sample config. */
extern const struct cbx_config_key cbx_config_keys[];
extern const size_t cbx_config_nkeys;

/* Writes k's value in cfg as a config file has it, without quotes (an
 * empty string is ""): "1m", "0600", "on", "pool". */
void cbx_config_key_format(const struct cbx_config *cfg, const struct cbx_config_key *k, char *out, size_t len);

#endif
