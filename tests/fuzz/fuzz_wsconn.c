/* fuzz_wsconn.c - libFuzzer target: a WebSocket client's bytes (frames,
 * fragments, control frames, broken headers) into one server-side
 * connection (common/wsconn.c over wslay), read in chunks whose sizes the
 * input's first byte chooses, with our answers written to nowhere. It must
 * never crash, leak, or take an acknowledgement from a bad frame. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/wsconn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct feed {
    const uint8_t *p;
    size_t left, chunk;
};

static ssize_t f_recv(void *ctx, uint8_t *buf, size_t len)
{
    struct feed *f = ctx;
    size_t n = f->left < len ? f->left : len;

    if (n > f->chunk)
        n = f->chunk;
    memcpy(buf, f->p, n);
    f->p += n;
    f->left -= n;
    return (ssize_t)n;
}

static ssize_t f_send(void *ctx, const uint8_t *buf, size_t len)
{
    (void)ctx, (void)buf;
    return (ssize_t)len;
}

static void f_ack(void *ctx, uint64_t id)
{
    (void)ctx;
    if (id >= 9007199254740992ULL)
        abort(); /* cbx_ws_parse_ack() lets no bigger id through */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct feed f;
    struct cbx_wsconn_io io = { &f, f_recv, f_send, f_ack, NULL };
    struct cbx_wsconn *c;

    if (size < 1)
        return 0;
    f = (struct feed){ data + 1, size - 1, (size_t)data[0] % 32 + 1 };
    if ((c = cbx_wsconn_new(&io, 256)) == NULL)
        return 0;
    cbx_wsconn_text(c, "[{\"type\":\"cursor\",\"id\":1}]\n", 27);
    for (int turns = 0; turns < 1000 && !cbx_wsconn_done(c); turns++) {
        size_t before = f.left;
        if (cbx_wsconn_read(c) != 0 || cbx_wsconn_write(c) != 0)
            break;
        if (f.left == before && f.left == 0)
            break; /* all read; what is left waits for bytes that never come */
    }
    cbx_wsconn_free(c);
    return 0;
}
