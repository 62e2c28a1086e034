/* fuzz_admin_line.c - libFuzzer target: admin socket request lines and answers. */
#include <stdint.h>
#include <stdlib.h>

#include "../../common/admin_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const allowed[] = { "queue", "queues", "reason", "client", "data", "limit", NULL };
    struct cbx_admin_request req;
    struct cbx_admin_response resp;
    struct cbx_buf out;
    char err[512];

    cbx_buf_init(&out);
    if (cbx_admin_request_parse((const char *)data, size, &req, err, sizeof err) == CBX_OK &&
        cbx_admin_args_check(&req, allowed, err, sizeof err) == CBX_OK)
        cbx_admin_reply_ok(&out, req.id, req.root);
    else
        cbx_admin_reply_error(&out, req.id, err);
    cbx_admin_request_free(&req);
    if (cbx_admin_response_parse((const char *)data, size, &resp, err, sizeof err) == CBX_OK && resp.result != NULL)
        cbx_admin_json_write(&out, resp.result);
    cbx_admin_response_free(&resp);
    cbx_buf_free(&out);
    return 0;
}
