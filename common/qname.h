/* qname.h - queue names and the small values browsers put in URLs:
 * validating a name, splitting a queue list, reading a message id. */
#ifndef CBX_QNAME_H
#define CBX_QNAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CBX_QNAME_MAX 128
#define CBX_QLIST_MAX 16
#define CBX_ID_MAX ((UINT64_C(1) << 53) - 1)

struct cbx_qlist {
    size_t n;
    char *names[CBX_QLIST_MAX]; /* point into buf */
    char *buf;                  /* owned: the names, NUL-separated; free with cbx_qlist_free() */
};

/* True when s[0..len) is 1-128 bytes of letters, digits and ._:@- */
bool cbx_qname_valid(const char *s, size_t len);

/* Splits "a,b,c" into out (which then owns a copy of the names). On error
 * writes the reason to err and out is left empty. */
enum cbx_err cbx_qlist_parse(const char *s, struct cbx_qlist *out, char *err, size_t errlen);

/* Frees the names; the list is empty afterwards. */
void cbx_qlist_free(struct cbx_qlist *l);

/* Decodes %HH escapes in place, except %00, which stays as it is (a
 * decoded NUL would cut "a%00b" to the valid name "a"). Returns the length. */
size_t cbx_url_unescape(char *s);

/* Reads a decimal id 0..2^53-1 with no sign, spaces or leading '+'. */
bool cbx_id_parse(const char *s, uint64_t *out);

#endif
