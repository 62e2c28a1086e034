/* qname.c - queue name rules (docs/PROTOCOL.md, "Queues and ids"). */
#include "qname.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool cbx_qname_valid(const char *s, size_t len)
{
    if (len == 0 || len > CBX_QNAME_MAX)
        return false;
    /* "." and ".." would be rewritten away by proxies that normalize paths */
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '@' || c == '-'))
            return false;
    }
    return true;
}

void cbx_qlist_free(struct cbx_qlist *l)
{
    free(l->buf);
    l->buf = NULL;
    l->n = 0;
}

enum cbx_err cbx_qlist_parse(const char *s, struct cbx_qlist *out, char *err, size_t errlen)
{
    const char *p = s;
    char *dst;

    out->n = 0;
    out->buf = dst = malloc(strlen(s) + 1);
    if (dst == NULL) {
        snprintf(err, errlen, "out of memory");
        return CBX_ERR_NOMEM;
    }
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);

        if (out->n == CBX_QLIST_MAX) {
            snprintf(err, errlen, "more than %d queues", CBX_QLIST_MAX);
            goto fail;
        }
        if (!cbx_qname_valid(p, len)) {
            snprintf(err, errlen, "bad queue name \"%.*s\": use 1-%d letters, digits or ._:@-",
                     (int)(len > 140 ? 140 : len), p, CBX_QNAME_MAX);
            goto fail;
        }
        for (size_t i = 0; i < out->n; i++) {
            if (strlen(out->names[i]) == len && memcmp(out->names[i], p, len) == 0) {
                snprintf(err, errlen, "queue \"%.*s\" named twice", (int)len, p);
                goto fail;
            }
        }
        memcpy(dst, p, len);
        dst[len] = '\0';
        out->names[out->n++] = dst;
        dst += len + 1;
        if (comma == NULL)
            return CBX_OK;
        p = comma + 1;
    }
fail:
    cbx_qlist_free(out);
    return CBX_ERR_INVALID;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

size_t cbx_url_unescape(char *s)
{
    char *r = s, *w = s;

    while (*r) {
        int hi, lo;
        if (r[0] == '%' && (hi = hexval(r[1])) >= 0 && (lo = hexval(r[2])) >= 0 && (hi | lo) != 0) {
            *w++ = (char)(hi * 16 + lo);
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

bool cbx_id_parse(const char *s, uint64_t *out)
{
    uint64_t v = 0;

    if (s == NULL || *s == '\0' || strlen(s) > 16)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (v > CBX_ID_MAX)
        return false;
    *out = v;
    return true;
}
