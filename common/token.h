/* token.h - signed subscriber tokens (docs/PROTOCOL.md, "Subscriber
 * tokens"): HMAC-SHA256 over an expiry time and a list of queue names,
 * keyed by subscribe-secret, so a backend can let a browser read exactly
 * its own queues. Also the constant-time secret comparison of the publish
 * port. Uses nettle; nothing here is a hand-written hash. */
#ifndef CBX_TOKEN_H
#define CBX_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "qname.h"

/* Makes a token for queues (comma-joined names) valid until expiry (unix
 * seconds) into out (size len). Returns false when out is too small. */
bool cbx_token_make(const char *secret, const char *queues, int64_t expiry, char *out, size_t len);

/* Checks token for every queue of want at time now (unix seconds).
 * CBX_OK, or CBX_ERR_INVALID with the reason in why. */
enum cbx_err cbx_token_check(const char *secret, const char *token, const struct cbx_qlist *want, int64_t now,
                             char *why, size_t whylen);

/* Compares a and b in time that depends only on their lengths. */
bool cbx_secret_equal(const char *a, const char *b);

#endif
