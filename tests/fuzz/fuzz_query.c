/* fuzz_query.c - libFuzzer target: what a browser puts in a URL: %-decoding,
 * the queue list, ids, and subscriber tokens. Input: "queues\ntoken\nsince". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/qname.h"
#include "../../common/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1), *p, *parts[3];
    struct cbx_qlist l;
    char why[256];
    uint64_t id;

    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    p = s;
    parts[0] = parts[1] = parts[2] = s + size; /* the empty string at the end */
    for (int i = 0; i < 3 && p != NULL; i++) {
        parts[i] = p;
        p = strchr(p, '\n');
        if (p != NULL)
            *p++ = '\0';
    }
    cbx_url_unescape(parts[0]);
    cbx_url_unescape(parts[1]);
    cbx_id_parse(parts[2], &id);
    if (cbx_qlist_parse(parts[0], &l, why, sizeof why) == CBX_OK) {
        cbx_token_check("fuzzing-secret-0123456789", parts[1], &l, 1700000000, why, sizeof why);
        cbx_qlist_free(&l);
    }
    free(s);
    return 0;
}
