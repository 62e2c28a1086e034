/* buf.c - growable byte buffer. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"

void cbx_buf_init(struct cbx_buf *b)
{
    b->s = NULL;
    b->len = b->cap = 0;
    b->ok = true;
}

void cbx_buf_free(struct cbx_buf *b)
{
    free(b->s);
    cbx_buf_init(b);
}

void cbx_buf_reset(struct cbx_buf *b)
{
    b->len = 0;
    b->ok = true;
    if (b->s != NULL)
        b->s[0] = '\0';
}

bool cbx_buf_reserve(struct cbx_buf *b, size_t more)
{
    size_t cap;
    char *s;

    if (!b->ok)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    s = realloc(b->s, cap);
    if (s == NULL) {
        b->ok = false;
        return false;
    }
    b->s = s;
    b->cap = cap;
    return true;
}

void cbx_buf_add(struct cbx_buf *b, const void *data, size_t len)
{
    if (!cbx_buf_reserve(b, len))
        return;
    memcpy(b->s + b->len, data, len);
    b->len += len;
    b->s[b->len] = '\0';
}

void cbx_buf_adds(struct cbx_buf *b, const char *s) { cbx_buf_add(b, s, strlen(s)); }

void cbx_buf_addf(struct cbx_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !cbx_buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void cbx_buf_add_u64(struct cbx_buf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    cbx_buf_add(b, tmp, (size_t)n);
}

void cbx_buf_add_json_string(struct cbx_buf *b, const char *s, size_t len)
{
    if (!cbx_buf_reserve(b, cbx_json_string_max(len)))
        return;
    b->len += cbx_json_string_write(b->s + b->len, s, len);
    b->s[b->len] = '\0';
}
