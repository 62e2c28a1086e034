/* msg.c - building a message's JSON encoding once, and its reference count. */
#include "msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* {"id": + digits; the digits are written right-aligned against the tail */
#define ID_PREFIX "{\"id\":"
#define ID_ROOM (sizeof ID_PREFIX - 1 + CBX_ID_DIGITS_MAX)

size_t cbx_json_string_write(char *out, const char *text, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char *p = out;

    *p++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        switch (c) {
        case '"': *p++ = '\\'; *p++ = '"'; break;
        case '\\': *p++ = '\\'; *p++ = '\\'; break;
        case '\n': *p++ = '\\'; *p++ = 'n'; break;
        case '\r': *p++ = '\\'; *p++ = 'r'; break;
        case '\t': *p++ = '\\'; *p++ = 't'; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                memcpy(p, "\\u00", 4);
                p[4] = hex[c >> 4];
                p[5] = hex[c & 15];
                p += 6;
            } else {
                *p++ = (char)c;
            }
        }
    }
    *p++ = '"';
    return (size_t)(p - out);
}

size_t cbx_utf8_char_len(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned char c;
    size_t n;
    unsigned cp;

    if (len == 0)
        return 0;
    c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) { n = 1; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { n = 2; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 3; cp = c & 0x07; }
    else return 0;
    if (len <= n)
        return 0;
    for (size_t k = 1; k <= n; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    /* overlong forms, surrogates and code points past U+10FFFF */
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n + 1;
}

int cbx_utf8_valid(const char *str, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t n = str[i] == '\0' ? 0 : cbx_utf8_char_len(str + i, len - i);
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

struct cbx_msg *cbx_msg_create(const char *queue, size_t queue_len, const char *data,
                               size_t data_len, int is_json)
{
    size_t tail_max = sizeof ",\"queue\":" + cbx_json_string_max(queue_len) + sizeof ",\"data\":" +
                      (is_json ? data_len : cbx_json_string_max(data_len)) + 1;
    struct cbx_msg *m = malloc(sizeof *m + ID_ROOM + tail_max);
    struct timespec ts;
    char *p;

    if (m == NULL)
        return NULL;
    atomic_init(&m->refs, 1);
    m->id = 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->published_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    p = m->buf + ID_ROOM;
    memcpy(p, ",\"queue\":", 9);
    p += 9;
    p += cbx_json_string_write(p, queue, queue_len);
    memcpy(p, ",\"data\":", 8);
    p += 8;
    if (is_json) {
        memcpy(p, data, data_len);
        p += data_len;
    } else {
        p += cbx_json_string_write(p, data, data_len);
    }
    *p++ = '}';
    m->tail_len = (size_t)(p - (m->buf + ID_ROOM));
    m->json = m->buf + ID_ROOM;
    m->len = m->tail_len;
    return m;
}

struct cbx_msg *cbx_msg_from_tail(const char *tail, size_t tail_len, uint64_t id, int64_t published_us)
{
    struct cbx_msg *m = malloc(sizeof *m + ID_ROOM + tail_len);

    if (m == NULL)
        return NULL;
    atomic_init(&m->refs, 1);
    m->published_us = published_us;
    memcpy(m->buf + ID_ROOM, tail, tail_len);
    m->tail_len = tail_len;
    cbx_msg_set_id(m, id);
    return m;
}

void cbx_msg_set_id(struct cbx_msg *m, uint64_t id)
{
    char digits[CBX_ID_DIGITS_MAX + 1];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)id);
    char *start = m->buf + ID_ROOM - n - (sizeof ID_PREFIX - 1);

    memcpy(start, ID_PREFIX, sizeof ID_PREFIX - 1);
    memcpy(start + sizeof ID_PREFIX - 1, digits, (size_t)n);
    m->id = id;
    m->json = start;
    m->len = (size_t)(m->buf + ID_ROOM - start) + m->tail_len;
}

void cbx_msg_unref(struct cbx_msg *m)
{
    if (m != NULL && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        free(m);
}
