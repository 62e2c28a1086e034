/* msg.h - a published message: immutable, reference counted, holding its
 * JSON encoding {"id":..,"queue":..,"data":..} made once at publish time and
 * shared by every subscriber. Not for parsing publish bodies (pub.h). */
#ifndef CBX_MSG_H
#define CBX_MSG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CBX_ID_DIGITS_MAX 20

struct cbx_msg {
    _Atomic unsigned refs;
    uint64_t id;          /* set once by cbx_msg_set_id(), before anyone else sees it */
    int64_t published_us; /* CLOCK_REALTIME at publish */
    size_t len;           /* bytes of json */
    const char *json;     /* points into buf; not NUL-terminated */
    size_t tail_len;      /* bytes after the id digits: ,"queue":..,"data":..} */
    char buf[];           /* reserved id room, then the tail */
};

/* Makes a message for queue name (already validated) with data, which is
 * text (is_json false: encoded as a JSON string) or one compact JSON value
 * (is_json true: copied as is). The id is not set yet. Returns NULL when
 * memory runs out. Owned by the caller; free with cbx_msg_unref(). */
struct cbx_msg *cbx_msg_create(const char *queue, size_t queue_len, const char *data,
                               size_t data_len, int is_json);

/* Remakes a message from its tail (as written by a journal: the bytes
 * after the id digits), with its id and publish time. NULL when memory
 * runs out. */
struct cbx_msg *cbx_msg_from_tail(const char *tail, size_t tail_len, uint64_t id, int64_t published_us);

/* Writes the id into the encoding. Cheap (no allocation): meant to run under
 * the queue-map lock right when the id is handed out. */
void cbx_msg_set_id(struct cbx_msg *m, uint64_t id);

static inline struct cbx_msg *cbx_msg_ref(struct cbx_msg *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

void cbx_msg_unref(struct cbx_msg *m);

/* The encoding's bytes after the id digits (what a journal or Redis keeps). */
static inline const char *cbx_msg_tail(const struct cbx_msg *m, size_t *len)
{
    *len = m->tail_len;
    return m->json + m->len - m->tail_len;
}

/* Appends text as a JSON string literal (with quotes) to out, which must
 * have room for cbx_json_string_max(len) bytes; returns bytes written.
 * Every control character is escaped (\n, \r, \t, the others and DEL as
 * \u00XX), so the literal never holds a line break; bytes >= 0x80 pass
 * through, U+2028 and U+2029 included (callers validate UTF-8). */
size_t cbx_json_string_write(char *out, const char *text, size_t len);
static inline size_t cbx_json_string_max(size_t len) { return len * 6 + 2; }

/* True when s[0..len) is well-formed UTF-8 without NUL bytes. */
int cbx_utf8_valid(const char *s, size_t len);

/* Bytes (1-4) of the well-formed UTF-8 character at s[0..len), or 0 when
 * there is none: a stray continuation byte, a sequence cut short, an
 * overlong form, a surrogate or a code point past U+10FFFF. A NUL byte is
 * one character here. */
size_t cbx_utf8_char_len(const char *s, size_t len);

#endif
