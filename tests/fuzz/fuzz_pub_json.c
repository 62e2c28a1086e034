/* fuzz_pub_json.c - libFuzzer target: the JSON publish parser. */
#include <stdint.h>
#include <stdlib.h>

#include "../../common/pub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cbx_pub_limits lim = { 4096 };
    struct cbx_pub_batch b = { 0 };
    char detail[512];

    if (cbx_pub_parse_json((const char *)data, size, &lim, &b, detail, sizeof detail) == CBX_OK)
        cbx_pub_batch_free(&b);
    return 0;
}
