/* buf.h - a growable byte buffer for building answers. Not thread-safe:
 * one owner at a time. Appends report failure through the ok flag so a
 * long chain of appends needs one check at the end. */
#ifndef CBX_BUF_H
#define CBX_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cbx_buf {
    char *s;    /* owned; NUL-terminated when non-NULL */
    size_t len, cap;
    bool ok;    /* false once an allocation failed */
};

void cbx_buf_init(struct cbx_buf *b);
void cbx_buf_free(struct cbx_buf *b);
void cbx_buf_reset(struct cbx_buf *b);
bool cbx_buf_reserve(struct cbx_buf *b, size_t more);
void cbx_buf_add(struct cbx_buf *b, const void *data, size_t len);
void cbx_buf_adds(struct cbx_buf *b, const char *s);
void cbx_buf_addf(struct cbx_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cbx_buf_add_u64(struct cbx_buf *b, uint64_t v);
/* Appends s as a JSON string literal. */
void cbx_buf_add_json_string(struct cbx_buf *b, const char *s, size_t len);

#endif
