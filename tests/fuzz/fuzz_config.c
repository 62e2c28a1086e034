/* fuzz_config.c - libFuzzer target: config file lines (the values they set, the
 * listen addresses, the nearest-key search for unknown keys), the cross-key rules,
 * and a reload's comparison of what they make with the defaults. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cbx_config cfg, defaults;
    char *s = malloc(size + 1), *line, *save = NULL, err[700];
    int n = 0;

    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    cbx_config_defaults(&cfg);
    for (line = strtok_r(s, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
        cbx_config_parse_line(&cfg, line, ++n, err, sizeof err);
    cbx_config_check(&cfg, err, sizeof err);
    cbx_config_defaults(&defaults);
    cbx_config_merge(&cfg, &defaults, &defaults, NULL, NULL);
    if (!cbx_config_equal(&cfg, &cfg))
        abort();
    free(s);
    return 0;
}
